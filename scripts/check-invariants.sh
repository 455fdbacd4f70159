#!/usr/bin/env bash
# Fails when the code breaks one of ARCHITECTURE.md's invariants: a crate gains a dependency it
# must not have, or a server module reaches into the API layer. Fails too when one of its own
# tools fails: a check that cannot run is not a check that passed.
set -euo pipefail
cd "$(dirname "$0")/.."
fail=0

# The normal dependencies of a crate, one name per line. Exits the script if cargo fails.
deps_of() {
  local crate=$1 out
  if ! out=$(cargo tree -p "$crate" -e normal --prefix none --offline 2>&1); then
    echo "check-invariants: 'cargo tree -p $crate' failed:" >&2
    echo "$out" >&2
    exit 2
  fi
  [ -n "$out" ] || { echo "check-invariants: 'cargo tree -p $crate' printed nothing" >&2; exit 2; }
  echo "$out" | awk '{print $1}' | sort -u
}

forbid() { # crate, pattern, reason
  local crate=$1 pattern=$2 reason=$3 deps hits
  deps=$(deps_of "$crate")
  hits=$(echo "$deps" | grep -E "^($pattern)$" || true)
  if [ -n "$hits" ]; then
    echo "invariant broken: $crate depends on $(echo "$hits" | tr '\n' ' ')— $reason" >&2
    fail=1
  fi
}

forbid shoal-agent 'sqlx|sqlx-core|axum|hyper|reqwest|shoal-store|shoal-server|shoal-client|utoipa' "the agent stays small and knows no storage or HTTP"
for c in shoal-engine shoal-plan shoal-types shoal-proto; do
  forbid "$c" 'tokio|sqlx|sqlx-core|axum|reqwest|hyper' "$c does no IO and needs no async runtime"
done
forbid shoal-store 'sqlx|sqlx-core|tokio' "shoal-store holds traits only; backends own SQL"
forbid shoal-client 'shoal-store|sqlx|sqlx-core' "the client speaks the API's types, not storage records"

# Layering inside the server: the API module calls services; no service imports the API.
# lib.rs (the composition root) mounts the router; tests may drive it.
server=crates/shoal-server/src
[ -d "$server/api" ] || { echo "check-invariants: $server/api is missing" >&2; exit 2; }
hits=$(grep -rnE '(crate|super)::api\b' "$server" --include='*.rs' \
  | grep -vE "^$server/(api/|lib\.rs:|tests\.rs:|tests/)" || true)
if [ -n "$hits" ]; then
  echo "invariant broken: server modules outside api/ import the API layer:" >&2
  echo "$hits" >&2
  fail=1
fi

# Task messages reach agents only through the launcher's dispatch.
hits=$(grep -rnE 'ServerMsg::(Run|Fetch|Kill)\b' "$server" --include='*.rs' \
  | grep -v '=>' \
  | grep -vE "^$server/(launch/|active\.rs:|tests\.rs:|tests/|[a-z_/]*_?tests\.rs:)" || true)
if [ -n "$hits" ]; then
  echo "invariant broken: task messages built outside launch/ (and the index that holds them):" >&2
  echo "$hits" >&2
  fail=1
fi
# The storage conformance suite is for tests: only [dev-dependencies] may enable it.
if ! store_features=$(cargo tree --workspace -e normal,features --prefix none --offline -i shoal-store 2>&1); then
  echo "check-invariants: cargo tree failed: $store_features" >&2
  exit 2
elif grep -q 'shoal-store feature "conformance"' <<<"$store_features"; then
  echo "invariant broken: a crate enables shoal-store/conformance outside [dev-dependencies] — the suite is compiled into tests only" >&2
  fail=1
fi
[ $fail -eq 0 ] && echo "invariants hold"
exit $fail
