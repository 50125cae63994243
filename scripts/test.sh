#!/usr/bin/env bash
# Runs every test of chatd against the binaries in BUILD (default build):
# the layering check of the sources, the CMocka unit tests, the
# integration tests against a real chatd, and the browser tests in real
# Chromium. The last line is the count.
set -uo pipefail
# A PostgreSQL chatd that waits for the database on its loop outside a
# gate job aborts with a backtrace (chatd/gate.c, docs/gate.md).
export CHATD_GATE_STRICT=1

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
# run_node NAME DIR runs DIR/*.test.mjs; run_node_files NAME EXCLUDED
# FILE... runs the files given, with the caller's environment, and with
# EXCLUDED (a number) tests left out by --test-name-pattern (node 20 has
# no skip pattern: they show as skipped): those are neither passed nor
# failed, but a count of skipped tests other than EXCLUDED is a failure.
run_node_files() {
	local name=$1 excluded=$2 tap="$art/${1// /-}.tap"
	shift 2
	[ "$#" -gt 0 ] || return 0
	echo "== $name tests"
	CHATD_BIN="$top/$BUILD/chatd" node --test --test-concurrency=2 \
		--test-reporter=spec --test-reporter-destination=stdout \
		--test-reporter=tap --test-reporter-destination="$tap" \
		${pattern:+--test-name-pattern="$pattern"} "$@"
	local p f s
	p=$(sed -n 's/^# pass \([0-9]*\)/\1/p' "$tap" | tail -1)
	f=$(sed -n 's/^# fail \([0-9]*\)/\1/p' "$tap" | tail -1)
	s=$(sed -n 's/^# \(skipped\|todo\) \([0-9]*\)/\2/p' "$tap" | awk '{s+=$1} END {print s+0}')
	if [ -z "$p" ]; then
		echo "$name: the test runner did not finish" >&2
		f=$((${f:-0} + 1))
	fi
	passed=$((passed + ${p:-0}))
	# A skipped test is not a pass; the excluded ones are counted apart.
	if [ "$s" -ne "$excluded" ]; then
		echo "$name: $s tests skipped, $excluded excluded" >&2
		f=$((${f:-0} + (s > excluded ? s - excluded : excluded - s)))
	fi
	failed=$((failed + ${f:-0}))
	[ "$excluded" -eq 0 ] || echo "$name: $excluded tests excluded (scripts/test.sh)"
}

run_node() {
	local dir=$2
	[ -n "$(ls "$dir"/*.test.mjs 2>/dev/null)" ] || return 0
	pattern= run_node_files "$1" 0 "$dir"/*.test.mjs
}

run_node web tests/web
run_node integration tests/integration

# The integration suite again on PostgreSQL (each chatd in a fresh schema
# of the throwaway cluster: tests/integration/lib/chatd.mjs), but for
# what is about SQLite's file itself (docs/testing.md). Whole files:
pg_skip_files=(
	dblock.test.mjs       # another process holding SQLite's write lock
	migrate-v2.test.mjs   # a SQLite file of schema 3 upgraded in place
	search-readers.test.mjs # its slow search is FTS5's; pg_trgm answers it in ms, under any budget
)
# Single tests, by name:
pg_skip_tests=(
	# backup and restore copy the SQLite file; PostgreSQL's are pg_dump/pg_restore
	'backup under write load restores to a consistent database with a new epoch'
	'backup, restore and export refuse the live database itself, by path, symlink or hard link'
	'backup writes the files beside the copy; restore brings them back'
	# SQLite's file lock tells import that chatd serves the file; PostgreSQL has no such check yet
	'import refuses a database that chatd is serving, even an empty one'
)
if [ -n "${CHATD_TEST_PG:-}" ]; then
	pg_files=()
	for f in tests/integration/*.test.mjs; do
		case " ${pg_skip_files[*]} " in
		*" $(basename "$f") "*) ;;
		*) pg_files+=("$f") ;;
		esac
	done
	# Every name but these: <root> is node's top test, whose match
	# would let every test run.
	pattern='<root>'
	for t in "${pg_skip_tests[@]}"; do
		pattern+="|$(printf '%s' "$t" | sed 's/[][\.*^$?+(){}|/]/\\&/g')"
	done
	pattern="^(?!($pattern)\$)"
	CHATD_TEST_DB=postgres run_node_files "integration (postgres)" \
		"${#pg_skip_tests[@]}" "${pg_files[@]}"
	echo "integration (postgres): files not run: ${pg_skip_files[*]}"
else
	echo "test: no PostgreSQL: the integration suite did not run on it" >&2
	failed=$((failed + 1))
fi
run_node e2e tests/e2e

reports=$(ls "$art/sanitizer" 2>/dev/null | wc -l)
if [ "$reports" -gt 0 ]; then
	echo "== sanitizer reports ($reports):" >&2
	head -50 "$art"/sanitizer/* >&2
	failed=$((failed + reports))
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
