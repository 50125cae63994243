/* chatd/cluster_wire.c — the messages nodes exchange over Redis (sans-IO) */
#include "chatd/cluster_wire.h"

#include <stdlib.h>
#include <string.h>

#include "chatd/xmalloc.h"

#define VARINT_MAX 9 /* 63 bits, 7 a byte */

/* A writer into a buffer that knows when it would overflow. */
struct out {
	uint8_t *p;
	size_t len, cap;
	int over;
};

/* A reader of a buffer that fails once past its end. */
struct in {
	const uint8_t *p;
	size_t len, off;
};

/* Appends n bytes (or marks the writer full). */
static void
put_bytes(struct out *o, const void *b, size_t n)
{
	if (o->over || o->cap - o->len < n) {
		o->over = 1;
		return;
	}
	if (n > 0)
		memcpy(o->p + o->len, b, n);
	o->len += n;
}

/* Appends one byte. */
static void
put_u8(struct out *o, uint8_t b)
{
	put_bytes(o, &b, 1);
}

/* Appends v (>= 0) as a minimal unsigned LEB128. */
static void
put_uint(struct out *o, uint64_t v)
{
	uint8_t b[VARINT_MAX + 1];
	size_t n = 0;

	do {
		b[n] = v & 0x7f;
		v >>= 7;
		if (v)
			b[n] |= 0x80;
		n++;
	} while (v);
	put_bytes(o, b, n);
}

/* Appends a length and the bytes. */
static void
put_str(struct out *o, const void *b, size_t n)
{
	put_uint(o, n);
	put_bytes(o, b, n);
}

/* Appends v as 8 bytes big-endian. */
static void
put_u64(struct out *o, uint64_t v)
{
	uint8_t b[8];

	for (int i = 0; i < 8; i++)
		b[i] = v >> (56 - 8 * i);
	put_bytes(o, b, 8);
}

/* Reads one byte: 0, or -1 past the end. */
static int
get_u8(struct in *in, uint8_t *b)
{
	if (in->off >= in->len)
		return -1;
	*b = in->p[in->off++];
	return 0;
}

/* Reads a minimal varint of at most INT64_MAX: 0, or -1. */
static int
get_uint(struct in *in, int64_t *v)
{
	uint64_t r = 0;
	uint8_t b;

	for (int i = 0; i < VARINT_MAX; i++) {
		if (get_u8(in, &b) < 0)
			return -1;
		r |= (uint64_t)(b & 0x7f) << (7 * i);
		if (!(b & 0x80)) {
			if (b == 0 && i > 0)
				return -1; /* not minimal */
			*v = (int64_t)r;
			return 0;
		}
	}
	return -1; /* 9 groups of 7 bits make 63: a 10th never fits */
}

/* Points *b at the next n bytes: 0, or -1 if there are fewer. */
static int
get_bytes(struct in *in, const uint8_t **b, size_t n)
{
	if (in->len - in->off < n)
		return -1;
	*b = in->p + in->off;
	in->off += n;
	return 0;
}

/* Reads a str of at most max bytes: 0, or -1. */
static int
get_str(struct in *in, const uint8_t **b, size_t *n, size_t max)
{
	int64_t v;

	if (get_uint(in, &v) < 0 || (uint64_t)v > max)
		return -1;
	*n = (size_t)v;
	return get_bytes(in, b, *n);
}

/* Reads a uint of at most max: 0, or -1. */
static int
get_uint_max(struct in *in, int64_t *v, int64_t max)
{
	return get_uint(in, v) < 0 || *v > max ? -1 : 0;
}

/* Whether an id or seq is in range. */
static int
id_ok(int64_t v)
{
	return v >= 0;
}

