/* chatd/chat_cluster.c — several nodes (issue 17): what the chat core
 * tells the other nodes over Redis (chatd/redis.c, chatd/cluster_wire.c)
 * and what it does with what they tell it: room events delivered in seq
 * order (chatd/cluster_order.c, gaps read back from PostgreSQL), room and
 * user frames, subscriptions, logouts, and presence with heartbeats.
 * Without --redis none of this runs and every hook is local only. */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "chatd/chat.h"
#include "chatd/chat_int.h"
#include "chatd/cluster_order.h"
#include "chatd/cluster_wire.h"
#include "chatd/config.h"
#include "chatd/conn.h"
#include "chatd/gate.h"
#include "chatd/hub.h"
#include "chatd/log.h"
#include "chatd/metrics.h"
#include "chatd/redis.h"
#include "chatd/server.h"
#include "chatd/xmalloc.h"
#include "storage/storage.h"

/* A node tells the others who is online on it this often; one that has
 * not for CLUSTER_TTL_MS is gone, and its users offline with it. */
#define CLUSTER_HEARTBEAT_MS 1000
#define CLUSTER_TTL_MS 3500
/* Fills one gap reads at most this many rounds in a row. */
#define CLUSTER_FILL_ROUNDS 8

/* Another node, as its heartbeats and presence messages describe it. */
struct cl_node {
	char id[CLUSTER_WIRE_NODE_MAX + 1];
	int64_t seen_ms;   /* last heartbeat */
	int64_t ttl_ms;
	int64_t *users;    /* online there, sorted */
	size_t n, cap;
	uint64_t round;    /* the heartbeat round being gathered */
	uint32_t next_part;
	int64_t *pend;
	size_t npend, cappend;
	struct cl_node *next;
};

struct chat_cluster {
	struct server *srv;
	struct redis *redis;
	struct cluster_order *order;
	char node[CLUSTER_WIRE_NODE_MAX + 1];
	char channel[64];
	struct event *tick;  /* dropped nodes, expired holds (gate job) */
	struct event *beat;  /* our heartbeat (plain event) */
	uint64_t round;
	struct cl_node *nodes;
	int64_t *heads; /* rooms whose publish failed: HEAD them when up */
	size_t nheads, capheads;
	int64_t *fills; /* rooms to read back once the batch commits */
	size_t nfills, capfills;
	int up;
	int refill_queued; /* a CL_JOB_REFILL waits in the gate */
	struct chat_cluster_stats st;
	/* What Redis brought, waiting for its turn in the gate (gate.h). */
	TAILQ_HEAD(, cl_job) jobs;
	unsigned njobs;
	size_t jobs_bytes;
	unsigned jobs_max; /* CL_JOBS_MAX, or the test's */
};

/* A Redis callback as a gate job: a message (copied), up, or down. */
struct cl_job {
	struct gate_job job;
	struct chat_cluster *cl;
	int what; /* CL_JOB_* */
	size_t len;
	TAILQ_ENTRY(cl_job) link;
	uint8_t data[];
};
#define CL_JOB_MESSAGE 0
#define CL_JOB_UP 1
#define CL_JOB_DOWN 2
#define CL_JOB_REFILL 3
/* Messages from Redis waiting for the gate, at most (a test lowers the
 * count: CHATD_TEST_CL_JOBS_MAX): past either bound they are dropped
 * (counted) and every room is read back from the database after those
 * already queued, so nothing is missed. */
#define CL_JOBS_MAX 16384
#define CL_JOBS_BYTES (64u * 1024 * 1024) /* and at most these bytes */

static int64_t
cl_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Adds v to a set kept as a growing array (no duplicates). */
static void
cl_list_add(int64_t **a, size_t *n, size_t *cap, int64_t v)
{
	for (size_t i = 0; i < *n; i++)
		if ((*a)[i] == v)
			return;
	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 16;
		*a = xrealloc(*a, *cap * sizeof **a);
	}
	(*a)[(*n)++] = v;
}

/* Publishes m (this node's id filled in); tag: a room whose event it is
 * (0: none). 0 or -1. */
static int
cl_publish(struct chat_cluster *cl, struct cluster_wire_msg *m, int64_t tag)
{
	size_t len;
	uint8_t *buf;
	int rc;

	m->node = cl->node;
	m->node_len = strlen(cl->node);
	if ((buf = cluster_wire_encode_alloc(m, &len)) == NULL) {
		cl->st.bad_out++;
		return -1;
	}
	rc = redis_publish(cl->redis, buf, len, (uint64_t)tag);
	free(buf);
	if (rc != 0) {
		cl->st.publish_errors++;
		if (tag > 0)
			cl_list_add(&cl->heads, &cl->nheads, &cl->capheads,
			            tag);
	}
	return rc;
}

/* 1 if p (len bytes) is one whole unmasked text frame, as chatd encodes
 * them: what another node's payload must be before it is sent to anyone
 * (conn_frame_deflated reads its header). */
static int
cl_frame_ok(const uint8_t *p, size_t len)
{
	size_t h, n;

	if (len < 2 || p[0] != 0x81 || (p[1] & 0x80))
		return 0;
	n = p[1] & 0x7f;
	h = 2;
	if (n == 126) {
		if (len < 4)
			return 0;
		n = (size_t)p[2] << 8 | p[3];
		h = 4;
	} else if (n == 127) {
		if (len < 10)
			return 0;
		n = 0;
		for (int i = 2; i < 10; i++)
			n = n << 8 | p[i];
		h = 10;
	}
	return len - h == n;
}

