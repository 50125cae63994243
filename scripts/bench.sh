#!/usr/bin/env bash
# scripts/bench.sh BUILD — chatd's benchmark (issue 6): builds chatbench,
# runs the scenarios against chatd and then against the Node.js `ws` peer
# (tests/bench/peer-ws), prints one table with both and writes
# tests/artifacts/bench.json. BENCH_QUICK=1: a ~1-minute smoke run.
# See docs/PERFORMANCE.md for what each scenario measures.
# BENCH_DEFLATE=1: every chatbench client offers permessage-deflate (the
# peer, which does not, is then skipped); BENCH_TEXT=N: message texts of
# about N bytes of words in F, M and U (chatd compresses events of 256
# bytes and more).
# C (cluster, issue 17): three chatd nodes on PostgreSQL + Redis
# (scripts/services.sh) against one SQLite chatd and one PostgreSQL chatd
# without Redis; needs PostgreSQL and redis-server installed, else skipped.
#
# Server on core 0 (taskset -c 0), generator on core 1 (taskset -c 1).
# chatbench is built with:
#   cc -O2 -g -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -I. \
#     tests/bench/chatbench.c -o BUILD/chatbench \
#     $(pkg-config --cflags --libs libevent openssl jansson zlib) -lm -lpthread
set -euo pipefail

BUILD=${1:-build}
QUICK=${BENCH_QUICK:-0}
REPS=${BENCH_REPS:-2}
ONLY=${BENCH_ONLY:-FMRIUSHQLC} # the scenarios to run, e.g. BENCH_ONLY=MH
PEER=${BENCH_PEER:-1}        # 0: chatd only
DEFLATE=${BENCH_DEFLATE:-0}  # 1: offer permessage-deflate
TEXT=${BENCH_TEXT:-0}        # text bytes of F, M, U messages (0: ~20)
# BENCH_KEEP=1 keeps the work directory (databases, tokens, logs)
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=${BENCH_OUT:-$ROOT/tests/artifacts/bench.json}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/chatbench.XXXXXX")
RESULTS=$WORK/results.jsonl
SRV_PID=
SRV_PIDS=  # every chatd of the server under test (C: the nodes)
PORTS=     # C: their ports, comma-separated
CPU_PIDS=  # C: the processes whose CPU counts (chatd, PostgreSQL, Redis)
SVC=       # C: scripts/services.sh directory
SRV_CORE=0
GEN_CORE=1

# ---- scenario sizes ----
if [ "$QUICK" = 1 ]; then
	DUR=1.5 WARM=0.5
	F_CONNS=1000 F_USERS=50 F_RATES="30"
	M_CONNS=500 M_ROOMS=50 M_USERS=100 M_RATES="1000 2000"
	U_RATE=1000
	I_CONNS=2000 I_ROOMS=50 I_USERS=100
	R_CONNS=500 R_ROOMS=50 R_USERS=100
	H_MSGS=100000 H_CONNS=4
	Q_RATE=1000 Q_SEARCHERS=8
	L_RATE=1000 L_UPLOADERS=20 L_MB=25 L_DUR=3
	C_DUR=1.5 C_WARM=0.5
else
	DUR=4 WARM=1
	F_CONNS=1000 F_USERS=100 F_RATES="30 60 90"
	M_CONNS=1000 M_ROOMS=100 M_USERS=200 M_RATES="2000 6000 10000 14000"
	U_RATE=2000
	I_CONNS=10000 I_ROOMS=100 I_USERS=200
	R_CONNS=1000 R_ROOMS=100 R_USERS=200
	H_MSGS=1000000 H_CONNS=8
	Q_RATE=2000 Q_SEARCHERS=8
	L_RATE=2000 L_UPLOADERS=20 L_MB=25 L_DUR=8
	C_DUR=3 C_WARM=1
fi
# C: one room of C_F_CONNS (C_F_SENDERS senders, one per node), and
# C_M_ROOMS rooms of 10 where everyone sends; closed loop, then open loop
# at a rate every configuration sustains on one core.
C_F_CONNS=300 C_F_USERS=30 C_F_SENDERS=3 C_F_RATE=100
C_M_CONNS=1000 C_M_ROOMS=100 C_M_USERS=100 C_M_RATE=1000
C_REPS=${BENCH_C_REPS:-1}

# Prints a progress line on stderr.
say() {
	echo "bench: $*" >&2
}

