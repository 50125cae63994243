/* storage/pg_db.c — the PostgreSQL connection (issue 17): open, migrate,
 * statements and commits over libpq, behind the same wrappers as SQLite
 * (storage/db.h). */
#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "chatd/log.h"
#include "chatd/xmalloc.h"
#include "storage/db.h"
#include "storage/db_int.h"
#include "storage/storage.h"

/*
 * Statements. The storage files write SQL once, with :name parameters;
 * here each is translated to $1, $2 ... (the same name, the same number)
 * and prepared on the server the first time it runs on a connection
 * (named "c1", "c2" ... after its place in the cache). Parameters go as
 * text (integers in decimal) or binary (blobs: bytea); results come back
 * as text and are decoded by the column getters. A statement's whole
 * result is read when it first steps: the storage files read small
 * results, and streaming ones (export) are bounded by what PostgreSQL
 * holds anyway.
 *
 * Waiting. Every wait for the server goes through db_waiter (poll(2)
 * unless the server installs its own: chatd runs loop-side storage work
 * on fibers, chatd/fiber.c, whose wait gives the loop back meanwhile).
 */

#define PG_PARAMS_MAX 64
/* How often a statement cancelled by db_cancel asks the server again. */
#define PG_CANCEL_RETRY_MS 100

struct pg_stmt {
	int kind; /* DB_KIND_PG */
	struct pg_db *db;
	const char *sql;  /* the caller's literal: the cache key */
	const char *func; /* who prepared it */
	char *text;       /* sql with $n for :name */
	char name[16];    /* the server-side name */
	int prepared;     /* on the current server connection */
	int nparams;
	char *pnames[PG_PARAMS_MAX];
	char *values[PG_PARAMS_MAX];
	int lengths[PG_PARAMS_MAX];
	int formats[PG_PARAMS_MAX];
	uint64_t bound, all;
	int bind_err;
	int running;
	PGresult *res;
	int row, nrows;
	unsigned char *blob; /* a decoded bytea column (PQunescapeBytea) */
};

struct pg_db {
	int kind; /* DB_KIND_PG */
	PGconn *c;
	char *url;
	struct pg_stmt **stmts;
	size_t nstmts, capstmts;
	unsigned generation; /* bumped when the connection is remade */
	char epoch[EPOCH_LEN + 1];
	int changes;
	int busy;
	int budget_ms;           /* reader connections: statement_timeout */
	int exceeded;            /* a statement ran out of budget */
	atomic_int cancelled;    /* db_cancel */
	PGcancel *cancel;        /* for db_cancel from another thread */
	/* Savepoints, innermost last: 1 where db_savepoint began the
	 * transaction (there was none), which its release then commits (as
	 * SQLite's outermost SAVEPOINT does). */
	unsigned char sp_began[32];
	int sp_depth;
	int limit_ms;      /* db_set_wait_limit: applied to each connection */
	int serving;       /* db_serving_lock: 1 shared, 2 exclusive */
};

static int pg_serving_take(struct pg_db *db, int exclusive);

/* Whether PostgreSQL was unreachable at the last try of any connection
 * of this process (the loop's, the readers'), and how many times it
 * became so: an outage is logged once, not once per connection. */
static atomic_int pg_down;
static atomic_ullong pg_outages;

#define PG(db) ((struct pg_db *)(void *)(db))
#define PGST(st) ((struct pg_stmt *)(void *)(st))

static int pg_wait_poll(int fd, short what, int timeout_ms);
static db_wait_fn db_waiter = pg_wait_poll;

void
db_set_waiter(db_wait_fn fn)
{
	db_waiter = fn != NULL ? fn : pg_wait_poll;
}

/* The default wait: poll(2). Returns DB_WAIT_READ/WRITE flags, 0 on a
 * timeout, -1 on error. */
static int
pg_wait_poll(int fd, short what, int timeout_ms)
{
	struct pollfd p = {.fd = fd, .events = 0};
	int rc;

	if (what & DB_WAIT_READ)
		p.events |= POLLIN;
	if (what & DB_WAIT_WRITE)
		p.events |= POLLOUT;
	do
		rc = poll(&p, 1, timeout_ms);
	while (rc == -1 && errno == EINTR);
	if (rc <= 0)
		return rc;
	rc = 0;
	if (p.revents & (POLLIN | POLLERR | POLLHUP))
		rc |= DB_WAIT_READ;
	if (p.revents & (POLLOUT | POLLERR | POLLHUP))
		rc |= DB_WAIT_WRITE;
	return rc;
}

/* Sends what libpq has buffered and waits until the result is in. 0, or
 * -1 if the connection broke. */