/* --- room events in seq order ------------------------------------ */

/* Delivers a stored event of room to this node's connections. */
static void
cl_deliver(struct hub_room *room, int64_t seq, struct frame *f)
{
	hub_deliver(room, seq, f, NULL);
	if (seq > room->last_seq)
		room->last_seq = seq;
	if (seq > room->pending_seq)
		room->pending_seq = seq;
}

/* Delivers the held events of room that now follow. */
static void
cl_drain(struct chat_cluster *cl, struct hub_room *room)
{
	const uint8_t *p;
	size_t len;
	int64_t seq;

	while (cluster_order_next(cl->order, room->id, &seq, &p, &len)) {
		struct frame *f = frame_copy(p, len);

		cl_deliver(room, seq, f);
		frame_unref(f);
	}
}

struct cl_fill {
	struct chat_cluster *cl;
	struct hub_room *room;
	int64_t since, upto;
	uint64_t rows;
};

/* message_cb of a fill: each change above what was delivered, as resync
 * replays it (PROTOCOL.md Resync). */
static int
cl_fill_cb(void *arg, const struct message *m)
{
	struct cl_fill *fl = arg;
	struct frame *f;

	if (m->seq > fl->upto)
		fl->upto = m->seq;
	if (m->seq <= cluster_order_last(fl->cl->order, fl->room->id))
		return 0;
	f = chat_event_frame(m->id > fl->since ? "message" :
	    m->deleted ? "deleted" : "edited", m);
	if (f == NULL)
		return 0;
	cl_deliver(fl->room, m->seq, f);
	frame_unref(f);
	fl->rows++;
	return 0;
}

/* Reads room's changes after from back from the database and delivers
 * them (a gap Redis left). Outside a transaction only: the batch's own
 * rows are not durable yet, so while one is open the fill waits for its
 * commit (chat_cluster_committed). */
static void
cl_fill(struct chat_cluster *cl, struct hub_room *room, int64_t from)
{
	struct server *srv = cl->srv;

	if (srv->chat->txn) {
		cl_list_add(&cl->fills, &cl->nfills, &cl->capfills, room->id);
		return;
	}
	for (int round = 0; from >= 0 && round < CLUSTER_FILL_ROUNDS;
	     round++) {
		struct cl_fill fl = {cl, room, from, from, 0};

		cl->st.fills++;
		if (message_changed(srv->db, room->id, from, cl_fill_cb, &fl) !=
		    0) {
			cl->st.fill_errors++;
			return; /* cluster_order_expired asks again */
		}
		cl->st.fill_rows += fl.rows;
		from = cluster_order_filled(cl->order, room->id, fl.upto,
		                            cl_now());
		cl_drain(cl, room);
	}
}

/* Starts tracking a cached room from what it has delivered. */
static void
cl_track(struct chat_cluster *cl, struct hub_room *room)
{
	if (cluster_order_last(cl->order, room->id) < 0)
		cluster_order_room_set(cl->order, room->id, room->last_seq);
}

/* An EVENT of another node (or this node's own, coming back). */
static void
cl_on_event(struct chat_cluster *cl, const struct cluster_wire_msg *m)
{
	struct hub_room *room = hub_room_by_id(cl->srv->chat->hub, m->room_id);
	enum cluster_order_verdict v;
	int64_t fill = -1;

	if (room == NULL)
		return; /* nobody here has it: loaded from the db when needed */
	cl_track(cl, room);
	v = cluster_order_event(cl->order, room->id, m->prev_seq, m->seq,
	                        m->payload, m->payload_len, cl_now(), &fill);
	if (v == CLUSTER_ORDER_DELIVER) {
		struct frame *f = frame_copy(m->payload, m->payload_len);

		cl_deliver(room, m->seq, f);
		frame_unref(f);
		cl_drain(cl, room);
	}
	if (fill >= 0)
		cl_fill(cl, room, fill);
}

static void
cl_on_head(struct chat_cluster *cl, const struct cluster_wire_msg *m)
{
	struct hub_room *room = hub_room_by_id(cl->srv->chat->hub, m->room_id);
	int64_t fill = -1;

	if (room == NULL)
		return;
	cl_track(cl, room);
	cluster_order_head(cl->order, room->id, m->seq, cl_now(), &fill);
	if (fill >= 0)
		cl_fill(cl, room, fill);
}

