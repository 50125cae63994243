/* chatd/cluster_order.h — per-room ordering of events from other nodes */
#ifndef CHATD_CLUSTER_ORDER_H
#define CHATD_CLUSTER_ORDER_H

#include <stddef.h>
#include <stdint.h>

/*
 * Redis keeps each publisher's messages in order but interleaves
 * publishers freely, and loses what a disconnected node did not see. Each
 * EVENT carries its room's previous seq, so a node can tell whether it has
 * everything before it. For each room it tracks `last`: every event of the
 * room with seq <= last has been delivered locally, and no other. An event
 * (prev, seq) is then:
 *
 *   seq <= last          DROP: delivered already (the node's own publish
 *                        coming back, a duplicate, or read from the db).
 *   prev <= last < seq   DELIVER: no event lies between prev and seq, and
 *                        none unseen lies at or below last, so it is the
 *                        next one; last = seq. Then the caller drains the
 *                        held events that now follow (cluster_order_next).
 *   prev > last          HOLD: something between last and prev is missing.
 *                        The event is kept (bounded), and the first time
 *                        the room gets a gap the caller is told to fill it
 *                        from the database: deliver every stored event of
 *                        the room with seq > last, then report the highest
 *                        seq it read with cluster_order_filled.
 *
 * While a fill is outstanding, `last` moves only by cluster_order_filled
 * (events that would follow are held too), so the rows the caller reads
 * are never also delivered from Redis. The caller's side of a fill: read
 * the room's stored events with seq > the position given (which is
 * cluster_order_last once the caller has drained), and when they are in,
 * deliver in seq order those still above cluster_order_last (a stale or
 * repeated fill delivers nothing twice), then cluster_order_filled with
 * the highest seq read (or the position, if none) and drain.
 *
 * A node calls cluster_order_event for its own commits too, before
 * publishing: they are delivered at once and dropped when they come back.
 *
 * Bounds: a room holds at most room_events events / room_bytes bytes of
 * payload, all rooms together total_events / total_bytes. An event that
 * would pass a bound is not kept, and neither are the room's other held
 * events (counted in overflows): the fill, outstanding already, reads them
 * from the database, and cluster_order_filled asks for another fill if it
 * did not reach them. A fill outstanding for gap_timeout_ms is returned by
 * cluster_order_expired, to be asked for again (a lost or failed read).
 */

enum cluster_order_verdict {
	CLUSTER_ORDER_DELIVER = 0, /* deliver it now, then drain */
	CLUSTER_ORDER_DROP,        /* delivered already: ignore it */
	CLUSTER_ORDER_HOLD,        /* held (or left to the fill) */
	CLUSTER_ORDER_UNKNOWN, /* room not set: see cluster_order_room_set */
};

struct cluster_order_limits {
	unsigned room_events;   /* held events per room */
	size_t room_bytes;      /* held payload bytes per room */
	unsigned total_events;  /* held events in all */
	size_t total_bytes;     /* held payload bytes in all */
	int64_t gap_timeout_ms; /* a fill is asked for again after this */
};

#define CLUSTER_ORDER_ROOM_EVENTS 1024
#define CLUSTER_ORDER_ROOM_BYTES (8u << 20)
#define CLUSTER_ORDER_TOTAL_EVENTS 65536
#define CLUSTER_ORDER_TOTAL_BYTES (64u << 20)
#define CLUSTER_ORDER_GAP_TIMEOUT_MS 5000

/* Counters for /metrics (all only grow, but held_* and rooms). */
struct cluster_order_stats {
	uint64_t delivered; /* DELIVER, and events drained by _next */
	uint64_t drops;     /* DROP: duplicates and own echoes */
	uint64_t holds;     /* events held */
	uint64_t gaps;      /* fills asked for (gap opened) */
	uint64_t fills;     /* fills reported (cluster_order_filled) */
	uint64_t overflows; /* held events discarded past a bound */
	uint64_t retries;   /* fills asked for again (expired, no progress) */
	unsigned held_events;
	size_t held_bytes;
	unsigned rooms;
};

struct cluster_order;

/* A new table; lim NULL for the CLUSTER_ORDER_* defaults. */
struct cluster_order *cluster_order_new(const struct cluster_order_limits *lim);
/* Frees o and every held payload. */
void cluster_order_free(struct cluster_order *o);

/* Starts tracking room at last (everything <= last delivered); for a room
 * tracked already, moves last up to it (never down), as a fill would. */
void cluster_order_room_set(struct cluster_order *o, int64_t room,
                            int64_t last);
/* Stops tracking room, discarding what it holds. */
void cluster_order_room_forget(struct cluster_order *o, int64_t room);
/* The room's last, or -1 if it is not tracked. */
int64_t cluster_order_last(const struct cluster_order *o, int64_t room);
/* Whether a fill of room is outstanding. */
int cluster_order_filling(const struct cluster_order *o, int64_t room);

/* Event (prev, seq) of room with its payload (copied if held). *fill_from
 * is set to -1, or to the position from which the caller must now read the
 * room from the database (a new gap). now_ms: a monotonic clock. Returns
 * the verdict; DROP also for seq <= prev (invalid). */
enum cluster_order_verdict cluster_order_event(struct cluster_order *o,
                                               int64_t room, int64_t prev,
                                               int64_t seq, const void *payload,
                                               size_t len, int64_t now_ms,
                                               int64_t *fill_from);
/* The next held event of room that now follows (after DELIVER or a
 * fill): 1 with *seq, *payload and *len set (the payload is valid until
 * the next call on o), last = *seq; 0 when there is none. */
int cluster_order_next(struct cluster_order *o, int64_t room, int64_t *seq,
                       const uint8_t **payload, size_t *len);
/* Starts a fill of room now (e.g. for every room after Redis came back,
 * whatever was missed meanwhile): the position to read from, or -1 if the
 * room is not tracked or a fill of it is outstanding already. */
int64_t cluster_order_refill(struct cluster_order *o, int64_t room,
                             int64_t now_ms);
/* A HEAD: room has reached seq. DROP if last >= seq, HOLD if a gap is
 * known (*fill_from as for cluster_order_event), UNKNOWN if untracked. */
enum cluster_order_verdict cluster_order_head(struct cluster_order *o,
                                              int64_t room, int64_t seq,
                                              int64_t now_ms,
                                              int64_t *fill_from);
/* The caller has delivered every event of room with seq <= upto (read
 * from the database): the fill is over, last = max(last, upto), held
 * events <= upto are dropped; then drain with cluster_order_next. Returns
 * -1, or a position to fill from again now if a gap is still known and
 * this fill made progress (without progress the fill stays outstanding
 * and cluster_order_expired retries it after the timeout). */
int64_t cluster_order_filled(struct cluster_order *o, int64_t room,
                             int64_t upto, int64_t now_ms);
/* Rooms whose fill has been outstanding for gap_timeout_ms: up to max of
 * them into rooms (their timers restart); the number written. The caller
 * reads each again from cluster_order_last. */
size_t cluster_order_expired(struct cluster_order *o, int64_t now_ms,
                             int64_t *rooms, size_t max);
/* The counters. */
const struct cluster_order_stats *
cluster_order_stats(const struct cluster_order *o);

#endif
