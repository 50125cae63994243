/* chatd/limiter.h — token buckets: per connection, or keyed by a string */
#ifndef CHATD_LIMITER_H
#define CHATD_LIMITER_H

#include <stdint.h>

/* One bucket: burst tokens, refilled at rate per second. */
struct bucket {
	double tokens;
	int64_t last_ms;
};

/* Takes one token from b (full at first use). 1 if allowed, else 0. */
int bucket_take(struct bucket *b, double rate, double burst, int64_t now);

/* Buckets keyed by a string (a username, an address). */
struct limiter;

/* A keyed limiter of at most max_keys buckets. */
struct limiter *limiter_new(double rate, double burst, unsigned max_keys);
void limiter_free(struct limiter *l);
/* 1 if key still has a token (without taking one), else 0. */
int limiter_check(struct limiter *l, const char *key, int64_t now);
/* Takes a token from key's bucket; 1 if there was one, else 0. A token
 * taken before the work it pays for (a reservation) can be given back. */
int limiter_take(struct limiter *l, const char *key, int64_t now);
/* Gives a taken token back to key's bucket (never above the burst). */
void limiter_refund(struct limiter *l, const char *key, int64_t now);
/* Milliseconds until key's bucket has a token: 0 if it has one now. */
int64_t limiter_wait_ms(struct limiter *l, const char *key, int64_t now);

#endif