int64_t
chat_cluster_lock_room(struct server *srv, struct hub_room *room)
{
	struct chat_cluster *cl = srv->cluster;
	struct chat *ch = srv->chat;
	int64_t last = 0;
	int rc;

	if (room->lock_txn == ch->txn_gen)
		return 0;
	/* Waiting for a room while holding another, or any row the batch
	 * wrote (a topic, a membership), could deadlock with a node doing
	 * the opposite: once the batch holds anything it only tries; if
	 * that fails, it commits what it has and waits holding nothing. */
	rc = db_room_lock(srv->db, room->id,
	                  ch->rooms_locked == 0 && ch->nactions == 0, &last);
	if (rc == 1) {
		chat_flush(srv);
		if (chat_txn(ch, srv) != 0)
			return -1;
		rc = db_room_lock(srv->db, room->id, 1, &last);
	}
	if (rc != 0)
		return -1;
	room->lock_txn = ch->txn_gen;
	room->lock_prev = last;
	ch->rooms_locked++;
	if (cl != NULL) {
		cl_track(cl, room);
		/* Catch up with what other nodes committed before this
		 * batch's first change: its events must follow theirs. The
		 * lock keeps anyone from adding to the room meanwhile, and
		 * the batch has not written to it yet. */
		if (cluster_order_last(cl->order, room->id) < last) {
			int64_t from = cluster_order_refill(cl->order, room->id,
			                                    cl_now());

			/* A fill left for after the commit (a gap Redis
			 * showed while the batch was open) is done now. */
			if (from < 0 &&
			    cluster_order_filling(cl->order, room->id))
				from = cluster_order_last(cl->order, room->id);
			if (from >= 0) {
				int txn = ch->txn;

				ch->txn = 0; /* the room's rows are committed */
				cl_fill(cl, room, from);
				ch->txn = txn;
			}
		}
	}
	if (last > room->last_seq)
		room->last_seq = last;
	if (last > room->pending_seq)
		room->pending_seq = last;
	return 0;
}

void
chat_cluster_event(struct server *srv, struct hub_room *room, int64_t prev,
    int64_t seq, struct frame *f, struct session *skip)
{
	struct chat_cluster *cl = srv->cluster;
	struct cluster_wire_msg m = {0};
	int64_t fill = -1;

	if (cl == NULL) {
		hub_deliver(room, seq, f, skip);
		return;
	}
	cl_track(cl, room);
	if (cluster_order_event(cl->order, room->id, prev, seq, NULL, 0,
	        cl_now(), &fill) != CLUSTER_ORDER_DELIVER) {
		/* Under its lock the batch caught up first: this is a bug or
		 * a fill that failed. Deliver anyway, counted. */
		cl->st.order_breaks++;
		cluster_order_room_set(cl->order, room->id, seq);
	}
	hub_deliver(room, seq, f, skip);
	cl_drain(cl, room);
	m.kind = CLUSTER_WIRE_EVENT;
	m.room_id = room->id;
	m.prev_seq = prev;
	m.seq = seq;
	m.payload = f->bytes;
	m.payload_len = f->len;
	cl_publish(cl, &m, room->id);
}

/* After a commit: the fills that waited for it. */
void
chat_cluster_committed(struct server *srv)
{
	struct chat_cluster *cl = srv->cluster;
	size_t n;

	if (cl == NULL || cl->nfills == 0)
		return;
	n = cl->nfills;
	cl->nfills = 0;
	for (size_t i = 0; i < n; i++) {
		struct hub_room *room =
		    hub_room_by_id(srv->chat->hub, cl->fills[i]);
		int64_t from = room != NULL
		    ? cluster_order_refill(cl->order, room->id, cl_now())
		    : -1;

		if (from < 0 && room != NULL)
			from = cluster_order_last(cl->order, room->id);
		if (room != NULL && from >= 0)
			cl_fill(cl, room, from);
	}
}

/* --- frames to rooms and users, subscriptions ---------------------- */

void
chat_to_room(struct server *srv, struct hub_room *room, struct frame *f,
    int64_t skip_user, struct session *skip)
{
	struct cluster_wire_msg m = {0};

	hub_broadcast(room, f,
	    skip_user > 0 ? hub_user_find(srv->chat->hub, skip_user) : NULL,
	    skip);
	if (srv->cluster == NULL)
		return;
	m.kind = CLUSTER_WIRE_EPHEMERAL;
	m.room_id = room->id;
	m.user_id = skip_user;
	m.payload = f->bytes;
	m.payload_len = f->len;
	cl_publish(srv->cluster, &m, 0);
}

void
chat_to_user(struct server *srv, int64_t user_id, struct frame *f,
    struct session *skip)
{
	struct hub_user *u = hub_user_find(srv->chat->hub, user_id);
	struct cluster_wire_msg m = {0};

	if (u != NULL)
		hub_user_send(u, f, skip);
	if (srv->cluster == NULL)
		return;
	m.kind = CLUSTER_WIRE_EPHEMERAL;
	m.room_id = 0; /* to a user: their sessions on every node */
	m.user_id = user_id;
	m.payload = f->bytes;
	m.payload_len = f->len;
	cl_publish(srv->cluster, &m, 0);
}

/* Publishes a JOIN or KICK of user_id in room (with --redis). */
static void
cl_publish_member(struct server *srv, int kind, struct hub_room *room,
                  int64_t user_id)
{
	struct cluster_wire_msg m = {0};

	if (srv->cluster == NULL)
		return;
	m.kind = kind;
	m.room_id = room->id;
	m.user_id = user_id;
	cl_publish(srv->cluster, &m, 0);
}

/* Unsubscribes this node's sessions of u (may be NULL) from room. */
static void
cl_unsubscribe_local(struct hub_user *u, struct hub_room *room)
{
	struct session *s;

	if (u != NULL)
		LIST_FOREACH(s, &u->sessions, user_link)
			hub_unsubscribe(s, room);
}

void
chat_subscribe_everywhere(struct server *srv, int64_t user_id,
    struct hub_room *room)
{
	chat_room_subscribe_user(hub_user_find(srv->chat->hub, user_id), room);
	cl_publish_member(srv, CLUSTER_WIRE_JOIN, room, user_id);
}

