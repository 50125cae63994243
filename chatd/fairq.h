/* chatd/fairq.h — a bounded job queue shared fairly between keys */
#ifndef CHATD_FAIRQ_H
#define CHATD_FAIRQ_H

/* What fairq_push refuses with. */
enum fairq_error {
	FAIRQ_FULL = -1,     /* max items held in all */
	FAIRQ_KEY_FULL = -2, /* per_key items held by this key */
};

#define FAIRQ_KEY_MAX 63 /* longer keys are cut */

/* Items are held from fairq_push to fairq_done: queued, then popped
 * (being worked on). Each key (a client address) holds at most per_key
 * of the max; fairq_pop serves the keys with queued items in turn, one
 * item each, so a key's item waits behind at most one item of every
 * other key, whatever their backlog. */
struct fairq;

/* A queue of at most max items, per_key of them per key. */
struct fairq *fairq_new(unsigned max, unsigned per_key);
/* Frees q; the items still in it are the caller's. */
void fairq_free(struct fairq *q);
/* Queues item under key: 0, or a negative fairq_error (not queued). */
int fairq_push(struct fairq *q, const char *key, void *item);
/* The next item in turn (still held until fairq_done on its key); NULL
 * when nothing is queued. */
void *fairq_pop(struct fairq *q);
/* A popped item of key is finished: its place is free again. */
void fairq_done(struct fairq *q, const char *key);
/* Items held (queued or popped, not done). */
unsigned fairq_held(const struct fairq *q);
/* Items held by key. */
unsigned fairq_key_held(const struct fairq *q, const char *key);

#endif