/* Whether m is a message the decoder would accept. */
static int
msg_valid(const struct cluster_wire_msg *m)
{
	if (m->node_len < 1 || m->node_len > CLUSTER_WIRE_NODE_MAX ||
	    m->node == NULL)
		return 0;
	switch (m->kind) {
	case CLUSTER_WIRE_EVENT:
		if (!id_ok(m->prev_seq) || m->seq <= m->prev_seq)
			return 0;
		/* FALLTHROUGH */
	case CLUSTER_WIRE_EPHEMERAL:
		return id_ok(m->room_id) && id_ok(m->user_id) &&
		       m->payload_len <= CLUSTER_WIRE_PAYLOAD_MAX &&
		       (m->payload != NULL || m->payload_len == 0);
	case CLUSTER_WIRE_HEAD:
		return id_ok(m->room_id) && id_ok(m->seq);
	case CLUSTER_WIRE_PRESENCE:
		return id_ok(m->user_id) && (m->online == 0 || m->online == 1);
	case CLUSTER_WIRE_HEARTBEAT:
		if (m->ttl_ms < 1 || m->ttl_ms > CLUSTER_WIRE_TTL_MAX ||
		    m->round > INT64_MAX || m->parts < 1 ||
		    m->parts > CLUSTER_WIRE_HEARTBEAT_PARTS ||
		    m->part >= m->parts ||
		    m->n_users > CLUSTER_WIRE_HEARTBEAT_USERS ||
		    (m->n_users == 0 && m->parts != 1) ||
		    (m->n_users > 0 && m->users_in == NULL && m->users == NULL))
			return 0;
		for (size_t i = 0; i < m->n_users; i++)
			if (m->users_in ? !id_ok(m->users_in[i])
			                : (m->users[8 * i] & 0x80))
				return 0;
		return 1;
	case CLUSTER_WIRE_LOGOUT:
		return m->token_hash != NULL;
	case CLUSTER_WIRE_USER_GONE:
		return id_ok(m->user_id);
	case CLUSTER_WIRE_KICK:
	case CLUSTER_WIRE_JOIN:
		return id_ok(m->room_id) && id_ok(m->user_id);
	}
	return 0;
}

size_t
cluster_wire_size(const struct cluster_wire_msg *m)
{
	if (!msg_valid(m))
		return 0;
	return CLUSTER_WIRE_OVERHEAD + m->payload_len + 8 * m->n_users +
	       (m->kind == CLUSTER_WIRE_LOGOUT ? CLUSTER_WIRE_HASH_LEN : 0);
}

ssize_t
cluster_wire_encode(const struct cluster_wire_msg *m, uint8_t *buf, size_t cap)
{
	struct out o = {.p = buf, .cap = cap};

	if (!msg_valid(m))
		return -1;
	put_u8(&o, CLUSTER_WIRE_VERSION);
	put_u8(&o, m->kind);
	put_str(&o, m->node, m->node_len);
	switch (m->kind) {
	case CLUSTER_WIRE_EVENT:
		put_uint(&o, m->room_id);
		put_uint(&o, m->prev_seq);
		put_uint(&o, m->seq);
		put_str(&o, m->payload, m->payload_len);
		break;
	case CLUSTER_WIRE_HEAD:
		put_uint(&o, m->room_id);
		put_uint(&o, m->seq);
		break;
	case CLUSTER_WIRE_EPHEMERAL:
		put_uint(&o, m->room_id);
		put_uint(&o, m->user_id);
		put_str(&o, m->payload, m->payload_len);
		break;
	case CLUSTER_WIRE_PRESENCE:
		put_uint(&o, m->user_id);
		put_u8(&o, m->online);
		break;
	case CLUSTER_WIRE_HEARTBEAT:
		put_uint(&o, m->ttl_ms);
		put_uint(&o, m->round);
		put_uint(&o, m->part);
		put_uint(&o, m->parts);
		put_uint(&o, m->n_users);
		if (m->users_in == NULL)
			put_bytes(&o, m->users, 8 * m->n_users);
		else
			for (size_t i = 0; i < m->n_users; i++)
				put_u64(&o, m->users_in[i]);
		break;
	case CLUSTER_WIRE_LOGOUT:
		put_bytes(&o, m->token_hash, CLUSTER_WIRE_HASH_LEN);
		break;
	case CLUSTER_WIRE_USER_GONE:
		put_uint(&o, m->user_id);
		break;
	case CLUSTER_WIRE_KICK:
	case CLUSTER_WIRE_JOIN:
		put_uint(&o, m->room_id);
		put_uint(&o, m->user_id);
		break;
	}
	return o.over ? -1 : (ssize_t)o.len;
}

uint8_t *
cluster_wire_encode_alloc(const struct cluster_wire_msg *m, size_t *len)
{
	size_t cap = cluster_wire_size(m);
	uint8_t *buf;
	ssize_t n;

	if (cap == 0)
		return NULL;
	buf = xmalloc(cap);
	n = cluster_wire_encode(m, buf, cap);
	if (n < 0) {
		free(buf);
		return NULL;
	}
	*len = (size_t)n;
	return buf;
}