void
chat_unsubscribe_everywhere(struct server *srv, int64_t user_id,
    struct hub_room *room)
{
	cl_unsubscribe_local(hub_user_find(srv->chat->hub, user_id), room);
	cl_publish_member(srv, CLUSTER_WIRE_KICK, room, user_id);
}

void
chat_cluster_logout(struct server *srv, const uint8_t hash[32])
{
	struct cluster_wire_msg m = {0};

	if (srv->cluster == NULL)
		return;
	m.kind = CLUSTER_WIRE_LOGOUT;
	m.token_hash = hash;
	cl_publish(srv->cluster, &m, 0);
}

/* The room with id: cached, or loaded (another node's member has it). */
static struct hub_room *
cl_room(struct chat_cluster *cl, int64_t id)
{
	struct hub_room *room = hub_room_by_id(cl->srv->chat->hub, id);
	struct room r;

	if (room != NULL)
		return room;
	if (room_by_id(cl->srv->db, id, &r) != 0)
		return NULL;
	return hub_room_cache(cl->srv->chat->hub, &r);
}

static void
cl_on_ephemeral(struct chat_cluster *cl, const struct cluster_wire_msg *m)
{
	struct hub *h = cl->srv->chat->hub;
	struct frame *f;

	if (m->room_id == 0) {
		struct hub_user *u = hub_user_find(h, m->user_id);

		if (u == NULL)
			return;
		f = frame_copy(m->payload, m->payload_len);
		hub_user_send(u, f, NULL);
	} else {
		struct hub_room *room = hub_room_by_id(h, m->room_id);

		if (room == NULL)
			return;
		f = frame_copy(m->payload, m->payload_len);
		hub_broadcast(room, f,
		    m->user_id ? hub_user_find(h, m->user_id) : NULL, NULL);
	}
	frame_unref(f);
}

static void
cl_on_member(struct chat_cluster *cl, const struct cluster_wire_msg *m)
{
	struct hub_user *u = hub_user_find(cl->srv->chat->hub, m->user_id);
	struct hub_room *room;

	if (u == NULL || (room = cl_room(cl, m->room_id)) == NULL)
		return;
	if (m->kind == CLUSTER_WIRE_JOIN) {
		cl_track(cl, room);
		chat_room_subscribe_user(u, room);
	} else
		cl_unsubscribe_local(u, room);
}

/* hub_user_each of a LOGOUT: closes the sessions of that token. */
static void
cl_logout_user(void *arg, struct hub_user *u)
{
	const uint8_t *hash = arg;
	struct session *s, *next;

	for (s = LIST_FIRST(&u->sessions); s != NULL; s = next) {
		next = LIST_NEXT(s, user_link);
		if (memcmp(s->token_hash, hash, 32) == 0)
			conn_ws_close(s->conn, 4001, "logged out");
	}
}

/* --- presence ------------------------------------------------------ */

