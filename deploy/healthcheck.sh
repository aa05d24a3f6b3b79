#!/usr/bin/env bash
# Container health probe without curl or wget: one HTTP/1.0 GET over bash's /dev/tcp.
# Usage: healthcheck.sh [path] [port]   exits 0 only on an HTTP 200 answer within 3 seconds.
set -u
path="${1:-/health/ready}"
port="${2:-${HEALTH_PORT:-8080}}"
{ exec 3<>"/dev/tcp/127.0.0.1/${port}"; } 2>/dev/null || exit 1
printf 'GET %s HTTP/1.0\r\nHost: localhost\r\nConnection: close\r\n\r\n' "$path" >&3
IFS= read -r -t 3 status <&3 || exit 1
exec 3<&- 3>&-
case "$status" in
  HTTP/1.?" 200"*) exit 0 ;;
  *) exit 1 ;;
esac
