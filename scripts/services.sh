#!/usr/bin/env bash
# Local services for tests, the demo and development: RabbitMQ (Debian package) and Azurite (npm),
# both on 127.0.0.1 with private ports, data under .services/ (git-ignored), stopped by PID.
#
#   scripts/services.sh up       start both (idempotent), wait until ready, print the env to use
#   scripts/services.sh down     stop both
#   scripts/services.sh status   say what runs
#   scripts/services.sh env      print export lines (eval "$(scripts/services.sh env)")
#   scripts/services.sh ctl ARGS...  run rabbitmqctl ARGS against this node (stdin passes through)
#   scripts/services.sh restart-rabbitmq|stop-rabbitmq|start-rabbitmq|stop-azurite|start-azurite
#
# Ports (override with env): MAMBAST_RABBITMQ_PORT (21672), MAMBAST_AZURITE_PORT (10100).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="${MAMBAST_SERVICES_DIR:-$ROOT/.services}"
RABBIT_PORT="${MAMBAST_RABBITMQ_PORT:-21672}"
RABBIT_DIST_PORT=$((RABBIT_PORT + 1000))
AZURITE_PORT="${MAMBAST_AZURITE_PORT:-10100}"
RABBIT_NODE="mambast-${RABBIT_PORT}@localhost"
RABBIT_DIR="$STATE/rabbitmq"
AZURITE_DIR="$STATE/azurite"
RABBIT_BIN=/usr/lib/rabbitmq/bin
# Azurite's well-known development account key (public, documented by Microsoft; not a secret).
AZURITE_KEY="Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

mkdir -p "$STATE"
exec 9>"$STATE/.lock"

rabbit_env() {
  export HOME="$RABBIT_DIR/home"
  export RABBITMQ_NODENAME="$RABBIT_NODE"
  export RABBITMQ_DIST_PORT="$RABBIT_DIST_PORT"
  export RABBITMQ_NODE_PORT="$RABBIT_PORT"
  export RABBITMQ_MNESIA_BASE="$RABBIT_DIR/mnesia"
  export RABBITMQ_LOG_BASE="$RABBIT_DIR/log"
  export RABBITMQ_PID_FILE="$RABBIT_DIR/rabbitmq.pid"
  export RABBITMQ_ENABLED_PLUGINS_FILE="$RABBIT_DIR/enabled_plugins"
  export RABBITMQ_CONFIG_FILE="$RABBIT_DIR/rabbitmq"
  export RABBITMQ_ADVANCED_CONFIG_FILE="$RABBIT_DIR/advanced.config"
  export RABBITMQ_CONF_ENV_FILE="$RABBIT_DIR/rabbitmq-env.conf"
  export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="+S 2:2 +sbwt none -kernel inet_dist_use_interface {127,0,0,1}"
  export ERL_EPMD_ADDRESS=127.0.0.1
}

rabbit_running() {
  [[ -f "$RABBIT_DIR/rabbitmq.pid" ]] && kill -0 "$(cat "$RABBIT_DIR/rabbitmq.pid" 2>/dev/null)" 2>/dev/null
}

azurite_running() {
  [[ -f "$AZURITE_DIR/azurite.pid" ]] && kill -0 "$(cat "$AZURITE_DIR/azurite.pid")" 2>/dev/null
}

start_rabbitmq() {
  if rabbit_running; then return 0; fi
  if [[ ! -x "$RABBIT_BIN/rabbitmq-server" ]]; then
    echo "rabbitmq-server is not installed: run 'make setup' (apt package rabbitmq-server)" >&2
    return 1
  fi
  mkdir -p "$RABBIT_DIR/home" "$RABBIT_DIR/mnesia" "$RABBIT_DIR/log"
  : > "$RABBIT_DIR/rabbitmq-env.conf"
  echo "[]." > "$RABBIT_DIR/enabled_plugins"
  echo "[]." > "$RABBIT_DIR/advanced.config"
  cat > "$RABBIT_DIR/rabbitmq.conf" <<CONF
listeners.tcp.1 = 127.0.0.1:$RABBIT_PORT
loopback_users.guest = true
disk_free_limit.absolute = 200MB
vm_memory_high_watermark.relative = 0.3
CONF
  (
    rabbit_env
    cd "$RABBIT_DIR"
    # -detached is unreliable for pid files; run in the background ourselves.
    setsid "$RABBIT_BIN/rabbitmq-server" > "$RABBIT_DIR/log/stdout.log" 2>&1 < /dev/null 9>&- &
  )
  local waited=0
  until [[ -s "$RABBIT_DIR/rabbitmq.pid" ]]; do
    sleep 0.5; waited=$((waited + 1))
    if (( waited > 240 )); then echo "RabbitMQ wrote no pid file; see $RABBIT_DIR/log" >&2; return 1; fi
  done
  if ! ( rabbit_env; timeout 120 "$RABBIT_BIN/rabbitmqctl" -n "$RABBIT_NODE" wait --timeout 110 "$RABBIT_DIR/rabbitmq.pid" > "$RABBIT_DIR/log/wait.log" 2>&1 9>&- ); then
    echo "RabbitMQ did not become ready; see $RABBIT_DIR/log" >&2
    tail -20 "$RABBIT_DIR/log/stdout.log" >&2 || true
    return 1
  fi
}