static int
pg_flush_and_wait(struct pg_db *db)
{
	int fd = PQsocket(db->c), r;

	while ((r = PQflush(db->c)) == 1) {
		if (db_waiter(fd, DB_WAIT_READ | DB_WAIT_WRITE, -1) < 0)
			return -1;
		if (PQconsumeInput(db->c) == 0)
			return -1;
	}
	if (r == -1)
		return -1;
	while (PQisBusy(db->c)) {
		/* A cancel (db_cancel, another thread) that reached the
		 * server before the statement started is lost: ask again
		 * every PG_CANCEL_RETRY_MS until the statement ends. */
		r = db_waiter(fd, DB_WAIT_READ, PG_CANCEL_RETRY_MS);
		if (r < 0)
			return -1;
		if (r == 0 && atomic_load(&db->cancelled) && db->cancel != NULL) {
			char err[128];

			PQcancel(db->cancel, err, sizeof err);
		}
		if (PQconsumeInput(db->c) == 0)
			return -1;
	}
	return 0;
}

/* The last result of what was sent (the others cleared), or NULL if the
 * connection broke. */
static PGresult *
pg_result(struct pg_db *db)
{
	PGresult *last = NULL, *r;

	for (;;) {
		if (pg_flush_and_wait(db) == -1) {
			PQclear(last);
			return NULL;
		}
		if ((r = PQgetResult(db->c)) == NULL)
			break;
		PQclear(last);
		last = r;
	}
	return last;
}

static int pg_run(struct pg_db *db, const char *sql, const char *func);

/* Makes a new connection to db->url, waiting through db_waiter. 0, or
 * -1 with the reason in err. */
static int
pg_connect(struct pg_db *db, char *err, size_t errlen)
{
	PostgresPollingStatusType ps = PGRES_POLLING_WRITING;
	PGconn *c;
	int w;

	if (db->c != NULL) {
		PQfinish(db->c);
		db->c = NULL;
	}
	if (db->cancel != NULL) {
		PQfreeCancel(db->cancel);
		db->cancel = NULL;
	}
	c = PQconnectStart(db->url);
	if (c == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (PQstatus(c) == CONNECTION_BAD)
		goto bad;
	while (ps != PGRES_POLLING_OK) {
		if (ps == PGRES_POLLING_FAILED)
			goto bad;
		w = db_waiter(PQsocket(c),
		              ps == PGRES_POLLING_READING ? DB_WAIT_READ
		                                          : DB_WAIT_WRITE,
		              10000);
		if (w <= 0) {
			snprintf(err, errlen, "connection timed out");
			PQfinish(c);
			return -1;
		}
		ps = PQconnectPoll(c);
	}
	PQsetnonblocking(c, 1);
	db->c = c;
	db->cancel = PQgetCancel(c);
	db->generation++;
	if (db->limit_ms > 0) {
		char sql[96];

		snprintf(sql, sizeof sql,
		         "SET statement_timeout = %d; SET lock_timeout = %d",
		         db->limit_ms, db->limit_ms);
		if (pg_run(db, sql, __func__) == -1) {
			snprintf(err, errlen, "cannot set the time limits");
			return -1;
		}
	}
	/* A session's advisory lock goes with the session: take it again. */
	if (db->serving && pg_serving_take(db, db->serving == 2) != 0) {
		snprintf(err, errlen, "cannot take the serving lock again");
		return -1;
	}
	return 0;
bad:
	snprintf(err, errlen, "%s", PQerrorMessage(c));
	/* libpq ends its messages with a newline */
	err[strcspn(err, "\n")] = '\0';
	PQfinish(c);
	return -1;
}

/* A usable connection: remade when the last one broke (the server
 * restarted, the network went). 0 or -1 (logged). */
static int
pg_ready(struct pg_db *db)
{
	char err[256];

	if (db->c != NULL && PQstatus(db->c) == CONNECTION_OK)
		return 0;
	if (pg_connect(db, err, sizeof err) == -1) {
		/* Once per outage; every try after it fails quietly. */
		if (atomic_exchange(&pg_down, 1) == 0) {
			atomic_fetch_add(&pg_outages, 1);
			log_error("postgresql: unreachable: %s (changes answer "
			          "internal until it is back)",
			          err);
		}
		return -1;
	}
	if (atomic_exchange(&pg_down, 0) == 1)
		log_info("postgresql: reachable again");
	return 0;
}

/* Runs sql (no parameters) and returns its result, or NULL (logged). */
static PGresult *
pg_exec(struct pg_db *db, const char *sql, ExecStatusType want,
        const char *func)
{
	PGresult *r;

	if (pg_ready(db) == -1)
		return NULL;
	if (!PQsendQuery(db->c, sql)) {
		log_error("%s: %s", func, PQerrorMessage(db->c));
		return NULL;
	}
	r = pg_result(db);
	if (r == NULL) {
		log_error("%s: %s", func, PQerrorMessage(db->c));
		return NULL;
	}
	if (PQresultStatus(r) != want) {
		const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);

		/* Out of time (a reader's budget, or db_cancel) wherever it
		 * strikes, BEGIN included: not an error of the database. */
		if (state != NULL && strcmp(state, "57014") == 0 &&
		    (db->budget_ms > 0 || atomic_load(&db->cancelled)))
			db->exceeded = 1;
		else
			log_error("%s: %s", func, PQresultErrorMessage(r));
		PQclear(r);
		return NULL;
	}
	return r;
}

