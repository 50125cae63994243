/* chatd/cluster_order.c — per-room ordering of events from other nodes */
#include "chatd/cluster_order.h"

#include <stdlib.h>
#include <string.h>

#include "chatd/xmalloc.h"

/* A held event, in its room's list sorted by seq. */
struct held {
	struct held *next;
	int64_t prev, seq;
	size_t len;
	uint8_t data[];
};

/* The ordering state of one room. */
struct room {
	struct room *next; /* hash chain */
	int64_t id;
	int64_t last;      /* every event <= last delivered */
	int64_t want;      /* highest seq known to exist */
	int64_t fill_from; /* while filling: the fill reads seq > fill_from */
	int64_t since;     /* while filling: when it was asked for */
	int filling;
	unsigned n; /* held events */
	size_t bytes;
	struct held *held;
};

struct cluster_order {
	struct cluster_order_limits lim;
	struct cluster_order_stats st;
	struct room **buckets;
	size_t nbuckets;     /* a power of two */
	struct held *popped; /* returned by _next, freed by the next call */
};

/* The bucket of room id. */
static size_t
bucket_of(const struct cluster_order *o, int64_t id)
{
	uint64_t h = (uint64_t)id * 0x9e3779b97f4a7c15ull;

	return (size_t)(h >> 32) & (o->nbuckets - 1);
}

/* The room id, or NULL. */
static struct room *
room_find(const struct cluster_order *o, int64_t id)
{
	struct room *r = o->buckets[bucket_of(o, id)];

	while (r != NULL && r->id != id)
		r = r->next;
	return r;
}

/* Doubles the table. */
static void
grow(struct cluster_order *o)
{
	struct room **old = o->buckets;
	size_t n = o->nbuckets;

	o->nbuckets *= 2;
	o->buckets = xcalloc(o->nbuckets, sizeof(*o->buckets));
	for (size_t i = 0; i < n; i++) {
		struct room *r = old[i], *next;

		for (; r != NULL; r = next) {
			size_t b = bucket_of(o, r->id);

			next = r->next;
			r->next = o->buckets[b];
			o->buckets[b] = r;
		}
	}
	free(old);
}

/* Unlinks h (the head of r's list or after prev) and frees it. */
static void
held_free(struct cluster_order *o, struct room *r, struct held **link)
{
	struct held *h = *link;

	*link = h->next;
	r->n--;
	r->bytes -= h->len;
	o->st.held_events--;
	o->st.held_bytes -= h->len;
	free(h);
}

/* Discards every held event of r. */
static void
room_discard(struct cluster_order *o, struct room *r)
{
	while (r->held != NULL)
		held_free(o, r, &r->held);
}

/* Frees held events of r at or below its last. */
static void
room_drop_delivered(struct cluster_order *o, struct room *r)
{
	while (r->held != NULL && r->held->seq <= r->last) {
		held_free(o, r, &r->held);
		o->st.drops++;
	}
}

struct cluster_order *
cluster_order_new(const struct cluster_order_limits *lim)
{
	struct cluster_order *o = xcalloc(1, sizeof(*o));

	if (lim != NULL) {
		o->lim = *lim;
	} else {
		o->lim.room_events = CLUSTER_ORDER_ROOM_EVENTS;
		o->lim.room_bytes = CLUSTER_ORDER_ROOM_BYTES;
		o->lim.total_events = CLUSTER_ORDER_TOTAL_EVENTS;
		o->lim.total_bytes = CLUSTER_ORDER_TOTAL_BYTES;
		o->lim.gap_timeout_ms = CLUSTER_ORDER_GAP_TIMEOUT_MS;
	}
	o->nbuckets = 64;
	o->buckets = xcalloc(o->nbuckets, sizeof(*o->buckets));
	return o;
}