stop_rabbitmq() {
  if rabbit_running; then
    local pid; pid="$(cat "$RABBIT_DIR/rabbitmq.pid")"
    ( rabbit_env; timeout 60 "$RABBIT_BIN/rabbitmqctl" -n "$RABBIT_NODE" stop > /dev/null 2>&1 9>&- ) || kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$RABBIT_DIR/rabbitmq.pid"
}

start_azurite() {
  if azurite_running; then return 0; fi
  local bin="$ROOT/node_modules/.bin/azurite-blob"
  if [[ ! -x "$bin" ]]; then
    echo "Azurite is not installed: run 'make setup' (npm ci)" >&2
    return 1
  fi
  mkdir -p "$AZURITE_DIR/data"
  setsid "$bin" --blobHost 127.0.0.1 --blobPort "$AZURITE_PORT" --location "$AZURITE_DIR/data" \
    --skipApiVersionCheck --loose --disableTelemetry --silent > "$AZURITE_DIR/azurite.log" 2>&1 < /dev/null 9>&- &
  echo $! > "$AZURITE_DIR/azurite.pid"
  for _ in $(seq 1 120); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$AZURITE_PORT") 2>/dev/null; then return 0; fi
    sleep 0.25
  done
  echo "Azurite did not open port $AZURITE_PORT; see $AZURITE_DIR/azurite.log" >&2
  return 1
}

stop_azurite() {
  if azurite_running; then
    local pid; pid="$(cat "$AZURITE_DIR/azurite.pid")"
    kill -- "-$pid" 2>/dev/null || kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$AZURITE_DIR/azurite.pid"
}

print_env() {
  echo "export MAMBAST_RABBITMQ_URL='amqp://guest:guest@127.0.0.1:$RABBIT_PORT/'"
  echo "export MAMBAST_BLOB_CONNECTION='DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=$AZURITE_KEY;BlobEndpoint=http://127.0.0.1:$AZURITE_PORT/devstoreaccount1;'"
  echo "export MAMBAST_SERVICES_SCRIPT='$ROOT/scripts/services.sh'"
}

case "${1:-status}" in
  up)
    flock 9
    start_rabbitmq & r=$!
    start_azurite & a=$!
    rc=0; wait $r || rc=1; wait $a || rc=1
    if (( rc != 0 )); then exit 1; fi
    echo "services up: RabbitMQ 127.0.0.1:$RABBIT_PORT, Azurite blob 127.0.0.1:$AZURITE_PORT" >&2
    print_env
    ;;
  down) flock 9; stop_azurite; stop_rabbitmq; echo "services down" >&2 ;;
  status)
    rabbit_running && echo "rabbitmq: running (pid $(cat "$RABBIT_DIR/rabbitmq.pid"), port $RABBIT_PORT)" || echo "rabbitmq: stopped"
    azurite_running && echo "azurite: running (pid $(cat "$AZURITE_DIR/azurite.pid"), port $AZURITE_PORT)" || echo "azurite: stopped"
    ;;
  env) print_env ;;
  ctl) shift; rabbit_env; exec 9>&-; exec "$RABBIT_BIN/rabbitmqctl" -n "$RABBIT_NODE" "$@" ;;
  start-rabbitmq) flock 9; start_rabbitmq ;;
  stop-rabbitmq) flock 9; stop_rabbitmq ;;
  restart-rabbitmq) flock 9; stop_rabbitmq; start_rabbitmq ;;
  start-azurite) flock 9; start_azurite ;;
  stop-azurite) flock 9; stop_azurite ;;
  *) echo "usage: $0 up|down|status|env|start-rabbitmq|stop-rabbitmq|restart-rabbitmq|start-azurite|stop-azurite" >&2; exit 2 ;;
esac