/* pg_exec for a command: 0 or -1. */
static int
pg_run(struct pg_db *db, const char *sql, const char *func)
{
	PGresult *r = pg_exec(db, sql, PGRES_COMMAND_OK, func);

	PQclear(r);
	return r != NULL ? 0 : -1;
}

/* Translates :name parameters to $n into st->text and st->pnames. Skips
 * string literals, quoted names and casts (::). 0 or -1. */
static int
pg_translate(struct pg_stmt *st)
{
	const char *s = st->sql;
	size_t len = strlen(s), o = 0;
	char *out = xmalloc(len * 2 + 1);
	char q = 0;

	while (*s != '\0') {
		if (q != 0) {
			if (*s == q)
				q = 0;
			out[o++] = *s++;
		} else if (*s == '\'' || *s == '"') {
			q = *s;
			out[o++] = *s++;
		} else if (s[0] == ':' && s[1] == ':') {
			out[o++] = *s++;
			out[o++] = *s++;
		} else if (s[0] == ':' &&
		           (s[1] == '_' || (s[1] >= 'a' && s[1] <= 'z') ||
		            (s[1] >= 'A' && s[1] <= 'Z'))) {
			const char *e = s + 1;
			int i;

			while (*e == '_' || (*e >= 'a' && *e <= 'z') ||
			       (*e >= 'A' && *e <= 'Z') ||
			       (*e >= '0' && *e <= '9'))
				e++;
			for (i = 0; i < st->nparams; i++)
				if (strlen(st->pnames[i]) == (size_t)(e - s) &&
				    memcmp(st->pnames[i], s, (size_t)(e - s)) ==
				        0)
					break;
			if (i == st->nparams) {
				if (i == PG_PARAMS_MAX) {
					free(out);
					return -1;
				}
				st->pnames[i] = xstrndup(s, (size_t)(e - s));
				st->nparams++;
			}
			o += (size_t)sprintf(out + o, "$%d", i + 1);
			s = e;
		} else
			out[o++] = *s++;
	}
	out[o] = '\0';
	st->text = out;
	return 0;
}

struct db_stmt *
pg_db_prepare_at(struct db *d, const char *sql, const char *func)
{
	struct pg_db *db = PG(d);
	struct pg_stmt *st;

	for (size_t i = 0; i < db->nstmts; i++)
		if (db->stmts[i]->sql == sql)
			return (struct db_stmt *)(void *)db->stmts[i];
	st = xcalloc(1, sizeof *st);
	st->kind = DB_KIND_PG;
	st->db = db;
	st->sql = sql;
	st->func = func;
	if (pg_translate(st) == -1) {
		log_error("%s: prepare: more than %d parameters", func,
		          PG_PARAMS_MAX);
		free(st);
		return NULL;
	}
	st->all = st->nparams == 64 ? UINT64_MAX
	                            : ((uint64_t)1 << st->nparams) - 1;
	if (db->nstmts == db->capstmts) {
		db->capstmts = db->capstmts ? db->capstmts * 2 : 32;
		db->stmts =
		    xrealloc(db->stmts, db->capstmts * sizeof *db->stmts);
	}
	snprintf(st->name, sizeof st->name, "c%zu", db->nstmts + 1);
	db->stmts[db->nstmts++] = st;
	return (struct db_stmt *)(void *)st;
}

/* The index of parameter name, recording a bind error if none. */
static int
pg_param(struct pg_stmt *st, const char *name)
{
	for (int i = 0; i < st->nparams; i++)
		if (strcmp(st->pnames[i], name) == 0)
			return i;
	log_error("%s: no parameter %s in: %s", st->func, name, st->sql);
	st->bind_err = 1;
	return -1;
}

/* Binds parameter name to a copy of v (len bytes; NULL: SQL NULL). */
static int
pg_bind(struct db_stmt *s, const char *name, const void *v, size_t len,
        int binary)
{
	struct pg_stmt *st = PGST(s);
	int i = pg_param(st, name);

	if (i < 0)
		return -1;
	free(st->values[i]);
	st->values[i] = NULL;
	if (v != NULL) {
		if (len > INT32_MAX) {
			st->bind_err = 1;
			return -1;
		}
		st->values[i] = xmalloc(len + 1);
		memcpy(st->values[i], v, len);
		st->values[i][len] = '\0';
	}
	st->lengths[i] = (int)len;
	st->formats[i] = binary;
	st->bound |= (uint64_t)1 << i;
	return 0;
}

