/* chatd/metrics.h — the counters and histograms of /metrics */
#ifndef CHATD_METRICS_H
#define CHATD_METRICS_H

/*
 * A leaf: the layers that bump counters (conn, http, server, the chat
 * application) all see it, and it sees none of them. Rendering the whole
 * page, which walks the connections, the hub's sessions and the database,
 * is done above them (chatd/metrics_render.c).
 */

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct http_request;

/* Fixed log-scale buckets (upper bounds in microseconds, see metrics.c);
 * an observation is one loop over them and two additions: no locks, no
 * allocation. */
#define METRICS_BUCKETS 16

struct histogram {
	uint64_t buckets[METRICS_BUCKETS + 1]; /* the last one: +Inf */
	uint64_t count;
	uint64_t sum_us;
};

/* The routes /metrics counts HTTP requests by. */
enum metrics_route {
	ROUTE_NONE = 0, /* no parsed request (400, 408, 431 ...) */
	ROUTE_REGISTER,
	ROUTE_LOGIN,
	ROUTE_LOGOUT,
	ROUTE_ME,
	ROUTE_ROOMS,
	ROUTE_MESSAGES,
	ROUTE_SEARCH,
	ROUTE_UPLOAD,
	ROUTE_DOWNLOAD,
	ROUTE_HEALTHZ,
	ROUTE_METRICS,
	ROUTE_WS,
	ROUTE_API_OTHER,
	ROUTE_STATIC,
	ROUTE_COUNT
};

/* Counters exported at /metrics: plain integers, bumped on the loop. */
struct metrics {
	uint64_t conns_accepted;
	uint64_t http_requests;
	uint64_t http_status[6];     /* by class: 1xx..5xx at [1..5] */
	uint64_t ws_upgrades;
	uint64_t ws_messages_in;
	uint64_t messages_stored;
	uint64_t deliveries;
	uint64_t rate_limited;
	uint64_t commits;
	uint64_t ws_close_codes[16]; /* see metrics_close_index */
	uint64_t auth_failures;
	uint64_t password_checks;    /* login Argon2 verifications run */
	uint64_t hash_busy;          /* 503 busy: hashing queue full */
	uint64_t deflate_runs;       /* messages run through deflate */
	uint64_t deflate_frames;     /* compressed frames sent */
	uint64_t deflate_plain_bytes; /* to deflating peers: frames' bytes
	                                 had all gone uncompressed */
	uint64_t deflate_sent_bytes; /* ... and the bytes of what was sent */
	uint64_t search_timeouts;    /* 503 timeout: --query-timeout-ms */
	uint64_t search_busy;        /* 503 busy: reader queue full */
	uint64_t db_busy;            /* BEGINs that found the write lock held */
	uint64_t db_lock_timeouts;   /* changes failed after --db-wait-ms */
	uint64_t output_overflows;   /* peers dropped: CONN_OUTPUT_HIGH */
	uint64_t files_uploaded;     /* uploads stored (201) */
	uint64_t files_upload_bytes; /* their bytes */
	uint64_t files_upload_failed; /* uploads cut short: client gone,
	                                 disk full, limits */
	uint64_t files_downloads;    /* 200 and 206 answers of downloads */
	uint64_t files_download_bytes; /* bytes they send */
	uint64_t http_route[ROUTE_COUNT][6]; /* by route and status class */
	int64_t txn_start_us;        /* metrics_now_us() at db_begin */
	int64_t commit_us;           /* metrics_now_us() after the commit */
	struct histogram txn_time;   /* group commit: BEGIN to COMMIT done */
	struct histogram delivery;   /* commit to frames queued */
};

/* A monotonic clock in microseconds. */
int64_t metrics_now_us(void);
/* Adds one observation of us microseconds (negative counts as 0). */
void metrics_observe(struct histogram *h, int64_t us);
/* The group-commit transaction began (chat_txn). */
void metrics_txn_begin(struct metrics *m);
/* It committed (chat_flush): observes its duration, notes the time. */
void metrics_txn_end(struct metrics *m);
/* A committed change's frames are queued: commit-to-queue latency. */
void metrics_delivered(struct metrics *m);
/* Counts one HTTP response with status to req's route (req may be NULL). */
void metrics_http(struct metrics *m, const struct http_request *req,
    int status);
/* The route a request path is counted under. */
enum metrics_route metrics_route(const char *path);
/* Counts a WebSocket close code in m->ws_close_codes. */
void metrics_close_code(struct metrics *m, int code);
/* Writes one counter or gauge, with its HELP and TYPE lines, to f. */
void metrics_write_one(FILE *f, const char *name, const char *type,
    const char *help, unsigned long long v);
/* Writes every counter and histogram of m as Prometheus text to f;
 * checkpoints (the database's count, which this layer cannot see) goes
 * out among them. */
void metrics_write(FILE *f, const struct metrics *m,
    unsigned long long checkpoints);

#endif
