#!/usr/bin/env bash
# Starts a Shoal server (temp data dir, free ports) and N real local agents, using binaries that
# are already built (it builds nothing). Waits until the agents are online, then prints
#   SHOAL_URL=http://127.0.0.1:PORT
#   SHOAL_TOKEN=...
#   SHOAL_PASSWORD=...                (the built-in admin's password, for signing in to the console)
#   SHOAL_DATA=/tmp/...
#   SHOAL_AGENT_ADDR=127.0.0.1:PORT   (where agents connect, for tests that start their own)
#   READY
# and stays in the foreground. SIGTERM/SIGINT (or the end of the script) stops the server and
# the agents and removes the data dir (KEEP_DATA=1 keeps it).
#
# Env: SHOAL_BIN (default target/debug/shoal), SHOAL_AGENT_BIN (default target/debug/shoal-agent),
#      AGENTS (default 3), SIMULATE=N (also start `shoal-agent simulate --count N`),
#      SERVER_ARGS (extra server flags), HTTP_PORT (default: a free port), READY_TIMEOUT (seconds, default 60).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SHOAL_BIN="${SHOAL_BIN:-$ROOT/target/debug/shoal}"
AGENT_BIN="${SHOAL_AGENT_BIN:-$ROOT/target/debug/shoal-agent}"
AGENTS="${AGENTS:-3}"
SIMULATE="${SIMULATE:-0}"
READY_TIMEOUT="${READY_TIMEOUT:-60}"

for b in "$SHOAL_BIN" "$AGENT_BIN"; do
  [ -x "$b" ] || { echo "start-stack: $b is not built (run cargo build first)" >&2; exit 2; }
done

DATA="$(mktemp -d /tmp/shoal-web-stack.XXXXXX)"
PIDS=()

cleanup() {
  trap - EXIT INT TERM
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ "${KEEP_DATA:-0}" != 1 ]; then rm -rf "$DATA"; fi
}
trap cleanup EXIT
trap 'exit 0' INT TERM

free_port() {
  node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

HTTP_PORT="${HTTP_PORT:-$(free_port)}"
AGENT_PORT="$(free_port)"
while [ "$AGENT_PORT" = "$HTTP_PORT" ]; do AGENT_PORT="$(free_port)"; done
URL="http://127.0.0.1:$HTTP_PORT"

# shellcheck disable=SC2086
"$SHOAL_BIN" server --data-dir "$DATA/server" --listen "127.0.0.1:$HTTP_PORT" \
  --agent-listen "127.0.0.1:$AGENT_PORT" ${SERVER_ARGS:-} >"$DATA/server.log" 2>&1 &
PIDS+=($!)

deadline=$((SECONDS + READY_TIMEOUT))
until curl -fsS "$URL/healthz" >/dev/null 2>&1 && [ -s "$DATA/server/admin.token" ] && [ -s "$DATA/server/admin.password" ] && [ -s "$DATA/server/enroll.token" ]; do
  if [ $SECONDS -ge $deadline ]; then
    echo "start-stack: the server did not come up; its log:" >&2
    tail -50 "$DATA/server.log" >&2
    exit 1
  fi
  kill -0 "${PIDS[0]}" 2>/dev/null || { echo "start-stack: the server exited; its log:" >&2; tail -50 "$DATA/server.log" >&2; exit 1; }
  sleep 0.2
done
TOKEN="$(tr -d '\n' <"$DATA/server/admin.token")"
PASSWORD="$(tr -d '\n' <"$DATA/server/admin.password")"

for i in $(seq 1 "$AGENTS"); do
  mkdir -p "$DATA/agent-$i"
  SHOAL_AGENT_HOSTNAME="web-agent-$i" "$AGENT_BIN" --server "127.0.0.1:$AGENT_PORT" --server-name localhost \
    --ca "$DATA/server/ca.pem" --enroll-token-file "$DATA/server/enroll.token" \
    --state-dir "$DATA/agent-$i" --label web=true --label "idx=$i" >"$DATA/agent-$i.log" 2>&1 &
  PIDS+=($!)
done

if [ "$SIMULATE" -gt 0 ]; then
  mkdir -p "$DATA/sim"
  "$AGENT_BIN" simulate --count "$SIMULATE" --server "127.0.0.1:$AGENT_PORT" --server-name localhost \
    --ca "$DATA/server/ca.pem" --enroll-token-file "$DATA/server/enroll.token" \
    --state-dir "$DATA/sim" >"$DATA/sim.log" 2>&1 &
  PIDS+=($!)
fi

WANT=$((AGENTS + SIMULATE))
online=0
until [ "$online" -ge "$WANT" ]; do
  if [ $SECONDS -ge $((deadline + WANT / 50)) ]; then
    echo "start-stack: only $online of $WANT agents came online; logs:" >&2
    for f in "$DATA"/agent-*.log "$DATA"/sim.log; do [ -f "$f" ] && { echo "== $f" >&2; tail -20 "$f" >&2; }; done
    exit 1
  fi
  sleep 0.3
  online="$(curl -fsS -H "Authorization: Bearer $TOKEN" "$URL/api/v1/hosts/summary" 2>/dev/null |
    sed -n 's/.*"online":\([0-9]*\).*/\1/p')"
  online="${online:-0}"
done

echo "SHOAL_URL=$URL"
echo "SHOAL_TOKEN=$TOKEN"
echo "SHOAL_PASSWORD=$PASSWORD"
echo "SHOAL_DATA=$DATA"
echo "SHOAL_AGENT_ADDR=127.0.0.1:$AGENT_PORT"
echo "READY"

# Stay in the foreground until told to stop; end if the server dies.
while kill -0 "${PIDS[0]}" 2>/dev/null; do sleep 1; done
echo "start-stack: the server exited" >&2
exit 1