int
pg_db_bind_int64(struct db_stmt *st, const char *name, int64_t v)
{
	char buf[24];
	int n = snprintf(buf, sizeof buf, "%lld", (long long)v);

	return pg_bind(st, name, buf, (size_t)n, 0);
}

int
pg_db_bind_text(struct db_stmt *st, const char *name, const char *s,
                ptrdiff_t len)
{
	if (s != NULL && len < 0)
		len = (ptrdiff_t)strlen(s);
	/* A NUL inside text: PostgreSQL text cannot hold one (chatd's
	 * validation refuses them before storage). */
	if (s != NULL && memchr(s, '\0', (size_t)len) != NULL) {
		log_error("%s: text with a NUL byte", PGST(st)->func);
		PGST(st)->bind_err = 1;
		return -1;
	}
	return pg_bind(st, name, s, s != NULL ? (size_t)len : 0, 0);
}

int
pg_db_bind_blob(struct db_stmt *st, const char *name, const void *p,
                size_t len)
{
	static const char empty;

	return pg_bind(st, name, p != NULL ? p : &empty, len, 1);
}

int
pg_db_bind_null(struct db_stmt *st, const char *name)
{
	return pg_bind(st, name, NULL, 0, 0);
}

/* 1 if the SQLSTATE of r says a lock or a serialization conflict: a
 * retry may succeed. */
static int
pg_state_busy(const char *state)
{
	return state != NULL &&
	       (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0 ||
	        strcmp(state, "55P03") == 0);
}

/* Runs the statement on the server; its result in st->res. DB_DONE or
 * DB_ROW, DB_CONSTRAINT, -1. */
static int
pg_execute(struct pg_stmt *st)
{
	struct pg_db *db = st->db;
	const char *state, *cmd;
	PGresult *r;

	if (pg_ready(db) == -1)
		return -1;
	if (atomic_load(&db->cancelled)) {
		db->exceeded = 1;
		return -1;
	}
	if (!st->prepared || st->prepared != (int)db->generation) {
		if (!PQsendPrepare(db->c, st->name, st->text, 0, NULL))
			goto conn_err;
		if ((r = pg_result(db)) == NULL)
			goto conn_err;
		if (PQresultStatus(r) != PGRES_COMMAND_OK) {
			log_error("%s: prepare: %s: %s", st->func,
			          PQresultErrorMessage(r), st->sql);
			PQclear(r);
			return -1;
		}
		PQclear(r);
		st->prepared = (int)db->generation;
	}
	if (!PQsendQueryPrepared(db->c, st->name, st->nparams,
	                         (const char *const *)st->values, st->lengths,
	                         st->formats, 0))
		goto conn_err;
	if ((r = pg_result(db)) == NULL)
		goto conn_err;
	switch (PQresultStatus(r)) {
	case PGRES_TUPLES_OK:
	case PGRES_COMMAND_OK:
		cmd = PQcmdStatus(r);
		if (strncmp(cmd, "INSERT", 6) == 0 ||
		    strncmp(cmd, "UPDATE", 6) == 0 ||
		    strncmp(cmd, "DELETE", 6) == 0)
			db->changes = atoi(PQcmdTuples(r));
		st->res = r;
		st->nrows = PQntuples(r);
		st->row = -1;
		return DB_DONE;
	default:
		break;
	}
	state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
	if (state != NULL && strncmp(state, "23", 2) == 0) {
		PQclear(r);
		return DB_CONSTRAINT;
	}
	if (state != NULL && strcmp(state, "57014") == 0 &&
	    (db->budget_ms > 0 || atomic_load(&db->cancelled))) {
		db->exceeded = 1;
		log_debug("%s: out of time: %s", st->func, st->sql);
		PQclear(r);
		return -1;
	}
	db->busy = pg_state_busy(state);
	log_error("%s: %s", st->func, PQresultErrorMessage(r));
	PQclear(r);
	return -1;
conn_err:
	log_error("%s: %s", st->func, PQerrorMessage(db->c));
	return -1;
}

int
pg_db_step(struct db_stmt *s)
{
	struct pg_stmt *st = PGST(s);
	int rc;

	if (!st->running) {
		st->db->busy = 0;
		if (st->bind_err)
			return -1;
		if (st->bound != st->all) {
			log_error("%s: unbound parameter in: %s", st->func,
			          st->sql);
			return -1;
		}
		st->running = 1;
		if ((rc = pg_execute(st)) != DB_DONE)
			return rc;
	}
	if (st->res == NULL)
		return -1;
	free(st->blob);
	st->blob = NULL;
	if (st->row + 1 < st->nrows) {
		st->row++;
		return DB_ROW;
	}
	st->row = st->nrows;
	return DB_DONE;
}

