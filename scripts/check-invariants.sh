#!/usr/bin/env bash
# Fails when a crate gains a dependency that ARCHITECTURE.md's invariants forbid.
set -euo pipefail
cd "$(dirname "$0")/.."
fail=0
forbid() { # crate, pattern, reason
  local crate=$1 pattern=$2 reason=$3
  local hits
  hits=$(cargo tree -p "$crate" -e normal --prefix none --offline 2>/dev/null | grep -E "^($pattern) v" | sort -u || true)
  if [ -n "$hits" ]; then
    echo "invariant broken: $crate depends on $(echo "$hits" | tr '\n' ' ')— $reason" >&2
    fail=1
  fi
}
forbid shoal-agent 'sqlx|sqlx-core|axum|hyper|reqwest|shoal-store|shoal-server|shoal-client' "the agent stays small and knows no storage or HTTP"
for c in shoal-engine shoal-plan shoal-types shoal-proto; do
  forbid "$c" 'tokio|sqlx|sqlx-core|axum|reqwest|hyper' "$c does no IO and needs no async runtime"
done
forbid shoal-store 'sqlx|sqlx-core|tokio' "shoal-store holds traits only; backends own SQL"
[ $fail -eq 0 ] && echo "invariants hold"
exit $fail
