#!/bin/sh
# scripts/fuzz.sh — build and run libFuzzer harnesses.
#
# Usage: scripts/fuzz.sh TARGET SECONDS
#   TARGET is NAME for tests/fuzz/fuzz_NAME.c, or "all" for every one.
# Each harness is built with clang -fsanitize=fuzzer,address,undefined
# into build-fuzz/ from its own file plus the sources its first comment
# declares:  /* fuzz sources: chatd/ws.c chatd/ws_frame.c ... */
# then run for SECONDS with its corpus in build-fuzz/corpus/NAME (seeded
# from tests/fuzz/corpus/NAME if that exists). Crash inputs are written
# to build-fuzz/crash-NAME-*. Exits non-zero if a build or a run fails.
set -u

usage() {
	echo "usage: $0 TARGET|all SECONDS" >&2
	exit 2
}

[ $# -eq 2 ] || usage
target=$1
seconds=$2
case $seconds in '' | *[!0-9]*) usage ;; esac

cd "$(dirname "$0")/.." || exit 2
out=build-fuzz
cc=${FUZZ_CC:-clang}
pkgs="libevent libevent_openssl jansson openssl sqlite3 libargon2 zlib"
pkgflags=$(pkg-config --cflags --libs $pkgs 2>/dev/null ||
	pkg-config --cflags --libs openssl jansson sqlite3 2>/dev/null)
mkdir -p "$out"

# Prints the sources a harness declares in its first comment, which may
# be wrapped over several lines (" * " continuations are dropped).
sources_of() {
	awk 'NR == 1 && !/fuzz sources:/ { exit }
	{
		line = $0
		sub(/^.*fuzz sources:/, "", line)
		end = sub(/\*\/.*$/, "", line)
		gsub(/(^|[ \t])\*([ \t]|$)/, " ", line)
		printf "%s ", line
		if (end)
			exit
	}' "$1"
}

# Builds and runs one harness; returns non-zero on failure.
fuzz_one() {
	name=$1
	src=tests/fuzz/fuzz_$name.c
	bin=$out/fuzz_$name
	if [ ! -f "$src" ]; then
		echo "fuzz: no such harness: $src" >&2
		return 1
	fi
	echo "fuzz: building $bin"
	# shellcheck disable=SC2046,SC2086
	if ! $cc -std=c11 -D_GNU_SOURCE -Wall -Wextra -I. -g -O1 \
		-fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined \
		-fno-sanitize-recover=all "$src" $(sources_of "$src") \
		-o "$bin" $pkgflags -lm; then
		echo "fuzz: build of $name failed" >&2
		return 1
	fi
	corpus=$out/corpus/$name
	mkdir -p "$corpus"
	seeds=
	[ -d "tests/fuzz/corpus/$name" ] && seeds=tests/fuzz/corpus/$name
	echo "fuzz: running $name for ${seconds}s"
	# shellcheck disable=SC2086
	if ! ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
		UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		"$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
		-print_final_stats=1 -artifact_prefix="$out/crash-$name-" \
		"$corpus" $seeds >"$out/fuzz_$name.log" 2>&1; then
		tail -n 60 "$out/fuzz_$name.log" >&2
		echo "fuzz: $name FAILED (log: $out/fuzz_$name.log)" >&2
		return 1
	fi
	grep -E '^(Done|stat::number_of_executed_units)' \
		"$out/fuzz_$name.log" || true
	echo "fuzz: $name ok"
}

if [ "$target" = all ]; then
	names=$(ls tests/fuzz/fuzz_*.c 2>/dev/null |
		sed 's|^tests/fuzz/fuzz_\(.*\)\.c$|\1|')
	[ -n "$names" ] || { echo "fuzz: no harnesses" >&2; exit 1; }
else
	names=$target
fi

failed=0
for n in $names; do
	fuzz_one "$n" || failed=$((failed + 1))
done
[ "$failed" -eq 0 ] || { echo "fuzz: $failed target(s) failed" >&2; exit 1; }
echo "fuzz: all passed"