void
pg_db_reset(struct db_stmt *s)
{
	struct pg_stmt *st = PGST(s);

	PQclear(st->res);
	st->res = NULL;
	free(st->blob);
	st->blob = NULL;
	for (int i = 0; i < st->nparams; i++) {
		free(st->values[i]);
		st->values[i] = NULL;
	}
	st->bound = 0;
	st->bind_err = 0;
	st->running = 0;
}

/* 1 if the current row has a value at col. */
static int
pg_has(struct pg_stmt *st, int col)
{
	return st->res != NULL && st->row >= 0 && st->row < st->nrows &&
	       col < PQnfields(st->res) &&
	       !PQgetisnull(st->res, st->row, col);
}

int64_t
pg_db_column_int64(struct db_stmt *s, int col)
{
	struct pg_stmt *st = PGST(s);

	const char *v;

	if (!pg_has(st, col))
		return 0;
	v = PQgetvalue(st->res, st->row, col);
	/* A boolean (EXISTS, comparisons) reads as SQLite's 0 or 1. */
	if (v[0] == 't' || v[0] == 'f')
		return v[0] == 't';
	return strtoll(v, NULL, 10);
}

int
pg_db_column_is_null(struct db_stmt *s, int col)
{
	return !pg_has(PGST(s), col);
}

const char *
pg_db_column_text(struct db_stmt *s, int col, size_t *len)
{
	struct pg_stmt *st = PGST(s);

	if (!pg_has(st, col)) {
		if (len != NULL)
			*len = 0;
		return NULL;
	}
	if (len != NULL)
		*len = (size_t)PQgetlength(st->res, st->row, col);
	return PQgetvalue(st->res, st->row, col);
}

const void *
pg_db_column_blob(struct db_stmt *s, int col, size_t *len)
{
	struct pg_stmt *st = PGST(s);
	size_t n = 0;

	if (len != NULL)
		*len = 0;
	if (!pg_has(st, col))
		return NULL;
	free(st->blob);
	st->blob = PQunescapeBytea(
	    (const unsigned char *)PQgetvalue(st->res, st->row, col), &n);
	if (len != NULL)
		*len = n;
	return st->blob;
}

int
pg_db_changes(struct db *db)
{
	return PG(db)->changes;
}

/* Transactions: READ COMMITTED, the default. The server's write
 * transaction serialises what must be ordered with row locks
 * (storage/room.c's room_lock); nothing else needs more. */
int
pg_db_begin(struct db *d)
{
	struct pg_db *db = PG(d);

	db->busy = 0;
	return pg_run(db, "BEGIN", __func__);
}

void
pg_db_set_busy_timeout(struct db *db, int ms)
{
	(void)db;
	(void)ms;
}

int
pg_db_busy(struct db *db)
{
	return PG(db)->busy;
}

int
pg_db_begin_read(struct db *db)
{
	return pg_run(PG(db),
	              "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
	              __func__);
}

/* Commits; a transaction that failed part way reports ROLLBACK, which is
 * a failure here. */
int
pg_db_commit(struct db *d)
{
	struct pg_db *db = PG(d);
	PGresult *r = pg_exec(db, "COMMIT", PGRES_COMMAND_OK, __func__);
	int ok = r != NULL && strcmp(PQcmdStatus(r), "COMMIT") == 0;

	db->sp_depth = 0;
	if (r != NULL && !ok)
		log_error("%s: the transaction had failed: rolled back",
		          __func__);
	PQclear(r);
	return ok ? 0 : -1;
}

int
pg_db_rollback(struct db *d)
{
	struct pg_db *db = PG(d);

	db->sp_depth = 0;
	if (db->c == NULL || PQstatus(db->c) != CONNECTION_OK ||
	    PQtransactionStatus(db->c) == PQTRANS_IDLE)
		return 0;
	return pg_run(db, "ROLLBACK", __func__);
}

/* A savepoint; outside a transaction it begins one, as in SQLite. */
int
pg_db_savepoint(struct db *d)
{
	struct pg_db *db = PG(d);
	int began;

	if (db->sp_depth == (int)sizeof db->sp_began) {
		log_error("%s: savepoints nested too deep", __func__);
		return -1;
	}
	if (pg_ready(db) == -1)
		return -1;
	began = PQtransactionStatus(db->c) == PQTRANS_IDLE;
	if (began && pg_run(db, "BEGIN", __func__) == -1)
		return -1;
	if (pg_run(db, "SAVEPOINT chatd", __func__) == -1) {
		if (began)
			pg_run(db, "ROLLBACK", __func__);
		return -1;
	}
	db->sp_began[db->sp_depth++] = (unsigned char)began;
	return 0;
}