void
cluster_order_free(struct cluster_order *o)
{
	if (o == NULL)
		return;
	for (size_t i = 0; i < o->nbuckets; i++) {
		struct room *r = o->buckets[i], *next;

		for (; r != NULL; r = next) {
			next = r->next;
			room_discard(o, r);
			free(r);
		}
	}
	free(o->buckets);
	free(o->popped);
	free(o);
}

void
cluster_order_room_set(struct cluster_order *o, int64_t room, int64_t last)
{
	struct room *r = room_find(o, room);
	size_t b;

	if (r != NULL) {
		if (last > r->last) {
			r->last = last;
			if (r->want < last)
				r->want = last;
			room_drop_delivered(o, r);
		}
		return;
	}
	if (o->st.rooms >= 2 * o->nbuckets)
		grow(o);
	r = xcalloc(1, sizeof(*r));
	r->id = room;
	r->last = r->want = last;
	b = bucket_of(o, room);
	r->next = o->buckets[b];
	o->buckets[b] = r;
	o->st.rooms++;
}

void
cluster_order_room_forget(struct cluster_order *o, int64_t room)
{
	struct room **link = &o->buckets[bucket_of(o, room)];

	while (*link != NULL && (*link)->id != room)
		link = &(*link)->next;
	if (*link == NULL)
		return;
	struct room *r = *link;
	*link = r->next;
	room_discard(o, r);
	free(r);
	o->st.rooms--;
}

int64_t
cluster_order_last(const struct cluster_order *o, int64_t room)
{
	const struct room *r = room_find(o, room);

	return r != NULL ? r->last : -1;
}

int
cluster_order_filling(const struct cluster_order *o, int64_t room)
{
	const struct room *r = room_find(o, room);

	return r != NULL && r->filling;
}

/* Marks a fill of r outstanding from its last; returns that position. */
static int64_t
fill_start(struct cluster_order *o, struct room *r, int64_t now_ms)
{
	r->filling = 1;
	r->fill_from = r->last;
	r->since = now_ms;
	o->st.gaps++;
	return r->last;
}

/* Keeps a copy of (prev, seq, payload) in r's sorted list, unless it is
 * held already (DROP) or a bound would be passed (discards r's list). */
static enum cluster_order_verdict
hold(struct cluster_order *o, struct room *r, int64_t prev, int64_t seq,
     const void *payload, size_t len)
{
	struct held **link = &r->held, *h;

	while (*link != NULL && (*link)->seq < seq)
		link = &(*link)->next;
	if (*link != NULL && (*link)->seq == seq) {
		o->st.drops++;
		return CLUSTER_ORDER_DROP;
	}
	if (r->n + 1 > o->lim.room_events || len > o->lim.room_bytes ||
	    r->bytes > o->lim.room_bytes - len ||
	    o->st.held_events + 1 > o->lim.total_events ||
	    len > o->lim.total_bytes ||
	    o->st.held_bytes > o->lim.total_bytes - len) {
		o->st.overflows += r->n + 1;
		room_discard(o, r);
		return CLUSTER_ORDER_HOLD; /* the fill reads them all */
	}
	h = xmalloc(sizeof(*h) + len);
	h->prev = prev;
	h->seq = seq;
	h->len = len;
	if (len > 0)
		memcpy(h->data, payload, len);
	h->next = *link;
	*link = h;
	r->n++;
	r->bytes += len;
	o->st.held_events++;
	o->st.held_bytes += len;
	o->st.holds++;
	return CLUSTER_ORDER_HOLD;
}

enum cluster_order_verdict
cluster_order_event(struct cluster_order *o, int64_t room, int64_t prev,
                    int64_t seq, const void *payload, size_t len,
                    int64_t now_ms, int64_t *fill_from)
{
	struct room *r = room_find(o, room);

	*fill_from = -1;
	if (r == NULL)
		return CLUSTER_ORDER_UNKNOWN;
	if (seq <= prev || seq <= r->last) {
		o->st.drops++;
		return CLUSTER_ORDER_DROP;
	}
	if (seq > r->want)
		r->want = seq;
	if (!r->filling && prev <= r->last) {
		r->last = seq;
		o->st.delivered++;
		return CLUSTER_ORDER_DELIVER;
	}
	if (!r->filling)
		*fill_from = fill_start(o, r, now_ms);
	return hold(o, r, prev, seq, payload, len);
}

