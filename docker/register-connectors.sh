#!/usr/bin/env bash
# Register connector JSON files ({"name": ..., "config": {...}}) with a Kafka Connect
# worker, then wait until each connector and all its tasks run. Idempotent:
# PUT /connectors/<name>/config creates the connector or updates its config.
#
#   FRAUDPIPE_CONNECT__URL=http://connect:8083 docker/register-connectors.sh [FILE.json ...]
#
# Default file: connectors/cassandra-sink.json. Works the same against the embedded
# `fraudpipe connect` worker, which speaks the same REST API.
#
# A worker that just joined its group answers 409 (rebalance in progress) and one still
# starting answers 5xx or nothing: those are retried with a doubling back-off (1 s up to
# 8 s) until REGISTER_WAIT_SECONDS (default 180) have passed. Any other status is an error
# in the connector JSON and fails at once.
set -euo pipefail

url="${FRAUDPIPE_CONNECT__URL:?set FRAUDPIPE_CONNECT__URL to the Kafka Connect REST URL}"
url="${url%/}"
wait_seconds="${REGISTER_WAIT_SECONDS:-180}"
[ "$#" -gt 0 ] || set -- connectors/cassandra-sink.json

# Print "<name>\n<config as JSON>" of a connector file.
split_connector() {
  python3 -c 'import json, sys
doc = json.load(open(sys.argv[1]))
print(doc["name"]); print(json.dumps(doc["config"]))' "$1"
}

# Read a /status body on stdin; print RUNNING (connector and every task), FAILED, or WAITING.
verdict() {
  python3 -c 'import json, sys
try:
    doc = json.load(sys.stdin)
except ValueError:
    doc = {}
states = [doc.get("connector", {}).get("state")] + [t.get("state") for t in doc.get("tasks", [])]
if "FAILED" in states:
    print("FAILED")
elif len(states) > 1 and all(s == "RUNNING" for s in states):
    print("RUNNING")
else:
    print("WAITING")'
}

deadline=$(( $(date +%s) + wait_seconds ))
until curl -fsS -o /dev/null "$url/connector-plugins"; do
  if [ "$(date +%s)" -ge "$deadline" ]; then
    echo "error: Kafka Connect at $url did not answer within ${wait_seconds}s" >&2
    exit 1
  fi
  sleep 2
done

body=$(mktemp)
trap 'rm -f "$body"' EXIT
for file in "$@"; do
  { read -r name; read -r config; } < <(split_connector "$file")
  attempt=0
  delay=1
  while :; do
    attempt=$((attempt + 1))
    : > "$body"
    # curl prints 000 when nothing answered; its exit status is not the verdict here
    code=$(curl -sS -o "$body" -w '%{http_code}' -X PUT -H 'Content-Type: application/json' \
             --data "$config" "$url/connectors/$name/config" || true)
    case "$code" in
      200|201) echo "connector $name: config accepted (HTTP $code) from $file"; break ;;
      409|5??|000)
        if [ $(( $(date +%s) + delay )) -gt "$deadline" ]; then
          echo "error: registering $name from $file: still HTTP $code after $attempt attempts" \
               "and ${wait_seconds}s: $(cat "$body")" >&2
          exit 1
        fi
        echo "connector $name: HTTP $code (attempt $attempt, the worker is rebalancing or starting);" \
             "retrying in ${delay}s" >&2
        sleep "$delay"
        delay=$(( delay < 8 ? delay * 2 : 8 )) ;;
      *) echo "error: registering $name from $file failed with HTTP $code: $(cat "$body")" >&2; exit 1 ;;
    esac
  done

  # A config can be accepted and still fail to start (plugin missing, store down).
  while :; do
    status=$(curl -sS "$url/connectors/$name/status" || true)
    case "$(printf '%s' "$status" | verdict)" in
      RUNNING) echo "connector $name: RUNNING"; break ;;
      FAILED)  echo "error: connector $name failed: $status" >&2; exit 1 ;;
    esac
    if [ "$(date +%s)" -ge "$deadline" ]; then
      echo "error: connector $name not RUNNING within ${wait_seconds}s: $status" >&2
      exit 1
    fi
    sleep 2
  done
done