# Stops the server under test (every node of it), if any.
server_stop() {
	local p
	for p in $SRV_PID $SRV_PIDS; do
		kill -TERM "$p" 2>/dev/null || true
	done
	for p in $SRV_PID $SRV_PIDS; do
		wait "$p" 2>/dev/null || true
	done
	SRV_PID= SRV_PIDS= PORTS= CPU_PIDS=
}

cleanup() {
	server_stop
	[ -z "$SVC" ] || scripts/services.sh stop "$SVC" || true
	if [ "${BENCH_KEEP:-0}" = 1 ]; then
		say "kept $WORK (databases, tokens, logs)"
	else
		rm -rf "$WORK"
	fi
}
trap cleanup EXIT INT TERM

# A free-looking loopback port.
pick_port() {
	local p
	for _ in $(seq 1 50); do
		# below the ephemeral range (32768-60999), where a connect to
		# an unused port can connect to itself
		p=$((20000 + RANDOM % 12000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return
		fi
	done
	echo 28765
}

# Starts chatd on database $1 (more chatd options after it); sets SRV_PID
# and STARTUP_MS (until /healthz answers).
chatd_start() {
	local t0 t1 db=$1
	shift
	PORT=$(pick_port)
	t0=$(date +%s%N)
	taskset -c $SRV_CORE "$BUILD/chatd" --listen "127.0.0.1:$PORT" \
		--db "$db" --web web --rate-limits off --log-level warn "$@" \
		2>>"$WORK/chatd.log" &
	SRV_PID=$!
	t1=$("$BUILD/chatbench" --port "$PORT" --mode healthz --timeout 120)
	STARTUP_MS=$(((t1 - t0) / 1000000))
}

# Starts the Node.js peer; sets SRV_PID. Its tokens die with it.
peer_start() {
	rm -f "$WORK/tokens-peer"
	PORT=$(pick_port)
	taskset -c $SRV_CORE node tests/bench/peer-ws/server.mjs \
		--listen "127.0.0.1:$PORT" 2>>"$WORK/peer.log" &
	SRV_PID=$!
	"$BUILD/chatbench" --port "$PORT" --mode healthz --timeout 30 >/dev/null
}

# Waits (up to 30 s) until the server is idle: under 5 % CPU for 0.5 s, so
# a backlog left by an overloaded point does not spill into the next one.
settle() {
	local a b i
	for i in $(seq 1 60); do
		a=$(awk '{print $14 + $15}' "/proc/$SRV_PID/stat" 2>/dev/null) || return 0
		sleep 0.5
		b=$(awk '{print $14 + $15}' "/proc/$SRV_PID/stat" 2>/dev/null) || return 0
		if [ $((b - a)) -le 2 ]; then
			[ "$i" -gt 1 ] && say "server busy for $((i / 2)) s after the last point"
			return 0
		fi
	done
	say "server still busy after 30 s"
}

# Runs chatbench: point SERVER SCENARIO POINT ARGS...; records the result.
# With PORTS set (C), its clients spread over those ports, the CPU is
# CPU_PIDS's, and the record also has the nodes' database and Redis
# counters over the point ("db") and Redis round trips measured during
# the window ("redis_ms"); TOKENS names the token cache (default: SERVER).
point() {
	local server=$1 scen=$2 pt=$3 rep line before after rtt extra ports
	local pids=${CPU_PIDS:-$SRV_PID} lat_pid=
	shift 3
	ports=${PORTS:-$PORT}
	for rep in $(seq 1 "$REPS"); do
		settle
		say "$server $scen $pt (run $rep of $REPS)"
		extra=
		[ -z "$PORTS" ] || before=$(metrics_sum "$PORTS")
		if [ -n "$PORTS" ] && [ -n "${REDIS_PORT:-}" ]; then
			(sleep "$C_WARM" && taskset -c $GEN_CORE redis-cli \
				-p "$REDIS_PORT" --latency --raw \
				>"$WORK/redis-rtt" 2>/dev/null) &
			lat_pid=$!
		fi
		line=$(taskset -c $GEN_CORE "$BUILD/chatbench" --ports "$ports" \
			--server-pid "$pids" \
			--tokens "$WORK/tokens-${TOKENS:-$server}" \
			--label "$server $scen $pt" --deflate "$DEFLATE" "$@" |
			tee -a "$WORK/chatbench.log" | tail -n 1) || true
		case $line in
		"{"*) ;;
		*) line='{"failed_run":true}' ;;
		esac
		if [ -n "$PORTS" ]; then
			after=$(metrics_sum "$PORTS")
			extra=$(printf ',"db":%s' "$(metrics_diff "$before" "$after")")
		fi
		if [ -n "$lat_pid" ]; then
			wait "$lat_pid" 2>/dev/null || true
			# min max avg count, ms
			rtt=$(awk 'NF == 4 { printf "{\"min\":%s,\"max\":%s,\"avg\":%s,\"n\":%s}", $1, $2, $3, $4 }' \
				"$WORK/redis-rtt" 2>/dev/null)
			[ -z "$rtt" ] || extra="$extra,\"redis_ms\":$rtt"
		fi
		printf '{"server":"%s","scenario":"%s","point":"%s","rep":%d%s,"result":%s}\n' \
			"$server" "$scen" "$pt" "$rep" "$extra" "$line" >>"$RESULTS"
	done
}

