#!/usr/bin/env bash
# Installs the Debian packages chatd needs, if any are missing. Quick when
# everything is there. `scripts/deps.sh` for building and running,
# `scripts/deps.sh test` for the test suite too (Node.js, Chromium, clang).
set -euo pipefail

build_pkgs=(gcc make pkg-config libevent-dev libssl-dev libsqlite3-dev
	libjansson-dev libargon2-dev zlib1g-dev libpq-dev libhiredis-dev)
test_pkgs=(libcmocka-dev chromium openssl sqlite3 clang libclang-rt-14-dev
	postgresql postgresql-contrib redis-server)

pkgs=("${build_pkgs[@]}")
[ "${1:-}" = test ] && pkgs+=("${test_pkgs[@]}")

missing=()
for p in "${pkgs[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
		grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done

# Node.js may come from another packager (its npm inside): ask for the
# commands, and only fall back to Debian's packages when they are absent.
if [ "${1:-}" = test ]; then
	command -v node >/dev/null || missing+=(nodejs)
	command -v npm >/dev/null || missing+=(npm)
fi

if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "chatd needs these packages; run as root:" >&2
		echo "  apt-get install -y ${missing[*]}" >&2
		exit 1
	fi
	echo "deps: installing ${missing[*]}" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The test tooling from npm (WebSocket client, browser driver), pinned by
# package-lock.json at the top (node_modules stays out of tests/, which
# holds only our code). Playwright never downloads a browser here.
if [ "${1:-}" = test ]; then
	cd "$(dirname "$0")/.."
	if [ ! -d node_modules ] || [ package-lock.json -nt node_modules ]; then
		PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund \
			--loglevel=error
		touch node_modules
	fi
fi
