/* chatd/metrics.c — /metrics: counters, histograms, Prometheus text */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "chatd/conn.h"
#include "chatd/http_parser.h"
#include "chatd/hub.h"
#include "chatd/metrics.h"
#include "chatd/server.h"
#include "chatd/worker.h"
#include "storage/storage.h"

/* Bucket upper bounds in microseconds: 100 µs to 10 s, 1-2.5-5 steps. */
static const int64_t metrics_bounds[METRICS_BUCKETS] = {100, 250, 500,
    1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000,
    2500000, 5000000, 10000000};

/* Label values of struct metrics ws_close_codes: the same order as
 * metrics_close_index in chatd/server.c; the last slot is "other". */
static const char *metrics_close_labels[16] = {"1000", "1001", "1002",
    "1003", "1005", "1006", "1007", "1008", "1009", "1011", "4001", NULL,
    NULL, NULL, NULL, "other"};

static const struct {
	const char *path; /* a trailing '*' matches any rest */
	const char *label;
} metrics_routes[ROUTE_COUNT] = {
	[ROUTE_NONE] = {NULL, "none"},
	[ROUTE_REGISTER] = {"/api/register", "/api/register"},
	[ROUTE_LOGIN] = {"/api/login", "/api/login"},
	[ROUTE_LOGOUT] = {"/api/logout", "/api/logout"},
	[ROUTE_ME] = {"/api/me", "/api/me"},
	[ROUTE_ROOMS] = {"/api/rooms", "/api/rooms"},
	[ROUTE_MESSAGES] = {"/api/rooms/*", "/api/rooms/{room}/messages"},
	[ROUTE_SEARCH] = {"/api/search", "/api/search"},
	[ROUTE_HEALTHZ] = {"/healthz", "/healthz"},
	[ROUTE_METRICS] = {"/metrics", "/metrics"},
	[ROUTE_WS] = {"/ws", "/ws"},
	[ROUTE_API_OTHER] = {"/api/*", "/api/other"},
	[ROUTE_STATIC] = {"*", "static"},
};

int64_t
metrics_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void
metrics_observe(struct histogram *h, int64_t us)
{
	int i;

	if (us < 0)
		us = 0;
	for (i = 0; i < METRICS_BUCKETS && us > metrics_bounds[i]; i++)
		;
	h->buckets[i]++;
	h->count++;
	h->sum_us += (uint64_t)us;
}

void
metrics_txn_begin(struct metrics *m)
{
	m->txn_start_us = metrics_now_us();
}

void
metrics_txn_end(struct metrics *m)
{
	m->commit_us = metrics_now_us();
	metrics_observe(&m->txn_time, m->commit_us - m->txn_start_us);
}

void
metrics_delivered(struct metrics *m)
{
	metrics_observe(&m->delivery, metrics_now_us() - m->commit_us);
}

enum metrics_route
metrics_route(const char *path)
{
	for (int r = ROUTE_NONE + 1; r < ROUTE_COUNT; r++) {
		const char *p = metrics_routes[r].path;
		size_t n = strlen(p);

		if (p[n - 1] == '*' ? strncmp(p, path, n - 1) == 0 :
				      strcmp(p, path) == 0)
			return (enum metrics_route)r;
	}
	return ROUTE_STATIC;
}

void
metrics_http(struct metrics *m, const struct http_request *req, int status)
{
	enum metrics_route r = req != NULL && req->path != NULL ?
				   metrics_route(req->path) : ROUTE_NONE;

	m->http_status[status / 100 % 6]++;
	m->http_route[r][status / 100 % 6]++;
}

/* One counter or gauge with its TYPE line. */
static void
metrics_one(FILE *f, const char *name, const char *type, const char *help,
    unsigned long long v)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", name, help, name,
	    type, name, v);
}