/* Ends the innermost savepoint: 1 if it had begun the transaction. */
static int
pg_sp_pop(struct pg_db *db)
{
	return db->sp_depth > 0 ? db->sp_began[--db->sp_depth] : 0;
}

int
pg_db_release(struct db *d)
{
	struct pg_db *db = PG(d);
	int began = pg_sp_pop(db);

	if (began)
		return pg_db_commit(d);
	return pg_run(db, "RELEASE chatd", __func__);
}

int
pg_db_rollback_to(struct db *d)
{
	struct pg_db *db = PG(d);
	int began = pg_sp_pop(db);

	if (db->c == NULL || PQtransactionStatus(db->c) == PQTRANS_IDLE)
		return -1;
	if (began)
		return pg_run(db, "ROLLBACK", __func__);
	if (pg_run(db, "ROLLBACK TO chatd", __func__) == -1)
		return -1;
	return pg_run(db, "RELEASE chatd", __func__);
}

/* Reads the epoch from meta into db->epoch. 0 or -1. */
static int
pg_load_epoch(struct pg_db *db)
{
	PGresult *r = pg_exec(db, "SELECT value FROM meta WHERE key = 'epoch'",
	                      PGRES_TUPLES_OK, __func__);
	int ret = -1;

	if (r == NULL)
		return -1;
	if (PQntuples(r) == 1 && PQgetlength(r, 0, 0) == EPOCH_LEN) {
		memcpy(db->epoch, PQgetvalue(r, 0, 0), EPOCH_LEN);
		db->epoch[EPOCH_LEN] = '\0';
		ret = 0;
	} else
		log_error("%s: no epoch, or a malformed one", __func__);
	PQclear(r);
	return ret;
}

const char *
pg_db_epoch(struct db *db)
{
	return PG(db)->epoch;
}

int
pg_db_new_epoch(struct db *d)
{
	struct pg_db *db = PG(d);

	if (pg_run(db,
	           "UPDATE meta SET value = replace(gen_random_uuid()::text,"
	           " '-', '') WHERE key = 'epoch'",
	           __func__) == -1)
		return -1;
	return pg_load_epoch(db);
}

/* A query of one bigint; def when it returns no row, -1 on error. */
static int64_t
pg_int(struct pg_db *db, const char *sql, int64_t def, const char *func)
{
	PGresult *r = pg_exec(db, sql, PGRES_TUPLES_OK, func);
	int64_t v = def;

	if (r == NULL)
		return -1;
	if (PQntuples(r) > 0 && !PQgetisnull(r, 0, 0))
		v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	return v;
}

int64_t
pg_db_max_seq(struct db *d)
{
	int64_t v = pg_int(
	    PG(d),
	    "SELECT greatest(coalesce((SELECT max(seq) FROM messages), 0),"
	    " coalesce((SELECT max(last_seq) FROM rooms), 0),"
	    " coalesce((SELECT value::bigint FROM meta"
	    " WHERE key = 'seq_floor'), 0))",
	    0, __func__);

	return v;
}

/* The counter the admin commands raise (meta 'admin_version') when they
 * change what running nodes cache (rooms, users). */
int64_t
pg_db_data_version(struct db *d)
{
	return pg_int(PG(d),
	              "SELECT value::bigint FROM meta"
	              " WHERE key = 'admin_version'",
	              0, __func__);
}

int
pg_db_check(struct db *d)
{
	return pg_int(PG(d), "SELECT count(*) FROM meta", 0, __func__) >= 0
	           ? 0
	           : -1;
}

/* The schema version of the database: meta's schema_version, 0 for a
 * database without chatd's tables. -1 on error. */
static int64_t
pg_schema_of(struct pg_db *db)
{
	int64_t has = pg_int(db, "SELECT count(*) FROM pg_catalog.pg_class"
	                         " WHERE oid = to_regclass('meta')",
	                     0, __func__);

	if (has <= 0)
		return has;
	return pg_int(db,
	              "SELECT coalesce(max(value::bigint), 0) FROM meta"
	              " WHERE key = 'schema_version'",
	              0, __func__);
}

/* Applies the migrations the database lacks, in one transaction that
 * holds an advisory lock: nodes starting together migrate once. */
