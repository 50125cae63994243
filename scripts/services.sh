#!/usr/bin/env bash
# Throwaway PostgreSQL and Redis servers for the tests (issue 17), in a
# directory of their own, reachable only through a Unix socket there
# (PostgreSQL) and a loopback port (Redis). Never touches a system
# cluster or service.
#
#   scripts/services.sh start DIR   starts both; writes the environment to DIR/env
#                                   (export CHATD_TEST_PG=..., for `.`)
#   scripts/services.sh stop DIR    stops both and removes DIR
#
# CHATD_TEST_PG is a libpq URI of a database the tests may use freely
# (they make databases of their own next to it: the role is a superuser
# of this throwaway cluster). As root, the cluster runs as the postgres
# user (PostgreSQL refuses root).
set -euo pipefail

cmd=${1:?usage: services.sh start|stop DIR}
dir=${2:?usage: services.sh start|stop DIR}

pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)

as_pg() {
	if [ "$(id -u)" -eq 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

start() {
	[ -n "$pgbin" ] || { echo "services: PostgreSQL is not installed" >&2; exit 1; }
	command -v redis-server >/dev/null ||
		{ echo "services: redis-server is not installed" >&2; exit 1; }
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	[ "$(id -u)" -ne 0 ] || chown postgres "$dir"
	# Durability is the server's business in production; a test cluster
	# that is thrown away needs none of it.
	as_pg "$pgbin/initdb" -D "$dir/pg" -U chatd --auth=trust -E UTF8 \
		--locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
		{ cat "$dir/initdb.log" >&2; exit 1; }
	as_pg "$pgbin/pg_ctl" -D "$dir/pg" -l "$dir/pg.log" -w -t 60 \
		-o "-k $dir -c listen_addresses= -c fsync=off -c full_page_writes=off -c synchronous_commit=off -c max_connections=300" \
		start >/dev/null || { cat "$dir/pg.log" >&2; exit 1; }
	as_pg "$pgbin/createdb" -h "$dir" -U chatd chatd
	# In public once, so the unit tests' schemas (tests/unit/tmpdb.h) all
	# find it on their search_path.
	as_pg "$pgbin/psql" -q -h "$dir" -U chatd -d chatd \
		-c 'CREATE EXTENSION pg_trgm' -c 'CREATE EXTENSION unaccent' \
		>/dev/null

	# Redis on a free loopback port: bind refuses a taken one, so try a few.
	local port ok=0
	for _ in 1 2 3 4 5 6 7 8; do
		port=$((20000 + RANDOM % 20000))
		if redis-server --bind 127.0.0.1 --port "$port" --save '' \
			--appendonly no --daemonize yes --dir "$dir" \
			--pidfile "$dir/redis.pid" --logfile "$dir/redis.log" \
			>/dev/null 2>&1 &&
			timeout 10 bash -c "until redis-cli -p $port ping >/dev/null 2>&1; do sleep 0.05; done"; then
			ok=1
			break
		fi
	done
	[ "$ok" = 1 ] || { echo "services: redis-server did not start" >&2; exit 1; }

	{
		echo "export CHATD_TEST_PG='postgresql:///chatd?host=$dir&user=chatd'"
		echo "export CHATD_TEST_REDIS='redis://127.0.0.1:$port'"
		echo "export CHATD_TEST_PGBIN='$pgbin'"
		echo "export CHATD_TEST_SERVICES='$dir'"
	} >"$dir/env"
}

stop() {
	[ -d "$dir" ] || return 0
	if [ -f "$dir/redis.pid" ]; then
		kill "$(cat "$dir/redis.pid")" 2>/dev/null || true
	fi
	if [ -f "$dir/pg/postmaster.pid" ]; then
		as_pg "$pgbin/pg_ctl" -D "$dir/pg" -m immediate -w stop \
			>/dev/null 2>&1 || true
	fi
	rm -rf "$dir"
}

case $cmd in
start) start ;;
stop) stop ;;
*) echo "usage: services.sh start|stop DIR" >&2; exit 2 ;;
esac
