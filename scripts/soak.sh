#!/usr/bin/env bash
# scripts/soak.sh [MINUTES] [BUILD] — chatd's soak run (issue 13): MINUTES
# (default 30) of mixed traffic against BUILD/chatd (default build/), one
# line a minute with chatd's RSS, fds, connections and latencies, then a
# summary. Exits non-zero when RSS grew past the bound after warm-up, fds
# leaked, chatd died, or chatd did not exit cleanly on SIGTERM.
# Not part of `make test`. See docs/PERFORMANCE.md, "Soak".
#
#   SOAK_KEEP=1            keep the temp dir (database, chatd.log, soak.json)
#   SOAK_RSS_GROWTH_KB=N   the RSS bound after warm-up (default 16384)
#   SOAK_FD_SLACK=N        fds allowed above the idle count after the drain (2)
#   SOAK_VERBOSE=1         print each driver error's message
#   SOAK_MINUTE_MS=N       length of a "minute" in ms (to try the harness quickly)
set -euo pipefail

MINUTES=${1:-30}
BUILD=${2:-build}
PASSWORD=soak-password-1
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=$ROOT/$BUILD/chatd
case $MINUTES in
'' | *[!0-9]*) echo "usage: scripts/soak.sh [MINUTES] [BUILD]" >&2 && exit 64 ;;
esac

# Prints a progress line on stderr.
say() {
	echo "soak: $*" >&2
}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/chatd-soak.XXXXXX")
DB=$WORK/chat.db
SRV_PID=

cleanup() {
	if [ -n "$SRV_PID" ] && kill -0 "$SRV_PID" 2>/dev/null; then
		kill -KILL "$SRV_PID" 2>/dev/null || true
		wait "$SRV_PID" 2>/dev/null || true
	fi
	if [ "${SOAK_KEEP:-0}" = 1 ]; then
		say "kept $WORK"
	else
		rm -rf "$WORK"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A free-looking loopback port below the ephemeral range.
pick_port() {
	local p
	for _ in $(seq 1 50); do
		p=$((20000 + RANDOM % 12000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return
		fi
	done
	echo 28766
}

# 0 when GET /healthz on $1 answers 200.
healthy() (
	line=
	exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
	printf 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' >&3
	read -r -t 2 line <&3 || true
	case $line in "HTTP/1.1 200"*) exit 0 ;; esac
	exit 1
) 2>/dev/null

# Starts chatd on a free port; sets PORT and SRV_PID. Rate limits stay on
# (the default): the soak runs the configuration people deploy, and the
# driver keeps every client under the limits.
chatd_start() {
	local try i
	for try in 1 2 3 4 5; do
		PORT=$(pick_port)
		"$BIN" --listen "127.0.0.1:$PORT" --db "$DB" --web "$ROOT/web" \
			--rate-limits on --log-level warn 2>>"$WORK/chatd.log" &
		SRV_PID=$!
		for i in $(seq 1 100); do
			healthy "$PORT" && return 0
			kill -0 "$SRV_PID" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$SRV_PID" 2>/dev/null || true
		wait "$SRV_PID" 2>/dev/null || true
		SRV_PID=
		say "chatd did not start on port $PORT (try $try)"
	done
	tail -n 20 "$WORK/chatd.log" >&2
	return 1
}

[ -d node_modules/ws ] || {
	say "node_modules/ws is missing: run npm ci (or make deps-test)"
	exit 1
}
say "building $BUILD/chatd"
make -s BUILD="$BUILD" "$BUILD/chatd" >&2

# the users, made before the server starts: registration is rate-limited
say "creating users in $DB"
node tests/bench/soak.mjs --print-users | while read -r u; do
	printf '%s\n' "$PASSWORD" |
		"$BIN" --db "$DB" --log-level warn user add "$u" 2>>"$WORK/admin.log"
done
chatd_start
say "chatd on 127.0.0.1:$PORT (pid $SRV_PID), $MINUTES minutes"

rc=0
node tests/bench/soak.mjs --port "$PORT" --pid "$SRV_PID" --db "$DB" \
	--bin "$BIN" --dir "$WORK" --minutes "$MINUTES" \
	--password "$PASSWORD" || rc=$?

# SIGTERM, then up to 15 s for a clean exit
status=dead
if kill -0 "$SRV_PID" 2>/dev/null; then
	kill -TERM "$SRV_PID"
	for _ in $(seq 1 150); do
		kill -0 "$SRV_PID" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$SRV_PID" 2>/dev/null; then
		status=hung
		kill -KILL "$SRV_PID" 2>/dev/null || true
	fi
	code=0
	wait "$SRV_PID" || code=$?
	[ "$status" = hung ] || status=$code
fi
SRV_PID=
n_err=$(grep -c ' error ' "$WORK/chatd.log" || true)
say "chatd log: $(wc -l <"$WORK/chatd.log") lines at warn or above, $n_err at error"
if [ "$status" != 0 ]; then
	say "FAIL: chatd did not exit cleanly on SIGTERM ($status)"
	tail -n 20 "$WORK/chatd.log" >&2
	[ "$rc" != 0 ] || rc=1
else
	say "chatd exited 0 on SIGTERM"
fi
if [ "$rc" != 0 ]; then
	say "FAIL (driver exit $rc); last log lines:"
	tail -n 10 "$WORK/chatd.log" >&2
fi
exit "$rc"