# The nodes' counters summed over ports $1 (comma-separated): the
# transaction time histogram's sum and count, commits, Redis publishes,
# gaps read back, order breaks.
metrics_sum() {
	local p
	for p in ${1//,/ }; do
		curl -s --max-time 10 "http://127.0.0.1:$p/metrics" || true
	done | awk '
		$1 == "chatd_db_transaction_seconds_sum" { s += $2 }
		$1 == "chatd_db_transaction_seconds_count" { n += $2 }
		$1 == "chatd_cluster_published_total" { pub += $2 }
		$1 == "chatd_cluster_gaps_total" { gaps += $2 }
		$1 == "chatd_cluster_order_breaks_total" { br += $2 }
		$1 == "chatd_cluster_publish_errors_total" { perr += $2 }
		END { printf "%.6f %d %d %d %d %d\n", s, n, pub, gaps, br, perr }'
}

# The JSON of counters $2 minus counters $1 (metrics_sum lines).
metrics_diff() {
	echo "$1 $2" | awk '{ printf "{\"txn_s\":%.6f,\"txns\":%d,\"published\":%d,\"gaps\":%d,\"order_breaks\":%d,\"publish_errors\":%d}", $7 - $1, $8 - $2, $9 - $3, $10 - $4, $11 - $5, $12 - $6 }'
}

# Pins PostgreSQL (the postmaster and its processes: backends it forks
# later inherit it) and Redis of $SVC to the server's core.
services_pin() {
	local pm p
	pm=$(head -n 1 "$SVC/pg/postmaster.pid")
	for p in "$pm" $(ps --ppid "$pm" -o pid=) "$(cat "$SVC/redis.pid")"; do
		taskset -a -c -p $SRV_CORE "$p" >/dev/null
	done
}

# The processes whose CPU counts for a server on PostgreSQL: the chatd
# ($@), PostgreSQL's (backends and background processes, not the
# short-lived autovacuum workers) and, with REDIS_PORT set, Redis.
cpu_pids() {
	local pm
	pm=$(head -n 1 "$SVC/pg/postmaster.pid")
	{
		printf '%s\n' "$@" "$pm"
		ps --ppid "$pm" -o pid=,args= | grep -v 'autovacuum worker' |
			awk '{ print $1 }'
		[ -z "${REDIS_PORT:-}" ] || cat "$SVC/redis.pid"
	} | paste -sd, -
}

# The four points of C against the server started as $1 (its tokens in
# tokens-$2).
run_cluster_points() {
	local s=$1
	TOKENS=$2 REPS=$C_REPS point "$s" C "1 room x $C_F_CONNS, closed" \
		--mode load --conns $C_F_CONNS --rooms 1 --users $C_F_USERS \
		--senders $C_F_SENDERS --rate 0 --duration $C_DUR \
		--warmup $C_WARM --room-prefix cf
	TOKENS=$2 REPS=$C_REPS point "$s" C "1 room x $C_F_CONNS, $C_F_RATE msg/s" \
		--mode load --conns $C_F_CONNS --rooms 1 --users $C_F_USERS \
		--senders $C_F_SENDERS --rate $C_F_RATE --duration $C_DUR \
		--warmup $C_WARM --room-prefix cf
	TOKENS=$2 REPS=$C_REPS point "$s" C "$C_M_ROOMS rooms x 10, closed" \
		--mode load --conns $C_M_CONNS --rooms $C_M_ROOMS \
		--users $C_M_USERS --senders $C_M_CONNS --rate 0 \
		--duration $C_DUR --warmup $C_WARM --room-prefix cm
	TOKENS=$2 REPS=$C_REPS point "$s" C "$C_M_ROOMS rooms x 10, $C_M_RATE msg/s" \
		--mode load --conns $C_M_CONNS --rooms $C_M_ROOMS \
		--users $C_M_USERS --senders $C_M_CONNS --rate $C_M_RATE \
		--duration $C_DUR --warmup $C_WARM --room-prefix cm
}

# C: one SQLite chatd, one PostgreSQL chatd (no Redis), then three nodes
# on PostgreSQL and Redis; every server process on the server's core.
run_cluster() {
	local schema url i pids=() ports=()
	want C || return 0
	if [ -z "$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null)" ] ||
		! command -v redis-server >/dev/null; then
		say "C skipped: PostgreSQL or redis-server is not installed"
		return 0
	fi
	chatd_start "$WORK/cluster-sqlite.db"
	say "C: SQLite chatd on port $PORT (pid $SRV_PID)"
	PORTS=$PORT
	run_cluster_points sqlite sqlite
	server_stop

	# not under WORK (mode 700): as root PostgreSQL runs as postgres
	SVC=$(mktemp -d "${TMPDIR:-/tmp}/chatbench-services.XXXXXX")
	chmod 755 "$SVC"
	scripts/services.sh start "$SVC" >&2
	# shellcheck disable=SC1091
	. "$SVC/env"
	services_pin
	REDIS_PORT=${CHATD_TEST_REDIS##*:}
	schema=bench_$$
	psql -q "$CHATD_TEST_PG" -c "CREATE SCHEMA $schema" >&2
	url="$CHATD_TEST_PG&options=-csearch_path%3D$schema%2Cpublic"
	say "Redis round trip, idle: $(taskset -c $GEN_CORE redis-cli -p "$REDIS_PORT" --latency --raw) (min max avg count, ms)"

	chatd_start "$url" --files "$WORK/files"
	say "C: PostgreSQL chatd on port $PORT (pid $SRV_PID)"
	PORTS=$PORT CPU_PIDS=$(REDIS_PORT='' cpu_pids "$SRV_PID")
	REDIS_PORT='' run_cluster_points postgres pg
	server_stop

	# the same schema, users and tokens: the nodes take over its rooms
	for i in 0 1 2; do
		chatd_start "$url" --files "$WORK/files" \
			--redis "$CHATD_TEST_REDIS" --node-id "n$i"
		pids+=("$SRV_PID")
		ports+=("$PORT")
	done
	SRV_PID= SRV_PIDS="${pids[*]}"
	PORT=${ports[0]}
	PORTS=$(IFS=,; echo "${ports[*]}")
	CPU_PIDS=$(cpu_pids "${pids[@]}")
	SRV_PID=${pids[0]}
	say "C: three nodes on ports $PORTS (pids ${pids[*]})"
	run_cluster_points cluster pg
	server_stop
	scripts/services.sh stop "$SVC" >&2
	SVC=
}

# Records a start-up time: startup SERVER MS.
record_startup() {
	printf '{"server":"%s","scenario":"S","point":"%s msgs","rep":%d,"result":{"startup_ms":%d}}\n' \
		"$1" "$H_MSGS" "$2" "$3" >>"$RESULTS"
}

# Is scenario $1 selected (BENCH_ONLY)?
want() {
	case $ONLY in *"$1"*) return 0 ;; esac
	return 1
}

# F, M and I against the server already started as $1.
run_common() {
	local s=$1 r
	want F || return 0
	point "$s" F closed --mode load --conns $F_CONNS --rooms 1 \
		--users $F_USERS --senders 1 --rate 0 --duration $DUR \
		--warmup $WARM --room-prefix f --text-bytes "$TEXT"
	for r in $F_RATES; do
		point "$s" F "open $r msg/s" --mode load --conns $F_CONNS \
			--rooms 1 --users $F_USERS --senders 1 --rate "$r" \
			--duration $DUR --warmup $WARM --room-prefix f \
			--text-bytes "$TEXT"
	done
}

run_many() {
	local s=$1 r
	want M || return 0
	for r in $M_RATES; do
		point "$s" M "$r msg/s" --mode load --conns $M_CONNS \
			--rooms $M_ROOMS --users $M_USERS --senders $M_CONNS \
			--rate "$r" --duration $DUR --warmup $WARM --room-prefix m \
			--text-bytes "$TEXT"
	done
}

# U: M's layout at U_RATE on a freshly started server, whose VmRSS growth
# per connection is the memory a connection costs under load; $1 server,
# $2 restart command.
run_loaded() {
	local s=$1 rep
	want U || return 0
	for rep in $(seq 1 "$REPS"); do
		server_stop
		$2
		REPS=1 point "$s" U "$M_CONNS conns, $U_RATE msg/s" --mode load \
			--conns $M_CONNS --rooms $M_ROOMS --users $M_USERS \
			--senders $M_CONNS --rate $U_RATE --duration $DUR \
			--warmup $WARM --room-prefix m --text-bytes "$TEXT"
	done
}

# I on a freshly started server (a clean RSS baseline); $1 server, $2
# restart command.
run_idle() {
	local s=$1 rep
	want I || return 0
	for rep in $(seq 1 "$REPS"); do
		server_stop
		$2
		REPS=1 point "$s" I "$I_CONNS conns" --mode idle \
			--conns $I_CONNS --rooms $I_ROOMS --users $I_USERS \
			--duration 2 --room-prefix m --parallel 512
	done
}

# Writes the history room: $1 database, $2 messages (chatd stopped).
fill_history() {
	sqlite3 "$1" >/dev/null <<EOF
PRAGMA busy_timeout = 10000;
BEGIN;
CREATE TEMP TABLE b AS SELECT max(
  coalesce((SELECT max(seq) FROM messages), 0),
  coalesce((SELECT max(last_seq) FROM rooms), 0),
  (SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'seq_floor')) AS base,
  (SELECT id FROM rooms WHERE name = 'h0') AS room,
  (SELECT id FROM users WHERE username = 'ha0') AS user,
  CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER) AS now;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $2)
