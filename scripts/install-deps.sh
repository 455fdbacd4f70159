#!/usr/bin/env bash
# Installs the system packages Shoal's tests need, if they are missing. Idempotent: when
# everything is present it changes nothing and runs no apt command.
#
# Needed by the tests:
#   postgresql  server binaries (initdb, pg_ctl, postgres) for the PostgreSQL store tests
#   iproute2    `ip` and `tc`, for the network-namespace sandbox and its bandwidth limits
#   util-linux  `unshare` and `nsenter`, for the sandbox
#   openssh-server, openssh-client  sshd and scp for the file benchmark's scp baseline
#   perl, python3  script languages the agent tests run
#   python3-venv  the venv that holds the API fuzzer (below)
#   chromium    headless browser for the console's browser tests (driven by playwright-core)
#   node, npm   build the console (Vite needs node >= 20.19; the machine image ships it)
# Wanted, not required (its failure to install does not fail this script):
#   fonts-wqy-microhei  CJK glyphs, so Chinese screenshots are readable
# Then, from PyPI into a project-local venv (target/venv, no root needed):
#   schemathesis  the API fuzzer the tests run against the OpenAPI description (api_fuzz.rs)
# And, from npm into tests/oidc/node_modules (pinned by its package-lock.json):
#   oidc-provider  the real OpenID Connect provider the single-sign-on tests start with node
#
# On a fresh Debian machine run it as root (make deps). Elsewhere it reports what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

have() { command -v "$1" >/dev/null 2>&1; }

postgres_present() {
    if have initdb && have pg_ctl && have postgres; then
        return 0
    fi
    # Debian keeps the server binaries off PATH.
    local d
    for d in /usr/lib/postgresql/*/bin; do
        [[ -x "$d/initdb" && -x "$d/pg_ctl" && -x "$d/postgres" ]] && return 0
    done
    return 1
}

# The system packages (Debian, as root); fails when a required one is missing and cannot be
# installed.
system_deps() {
    required=()
    postgres_present || required+=(postgresql)
    { have ip && have tc; } || required+=(iproute2)
    { have unshare && have nsenter; } || required+=(util-linux)
    [[ -x /usr/sbin/sshd ]] || required+=(openssh-server)
    { have scp && have ssh-keygen; } || required+=(openssh-client)
    have perl || required+=(perl)
    have python3 || required+=(python3)
    # Debian splits venv creation (ensurepip) out of python3.
    python3 -c 'import ensurepip, venv' 2>/dev/null || required+=(python3-venv)

    have chromium || have chromium-browser || required+=(chromium)
    have node || required+=(nodejs)
    have npm || required+=(npm)

    optional=()
    [[ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ]] || optional+=(fonts-wqy-microhei)

    if ((${#required[@]} == 0 && ${#optional[@]} == 0)); then
        echo "install-deps: all system dependencies are present"
        return 0
    fi

    can_apt=1
    if [[ $(id -u) -ne 0 ]] || ! have apt-get; then
        can_apt=0
    fi

    if ((can_apt == 0)); then
        if ((${#optional[@]})); then
            echo "install-deps: warning: optional packages missing: ${optional[*]}" >&2
        fi
        if ((${#required[@]})); then
            echo "install-deps: error: missing ${required[*]}; install them (apt-get as root on Debian)" >&2
            return 1
        fi
        return 0
    fi

    export DEBIAN_FRONTEND=noninteractive
    apt_updated=0
    apt_update() {
        if ((apt_updated == 0)); then
            apt-get update -qq
            apt_updated=1
        fi
    }

    if ((${#required[@]})); then
        echo "install-deps: installing ${required[*]}"
        apt_update
        apt-get install -y -qq --no-install-recommends "${required[@]}"
    fi

    if ((${#optional[@]})); then
        echo "install-deps: installing ${optional[*]} (optional)"
        if ! { apt_update && apt-get install -y -qq --no-install-recommends "${optional[@]}"; }; then
            echo "install-deps: warning: could not install ${optional[*]}" >&2
        fi
    fi

    echo "install-deps: system dependencies installed"
}

# The API fuzzer, pinned, in target/venv. Fast when already there: one `--version` call.
SCHEMATHESIS_VERSION=4.32.5
VENV=target/venv
python_deps() {
    if [[ $("$VENV/bin/schemathesis" --version 2>/dev/null) == *" $SCHEMATHESIS_VERSION" ]]; then
        echo "install-deps: schemathesis $SCHEMATHESIS_VERSION is present"
        return 0
    fi
    echo "install-deps: installing schemathesis $SCHEMATHESIS_VERSION into $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
}

# The test OpenID provider's packages. Fast when already there: npm ci runs only when the lock
# file is newer than the installed tree (as the Makefile does for web/).
OIDC_DIR=tests/oidc
oidc_provider_deps() {
    if [[ -f $OIDC_DIR/node_modules/.package-lock.json &&
        ! $OIDC_DIR/package-lock.json -nt $OIDC_DIR/node_modules/.package-lock.json &&
        ! $OIDC_DIR/package.json -nt $OIDC_DIR/node_modules/.package-lock.json ]]; then
        echo "install-deps: the test OpenID provider's packages are present"
        return 0
    fi
    echo "install-deps: installing the test OpenID provider's packages into $OIDC_DIR/node_modules"
    npm --prefix "$OIDC_DIR" ci --no-audit --no-fund
}

system_deps
python_deps
oidc_provider_deps
