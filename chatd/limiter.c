/* chatd/limiter.c — token buckets: per connection, or keyed by a string */
#include <stdlib.h>
#include <string.h>

#include "chatd/limiter.h"
#include "chatd/xmalloc.h"

#define LIMITER_KEY_MAX 64

struct limiter_entry {
	char key[LIMITER_KEY_MAX + 1];
	struct bucket b;
	int used;
};

/* Open addressing; a full table forgets its oldest buckets (a full
 * bucket is the same as a forgotten one, so only the fullest go). */
struct limiter {
	double rate;
	double burst;
	unsigned cap;
	struct limiter_entry *slots;
};

/* Refills b for the time since its last use. */
static void
bucket_refill(struct bucket *b, double rate, double burst, int64_t now)
{
	if (b->last_ms == 0) {
		b->tokens = burst;
	} else if (now > b->last_ms) {
		b->tokens += (double)(now - b->last_ms) * rate / 1000.0;
		if (b->tokens > burst)
			b->tokens = burst;
	}
	b->last_ms = now;
}

int
bucket_take(struct bucket *b, double rate, double burst, int64_t now)
{
	bucket_refill(b, rate, burst, now);
	if (b->tokens < 1.0)
		return 0;
	b->tokens -= 1.0;
	return 1;
}

struct limiter *
limiter_new(double rate, double burst, unsigned max_keys)
{
	struct limiter *l = xcalloc(1, sizeof *l);

	l->rate = rate;
	l->burst = burst;
	l->cap = max_keys * 2;
	l->slots = xcalloc(l->cap, sizeof *l->slots);
	return l;
}

void
limiter_free(struct limiter *l)
{
	if (l == NULL)
		return;
	free(l->slots);
	free(l);
}

/* FNV-1a of the key. */
static uint64_t
limiter_hash(const char *key)
{
	uint64_t h = 1469598103934665603ull;

	for (; *key; key++)
		h = (h ^ (unsigned char)*key) * 1099511628211ull;
	return h;
}

/* The bucket for key, made (or recycled) if needed. */
static struct bucket *
limiter_find(struct limiter *l, const char *key, int64_t now)
{
	unsigned i = limiter_hash(key) % l->cap, probes;
	struct limiter_entry *e, *victim = NULL;

	for (probes = 0; probes < 16; probes++, i = (i + 1) % l->cap) {
		e = &l->slots[i];
		if (e->used && strncmp(e->key, key, LIMITER_KEY_MAX) == 0)
			return &e->b;
		if (!e->used) {
			victim = e;
			break;
		}
		bucket_refill(&e->b, l->rate, l->burst, now);
		if (victim == NULL || e->b.tokens > victim->b.tokens)
			victim = e;
	}
	memset(victim, 0, sizeof *victim);
	victim->used = 1;
	strncpy(victim->key, key, LIMITER_KEY_MAX);
	return &victim->b;
}

int
limiter_check(struct limiter *l, const char *key, int64_t now)
{
	struct bucket *b = limiter_find(l, key, now);

	bucket_refill(b, l->rate, l->burst, now);
	return b->tokens >= 1.0;
}

int
limiter_take(struct limiter *l, const char *key, int64_t now)
{
	return bucket_take(limiter_find(l, key, now), l->rate, l->burst, now);
}

void
limiter_refund(struct limiter *l, const char *key, int64_t now)
{
	struct bucket *b = limiter_find(l, key, now);

	bucket_refill(b, l->rate, l->burst, now);
	b->tokens += 1.0;
	if (b->tokens > l->burst)
		b->tokens = l->burst;
}

int64_t
limiter_wait_ms(struct limiter *l, const char *key, int64_t now)
{
	struct bucket *b = limiter_find(l, key, now);
	double ms;

	bucket_refill(b, l->rate, l->burst, now);
	if (b->tokens >= 1.0)
		return 0;
	if (l->rate <= 0)
		return INT64_MAX;
	ms = (1.0 - b->tokens) * 1000.0 / l->rate;
	return (int64_t)ms + 1;
}