INSERT INTO messages (id, seq, room_id, user_id, text, ts)
SELECT b.base + i, b.base + i, b.room, b.user,
  'history message ' || i || ' of the benchmark room', b.now - $2 + i
FROM n, b;
UPDATE rooms SET last_seq = (SELECT max(seq) FROM messages
  WHERE room_id = rooms.id) WHERE name = 'h0';
-- Indexed for search, as chatd would have done after the sends.
INSERT INTO messages_trigram (rowid, text) SELECT id, text FROM messages
  WHERE id > (SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'fts_upto')
  AND text IS NOT NULL;
INSERT INTO messages_words (rowid, text) SELECT id, text FROM messages
  WHERE id > (SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'fts_upto')
  AND text IS NOT NULL;
UPDATE meta SET value = (SELECT max(id) FROM messages) WHERE key = 'fts_upto';
COMMIT;
EOF
}

# ---- build ----
say "building $BUILD/chatd and $BUILD/chatbench"
make -s BUILD="$BUILD" "$BUILD/chatd" >&2
# shellcheck disable=SC2046
cc -O2 -g -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -I. \
	tests/bench/chatbench.c -o "$BUILD/chatbench" \
	$(pkg-config --cflags --libs libevent openssl jansson zlib) -lm -lpthread
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((I_CONNS + 100)) ]; then
	say "open-file limit $(ulimit -n) is below $I_CONNS; I will fail"