static int
pg_migrate(struct pg_db *db, char *err, size_t errlen)
{
	int64_t have;
	PGresult *r;

	if (pg_run(db, "BEGIN", __func__) == -1)
		goto fail;
	r = pg_exec(db, "SELECT pg_advisory_xact_lock(7261636864)",
	            PGRES_TUPLES_OK, __func__);
	if (r == NULL)
		goto fail;
	PQclear(r);
	if ((have = pg_schema_of(db)) < 0)
		goto fail;
	if (have > db_pg_schema_version()) {
		snprintf(err, errlen,
		         "the database schema (version %lld) is newer than this "
		         "chatd's (%d)",
		         (long long)have, db_pg_schema_version());
		pg_run(db, "ROLLBACK", __func__);
		return -1;
	}
	for (size_t i = 0; i < db_pg_migrations_count; i++) {
		if (db_pg_migrations[i].version <= have)
			continue;
		r = pg_exec(db, db_pg_migrations[i].sql, PGRES_COMMAND_OK,
		            __func__);
		if (r == NULL) {
			snprintf(err, errlen, "migration %d failed: %s",
			         db_pg_migrations[i].version,
			         PQerrorMessage(db->c));
			err[strcspn(err, "\n")] = '\0';
			pg_run(db, "ROLLBACK", __func__);
			return -1;
		}
		PQclear(r);
		log_info("postgresql: applied migration %d",
		         db_pg_migrations[i].version);
	}
	if (pg_run(db, "COMMIT", __func__) == 0)
		return 0;
fail:
	snprintf(err, errlen, "migrations failed: %s",
	         db->c != NULL ? PQerrorMessage(db->c) : "no connection");
	err[strcspn(err, "\n")] = '\0';
	pg_run(db, "ROLLBACK", __func__);
	return -1;
}

/* Opens a connection to url; migrate: apply the migrations first. */
static int
pg_open(struct db **out, const char *url, int migrate, char *err,
        size_t errlen)
{
	struct pg_db *db = xcalloc(1, sizeof *db);

	db->kind = DB_KIND_PG;
	db->url = xstrdup(url);
	*out = NULL;
	if (pg_connect(db, err, errlen) == -1)
		goto fail;
	if (pg_run(db, "SET client_min_messages = warning", __func__) == -1)
		goto fail_msg;
	if (migrate && pg_migrate(db, err, errlen) == -1)
		goto fail;
	if (pg_load_epoch(db) == -1) {
		snprintf(err, errlen, "not a chatd database (no epoch)");
		goto fail;
	}
	*out = (struct db *)(void *)db;
	return 0;
fail_msg:
	snprintf(err, errlen, "%s", PQerrorMessage(db->c));
	err[strcspn(err, "\n")] = '\0';
fail:
	pg_db_close((struct db *)(void *)db);
	return -1;
}

int
pg_db_open(struct db **out, const char *path, char *err, size_t errlen)
{
	return pg_open(out, path, 1, err, errlen);
}

void
pg_db_close(struct db *d)
{
	struct pg_db *db = PG(d);

	for (size_t i = 0; i < db->nstmts; i++) {
		struct pg_stmt *st = db->stmts[i];

		pg_db_reset((struct db_stmt *)(void *)st);
		for (int j = 0; j < st->nparams; j++)
			free(st->pnames[j]);
		free(st->text);
		free(st);
	}
	free(db->stmts);
	if (db->cancel != NULL)
		PQfreeCancel(db->cancel);
	if (db->c != NULL)
		PQfinish(db->c);
	free(db->url);
	free(db);
}

int
pg_db_open_reader(struct db *d, struct db **out)
{
	char err[256];

	if (pg_open(out, PG(d)->url, 0, err, sizeof err) == -1) {
		log_error("%s: %s", __func__, err);
		return -1;
	}
	/* Readers never write (as SQLite's read-only reader connections). */
	if (pg_run(PG(*out), "SET default_transaction_read_only = on",
	           __func__) == -1) {
		pg_db_close(*out);
		*out = NULL;
		return -1;
	}
	return 0;
}

void
pg_db_budget_start(struct db *d, int ms)
{
	struct pg_db *db = PG(d);
	char sql[64];

	db->exceeded = 0;
	if (ms == db->budget_ms)
		return;
	snprintf(sql, sizeof sql, "SET statement_timeout = %d",
	         ms > 0 ? ms : 0);
	if (pg_run(db, sql, __func__) == 0)
		db->budget_ms = ms > 0 ? ms : 0;
}

int
pg_db_budget_exceeded(struct db *db)
{
	return PG(db)->exceeded || atomic_load(&PG(db)->cancelled);
}

void
pg_db_cancel(struct db *d)
{
	struct pg_db *db = PG(d);
	char err[128];

	atomic_store(&db->cancelled, 1);
	if (db->cancel != NULL)
		PQcancel(db->cancel, err, sizeof err);
}

/* A connection to url for chatd check-config: 0, or -1 with the reason
 * in err. Does not migrate. */
int
db_pg_check(const char *url, char *err, size_t errlen)
{
	struct pg_db db = {.kind = DB_KIND_PG, .url = (char *)url};
	int rc = pg_connect(&db, err, errlen);

	if (rc == 0 && pg_int(&db, "SELECT 1", 0, __func__) != 1) {
		snprintf(err, errlen, "the server does not answer queries");
		rc = -1;
	}
	if (db.cancel != NULL)
		PQfreeCancel(db.cancel);
	if (db.c != NULL)
		PQfinish(db.c);
	return rc;
}

