#!/usr/bin/env bash
# Checks that no #include "…" in chatd/ and storage/ points to a higher
# layer: lower layers call up through callbacks (struct conn_app, struct
# conn_env, struct ws_callbacks), never by including the layer above.
# Prints each violation as FILE:LINE and exits 1; the last line says what
# was checked. usage: scripts/check-layers.sh [TOP] (default: the repo)
set -uo pipefail

top=${1:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$top" || exit 2

# The layer table, lowest first: LEVEL NAME PATTERN... (shell patterns of
# paths from the top; the first row that matches a file wins). A file may
# include headers of its own layer or below, never above.
layers=(
	"1 leaf chatd/xmalloc.[ch] chatd/log.[ch] chatd/utf8.[ch] chatd/url.[ch]
	   chatd/jsonw.[ch] chatd/limiter.[ch] chatd/worker.[ch] chatd/auth.[ch]
	   chatd/fairq.[ch] chatd/proxy.[ch] chatd/mention.[ch] chatd/blob.[ch]
	   chatd/fileinfo.[ch] chatd/fiber.[ch] chatd/gate.[ch]"
	# Sans-IO: protocol state machines, and the counters they feed.
	"2 engine chatd/http_parser.[ch] chatd/ws_frame.[ch] chatd/ws.[ch]
	   chatd/ws_handshake.[ch] chatd/ws_deflate.[ch] chatd/metrics.[ch]
	   chatd/cluster_wire.[ch] chatd/cluster_order.[ch]"
	"3 storage storage/*.[ch]"
	# The socket, TLS, and the HTTP and WebSocket modes of a connection;
	# the connections to Redis.
	"4 conn chatd/conn.[ch] chatd/redis.[ch]"
	# Responses written on a conn.
	"5 http chatd/http.[ch]"
	# struct config and its parsing: below the server that holds it.
	"6 config chatd/config.[ch]"
	# Listener, shared state; fills struct conn_env.
	"7 server chatd/server.[ch]"
	# The application, lowest first: chat may not include api.
	"8 app chatd/static.[ch] chatd/hub.[ch] chatd/reader.[ch]"
	"9 chat chatd/chat.[ch] chatd/chat_*.[ch] chatd/metrics_render.[ch]
	   chatd/files.[ch]"
	"10 api chatd/api.[ch]"
	"11 top chatd/main.c chatd/serve.[ch] chatd/admin.[ch] chatd/admin_*.[ch]"
)

# What storage/ may include besides storage/: it knows nothing of chatd
# but the two leaves every file uses, and fibers (a backend waiting for
# its socket yields to the loop with fiber_wait_fd).
storage_may="chatd/log.h chatd/xmalloc.h chatd/fiber.h"

# Prints "LEVEL NAME" for path, or nothing if no row matches.
layer_of() {
	local - row level name pats pat
	set -f # the patterns are matched against $1, never expanded
	for row in "${layers[@]}"; do
		read -r -d '' level name pats <<<"$row" # rows span lines
		for pat in $pats; do
			# shellcheck disable=SC2053
			if [[ $1 == $pat ]]; then
				echo "$level $name"
				return
			fi
		done
	done
}

bad=0
files=0
includes=0
for f in chatd/*.[ch] storage/*.[ch]; do
	[ -e "$f" ] || continue
	files=$((files + 1))
	read -r flevel fname <<<"$(layer_of "$f")"
	if [ -z "${flevel:-}" ]; then
		echo "$f: not in the layer table (scripts/check-layers.sh)"
		bad=$((bad + 1))
		continue
	fi
	while IFS=: read -r line inc; do
		includes=$((includes + 1))
		read -r ilevel iname <<<"$(layer_of "$inc")"
		if [ -z "${ilevel:-}" ]; then
			echo "$f:$line: includes $inc, which is not in the layer table"
			bad=$((bad + 1))
			continue
		fi
		if [ "$ilevel" -gt "$flevel" ]; then
			echo "$f:$line: includes $inc ($iname, layer $ilevel) from $fname (layer $flevel)"
			bad=$((bad + 1))
		elif [ "$fname" = storage ] && [[ $inc != storage/* ]] &&
		    [[ " $storage_may " != *" $inc "* ]]; then
			echo "$f:$line: includes $inc; storage/ may include only storage/ and $storage_may"
			bad=$((bad + 1))
		fi
	done < <(grep -n '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$f" |
		sed 's/^\([0-9]*\):[^"]*"\([^"]*\)".*/\1:\2/')
done

if [ "$bad" -gt 0 ]; then
	echo "layers: $bad include(s) point up or are unclassified"
	exit 1
fi
echo "layers: $includes includes in $files files, none points up"