static int
cl_cmp(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

/* 1 if node n has user online. */
static int
cl_node_has(const struct cl_node *n, int64_t user)
{
	return n->n > 0 &&
	       bsearch(&user, n->users, n->n, sizeof *n->users, cl_cmp) !=
	           NULL;
}

int
chat_cluster_online_elsewhere(struct server *srv, int64_t user_id)
{
	struct chat_cluster *cl = srv->cluster;

	if (cl == NULL)
		return 0;
	for (struct cl_node *n = cl->nodes; n != NULL; n = n->next)
		if (cl_node_has(n, user_id))
			return 1;
	return 0;
}

/* member_rooms callback: the presence frame to the room's sessions here. */
struct cl_presence {
	struct chat_cluster *cl;
	struct frame *f;
	int64_t user;
};

static int
cl_presence_room(void *arg, const struct room_state *st)
{
	struct cl_presence *p = arg;
	struct hub_room *room =
	    hub_room_by_id(p->cl->srv->chat->hub, st->room.id);

	if (room != NULL)
		hub_mark_send(p->cl->srv->chat->hub, room, p->f, p->user);
	return 0;
}

/* A user of another node went online or offline for the whole cluster:
 * tells the users here who share a room with them. */
static void
cl_presence_changed(struct chat_cluster *cl, int64_t user, int online)
{
	struct server *srv = cl->srv;
	struct cl_presence p = {cl, NULL, user};
	struct user u;

	if (hub_user_find(srv->chat->hub, user) != NULL)
		return; /* online here: nothing changes for anyone */
	if (user_by_id(srv->db, user, &u) != 0)
		return;
	p.f = chat_frame(json_pack("{s:s,s:s,s:s}", "type", "presence",
	    "user", u.username, "status", online ? "online" : "offline"));
	hub_mark_begin(srv->chat->hub);
	member_rooms(srv->db, user, cl_presence_room, &p);
	frame_unref(p.f);
}

/* The node called id (len bytes), made if new. */
static struct cl_node *
cl_node_get(struct chat_cluster *cl, const char *id, size_t len)
{
	struct cl_node *n;

	for (n = cl->nodes; n != NULL; n = n->next)
		if (strlen(n->id) == len && memcmp(n->id, id, len) == 0)
			return n;
	n = xcalloc(1, sizeof *n);
	memcpy(n->id, id, len);
	n->ttl_ms = CLUSTER_TTL_MS;
	n->seen_ms = cl_now();
	n->next = cl->nodes;
	cl->nodes = n;
	log_info("cluster: node %s joined", n->id);
	return n;
}

/* Sets user's state on node n, telling the users here when that changes
 * the user's state for the whole cluster. */
static void
cl_node_set(struct chat_cluster *cl, struct cl_node *n, int64_t user,
            int online)
{
	int had = cl_node_has(n, user), before, after;

	if (had == online)
		return;
	before = chat_cluster_online_elsewhere(cl->srv, user);
	if (online) {
		if (n->n == n->cap) {
			n->cap = n->cap ? n->cap * 2 : 16;
			n->users = xrealloc(n->users, n->cap * sizeof *n->users);
		}
		n->users[n->n++] = user;
		qsort(n->users, n->n, sizeof *n->users, cl_cmp);
	} else {
		int64_t *at = bsearch(&user, n->users, n->n, sizeof *n->users,
		                      cl_cmp);

		memmove(at, at + 1,
		        (size_t)(n->users + n->n - at - 1) * sizeof *at);
		n->n--;
	}
	after = chat_cluster_online_elsewhere(cl->srv, user);
	if (before != after)
		cl_presence_changed(cl, user, after);
}

/* A complete heartbeat round of n: its users are exactly list. */
static void
cl_node_reconcile(struct chat_cluster *cl, struct cl_node *n,
                  int64_t *list, size_t count)
{
	size_t i;

	if (count > 0)
		qsort(list, count, sizeof *list, cl_cmp);
	/* Gone first (iterating a copy: cl_node_set edits n->users). */
	if (n->n > 0) {
		int64_t *old = xmalloc(n->n * sizeof *old);
		size_t nold = n->n;

		memcpy(old, n->users, nold * sizeof *old);
		for (i = 0; i < nold; i++)
			if (count == 0 ||
			    bsearch(&old[i], list, count, sizeof *list,
			            cl_cmp) == NULL)
				cl_node_set(cl, n, old[i], 0);
		free(old);
	}
	for (i = 0; i < count; i++)
		cl_node_set(cl, n, list[i], 1);
}

static void
cl_on_heartbeat(struct chat_cluster *cl, struct cl_node *n,
                const struct cluster_wire_msg *m)
{
	n->seen_ms = cl_now();
	n->ttl_ms = m->ttl_ms;
	if (m->part == 0) {
		n->round = m->round;
		n->npend = 0;
		n->next_part = 0;
	}
	if (m->round != n->round || m->part != n->next_part)
		return; /* a part missed: the next round will do */
	for (size_t i = 0; i < m->n_users; i++)
		cl_list_add(&n->pend, &n->npend, &n->cappend,
		            cluster_wire_user(m, i));
	n->next_part++;
	if (n->next_part == m->parts)
		cl_node_reconcile(cl, n, n->pend, n->npend);
}

static void cl_refill_room(void *arg, struct hub_room *room);

/* Forgets node n: its users go offline (those online nowhere else). */
static void
cl_node_drop(struct chat_cluster *cl, struct cl_node *n)
{
	struct cl_node **pp;

	log_warn("cluster: node %s is gone (no heartbeat for %lld ms)", n->id,
	         (long long)n->ttl_ms);
	cl->st.nodes_lost++;
	cl_node_reconcile(cl, n, NULL, 0);
	for (pp = &cl->nodes; *pp != n; pp = &(*pp)->next)
		;
	*pp = n->next;
	free(n->users);
	free(n->pend);
	free(n);
	/* It may have died between a commit and its publish: read every
	 * room back once, so that such a change is not left unseen. */
	hub_room_each(cl->srv->chat->hub, cl_refill_room, cl);
}

void
chat_cluster_presence(struct server *srv, int64_t user_id, int online)
{
	struct cluster_wire_msg m = {0};

	if (srv->cluster == NULL)
		return;
	m.kind = CLUSTER_WIRE_PRESENCE;
	m.user_id = user_id;
	m.online = online;
	cl_publish(srv->cluster, &m, 0);
}

/* member_sharing callback: "online" for one user of another node. */
static int
cl_snapshot_one(void *arg, int64_t id, const char *username)
{
	(void)id;
	chat_reply(arg, json_pack("{s:s,s:s,s:s}", "type", "presence", "user",
	    username, "status", "online"), NULL);
	return 0;
}

void
chat_cluster_snapshot(struct session *s)
{
	struct server *srv = s->conn->srv;
	struct chat_cluster *cl = srv->cluster;
	int64_t *ids = NULL;
	size_t n = 0, cap = 0;

	if (cl == NULL)
		return;
	/* The users online only on other nodes, each once... */
	for (struct cl_node *nd = cl->nodes; nd != NULL; nd = nd->next)
		for (size_t i = 0; i < nd->n; i++) {
			if (nd->users[i] == s->user->id ||
			    hub_user_find(srv->chat->hub, nd->users[i]) != NULL)
				continue;
			if (n == cap) {
				cap = cap ? cap * 2 : 64;
				ids = xrealloc(ids, cap * sizeof *ids);
			}
			ids[n++] = nd->users[i];
		}
	if (n > 1) {
		size_t k = 1;

		qsort(ids, n, sizeof *ids, cl_cmp);
		for (size_t i = 1; i < n; i++)
			if (ids[i] != ids[k - 1])
				ids[k++] = ids[i];
		n = k;
	}
	/* ...who share a room with s's user: one statement per 256. */
	if (n > 0)
		member_sharing(srv->db, s->user->id, ids, n, cl_snapshot_one, s);
	free(ids);
}

/* --- the channel ----------------------------------------------------- */

static void
cl_on_message(void *arg, const uint8_t *buf, size_t len)
{
	struct chat_cluster *cl = arg;
	struct cluster_wire_msg m;
	struct cl_node *n;

	if (cluster_wire_decode(&m, buf, len) != 0 ||
	    ((m.kind == CLUSTER_WIRE_EVENT || m.kind == CLUSTER_WIRE_EPHEMERAL) &&
	     !cl_frame_ok(m.payload, m.payload_len))) {
		cl->st.bad_in++;
		return;
	}
	if (m.node_len == strlen(cl->node) &&
	    memcmp(m.node, cl->node, m.node_len) == 0) {
		/* Our own: only events matter (dropped as delivered). */
		return;
	}
	cl->st.received++;
	switch (m.kind) {
	case CLUSTER_WIRE_EVENT:
		cl_on_event(cl, &m);
		break;
	case CLUSTER_WIRE_HEAD:
		cl_on_head(cl, &m);
		break;
	case CLUSTER_WIRE_EPHEMERAL:
		cl_on_ephemeral(cl, &m);
		break;
	case CLUSTER_WIRE_JOIN:
	case CLUSTER_WIRE_KICK:
		cl_on_member(cl, &m);
		break;
	case CLUSTER_WIRE_LOGOUT:
		hub_user_each(cl->srv->chat->hub, cl_logout_user,
		    (void *)m.token_hash);
		break;
	case CLUSTER_WIRE_PRESENCE:
		n = cl_node_get(cl, m.node, m.node_len);
		cl_node_set(cl, n, m.user_id, m.online);
		break;
	case CLUSTER_WIRE_HEARTBEAT:
		n = cl_node_get(cl, m.node, m.node_len);
		cl_on_heartbeat(cl, n, &m);
		break;
	case CLUSTER_WIRE_USER_GONE:
		break; /* the admin commands reach every node through the db */
	}
}

/* hub_room_each after Redis came back: read every room back from where
 * it was (what was published meanwhile is lost to this node). */
static void
cl_refill_room(void *arg, struct hub_room *room)
{
	struct chat_cluster *cl = arg;
	int64_t from;

	if (LIST_EMPTY(&room->subs))
		return;
	cl_track(cl, room);
	from = cluster_order_refill(cl->order, room->id, cl_now());
	if (from >= 0)
		cl_fill(cl, room, from);
}

static void
cl_on_up(void *arg)
{
	struct chat_cluster *cl = arg;
	struct hub_room *room;
	size_t n = cl->nheads;

	cl->up = 1;
	log_info("cluster: Redis is up (node %s, channel %s)", cl->node,
	         cl->channel);
	/* What this node could not publish: the others read it back. */
	cl->nheads = 0;
	for (size_t i = 0; i < n; i++) {
		struct cluster_wire_msg m = {0};

		if ((room = hub_room_by_id(cl->srv->chat->hub, cl->heads[i])) ==
		    NULL)
			continue;
		m.kind = CLUSTER_WIRE_HEAD;
		m.room_id = room->id;
		m.seq = room->last_seq;
		cl_publish(cl, &m, 0);
	}
	hub_room_each(cl->srv->chat->hub, cl_refill_room, cl);
}

static void
cl_on_down(void *arg)
{
	struct chat_cluster *cl = arg;

	if (cl->up)
		log_warn("cluster: Redis is down: local delivery goes on, "
		         "the other nodes catch up when it is back");
	cl->up = 0;
	cl->st.outages++;
}

static void
cl_on_publish_failed(void *arg, uint64_t tag)
{
	struct chat_cluster *cl = arg;

	cl->st.publish_errors++;
	if (tag > 0)
		cl_list_add(&cl->heads, &cl->nheads, &cl->capheads,
		            (int64_t)tag);
}

/* The users online here, gathered for a heartbeat. */
struct cl_users {
	int64_t *a;
	size_t n, cap;
};

static void
cl_collect_user(void *arg, struct hub_user *u)
{
	struct cl_users *l = arg;

	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 64;
		l->a = xrealloc(l->a, l->cap * sizeof *l->a);
	}
	l->a[l->n++] = u->id;
}

