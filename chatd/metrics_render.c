/* chatd/metrics_render.c — the /metrics page: counters and the gauges of
 * the server, its connections, the hub's users and the database */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "chatd/chat.h"
#include "chatd/conn.h"
#include "chatd/fiber.h"
#include "chatd/files.h"
#include "chatd/gate.h"
#include "chatd/hub.h"
#include "chatd/metrics.h"
#include "chatd/metrics_render.h"
#include "chatd/reader.h"
#include "chatd/server.h"
#include "chatd/worker.h"
#include "storage/storage.h"

/* Connections by state and authenticated users online (a walk over the
 * connection list: at scrape time, not on the hot path). */
static void
metrics_connections(FILE *f, struct server *srv)
{
	unsigned long long http = 0, ws_auth = 0, ws_unauth = 0, closing = 0;
	unsigned long long users = 0;
	struct conn *c;

	TAILQ_FOREACH(c, &srv->env.conns, link) {
		struct session *s = c->app_data;

		if (c->mode == CONN_MODE_HTTP)
			http++;
		else if (c->mode == CONN_MODE_CLOSING)
			closing++;
		else if (c->flags & CONN_AUTHED)
			ws_auth++;
		else
			ws_unauth++;
		/* A user's first session counts the user once. */
		if (c->mode == CONN_MODE_WS && s != NULL && s->user != NULL &&
		    LIST_FIRST(&s->user->sessions) == s)
			users++;
	}
	fprintf(f, "# HELP chatd_connections Open connections by state.\n"
		   "# TYPE chatd_connections gauge\n"
		   "chatd_connections{state=\"http\"} %llu\n"
		   "chatd_connections{state=\"websocket\"} %llu\n"
		   "chatd_connections{state=\"websocket_unauthenticated\"} "
		   "%llu\n"
		   "chatd_connections{state=\"closing\"} %llu\n",
	    http, ws_auth, ws_unauth, closing);
	metrics_write_one(f, "chatd_users_online", "gauge",
	    "Users with at least one authenticated WebSocket.", users);
}

/* Changes held up by a write lock another process holds (chat.c). */
static void
metrics_lock(FILE *f, struct server *srv)
{
	metrics_write_one(f, "chatd_db_busy_retries_total", "counter",
	    "Write transactions that found the database locked by another "
	    "process (each retry counts).",
	    (unsigned long long)srv->m.db_busy);
	metrics_write_one(f, "chatd_db_lock_timeouts_total", "counter",
	    "Changes that failed with internal after waiting --db-wait-ms "
	    "for the lock.",
	    (unsigned long long)srv->m.db_lock_timeouts);
	metrics_write_one(f, "chatd_db_lock_waiting", "gauge",
	    "Requests waiting for the database's write lock.",
	    chat_lock_waiting(srv));
	metrics_write_one(f, "chatd_db_lock_wait_ms", "gauge",
	    "How long the oldest waiting request has waited (ms).",
	    (unsigned long long)chat_lock_wait_ms(srv));
}

int
metrics_db_read(struct db *rdb, void *arg)
{
	struct metrics_db *m = arg;

	if (admin_counts(rdb, &m->public_rooms, &m->dm_rooms, &m->users) !=
	        0 ||
	    file_counts(rdb, &m->files, &m->attached, &m->file_bytes) != 0)
		return -1;
	return 0;
}

/* Rooms and users in the database. */
static void
metrics_database(FILE *f, const struct metrics_db *dbc)
{
	long long pub, dm;

	if (dbc == NULL)
		return;
	pub = dbc->public_rooms;
	dm = dbc->dm_rooms;
	fprintf(f, "# HELP chatd_rooms Rooms in the database by kind.\n"
		   "# TYPE chatd_rooms gauge\n"
		   "chatd_rooms{kind=\"public\"} %lld\n"
		   "chatd_rooms{kind=\"dm\"} %lld\n",
	    pub, dm);
	metrics_write_one(f, "chatd_users", "gauge", "Accounts (not deleted).",
	    (unsigned long long)dbc->users);
}

