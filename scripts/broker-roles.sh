#!/usr/bin/env bash
# RabbitMQ users for the three roles of MambaSt.Batch, each limited by configure/write/read regexes on one vhost
# (docs/security.md, "Broker permissions"). Idempotent: an existing user gets its password and permissions reset.
#
#   MAMBAST_SUBMITTER_PASSWORD=... MAMBAST_WORKER_PASSWORD=... MAMBAST_SUBSCRIBER_PASSWORD=... \
#     scripts/broker-roles.sh [--vhost /] [--queue stylize-image] [--prefix mambast-]
#
# Passwords come from the environment and reach rabbitmqctl on stdin, never on a command line.
# RABBITMQCTL: the command that runs rabbitmqctl (default: rabbitmqctl; locally "scripts/services.sh ctl").
#
#   submitter   sends StylizeImage (exchange <queue>, or publishes MambaSt.Batch.Contracts:StylizeImage);
#               declares and reads its batch queues mambast-batch-<id> and their headers exchange
#               mambast-batch-events; reads (binds), never writes, the event exchanges.
#   worker      consumes <queue>; publishes ImageStylized / ImageStylizationFailed and MassTransit faults;
#               owns <queue>_error, _skipped, _quarantine(_error), _isolation(_error) and <queue>-delay-<d>s
#               (copies published through amq.default).
#   subscriber  reads the event exchanges into its own queues, named <subscriber queue prefix>*
#               (MAMBAST_SUBSCRIBER_QUEUES, default "mambast-events-"); writes nothing else.
# Every role may use MassTransit's temporary bus endpoint (a name containing "_bus_").
set -euo pipefail

vhost=/
queue="${MAMBAST_QUEUE:-stylize-image}"
prefix="${MAMBAST_ROLE_PREFIX:-mambast-}"
subscriber_queues="${MAMBAST_SUBSCRIBER_QUEUES:-mambast-events-}"
while (( $# > 0 )); do
  case "$1" in
    --vhost) vhost="$2"; shift 2 ;;
    --queue) queue="$2"; shift 2 ;;
    --prefix) prefix="$2"; shift 2 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done

for var in MAMBAST_SUBMITTER_PASSWORD MAMBAST_WORKER_PASSWORD MAMBAST_SUBSCRIBER_PASSWORD; do
  if [[ -z "${!var:-}" ]]; then echo "$var is not set" >&2; exit 2; fi
done

read -r -a ctl <<< "${RABBITMQCTL:-rabbitmqctl}"
q() { printf '%s' "$1" | sed 's/[.[\]*+?(){}|^$\\]/\\&/g'; }
Q="$(q "$queue")"
S="$(q "$subscriber_queues")"
BUS='.*_bus_.*'
NS='MambaSt\.Batch\.Contracts'
EVENTS="$NS:(ImageStylized|ImageStylizationFailed)"
CE='mambast\.events' # the CloudEvents topic exchange (CloudEvents:Exchange)

# name configure write read
roles=(
  "${prefix}submitter"
  "^($Q|$NS:StylizeImage|$EVENTS|mambast-batch-.*|$BUS)\$"
  "^($Q|$NS:StylizeImage|mambast-batch-.*|$BUS)\$"
  "^($Q|$EVENTS|mambast-batch-.*|$BUS)\$"

  "${prefix}worker"
  "^($Q|${Q}_(error|skipped|quarantine|quarantine_error|isolation|isolation_error)|$Q-delay-[0-9]+s|$NS:.*|$CE|MassTransit:Fault.*|$BUS)\$"
  "^($Q|${Q}_(error|skipped|quarantine|quarantine_error|isolation|isolation_error)|$Q-delay-[0-9]+s|$EVENTS|$CE|MassTransit:Fault.*|amq\\.default|$BUS)\$"
  "^($Q|${Q}_(error|skipped|quarantine|quarantine_error|isolation|isolation_error)|$Q-delay-[0-9]+s|$NS:StylizeImage|$BUS)\$"

  "${prefix}subscriber"
  "^($S.*|$EVENTS|$CE|$BUS)\$"
  "^($S.*|$BUS)\$"
  "^($S.*|$EVENTS|$CE|$BUS)\$"
)

password_of() {
  case "$1" in
    *submitter) printf '%s' "$MAMBAST_SUBMITTER_PASSWORD" ;;
    *worker) printf '%s' "$MAMBAST_WORKER_PASSWORD" ;;
    *subscriber) printf '%s' "$MAMBAST_SUBSCRIBER_PASSWORD" ;;
  esac
}

"${ctl[@]}" add_vhost "$vhost" > /dev/null 2>&1 || true
for (( i = 0; i < ${#roles[@]}; i += 4 )); do
  user="${roles[i]}"
  if ! password_of "$user" | "${ctl[@]}" add_user "$user" > /dev/null 2>&1; then
    password_of "$user" | "${ctl[@]}" change_password "$user" > /dev/null
  fi
  "${ctl[@]}" set_user_tags "$user" > /dev/null
  "${ctl[@]}" set_permissions -p "$vhost" "$user" "${roles[i+1]}" "${roles[i+2]}" "${roles[i+3]}" > /dev/null
  echo "broker role $user on vhost $vhost: configure ${roles[i+1]} write ${roles[i+2]} read ${roles[i+3]}" >&2
done
