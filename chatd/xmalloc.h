/* chatd/xmalloc.h — allocation wrappers that abort on failure */
#ifndef CHATD_XMALLOC_H
#define CHATD_XMALLOC_H

#include <stddef.h>

/* Each returns memory or aborts the process: callers never check. */
void *xmalloc(size_t size);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *ptr, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
void *xmemdup(const void *p, size_t n);

#endif
