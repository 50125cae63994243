/* chatd/metrics_render.h — the /metrics page */
#ifndef CHATD_METRICS_RENDER_H
#define CHATD_METRICS_RENDER_H

#include <stddef.h>
#include <stdint.h>

struct db;
struct server;

/* The gauges counted in the database (rooms, users, files): their cost
 * grows with the data, so they are read on a reader thread. */
struct metrics_db {
	int64_t public_rooms, dm_rooms, users;
	int64_t files, attached, file_bytes;
};

/* reader_fn (chatd/reader.h) filling a struct metrics_db from rdb, the
 * reader thread's read-only connection. 0 or -1. */
int metrics_db_read(struct db *rdb, void *arg);
/* Renders every metric as Prometheus text into a malloc'd string (free
 * it) of *len bytes; the database gauges from dbc, left out when it is
 * NULL. Aborts when out of memory. */
char *metrics_render(struct server *srv, const struct metrics_db *dbc,
                     size_t *len);

#endif
