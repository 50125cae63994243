/* chatd/serve.c — the default command: the chat server until a signal */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "chatd/admin_db.h"
#include "chatd/api.h"
#include "chatd/auth.h"
#include "chatd/chat.h"
#include "chatd/config.h"
#include "chatd/files.h"
#include "chatd/limiter.h"
#include "chatd/reader.h"
#include "chatd/serve.h"
#include "chatd/server.h"
#include "chatd/worker.h"
#include "storage/storage.h"

/* Frees the server in the one safe order: what is pending is committed
 * and delivered, then the connections go (their sessions point into the
 * chat state), then the chat state (its events need the event base),
 * then the base and the database. */
static void
serve_teardown(struct server *srv)
{
	chat_flush(srv);
	server_close_conns(srv);
	files_free(srv);
	chat_free(srv);
	server_free(srv);
}

/* Runs the server until SIGTERM/SIGINT. */
int
serve_run(struct config *cfg)
{
	struct server srv;
	int rc, lock = -1;

	memset(&srv, 0, sizeof srv);
	db_set_slow_ms(cfg->slow_query_ms);
	if (auth_hash_password("not a real password", 19, srv.dummy_hash,
		sizeof srv.dummy_hash) != 0)
		return 1;
	if (server_start(&srv, cfg, &api_app) != 0 || chat_start(&srv) != 0) {
		serve_teardown(&srv);
		return 1;
	}
	/* PostgreSQL: every node holds the serving lock shared; an import
	 * running holds it alone. */
	if ((rc = db_serving_lock(srv.db, 0)) != 0) {
		fprintf(stderr, "chatd: %s\n", rc == 1
		    ? "an import into this database is running"
		    : "cannot take the serving lock");
		serve_teardown(&srv);
		return 1;
	}
	/* Held while serving: chatd restore refuses to replace the file
	 * (a SQLite file; PostgreSQL is restored with pg_restore). */
	if (!db_url_is_pg(cfg->db_path) &&
	    (lock = admin_db_lock(cfg->db_path, 0)) == -2) {
		fprintf(stderr, "chatd: %s is being restored\n", cfg->db_path);
		serve_teardown(&srv);
		return 1;
	}
	if ((srv.worker = worker_new(srv.base, 2)) == NULL) {
		fprintf(stderr, "chatd: cannot start worker threads\n");
		serve_teardown(&srv);
		if (lock >= 0)
			close(lock);
		return 1;
	}
	if ((srv.reader = reader_new(srv.base, srv.db, READER_THREADS,
		 cfg->query_timeout_ms)) == NULL ||
	    (srv.gauges = reader_new(srv.base, srv.db, 1,
		 cfg->query_timeout_ms)) == NULL) {
		fprintf(stderr, "chatd: cannot start reader threads\n");
		reader_free(srv.reader);
		worker_free(srv.worker);
		serve_teardown(&srv);
		if (lock >= 0)
			close(lock);
		return 1;
	}
	/* The gauges answer /metrics, which works while the database is
	 * slow (PostgreSQL: outside the gate, docs/gate.md). */
	reader_ungate(srv.gauges);
		if (files_start(&srv) != 0) {
		worker_free(srv.worker);
		reader_free(srv.reader);
		reader_free(srv.gauges);
		files_drain(&srv);
		serve_teardown(&srv);
		if (lock >= 0)
			close(lock);
		return 1;
	}
	srv.login_user = limiter_new(1.0 / 60, 5, 4096);
	srv.login_addr = limiter_new(1.0 / 3, 20, 4096);
	srv.register_addr = limiter_new(1.0 / 60, 5, 4096);
	if (cfg->rate_limits && cfg->max_rooms_per_hour > 0)
		srv.room_create = limiter_new(cfg->max_rooms_per_hour / 3600.0,
		    cfg->max_rooms_per_hour, 4096);
	rc = server_run(&srv);
	/* Their done callbacks release held connections: before those go. */
	worker_free(srv.worker);
	reader_free(srv.reader);
	reader_free(srv.gauges);
	files_drain(&srv);
	serve_teardown(&srv);
	limiter_free(srv.login_user);
	limiter_free(srv.login_addr);
	limiter_free(srv.register_addr);
	limiter_free(srv.room_create);
	if (lock >= 0)
		close(lock);
	return rc;
}