/* Every CLUSTER_HEARTBEAT_MS, outside the gate (it needs no database): the
 * users online here, to the other nodes. A node whose database work is
 * stuck behind a slow statement is still alive, and its users online. */
static void
cl_beat(int fd, short what, void *arg)
{
	struct chat_cluster *cl = arg;
	struct cl_users l = {0};
	int64_t *users;
	size_t n, parts, i;

	(void)fd;
	(void)what;
	hub_user_each(cl->srv->chat->hub, cl_collect_user, &l);
	users = l.a;
	n = l.n;
	parts = n == 0 ? 1 : (n + CLUSTER_WIRE_HEARTBEAT_USERS - 1) /
	                         CLUSTER_WIRE_HEARTBEAT_USERS;
	if (parts > CLUSTER_WIRE_HEARTBEAT_PARTS)
		parts = CLUSTER_WIRE_HEARTBEAT_PARTS;
	cl->round++;
	for (i = 0; i < parts; i++) {
		struct cluster_wire_msg m = {0};
		size_t off = i * CLUSTER_WIRE_HEARTBEAT_USERS;

		m.kind = CLUSTER_WIRE_HEARTBEAT;
		m.ttl_ms = CLUSTER_TTL_MS;
		m.round = cl->round;
		m.part = (uint32_t)i;
		m.parts = (uint32_t)parts;
		m.users_in = users + off;
		m.n_users = n - off < CLUSTER_WIRE_HEARTBEAT_USERS
		    ? n - off : CLUSTER_WIRE_HEARTBEAT_USERS;
		if (n == 0)
			m.users_in = NULL;
		cl_publish(cl, &m, 0);
	}
	free(users);
}

