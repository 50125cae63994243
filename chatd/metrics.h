/* chatd/metrics.h — /metrics: counters, histograms, Prometheus text */
#ifndef CHATD_METRICS_H
#define CHATD_METRICS_H

#include <stddef.h>
#include <stdint.h>

struct server;
struct metrics;
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
	ROUTE_HEALTHZ,
	ROUTE_METRICS,
	ROUTE_WS,
	ROUTE_API_OTHER,
	ROUTE_STATIC,
	ROUTE_COUNT
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
/* Renders every metric as Prometheus text into a malloc'd string (free
 * it) of *len bytes. */
char *metrics_render(struct server *srv, size_t *len);

#endif