/* Decodes the body of a HEARTBEAT: 0, or -1. */
static int
decode_heartbeat(struct in *in, struct cluster_wire_msg *m)
{
	int64_t ttl, round, part, parts, n;

	if (get_uint_max(in, &ttl, CLUSTER_WIRE_TTL_MAX) < 0 || ttl < 1 ||
	    get_uint(in, &round) < 0 ||
	    get_uint_max(in, &part, CLUSTER_WIRE_HEARTBEAT_PARTS) < 0 ||
	    get_uint_max(in, &parts, CLUSTER_WIRE_HEARTBEAT_PARTS) < 0 ||
	    parts < 1 || part >= parts ||
	    get_uint_max(in, &n, CLUSTER_WIRE_HEARTBEAT_USERS) < 0 ||
	    (n == 0 && parts != 1) ||
	    get_bytes(in, &m->users, 8 * (size_t)n) < 0)
		return -1;
	m->ttl_ms = ttl;
	m->round = round;
	m->part = part;
	m->parts = parts;
	m->n_users = n;
	for (int64_t i = 0; i < n; i++)
		if (m->users[8 * i] & 0x80)
			return -1; /* above INT64_MAX */
	return 0;
}

/* Decodes the body of m->kind: 0, or -1. */
static int
decode_body(struct in *in, struct cluster_wire_msg *m)
{
	const uint8_t *b;
	uint8_t u8;

	switch (m->kind) {
	case CLUSTER_WIRE_EVENT:
		if (get_uint(in, &m->room_id) < 0 ||
		    get_uint(in, &m->prev_seq) < 0 ||
		    get_uint(in, &m->seq) < 0 || m->seq <= m->prev_seq)
			return -1;
		return get_str(in, &m->payload, &m->payload_len,
		               CLUSTER_WIRE_PAYLOAD_MAX);
	case CLUSTER_WIRE_HEAD:
		if (get_uint(in, &m->room_id) < 0)
			return -1;
		return get_uint(in, &m->seq);
	case CLUSTER_WIRE_EPHEMERAL:
		if (get_uint(in, &m->room_id) < 0 ||
		    get_uint(in, &m->user_id) < 0)
			return -1;
		return get_str(in, &m->payload, &m->payload_len,
		               CLUSTER_WIRE_PAYLOAD_MAX);
	case CLUSTER_WIRE_PRESENCE:
		if (get_uint(in, &m->user_id) < 0 || get_u8(in, &u8) < 0 ||
		    u8 > 1)
			return -1;
		m->online = u8;
		return 0;
	case CLUSTER_WIRE_HEARTBEAT:
		return decode_heartbeat(in, m);
	case CLUSTER_WIRE_LOGOUT:
		if (get_bytes(in, &b, CLUSTER_WIRE_HASH_LEN) < 0)
			return -1;
		m->token_hash = b;
		return 0;
	case CLUSTER_WIRE_USER_GONE:
		return get_uint(in, &m->user_id);
	case CLUSTER_WIRE_KICK:
	case CLUSTER_WIRE_JOIN:
		if (get_uint(in, &m->room_id) < 0)
			return -1;
		return get_uint(in, &m->user_id);
	}
	return -1;
}

int
cluster_wire_decode(struct cluster_wire_msg *m, const uint8_t *buf, size_t len)
{
	struct in in = {.p = buf, .len = len};
	const uint8_t *node;
	uint8_t version, kind;

	memset(m, 0, sizeof(*m));
	if (buf == NULL || get_u8(&in, &version) < 0 ||
	    version != CLUSTER_WIRE_VERSION || get_u8(&in, &kind) < 0 ||
	    kind < CLUSTER_WIRE_EVENT || kind > CLUSTER_WIRE_JOIN ||
	    get_str(&in, &node, &m->node_len, CLUSTER_WIRE_NODE_MAX) < 0 ||
	    m->node_len == 0)
		goto bad;
	m->kind = kind;
	m->node = (const char *)node;
	if (decode_body(&in, m) < 0 || in.off != in.len)
		goto bad;
	return 0;
bad:
	memset(m, 0, sizeof(*m));
	return -1;
}

int64_t
cluster_wire_user(const struct cluster_wire_msg *m, size_t i)
{
	const uint8_t *b = m->users + 8 * i;
	uint64_t v = 0;

	for (int k = 0; k < 8; k++)
		v = v << 8 | b[k];
	return (int64_t)v;
}

const char *
cluster_wire_kind_name(int kind)
{
	static const char *const names[] = {
	    [CLUSTER_WIRE_EVENT] = "event",
	    [CLUSTER_WIRE_HEAD] = "head",
	    [CLUSTER_WIRE_EPHEMERAL] = "ephemeral",
	    [CLUSTER_WIRE_PRESENCE] = "presence",
	    [CLUSTER_WIRE_HEARTBEAT] = "heartbeat",
	    [CLUSTER_WIRE_LOGOUT] = "logout",
	    [CLUSTER_WIRE_USER_GONE] = "user_gone",
	    [CLUSTER_WIRE_KICK] = "kick",
	    [CLUSTER_WIRE_JOIN] = "join",
	};

	if (kind < CLUSTER_WIRE_EVENT || kind > CLUSTER_WIRE_JOIN)
		return "?";
	return names[kind];
}