fi
if [ "$(nproc)" -lt 2 ]; then
	GEN_CORE=0
	say "one core only: server and generator share it"
fi
T_START=$(date +%s)

# ---- chatd: F, M, R on a fresh database, then I, S and H ----
DB=$WORK/chat.db
chatd_start "$DB"
say "chatd on port $PORT (pid $SRV_PID); registering users"
run_common chatd
run_many chatd
want R && point chatd R "$R_CONNS clients" --mode reconnect --conns $R_CONNS \
	--rooms $R_ROOMS --users $R_USERS --room-prefix m --resync-k 20
# L: M's layout at L_RATE msg/s, alone and while L_UPLOADERS of its users
# upload L_MB MiB files in a closed loop (POST /api/files; issue 15).
if want L; then
	for n in 0 $L_UPLOADERS; do
		point chatd L "M $L_RATE msg/s, $n uploading $L_MB MiB" \
			--mode load --conns $M_CONNS --rooms $M_ROOMS \
			--users $M_USERS --senders $M_CONNS --rate $L_RATE \
			--duration $L_DUR --warmup $WARM --room-prefix m \
			--uploaders "$n" --upload-mb $L_MB
	done
fi
run_idle chatd "chatd_start $DB"
run_loaded chatd "chatd_start $DB"
if want S || want H || want Q; then
# the history room and its author (ha0) exist before the fill; the reader
# (hr0) joins after it, so its hello has no unread backlog to count
REPS=1 point chatd prep-H - --mode load --conns 1 --users 1 --rooms 1 \
	--user-prefix ha --room-prefix h --senders 1 --rate 0 --duration 0.1 \
	--warmup 0
