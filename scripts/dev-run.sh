#!/usr/bin/env bash
# Development mode (`make run` ends here): one shoal server and three agents on this machine,
# state under .dev/, logs under .dev/logs/. Ctrl-C stops everything.
#
# Environment:
#   PROFILE=release            use target/release binaries (default: target/debug)
#   SHOAL_LOG=info             log filter of the server and agents
#   SHOAL_DEV_API_PORT=8680    REST API and console port
#   SHOAL_DEV_AGENT_PORT=8681  agent TLS port
#   SHOAL_DEV_AGENTS=3         how many agents
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

PROFILE=${PROFILE:-debug}
API_PORT=${SHOAL_DEV_API_PORT:-8680}
AGENT_PORT=${SHOAL_DEV_AGENT_PORT:-8681}
AGENTS=${SHOAL_DEV_AGENTS:-3}
BIN=target/$PROFILE
DEV=.dev
DATA=$DEV/server
LOGS=$DEV/logs
# The processes get absolute paths: they may resolve paths from another working directory.
ROOT=$(pwd)

for b in shoal shoal-agent; do
    if [[ ! -x $BIN/$b ]]; then
        echo "dev-run: $BIN/$b is missing; build it first (make build, or cargo build --workspace --bins${PROFILE:+ with PROFILE=$PROFILE})" >&2
        exit 1
    fi
done

mkdir -p "$DATA" "$LOGS"

pids=()
cleanup() {
    trap - EXIT INT TERM
    if ((${#pids[@]})); then
        echo
        echo "dev-run: stopping"
        local pid
        # Agents first, then the server (pids[0]).
        for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
            kill "${pids[i]}" 2>/dev/null || true
        done
        for pid in "${pids[@]}"; do
            wait "$pid" 2>/dev/null || true
        done
    fi
}
trap cleanup EXIT
# Ctrl-C is how dev mode is meant to end: a clean stop, not an error for make.
trap 'exit 0' INT TERM

healthy() {
    # GET /healthz without needing curl; a subshell so a refused connection cannot end us.
    local reply
    # shellcheck disable=SC2016
    reply=$(timeout 2 bash -c '
        exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
        printf "GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n" >&3
        head -n 1 <&3' _ "$API_PORT" 2>/dev/null) || return 1
    [[ $reply == *" 200 "* ]]
}

if healthy; then
    echo "dev-run: something already answers on 127.0.0.1:$API_PORT; stop it or set SHOAL_DEV_API_PORT" >&2
    exit 1
fi

SHOAL_LOG=${SHOAL_LOG:-info} "$BIN/shoal" server \
    --data-dir "$ROOT/$DATA" \
    --listen "127.0.0.1:$API_PORT" \
    --agent-listen "127.0.0.1:$AGENT_PORT" \
    >>"$LOGS/server.log" 2>&1 &
pids+=($!)
server_pid=$!

echo "dev-run: starting the server (log: $LOGS/server.log)"
for _ in $(seq 1 300); do
    if healthy; then
        break
    fi
    if ! kill -0 "$server_pid" 2>/dev/null; then
        echo "dev-run: the server exited; last lines of $LOGS/server.log:" >&2
        tail -n 20 "$LOGS/server.log" >&2
        exit 1
    fi
    sleep 0.1
done
if ! healthy; then
    echo "dev-run: the server did not answer /healthz within 30s" >&2
    exit 1
fi
for f in ca.pem admin.token admin.password enroll.token; do
    if [[ ! -s $DATA/$f ]]; then
        echo "dev-run: the server did not write $DATA/$f" >&2
        exit 1
    fi
done

for n in $(seq 1 "$AGENTS"); do
    # All agents run on this machine: give each its own hostname and address (127.0.1.N, this
    # machine's loopback) so they are told apart.
    SHOAL_AGENT_HOSTNAME="dev-agent-$n" SHOAL_AGENT_IP="127.0.1.$n" \
        SHOAL_LOG=${SHOAL_LOG:-info} "$BIN/shoal-agent" \
        --server "127.0.0.1:$AGENT_PORT" \
        --server-name localhost \
        --ca "$ROOT/$DATA/ca.pem" \
        --enroll-token-file "$ROOT/$DATA/enroll.token" \
        --state-dir "$ROOT/$DEV/agent-$n" \
        --label dev=true \
        --label "name=agent-$n" \
        >>"$LOGS/agent-$n.log" 2>&1 &
    pids+=($!)
    # One at a time on first start, so that host ids follow the agent numbers.
    for _ in $(seq 1 100); do
        if grep -q "connected" "$LOGS/agent-$n.log" 2>/dev/null; then
            break
        fi
        sleep 0.1
    done
done

server_env=""
if [[ $API_PORT != 8680 ]]; then
    server_env="SHOAL_SERVER=http://127.0.0.1:$API_PORT "
fi
cat <<EOF

Shoal is running.
  console and API:  http://127.0.0.1:$API_PORT
  sign in as:       admin / $(cat "$DATA/admin.password")   (password kept in $DATA/admin.password)
  admin API token:  $(cat "$DATA/admin.token")
  agents:           $AGENTS: dev-agent-N at 127.0.1.N, host id N on a fresh .dev/
                    (labels dev=true, name=agent-N), logs in $LOGS/

Try, from $(pwd):
  ${server_env}$BIN/shoal login --user admin     (or pass a token on each command, as below)
  ${server_env}SHOAL_TOKEN=\$(cat $DATA/admin.token) $BIN/shoal hosts
  ${server_env}SHOAL_TOKEN=\$(cat $DATA/admin.token) $BIN/shoal run --label dev=true -c 'echo hello from \$(hostname)'

Ctrl-C stops the server and the agents.
EOF

# Stay up until Ctrl-C, or until a process dies (then stop the rest).
set +e
wait -n "${pids[@]}"
status=$?
set -e
# Ctrl-C reaches the server and agents too (one process group); they stop cleanly (status 0,
# or 130) and may be seen exiting before our own INT trap runs: that is a normal stop.
if ((status == 0 || status == 130)); then
    exit 0
fi
echo "dev-run: a process exited (status $status); see $LOGS/" >&2
exit 1