/* Files in the database and their bytes on disk. */
static void
metrics_files(FILE *f, struct server *srv, const struct metrics_db *dbc)
{
	if (srv->files == NULL)
		return;
	if (dbc != NULL) {
		fprintf(f, "# HELP chatd_files Uploaded files by state.\n"
			   "# TYPE chatd_files gauge\n"
			   "chatd_files{state=\"attached\"} %lld\n"
			   "chatd_files{state=\"unattached\"} %lld\n",
		    (long long)dbc->attached,
		    (long long)(dbc->files - dbc->attached));
		metrics_write_one(f, "chatd_file_bytes", "gauge",
		    "Bytes of the stored files (identical files counted "
		    "once).",
		    (unsigned long long)dbc->file_bytes);
	}
	metrics_write_one(f, "chatd_file_uploads_active", "gauge",
	    "Uploads in progress.", (unsigned long long)files_active(srv));
}

/* The gate's and fibers' counters: PostgreSQL only (gate.h). */
static void
metrics_gate(FILE *f)
{
	struct gate_stats gs;
	struct fiber_stats fs;

	gate_stats(&gs);
	if (!gs.on)
		return;
	fiber_stats(&fs);
	metrics_write_one(f, "chatd_db_gate_jobs_total", "counter",
	    "Loop-side jobs run one at a time for the database.",
	    (unsigned long long)gs.jobs);
	metrics_write_one(f, "chatd_db_gate_deferred_total", "counter",
	    "Jobs that queued behind another waiting for the database.",
	    (unsigned long long)gs.deferred);
	metrics_write_one(f, "chatd_db_gate_queued", "gauge",
	    "Jobs waiting for their turn now.", gs.queued);
	metrics_write_one(f, "chatd_db_gate_queued_max", "gauge",
	    "The most jobs that waited at once.", gs.max_queued);
	metrics_write_one(f, "chatd_db_gate_waits_total", "counter",
	    "Database waits that let the loop go on.",
	    (unsigned long long)gs.waits);
	metrics_write_one(f, "chatd_db_gate_loop_waits_total", "counter",
	    "Database waits that blocked the loop (a bug if not 0).",
	    (unsigned long long)gs.loop_waits);
	metrics_write_one(f, "chatd_db_gate_input_holds_total", "counter",
	    "WebSocket connections that stopped reading: 32 messages or "
	    "256 KiB of theirs (or 64 MiB of everyone's) waited.",
	    (unsigned long long)gs.input_holds);
	metrics_write_one(f, "chatd_fiber_stack_bytes", "gauge",
	    "Bytes mapped for fiber stacks.", (unsigned long long)fs.stack_bytes);
}

/* The process: resident memory, open descriptors, start time. */
static void
metrics_process(FILE *f, struct server *srv)
{
	unsigned long long size = 0, rss = 0, fds = 0;
	FILE *statm = fopen("/proc/self/statm", "r");
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;

	if (statm != NULL) {
		if (fscanf(statm, "%llu %llu", &size, &rss) != 2)
			rss = 0;
		fclose(statm);
	}
	if (d != NULL) {
		while ((e = readdir(d)) != NULL)
			if (e->d_name[0] != '.')
				fds++;
		closedir(d);
		fds--; /* the directory's own descriptor */
	}
	metrics_write_one(f, "process_resident_memory_bytes", "gauge",
	    "Resident memory size in bytes.",
	    rss * (unsigned long long)sysconf(_SC_PAGESIZE));
	metrics_write_one(f, "process_open_fds", "gauge",
	    "Open file descriptors.", fds);
	fprintf(f, "# HELP process_start_time_seconds Start time since the "
		   "Unix epoch.\n# TYPE process_start_time_seconds gauge\n"
		   "process_start_time_seconds %.3f\n",
	    (double)srv->started_ms / 1000.0);
}

char *
metrics_render(struct server *srv, const struct metrics_db *dbc, size_t *len)
{
	char *buf = NULL;
	FILE *f = open_memstream(&buf, len);

	if (f == NULL)
		abort();
	metrics_connections(f, srv);
	metrics_write(f, &srv->m, srv->db ? db_checkpoints(srv->db) : 0);
	metrics_write_one(f, "chatd_hash_queue_jobs", "gauge",
	    "Password hashing jobs queued or running.",
	    srv->worker ? worker_jobs(srv->worker) : 0);
	metrics_write_one(f, "chatd_search_queue_jobs", "gauge",
	    "Searches queued or running on the reader threads.",
	    reader_jobs(srv->reader));
	metrics_lock(f, srv);
	chat_cluster_metrics(srv, f);
	metrics_gate(f);
	metrics_database(f, dbc);
	metrics_files(f, srv, dbc);
	metrics_process(f, srv);
	if (fclose(f) != 0)
		abort();
	return buf;
}