server_stop
say "writing $H_MSGS messages into room h0"
fill_history "$DB" "$H_MSGS"
for rep in $(seq 1 "$REPS"); do
	server_stop
	chatd_start "$DB"
	say "chatd start-up on $H_MSGS messages: $STARTUP_MS ms"
	record_startup chatd "$rep" "$STARTUP_MS"
done
want H && point chatd H "pages of 50" --mode history --conns $H_CONNS \
	--users 1 --rooms 1 --user-prefix hr --room-prefix h --duration $DUR \
	--warmup $WARM
# Q: M's layout at Q_RATE on this database, alone and with Q_SEARCHERS
# users (in none of the rooms) searching for a word in every message of
# h0 in a closed loop: each search walks the H_MSGS matches.
if want Q; then
	for n in 0 $Q_SEARCHERS; do
		point chatd Q "M $Q_RATE msg/s, $n searching" --mode load \
			--conns $M_CONNS --rooms $M_ROOMS --users $M_USERS \
			--senders $M_CONNS --rate $Q_RATE --duration $DUR \
			--warmup $WARM --room-prefix m --searchers "$n" \
			--search-q benchmark
	done
fi
fi
server_stop

# ---- C: three nodes on PostgreSQL and Redis, beside single chatd ----
run_cluster

# ---- the peer: F, M, I, U ----
if [ "$PEER" = 1 ] && [ "$DEFLATE" = 1 ]; then
	say "the peer does not negotiate permessage-deflate: skipped"
	PEER=0
fi
if [ "$PEER" = 1 ] && { want F || want M || want I || want U; }; then
	peer_start
	say "peer on port $PORT (pid $SRV_PID)"
	run_common peer
	run_many peer
	run_idle peer peer_start
	run_loaded peer peer_start
	server_stop
fi

# ---- table and JSON ----
ELAPSED=$(($(date +%s) - T_START))
node - "$RESULTS" "$OUT" "$QUICK" "$ELAPSED" "$DEFLATE" "$TEXT" <<'EOF'
const fs = require('fs');
const os = require('os');
const [results, out, quick, elapsed, deflate, text] = process.argv.slice(2);
const runs = fs.readFileSync(results, 'utf8').trim().split('\n')
	.filter((l) => l).map((l) => JSON.parse(l))
	.filter((r) => r.scenario !== 'prep-H');
const groups = new Map();
for (const r of runs.filter((x) => x.scenario !== 'C')) {
	const k = `${r.scenario}|${r.point}`;
	if (!groups.has(k)) groups.set(k, { scenario: r.scenario,
		point: r.point, chatd: [], peer: [] });
	groups.get(k)[r.server].push(r.result);
}
const mean = (xs) => xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length
	: null;
