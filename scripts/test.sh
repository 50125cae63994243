#!/usr/bin/env bash
# Runs every test of chatd against the binaries in BUILD (default build):
# the layering check of the sources, the CMocka unit tests, the
# integration tests against a real chatd, and the browser tests in real
# Chromium. The last line is the count.
set -uo pipefail

BUILD=${1:-build}
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
art="$top/tests/artifacts"
mkdir -p "$art"
rm -rf "$art/sanitizer" && mkdir -p "$art/sanitizer"

passed=0
failed=0

# Sanitizer builds write reports here instead of only to stderr, so a
# report from any chatd the tests started fails the run.
if [ "$BUILD" != build ]; then
	export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}:log_path=$art/sanitizer/asan"
	export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1}:log_path=$art/sanitizer/ubsan"
fi

# One check: no #include points to a higher layer.
echo "== layers"
if scripts/check-layers.sh; then
	passed=$((passed + 1))
else
	failed=$((failed + 1))
fi

# A throwaway PostgreSQL and Redis for the tests of the PostgreSQL
# backend and of several nodes (issue 17), stopped however this ends.
services=$(mktemp -d /tmp/chatd-services-XXXXXX)
trap 'scripts/services.sh stop "$services"' EXIT
if scripts/services.sh start "$services"; then
	. "$services/env"
else
	echo "test: PostgreSQL and Redis did not start" >&2
	failed=$((failed + 1))
fi

# One unit test binary; label names the run in the table.
run_unit() {
	local t=$1 label=$2 out rc p f
	out=$("$t" 2>&1)
	rc=$?
	p=$(printf '%s\n' "$out" | sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' | tail -1)
	f=$(printf '%s\n' "$out" | sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' | tail -1)
	p=${p:-0}
	f=${f:-0}
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1 # crashed or exited non-zero without a CMocka verdict
	fi
	passed=$((passed + p))
	failed=$((failed + f))
	printf '%-40s %4d passed %4d failed\n' "$label" "$p" "$f"
	[ "$f" -eq 0 ] || printf '%s\n' "$out" | grep -E 'FAILED|ERROR|Failure|error' | head -20
}

echo "== unit tests ($BUILD)"
for t in "$BUILD"/tests/test_*; do
	[ -x "$t" ] || continue
	run_unit "$t" "$(basename "$t")"
done

# The storage tests that hold for both backends, again on PostgreSQL
# (tests/unit/tmpdb.h gives each a schema of the throwaway cluster).
echo "== storage unit tests on PostgreSQL ($BUILD)"
for n in user room message reaction file export jsonl reader; do
	CHATD_TEST_DB=postgres run_unit "$BUILD/tests/test_$n" "test_$n (postgres)"
done

# node:test suites: spec output to the terminal, TAP to a file we count.
run_node() {
	local name=$1 dir=$2 tap="$art/$1.tap"
	[ -n "$(ls "$dir"/*.test.mjs 2>/dev/null)" ] || return 0
	echo "== $name tests"
	CHATD_BIN="$top/$BUILD/chatd" node --test --test-concurrency=2 \
		--test-reporter=spec --test-reporter-destination=stdout \
		--test-reporter=tap --test-reporter-destination="$tap" \
		"$dir"/*.test.mjs
	local p f s
	p=$(sed -n 's/^# pass \([0-9]*\)/\1/p' "$tap" | tail -1)
	f=$(sed -n 's/^# fail \([0-9]*\)/\1/p' "$tap" | tail -1)
	s=$(sed -n 's/^# \(skipped\|todo\) \([0-9]*\)/\2/p' "$tap" | awk '{s+=$1} END {print s+0}')
	if [ -z "$p" ]; then
		echo "$name: the test runner did not finish" >&2
		f=$((${f:-0} + 1))
	fi
	passed=$((passed + ${p:-0}))
	# A skipped test is not a pass.
	failed=$((failed + ${f:-0} + ${s:-0}))
}

run_node web tests/web
run_node integration tests/integration
run_node e2e tests/e2e

reports=$(ls "$art/sanitizer" 2>/dev/null | wc -l)
if [ "$reports" -gt 0 ]; then
	echo "== sanitizer reports ($reports):" >&2
	head -50 "$art"/sanitizer/* >&2
	failed=$((failed + reports))
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