/* Every CLUSTER_HEARTBEAT_MS, in the gate: nodes gone silent are dropped,
 * rooms whose held events waited too long are read back. */
static void
cl_tick(int fd, short what, void *arg)
{
	struct chat_cluster *cl = arg;
	int64_t rooms[64], now = cl_now();
	size_t i, nexp;
	struct cl_node *node, *next;

	(void)fd;
	(void)what;
	for (node = cl->nodes; node != NULL; node = next) {
		next = node->next;
		if (now - node->seen_ms > node->ttl_ms)
			cl_node_drop(cl, node);
	}
	nexp = cluster_order_expired(cl->order, now, rooms, 64);
	for (i = 0; i < nexp; i++) {
		struct hub_room *room =
		    hub_room_by_id(cl->srv->chat->hub, rooms[i]);

		if (room != NULL)
			cl_fill(cl, room, cluster_order_last(cl->order,
			                                     room->id));
	}
}

static void
cl_job_run(struct gate_job *g)
{
	struct cl_job *j = (struct cl_job *)g;
	struct chat_cluster *cl = j->cl;

	TAILQ_REMOVE(&cl->jobs, j, link);
	cl->njobs--;
	cl->jobs_bytes -= j->len;
	switch (j->what) {
	case CL_JOB_MESSAGE:
		cl_on_message(cl, j->data, j->len);
		break;
	case CL_JOB_UP:
		cl_on_up(cl);
		break;
	case CL_JOB_DOWN:
		cl_on_down(cl);
		break;
	case CL_JOB_REFILL:
		cl->refill_queued = 0;
		hub_room_each(cl->srv->chat->hub, cl_refill_room, cl);
		break;
	}
	free(j);
}

/* Queues a Redis callback for the gate (off, as in the teardown: it runs
 * at once). */
static void
cl_job_post(struct chat_cluster *cl, int what, const uint8_t *buf,
    size_t len)
{
	struct cl_job *j;

	if (what == CL_JOB_MESSAGE && (cl->njobs >= cl->jobs_max ||
		cl->jobs_bytes + len > CL_JOBS_BYTES)) {
		cl->st.gate_drops++;
		if (cl->refill_queued)
			return;
		if (cl->st.gate_drops == 1)
			log_warn("cluster: more than %u messages (or %u MiB) "
			    "from Redis wait for the database: dropped, rooms "
			    "read back instead", cl->jobs_max,
			    CL_JOBS_BYTES >> 20);
		cl->refill_queued = 1;
		what = CL_JOB_REFILL;
		len = 0;
	}
	j = xmalloc(sizeof *j + len);
	memset(&j->job, 0, sizeof j->job);
	j->cl = cl;
	j->what = what;
	j->len = len;
	if (len > 0)
		memcpy(j->data, buf, len);
	TAILQ_INSERT_TAIL(&cl->jobs, j, link);
	cl->njobs++;
	cl->jobs_bytes += len;
	gate_post(&j->job, cl_job_run);
}

static void
cl_gate_message(void *arg, const uint8_t *buf, size_t len)
{
	cl_job_post(arg, CL_JOB_MESSAGE, buf, len);
}

static void
cl_gate_up(void *arg)
{
	cl_job_post(arg, CL_JOB_UP, NULL, 0);
}

static void
cl_gate_down(void *arg)
{
	cl_job_post(arg, CL_JOB_DOWN, NULL, 0);
}

int
chat_cluster_start(struct server *srv)
{
	struct config *cfg = srv->cfg;
	struct redis_callbacks cb = {cl_gate_message, cl_gate_up, cl_gate_down,
	                             cl_on_publish_failed, NULL};
	struct chat_cluster *cl;
	struct timeval tv = {0, CLUSTER_HEARTBEAT_MS * 1000};
	char err[256], host[200];

	if (cfg->redis_url == NULL)
		return 0;
	cl = xcalloc(1, sizeof *cl);
	cl->srv = srv;
	TAILQ_INIT(&cl->jobs);
	cl->jobs_max = CL_JOBS_MAX;
	if (getenv("CHATD_TEST_CL_JOBS_MAX") != NULL)
		cl->jobs_max = (unsigned)strtoul(getenv("CHATD_TEST_CL_JOBS_MAX"),
		    NULL, 10);
	if (cfg->node_id != NULL)
		snprintf(cl->node, sizeof cl->node, "%s", cfg->node_id);
	else {
		if (gethostname(host, sizeof host) != 0)
			snprintf(host, sizeof host, "chatd");
		host[sizeof host - 1] = '\0';
		snprintf(cl->node, sizeof cl->node, "%.40s:%.20s", host,
		         strrchr(cfg->listen, ':') ? strrchr(cfg->listen, ':') + 1
		                                   : cfg->listen);
	}
	/* One channel per database: nodes of another deployment on the
	 * same Redis never mix with these. */
	snprintf(cl->channel, sizeof cl->channel, "chatd:%s",
	         db_epoch(srv->db));
	cl->order = cluster_order_new(NULL);
	cb.arg = cl;
	cl->redis = redis_new(srv->base, cfg->redis_url, cl->channel, &cb,
	                      err, sizeof err);
	if (cl->redis == NULL) {
		fprintf(stderr, "chatd: --redis: %s\n", err);
		cluster_order_free(cl->order);
		free(cl);
		return -1;
	}
	cl->tick = gate_event_new(srv->base, -1, EV_PERSIST, cl_tick, cl);
	event_add(cl->tick, &tv);
	cl->beat = event_new(srv->base, -1, EV_PERSIST, cl_beat, cl);
	event_add(cl->beat, &tv);
	srv->cluster = cl;
	log_info("cluster: node %s", cl->node);
	return 0;
}