const pick = (rs, f) => mean(rs.map(f).filter((v) => typeof v === 'number'));
// the headline figure of a scenario and its unit
function figures(scen, rs) {
	if (!rs.length) return null;
	const lat = (q) => pick(rs, (r) => r.latency_ms && r.latency_ms[q]);
	const o = { runs: rs.length,
		failed_runs: rs.filter((r) => r.failed_run).length };
	if (scen === 'F' || scen === 'M' || scen === 'Q') Object.assign(o, {
		value: pick(rs, (r) => r.deliveries_per_s), unit: 'deliv/s',
		p50: lat('p50'), p99: lat('p99'), max: lat('max'),
		lost: rs.reduce((a, r) => a + (r.lost || 0), 0),
		dup: rs.reduce((a, r) => a + (r.duplicates || 0), 0),
		ooo: rs.reduce((a, r) => a + (r.out_of_order || 0), 0),
		cpu_us: pick(rs, (r) => r.server_cpu_us_per_delivery),
		wire_b: pick(rs, (r) => r.wire_bytes_per_unit),
		plain_b: pick(rs, (r) => r.plain_bytes_per_unit),
		srv_cpu_pct: pick(rs, (r) => r.server_cpu_pct),
		gen_cpu_pct: pick(rs, (r) => r.gen_cpu_pct) });
	if (scen === 'Q') Object.assign(o, {
		searches_per_s: pick(rs, (r) => r.searches_per_s),
		search_timeouts: rs.reduce((a, r) => a + (r.search_timeouts || 0), 0),
		search_busy: rs.reduce((a, r) => a + (r.search_busy || 0), 0),
		search_p50: pick(rs, (r) => r.search_ms && r.search_ms.p50),
		search_p99: pick(rs, (r) => r.search_ms && r.search_ms.p99) });
	if (scen === 'U') Object.assign(o, {
		value: pick(rs, (r) => r.rss_per_conn_kib), unit: 'KiB/conn',
		p50: lat('p50'), p99: lat('p99'),
		lost: rs.reduce((a, r) => a + (r.lost || 0), 0),
		cpu_us: pick(rs, (r) => r.server_cpu_us_per_delivery),
		wire_b: pick(rs, (r) => r.wire_bytes_per_unit),
		plain_b: pick(rs, (r) => r.plain_bytes_per_unit) });
	if (scen === 'L') Object.assign(o, {
		value: pick(rs, (r) => r.deliveries_per_s), unit: 'deliv/s',
		p50: lat('p50'), p99: lat('p99'), max: lat('max'),
		lost: rs.reduce((a, r) => a + (r.lost || 0), 0),
		uploaders: pick(rs, (r) => r.uploaders),
		uploads_ok: rs.reduce((a, r) => a + (r.uploads_ok || 0), 0),
		uploads_failed: rs.reduce((a, r) => a + (r.uploads_failed || 0), 0),
		upload_mib_per_s: pick(rs, (r) => r.upload_mib_per_s),
		upload_p50: pick(rs, (r) => r.upload_ms && r.upload_ms.p50),
		upload_rss_max_kib: Math.max(...rs.map((r) => r.upload_rss_max_kib || 0)) });
	if (scen === 'I') Object.assign(o, {
		value: pick(rs, (r) => r.rss_per_conn_kib), unit: 'KiB/conn',
		ready: pick(rs, (r) => r.ready) });
	if (scen === 'R') Object.assign(o, {
		value: pick(rs, (r) => r.all_resynced_ms), unit: 'ms all',
		p50: pick(rs, (r) => r.resync_ms && r.resync_ms.p50),
		p99: pick(rs, (r) => r.resync_ms && r.resync_ms.p99),
		ooo: rs.reduce((a, r) => a + (r.out_of_order || 0), 0) });
	if (scen === 'H') Object.assign(o, {
		value: pick(rs, (r) => r.queries_per_s), unit: 'queries/s',
		p50: lat('p50'), p99: lat('p99'),
		cpu_us: pick(rs, (r) => r.server_cpu_us_per_query),
		wire_b: pick(rs, (r) => r.wire_bytes_per_unit),
		plain_b: pick(rs, (r) => r.plain_bytes_per_unit) });
	if (scen === 'S') Object.assign(o, {
		value: pick(rs, (r) => r.startup_ms), unit: 'ms' });
	return o;
}
const fmt = (v, d = 0) => v === null || v === undefined ? '-'
	: Number(v).toFixed(d);
const points = [];
const rows = [['scen', 'point', 'chatd', 'p50 ms', 'p99 ms', 'lost',
	'µs CPU', 'wire B', 'peer', 'p50 ms', 'p99 ms', 'lost', 'µs CPU',
	'wire B', 'chatd/peer']];
for (const g of groups.values()) {
	const c = figures(g.scenario, g.chatd), p = figures(g.scenario, g.peer);
	points.push({ scenario: g.scenario, point: g.point, chatd: c, peer: p });
	const cell = (f) => f ? [`${fmt(f.value, f.value < 10 ? 2 : 0)} ${f.unit}`,
		fmt(f.p50, 2), fmt(f.p99, 2), fmt(f.lost), fmt(f.cpu_us, 1),
		fmt(f.wire_b)] : ['-', '-', '-', '-', '-', '-'];
	const ratio = c && p && p.value ? (c.value / p.value).toFixed(2) : '-';
	rows.push([g.scenario, g.point, ...cell(c), ...cell(p), ratio]);
}
const w = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
for (const r of rows.length > 1 ? rows : [])
	console.log(r.map((c, i) => i < 2 ? c.padEnd(w[i]) : c.padStart(w[i]))
		.join('  '));
console.log('(mean of runs; lost summed over runs; µs CPU: server ' +
	'user+sys per delivery, per query for H; wire B: bytes read from ' +
	'the socket per delivery or query)');
for (const p of points)
	if (p.scenario === 'Q' && p.chatd && p.chatd.searches_per_s)
		console.log(`Q ${p.point}: ${fmt(p.chatd.searches_per_s, 1)} ` +
			`searches/s, p50 ${fmt(p.chatd.search_p50)} ms, p99 ` +
			`${fmt(p.chatd.search_p99)} ms, ${p.chatd.search_timeouts} ` +
			`timed out, ${p.chatd.search_busy} busy`);
