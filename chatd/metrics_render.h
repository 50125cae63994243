/* chatd/metrics_render.h — the /metrics page */
#ifndef CHATD_METRICS_RENDER_H
#define CHATD_METRICS_RENDER_H

#include <stddef.h>

struct server;

/* Renders every metric as Prometheus text into a malloc'd string (free
 * it) of *len bytes. Aborts when out of memory. */
char *metrics_render(struct server *srv, size_t *len);

#endif
