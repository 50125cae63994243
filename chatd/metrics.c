/* chatd/metrics.c — /metrics: counters, histograms, their Prometheus text */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "chatd/http_parser.h"
#include "chatd/metrics.h"

/* Bucket upper bounds in microseconds: 100 µs to 10 s, 1-2.5-5 steps. */
static const int64_t metrics_bounds[METRICS_BUCKETS] = {100, 250, 500,
    1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000,
    2500000, 5000000, 10000000};

/* Label values of struct metrics ws_close_codes: the same order as
 * metrics_close_index; the last slot is "other". */
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
	[ROUTE_UPLOAD] = {"/api/files", "/api/files"},
	[ROUTE_DOWNLOAD] = {"/api/files/*", "/api/files/{id}"},
	[ROUTE_HEALTHZ] = {"/healthz", "/healthz"},
	[ROUTE_METRICS] = {"/metrics", "/metrics"},
	[ROUTE_WS] = {"/ws", "/ws"},
	[ROUTE_API_OTHER] = {"/api/*", "/api/other"},
	[ROUTE_STATIC] = {"*", "static"},
};

/* The slot in ws_close_codes for a close code (last slot: others). */
static int
metrics_close_index(int code)
{
	static const int codes[] = {1000, 1001, 1002, 1003, 1005, 1006, 1007,
	    1008, 1009, 1011, 4001};
	for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
		if (codes[i] == code)
			return (int)i;
	return 15;
}

void
metrics_close_code(struct metrics *m, int code)
{
	m->ws_close_codes[metrics_close_index(code)]++;
}

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

void
metrics_write_one(FILE *f, const char *name, const char *type, const char *help,
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

void
metrics_write(FILE *f, const struct metrics *m,
    unsigned long long checkpoints)
{
	metrics_write_one(f, "chatd_connections_accepted_total", "counter",
	    "Connections accepted.", m->conns_accepted);
	metrics_write_one(f, "chatd_http_requests_total", "counter",
	    "HTTP requests parsed.", m->http_requests);
	metrics_http_routes(f, m);
	metrics_write_one(f, "chatd_ws_upgrades_total", "counter",
	    "WebSocket upgrades.", m->ws_upgrades);
	metrics_write_one(f, "chatd_ws_messages_received_total", "counter",
	    "WebSocket messages received.", m->ws_messages_in);
	metrics_close_codes(f, m);
	metrics_write_one(f, "chatd_ws_deflate_runs_total", "counter",
	    "Messages compressed for permessage-deflate peers (once per "
	    "message, not per recipient).", m->deflate_runs);
	metrics_write_one(f, "chatd_ws_deflate_frames_total", "counter",
	    "Compressed frames sent.", m->deflate_frames);
	metrics_write_one(f, "chatd_ws_deflate_plain_bytes_total", "counter",
	    "Bytes of the frames sent to permessage-deflate peers, had none "
	    "been compressed.", m->deflate_plain_bytes);
	metrics_write_one(f, "chatd_ws_deflate_sent_bytes_total", "counter",
	    "Bytes of the frames sent to permessage-deflate peers.",
	    m->deflate_sent_bytes);
	metrics_write_one(f, "chatd_messages_stored_total", "counter",
	    "New messages committed.", m->messages_stored);
	metrics_write_one(f, "chatd_deliveries_total", "counter",
	    "Message events (new, edited, deleted) queued to connections.",
	    m->deliveries);
	metrics_write_one(f, "chatd_commits_total", "counter",
	    "Group-commit transactions.", m->commits);
	metrics_write_one(f, "chatd_checkpoints_total", "counter",
	    "WAL checkpoints run by the checkpoint thread.", checkpoints);
	metrics_histogram(f, "chatd_db_transaction_seconds",
	    "Group-commit transactions, BEGIN to COMMIT done.", &m->txn_time);
	metrics_histogram(f, "chatd_delivery_latency_seconds",
	    "From the commit of a change to its frames queued for every "
	    "recipient.", &m->delivery);
	metrics_write_one(f, "chatd_rate_limited_total", "counter",
	    "Requests refused by a rate limit.", m->rate_limited);
	metrics_write_one(f, "chatd_auth_failures_total", "counter",
	    "Failed logins and WebSocket authentications.", m->auth_failures);
	metrics_write_one(f, "chatd_password_checks_total", "counter",
	    "Login password verifications (Argon2id) run, unknown users "
	    "included.", m->password_checks);
	metrics_write_one(f, "chatd_hash_queue_rejected_total", "counter",
	    "Logins and registrations refused with 503 busy: the password "
	    "hashing queue, or the address's share of it, was full.",
	    m->hash_busy);
	metrics_write_one(f, "chatd_search_timeouts_total", "counter",
	    "Searches stopped by --query-timeout-ms (503 timeout).",
	    m->search_timeouts);
	metrics_write_one(f, "chatd_search_queue_rejected_total", "counter",
	    "Searches refused with 503 busy: the reader queue, or the "
	    "user's share of it, was full.",
	    m->search_busy);
	metrics_write_one(f, "chatd_output_overflow_drops_total", "counter",
	    "Connections dropped because their unsent output was over "
	    "CONN_OUTPUT_HIGH (a peer that does not read).",
	    m->output_overflows);
	metrics_write_one(f, "chatd_file_uploads_total", "counter",
	    "Uploads stored (201).", m->files_uploaded);
	metrics_write_one(f, "chatd_file_upload_bytes_total", "counter",
	    "Bytes of the uploads stored.", m->files_upload_bytes);
	metrics_write_one(f, "chatd_file_uploads_failed_total", "counter",
	    "Uploads refused or cut short (limits, disk full, client "
	    "gone).", m->files_upload_failed);
	metrics_write_one(f, "chatd_file_downloads_total", "counter",
	    "Downloads answered 200 or 206.", m->files_downloads);
	metrics_write_one(f, "chatd_file_download_bytes_total", "counter",
	    "Bytes of the downloads answered.", m->files_download_bytes);
}