int
cluster_order_next(struct cluster_order *o, int64_t room, int64_t *seq,
                   const uint8_t **payload, size_t *len)
{
	struct room *r = room_find(o, room);
	struct held *h;

	free(o->popped);
	o->popped = NULL;
	if (r == NULL)
		return 0;
	room_drop_delivered(o, r);
	h = r->held;
	/* While filling, the fill delivers what lies past fill_from. */
	if (h == NULL || h->prev > r->last ||
	    (r->filling && h->seq > r->fill_from))
		return 0;
	r->held = h->next;
	r->n--;
	r->bytes -= h->len;
	o->st.held_events--;
	o->st.held_bytes -= h->len;
	o->st.delivered++;
	r->last = h->seq;
	o->popped = h;
	*seq = h->seq;
	*payload = h->data;
	*len = h->len;
	return 1;
}

int64_t
cluster_order_refill(struct cluster_order *o, int64_t room, int64_t now_ms)
{
	struct room *r = room_find(o, room);

	if (r == NULL || r->filling)
		return -1;
	return fill_start(o, r, now_ms);
}

enum cluster_order_verdict
cluster_order_head(struct cluster_order *o, int64_t room, int64_t seq,
                   int64_t now_ms, int64_t *fill_from)
{
	struct room *r = room_find(o, room);

	*fill_from = -1;
	if (r == NULL)
		return CLUSTER_ORDER_UNKNOWN;
	if (seq <= r->last)
		return CLUSTER_ORDER_DROP;
	if (seq > r->want)
		r->want = seq;
	if (!r->filling)
		*fill_from = fill_start(o, r, now_ms);
	return CLUSTER_ORDER_HOLD;
}

/* Where r's last will be once its held events that follow are drained. */
static int64_t
drained_last(const struct room *r)
{
	int64_t l = r->last;

	for (const struct held *h = r->held; h != NULL; h = h->next) {
		if (h->seq <= l)
			continue;
		if (h->prev > l)
			break;
		l = h->seq;
	}
	return l;
}

int64_t
cluster_order_filled(struct cluster_order *o, int64_t room, int64_t upto,
                     int64_t now_ms)
{
	struct room *r = room_find(o, room);
	int64_t old, l;

	if (r == NULL)
		return -1;
	o->st.fills++;
	old = r->last;
	r->filling = 0;
	if (upto > r->last)
		r->last = upto;
	if (r->want < r->last)
		r->want = r->last;
	room_drop_delivered(o, r);
	l = drained_last(r);
	if (r->want <= l)
		return -1;
	/* A gap remains past what the drain will reach: fill again from
	 * there, now if this fill got somewhere, else after the timeout. */
	r->filling = 1;
	r->fill_from = l;
	r->since = now_ms;
	if (l > old) {
		o->st.gaps++;
		return l;
	}
	return -1;
}

size_t
cluster_order_expired(struct cluster_order *o, int64_t now_ms, int64_t *rooms,
                      size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < o->nbuckets && n < max; i++) {
		for (struct room *r = o->buckets[i]; r != NULL && n < max;
		     r = r->next) {
			if (!r->filling ||
			    now_ms - r->since < o->lim.gap_timeout_ms)
				continue;
			r->since = now_ms;
			r->fill_from = r->last;
			o->st.retries++;
			rooms[n++] = r->id;
		}
	}
	return n;
}

const struct cluster_order_stats *
cluster_order_stats(const struct cluster_order *o)
{
	return &o->st;
}