console.log(`permessage-deflate ${deflate === '1' ? 'offered' : 'not ' +
	'offered'}; message texts ${text > 0 ? `of ${text} bytes` : 'short'}`);
for (const p of points)
	if (p.scenario === 'L' && p.chatd && p.chatd.uploaders)
		console.log(`L ${p.point}: ${fmt(p.chatd.upload_mib_per_s, 1)} ` +
			`MiB/s stored, ${p.chatd.uploads_ok} uploads, ` +
			`${p.chatd.uploads_failed} failed, upload p50 ` +
			`${fmt(p.chatd.upload_p50)} ms, server RSS max ` +
			`${p.chatd.upload_rss_max_kib} KiB`);
// C: the side-by-side of SQLite, PostgreSQL and three nodes, and where
// the time goes (commits from the nodes' /metrics, Redis round trips)
const cruns = runs.filter((r) => r.scenario === 'C');
if (cruns.length) {
	const cg = new Map();
	for (const r of cruns) {
		const k = `${r.point}|${r.server}`;
		if (!cg.has(k)) cg.set(k, { point: r.point, server: r.server,
			rs: [] });
		cg.get(k).rs.push(r);
	}
	const sum = (xs, f) => xs.reduce((a, x) => a + (f(x) || 0), 0);
	const crow = [['C point', 'server', 'deliv/s', 'p50 ms', 'p99 ms',
		'lost/dup/ooo', 'µs CPU', 'msgs/commit', 'ms/commit',
		'local p50', 'remote p50', 'redis ms']];
	for (const g of cg.values()) {
		const res = g.rs.map((r) => r.result);
		const f = figures('F', res);
		const txns = sum(g.rs, (r) => r.db && r.db.txns);
		const txs = sum(g.rs, (r) => r.db && r.db.txn_s);
		const sent = sum(res, (r) => r.sent);
		const lp = pick(res, (r) => r.latency_local_ms &&
			r.latency_local_ms.p50);
		const rp = pick(res, (r) => r.latency_remote_ms &&
			r.latency_remote_ms.p50);
		const rtt = mean(g.rs.filter((r) => r.redis_ms)
			.map((r) => r.redis_ms.avg));
		const o = { runs: res.length, ...f, commits: txns,
			msgs_per_commit: txns ? sent / txns : null,
			commit_ms: txns ? 1000 * txs / txns : null,
			local_p50: lp, remote_p50: rp, redis_rtt_ms: rtt,
			db: g.rs.map((r) => r.db || null),
			redis_ms: g.rs.map((r) => r.redis_ms || null) };
		points.push({ scenario: 'C', point: g.point, server: g.server,
			[g.server]: o });
		crow.push([g.point, g.server, fmt(o.value), fmt(o.p50, 2),
			fmt(o.p99, 2), `${o.lost}/${o.dup}/${o.ooo}`,
			fmt(o.cpu_us, 1),
			fmt(o.msgs_per_commit, 1),
			fmt(o.commit_ms, 2), fmt(lp, 2), fmt(rp, 2),
			fmt(rtt, 2)]);
	}
	const cw = crow[0].map((_, i) => Math.max(...crow.map((r) =>
		r[i].length)));
	console.log('');
	for (const r of crow)
		console.log(r.map((c, i) => i < 2 ? c.padEnd(cw[i])
			: c.padStart(cw[i])).join('  '));
	console.log('(C: sqlite and postgres are one chatd; cluster is three ' +
		'nodes on PostgreSQL and Redis, clients on node i % 3; every ' +
		'server process on one core. µs CPU: chatd, PostgreSQL and ' +
		'Redis user+sys per delivery; msgs/commit: messages sent per ' +
		'transaction over the whole point, set-up included (the group ' +
		'commit\'s batch); ms/commit: BEGIN to COMMIT, mean, from ' +
		'chatd_db_transaction_seconds; local/remote p50: receivers on ' +
		'the sender\'s node or another; redis ms: redis-cli --latency ' +
		'during the window)');
}
const doc = { date: new Date().toISOString(), quick: quick === '1',
	deflate: deflate === '1', text_bytes: Number(text),
	elapsed_s: Number(elapsed),
	machine: { cpus: os.cpus().length, model: os.cpus()[0].model,
		kernel: os.release(), loadavg: os.loadavg() },
	points, runs };
fs.mkdirSync(require('path').dirname(out), { recursive: true });
fs.writeFileSync(out, JSON.stringify(doc, null, 1) + '\n');
console.log(`wrote ${out} (${runs.length} runs, ${elapsed} s)`);
EOF
