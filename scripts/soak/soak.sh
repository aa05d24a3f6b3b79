#!/usr/bin/env bash
# Chaos soak of issue 21 (make soak): three workers, kill -9 every 20-40 s, one RabbitMQ restart, 30 % storage
# faults through a loopback proxy, 5 poison jobs; exact accounting at the end (docs/reliability.md, "Chaos soak").
#
#   scripts/soak/soak.sh [--jobs N] [options of scripts/soak/soak.py --help]
#
# Own ports and state, so it never meets the test services: MAMBAST_RABBITMQ_PORT (21790), MAMBAST_AZURITE_PORT
# (10190), MAMBAST_SERVICES_DIR (artifacts/soak/services). The services are brought down on any exit.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
export MAMBAST_RABBITMQ_PORT="${SOAK_RABBITMQ_PORT:-21790}"
export MAMBAST_AZURITE_PORT="${SOAK_AZURITE_PORT:-10190}"
export MAMBAST_SERVICES_DIR="$ROOT/artifacts/soak/services"
export MSBUILDDISABLENODEREUSE=1 DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

export SOAK_PIDS_FILE="$ROOT/artifacts/soak/worker.pids"
cleanup() {
  # Only processes this soak started: pids it recorded that still run the worker dll.
  if [[ -f "$SOAK_PIDS_FILE" ]]; then
    while read -r pid; do
      if grep -qs MambaSt.Batch.Worker.dll "/proc/$pid/cmdline"; then kill -9 "$pid" 2>/dev/null || true; fi
    done < "$SOAK_PIDS_FILE"
    rm -f "$SOAK_PIDS_FILE"
  fi
  "$ROOT/scripts/services.sh" down >/dev/null 2>&1 || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [[ "${SOAK_NO_BUILD:-0}" != 1 ]]; then
  dotnet build src/Worker -c Release -nologo -v q
  dotnet build src/Submitter -c Release -nologo -v q
fi

# A fresh broker and storage each run: queues and blobs of an earlier soak would blur the accounting.
"$ROOT/scripts/services.sh" down >/dev/null 2>&1 || true
rm -rf "$MAMBAST_SERVICES_DIR"
mkdir -p "$ROOT/artifacts/soak"; : > "$SOAK_PIDS_FILE"

/usr/bin/python3 "$ROOT/scripts/soak/soak.py" "$@"