void
chat_cluster_stop(struct server *srv)
{
	struct chat_cluster *cl = srv->cluster;
	struct cl_node *n;
	struct cl_job *j;

	if (cl == NULL)
		return;
	srv->cluster = NULL;
	if (cl->tick != NULL)
		gate_event_free(cl->tick);
	if (cl->beat != NULL)
		event_free(cl->beat);
	while ((j = TAILQ_FIRST(&cl->jobs)) != NULL) {
		TAILQ_REMOVE(&cl->jobs, j, link);
		gate_cancel(&j->job);
		free(j);
	}
	redis_free(cl->redis);
	cluster_order_free(cl->order);
	while ((n = cl->nodes) != NULL) {
		cl->nodes = n->next;
		free(n->users);
		free(n->pend);
		free(n);
	}
	free(cl->heads);
	free(cl->fills);
	free(cl);
}

/* One counter or gauge line of the cluster. */
#define CL_METRIC(f, name, type, help, v)                                      \
	metrics_write_one((f), "chatd_cluster_" name, (type), (help),          \
	    (unsigned long long)(v))

void
chat_cluster_metrics(struct server *srv, FILE *f)
{
	struct chat_cluster *cl = srv->cluster;
	const struct redis_stats *rs;
	const struct cluster_order_stats *os;
	unsigned nodes = 0;

	if (db_is_postgres(srv->db)) {
		int down;
		uint64_t n = db_pg_outages(srv->db, &down);

		CL_METRIC(f, "db_up", "gauge",
		    "1 while PostgreSQL answers (as of the last statement).",
		    !down);
		CL_METRIC(f, "db_outages_total", "counter",
		    "Times PostgreSQL became unreachable.", n);
	}
	if (cl == NULL)
		return;
	rs = redis_stats(cl->redis);
	os = cluster_order_stats(cl->order);
	for (struct cl_node *n = cl->nodes; n != NULL; n = n->next)
		nodes++;
	CL_METRIC(f, "redis_up", "gauge", "1 while Redis is connected.",
	    redis_up(cl->redis));
	CL_METRIC(f, "nodes", "gauge",
	    "Other nodes whose heartbeats arrive.", nodes);
	CL_METRIC(f, "redis_outages_total", "counter",
	    "Times the connection to Redis was lost.", cl->st.outages);
	CL_METRIC(f, "gate_drops_total", "counter",
	    "Messages from Redis dropped while too many waited for the "
	    "database (rooms read back instead).", cl->st.gate_drops);
	CL_METRIC(f, "published_total", "counter",
	    "Messages Redis acknowledged.", rs->published);
	CL_METRIC(f, "publish_errors_total", "counter",
	    "Messages not published (Redis down, over the bound, lost).",
	    cl->st.publish_errors);
	CL_METRIC(f, "received_total", "counter",
	    "Messages from other nodes.", cl->st.received);
	CL_METRIC(f, "bad_messages_total", "counter",
	    "Messages on the channel that did not decode.", cl->st.bad_in);
	CL_METRIC(f, "events_held_total", "counter",
	    "Room events held until an earlier one arrived.", os->holds);
	CL_METRIC(f, "events_dropped_total", "counter",
	    "Room events already delivered (echoes, duplicates).", os->drops);
	CL_METRIC(f, "gaps_total", "counter",
	    "Gaps in a room's events read back from the database.", os->gaps);
	CL_METRIC(f, "fills_total", "counter",
	    "Reads of a room back from the database.", cl->st.fills);
	CL_METRIC(f, "fill_events_total", "counter",
	    "Events those reads delivered.", cl->st.fill_rows);
	CL_METRIC(f, "fill_errors_total", "counter",
	    "Reads back that failed (retried).", cl->st.fill_errors);
	CL_METRIC(f, "hold_overflows_total", "counter",
	    "Held events dropped past the bound (read back instead).",
	    os->overflows);
	CL_METRIC(f, "held_events", "gauge",
	    "Room events held now.", os->held_events);
	CL_METRIC(f, "nodes_lost_total", "counter",
	    "Nodes that went silent (their users offline).",
	    cl->st.nodes_lost);
	CL_METRIC(f, "order_breaks_total", "counter",
	    "This node's own events delivered out of turn (should stay 0).",
	    cl->st.order_breaks);
}