/* A histogram in seconds, its buckets cumulative. */
static void
metrics_histogram(FILE *f, const char *name, const char *help,
    const struct histogram *h)
{
	uint64_t cum = 0;

	fprintf(f, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
	for (int i = 0; i < METRICS_BUCKETS; i++) {
		cum += h->buckets[i];
		fprintf(f, "%s_bucket{le=\"%g\"} %llu\n", name,
		    (double)metrics_bounds[i] / 1e6, (unsigned long long)cum);
	}
	cum += h->buckets[METRICS_BUCKETS];
	fprintf(f, "%s_bucket{le=\"+Inf\"} %llu\n", name,
	    (unsigned long long)cum);
	fprintf(f, "%s_sum %.6f\n%s_count %llu\n", name,
	    (double)h->sum_us / 1e6, name, (unsigned long long)h->count);
}

/* Connections by state and authenticated users online (a walk over the
 * connection list: at scrape time, not on the hot path). */
static void
metrics_connections(FILE *f, struct server *srv)
{
	unsigned long long http = 0, ws_auth = 0, ws_unauth = 0, closing = 0;
	unsigned long long users = 0;
	struct conn *c;

	TAILQ_FOREACH(c, &srv->conns, link) {
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
	metrics_one(f, "chatd_users_online", "gauge",
	    "Users with at least one authenticated WebSocket.", users);
}

/* Rooms and users in the database. */
static void
metrics_database(FILE *f, struct server *srv)
{
	int64_t pub = 0, dm = 0, users = 0;

	if (srv->db == NULL || admin_counts(srv->db, &pub, &dm, &users) != 0)
		return;
	fprintf(f, "# HELP chatd_rooms Rooms in the database by kind.\n"
		   "# TYPE chatd_rooms gauge\n"
		   "chatd_rooms{kind=\"public\"} %lld\n"
		   "chatd_rooms{kind=\"dm\"} %lld\n",
	    (long long)pub, (long long)dm);
	metrics_one(f, "chatd_users", "gauge", "Accounts (not deleted).",
	    (unsigned long long)users);
}

/* HTTP responses by route and status class. */
static void
metrics_http_routes(FILE *f, const struct metrics *m)
{
	fprintf(f, "# HELP chatd_http_responses_total HTTP responses by "
		   "route and status class.\n"
		   "# TYPE chatd_http_responses_total counter\n");
	for (int r = 0; r < ROUTE_COUNT; r++)
		for (int s = 1; s < 6; s++)
			if (m->http_route[r][s] > 0)
				fprintf(f, "chatd_http_responses_total{route="
					   "\"%s\",code=\"%dxx\"} %llu\n",
				    metrics_routes[r].label, s,
				    (unsigned long long)m->http_route[r][s]);
}

/* WebSocket close codes sent or received. */
static void
metrics_close_codes(FILE *f, const struct metrics *m)
{
	fprintf(f, "# HELP chatd_ws_close_codes_total WebSocket closes by "
		   "code.\n# TYPE chatd_ws_close_codes_total counter\n");
	for (int i = 0; i < 16; i++)
		if (metrics_close_labels[i] != NULL)
			fprintf(f, "chatd_ws_close_codes_total{code=\"%s\"} "
				   "%llu\n",
			    metrics_close_labels[i],
			    (unsigned long long)m->ws_close_codes[i]);
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
	metrics_one(f, "process_resident_memory_bytes", "gauge",
	    "Resident memory size in bytes.",
	    rss * (unsigned long long)sysconf(_SC_PAGESIZE));
	metrics_one(f, "process_open_fds", "gauge",
	    "Open file descriptors.", fds);
	fprintf(f, "# HELP process_start_time_seconds Start time since the "
		   "Unix epoch.\n# TYPE process_start_time_seconds gauge\n"
		   "process_start_time_seconds %.3f\n",
	    (double)srv->started_ms / 1000.0);
}

char *
metrics_render(struct server *srv, size_t *len)
{
	struct metrics *m = &srv->m;
	char *buf = NULL;
	FILE *f = open_memstream(&buf, len);

	if (f == NULL)
		abort();
	metrics_connections(f, srv);
	metrics_one(f, "chatd_connections_accepted_total", "counter",
	    "Connections accepted.", m->conns_accepted);
	metrics_one(f, "chatd_http_requests_total", "counter",
	    "HTTP requests parsed.", m->http_requests);
	metrics_http_routes(f, m);
	metrics_one(f, "chatd_ws_upgrades_total", "counter",
	    "WebSocket upgrades.", m->ws_upgrades);
	metrics_one(f, "chatd_ws_messages_received_total", "counter",
	    "WebSocket messages received.", m->ws_messages_in);
	metrics_close_codes(f, m);
	metrics_one(f, "chatd_ws_deflate_runs_total", "counter",
	    "Messages compressed for permessage-deflate peers (once per "
	    "message, not per recipient).", m->deflate_runs);
	metrics_one(f, "chatd_ws_deflate_frames_total", "counter",
	    "Compressed frames sent.", m->deflate_frames);
	metrics_one(f, "chatd_ws_deflate_plain_bytes_total", "counter",
	    "Bytes of the frames sent to permessage-deflate peers, had none "
	    "been compressed.", m->deflate_plain_bytes);
	metrics_one(f, "chatd_ws_deflate_sent_bytes_total", "counter",
	    "Bytes of the frames sent to permessage-deflate peers.",
	    m->deflate_sent_bytes);
	metrics_one(f, "chatd_messages_stored_total", "counter",
	    "New messages committed.", m->messages_stored);
	metrics_one(f, "chatd_deliveries_total", "counter",
	    "Message events (new, edited, deleted) queued to connections.",
	    m->deliveries);
	metrics_one(f, "chatd_commits_total", "counter",
	    "Group-commit transactions.", m->commits);
	metrics_one(f, "chatd_checkpoints_total", "counter",
	    "WAL checkpoints run by the checkpoint thread.",
	    srv->db ? db_checkpoints(srv->db) : 0);
	metrics_histogram(f, "chatd_db_transaction_seconds",
	    "Group-commit transactions, BEGIN to COMMIT done.", &m->txn_time);
	metrics_histogram(f, "chatd_delivery_latency_seconds",
	    "From the commit of a change to its frames queued for every "
	    "recipient.", &m->delivery);
	metrics_one(f, "chatd_rate_limited_total", "counter",
	    "Requests refused by a rate limit.", m->rate_limited);
	metrics_one(f, "chatd_auth_failures_total", "counter",
	    "Failed logins and WebSocket authentications.", m->auth_failures);
	metrics_one(f, "chatd_password_checks_total", "counter",
	    "Login password verifications (Argon2id) run, unknown users "
	    "included.", m->password_checks);
	metrics_one(f, "chatd_hash_queue_rejected_total", "counter",
	    "Logins and registrations refused with 503 busy: the password "
	    "hashing queue, or the address's share of it, was full.",
	    m->hash_busy);
	metrics_one(f, "chatd_hash_queue_jobs", "gauge",
	    "Password hashing jobs queued or running.",
	    srv->worker ? worker_jobs(srv->worker) : 0);
	metrics_database(f, srv);
	metrics_process(f, srv);
	if (fclose(f) != 0)
		abort();
	return buf;
}