/* Several nodes (issue 17): seqs from one sequence, and a room's changes
 * committed in seq order. */

int64_t
pg_db_seq_next(struct db *db)
{
	struct db_stmt *st =
	    db_prepare(db, "SELECT nextval('chatd_seq')");
	int64_t v = -1;

	if (st == NULL)
		return -1;
	if (db_step(st) == DB_ROW)
		v = db_column_int64(st, 0);
	db_reset(st);
	return v;
}

int
pg_db_seq_sync(struct db *db)
{
	int64_t max = pg_db_max_seq(db);
	char sql[160];

	if (max < 0)
		return -1;
	if (max == 0)
		return 0;
	snprintf(sql, sizeof sql,
	         "SELECT setval('chatd_seq', greatest(%lld,"
	         " (SELECT last_value FROM chatd_seq)))",
	         (long long)max);
	return pg_int(PG(db), sql, 0, __func__) >= 0 ? 0 : -1;
}

int
pg_db_room_lock(struct db *db, int64_t room_id, int wait, int64_t *last_seq)
{
	/* A transaction-scoped advisory lock keyed by the schema and the
	 * room, so that chatds of other schemas of one database never
	 * contend: 2^62 + (30 bits of the schema's hash << 32) + the low 32
	 * bits of the id, in [2^62, 2^63): apart from the migrations' key
	 * and from the two-key serving lock. Released by the commit or
	 * rollback, after which the next holder reads the room's last_seq
	 * as committed. The try form answers at once. */
#define PG_ROOM_KEY                                                     \
	"((((hashtext(current_schema()) & 1073741823)::bigint) << 32) |" \
	" (:room_id::bigint & 4294967295)) + 4611686018427387904"
	struct db_stmt *lock = wait
	    ? db_prepare(db, "SELECT pg_advisory_xact_lock(" PG_ROOM_KEY
	                     "), true")
	    : db_prepare(db, "SELECT pg_try_advisory_xact_lock(" PG_ROOM_KEY
	                     ")");
	struct db_stmt *last =
	    db_prepare(db, "SELECT last_seq FROM rooms WHERE id = :id");
	int rc, got = 0;

	if (lock == NULL || last == NULL)
		return -1;
	db_bind_int64(lock, ":room_id", room_id);
	rc = db_step(lock);
	if (rc == DB_ROW)
		got = (int)db_column_int64(lock, wait ? 1 : 0);
	db_reset(lock);
	if (rc != DB_ROW)
		return -1;
	if (!got)
		return 1;
	db_bind_int64(last, ":id", room_id);
	rc = db_step(last);
	if (rc == DB_ROW)
		*last_seq = db_column_int64(last, 0);
	db_reset(last);
	return rc == DB_ROW ? 0 : rc == DB_DONE ? 2 : -1;
}

uint64_t
db_pg_outages(struct db *db, int *down)
{
	if (db == NULL || !db_is_pg(db)) {
		*down = 0;
		return 0;
	}
	*down = atomic_load(&pg_down) ||
	        (PG(db)->c != NULL && PQstatus(PG(db)->c) != CONNECTION_OK);
	return atomic_load(&pg_outages);
}

int
db_set_wait_limit(struct db *d, int ms)
{
	char sql[96];

	if (d == NULL || !db_is_pg(d))
		return 0;
	PG(d)->limit_ms = ms > 0 ? ms : 0;
	snprintf(sql, sizeof sql,
	         "SET statement_timeout = %d; SET lock_timeout = %d",
	         PG(d)->limit_ms, PG(d)->limit_ms);
	return pg_run(PG(d), sql, __func__);
}

/* The serving lock: a session advisory lock of the schema chatd's tables
 * are in (so that databases in other schemas of one PostgreSQL do not
 * meet). 0 taken, 1 held by another session in a conflicting mode, -1. */
static int
pg_serving_take(struct pg_db *db, int exclusive)
{
	PGresult *r = pg_exec(db, exclusive
	    ? "SELECT pg_try_advisory_lock(726163, hashtext(current_schema()))"
	    : "SELECT pg_try_advisory_lock_shared(726163,"
	      " hashtext(current_schema()))",
	    PGRES_TUPLES_OK, __func__);
	int got;

	if (r == NULL)
		return -1;
	got = PQntuples(r) == 1 && PQgetvalue(r, 0, 0)[0] == 't';
	PQclear(r);
	return got ? 0 : 1;
}

int
db_serving_lock(struct db *d, int exclusive)
{
	int rc;

	if (d == NULL || !db_is_pg(d))
		return 0;
	rc = pg_serving_take(PG(d), exclusive);
	if (rc == 0)
		PG(d)->serving = exclusive ? 2 : 1;
	return rc;
}
