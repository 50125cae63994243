/* chatd/cluster_wire.h — the messages nodes exchange over Redis (sans-IO) */
#ifndef CHATD_CLUSTER_WIRE_H
#define CHATD_CLUSTER_WIRE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * One message is one Redis pub/sub payload (binary-safe):
 *
 *   version:u8 (= CLUSTER_WIRE_VERSION)  kind:u8  node:str  body...
 *
 * where node is the sender's node id (1..CLUSTER_WIRE_NODE_MAX bytes), and
 *   uint  a varint: unsigned LEB128, 1..9 bytes, minimal (no trailing 0x00
 *         group), at most INT64_MAX; ids and seqs are uints.
 *   str   uint length, then that many bytes.
 *   u64   8 bytes, big-endian, at most INT64_MAX.
 *
 * The body by kind (every field present, nothing after the last one):
 *
 *   EVENT      room:uint prev_seq:uint seq:uint payload:str
 *              a stored change of room; prev_seq < seq; payload (an encoded
 *              WebSocket frame) at most CLUSTER_WIRE_PAYLOAD_MAX bytes.
 *   HEAD       room:uint seq:uint
 *              room has reached seq (sent after the sender could not
 *              publish; a receiver behind it reads the gap from the db).
 *   EPHEMERAL  room:uint user:uint payload:str
 *              typing and the like: given as is to local subscribers of
 *              room; not ordered, not stored. payload as for EVENT.
 *   PRESENCE   user:uint online:u8 (0 or 1)
 *   HEARTBEAT  ttl_ms:uint round:uint part:uint parts:uint count:uint
 *              users:u64[count]
 *              the users online on node. One round (a node counts them up)
 *              is split into parts 0..parts-1 of at most
 *              CLUSTER_WIRE_HEARTBEAT_USERS users each (part < parts <=
 *              CLUSTER_WIRE_HEARTBEAT_PARTS; count may be 0 only when
 *              parts == 1). A receiver that has every part of a round knows
 *              node's whole list; if no heartbeat comes from node within
 *              ttl_ms (1..CLUSTER_WIRE_TTL_MAX) of the last one, the node is
 *              gone and its users with it.
 *   LOGOUT     hash:32 bytes  (a session token's hash: close it, 4001)
 *   USER_GONE  user:uint      (account deleted: close all its sessions)
 *   KICK       room:uint user:uint (unsubscribe user's sessions from room)
 *   JOIN       room:uint user:uint (subscribe user's sessions to room)
 *
 * The decoder accepts exactly what the encoder writes for a valid message
 * and nothing else: any other input is -1, read within its bounds only.
 */

#define CLUSTER_WIRE_VERSION 1
#define CLUSTER_WIRE_NODE_MAX 64
#define CLUSTER_WIRE_PAYLOAD_MAX (16u << 20)
#define CLUSTER_WIRE_HEARTBEAT_USERS 1024
#define CLUSTER_WIRE_HEARTBEAT_PARTS 4096
#define CLUSTER_WIRE_TTL_MAX 3600000
#define CLUSTER_WIRE_HASH_LEN 32
/* Bytes of a message besides its payload or heartbeat users, at most. */
#define CLUSTER_WIRE_OVERHEAD (2 + 1 + CLUSTER_WIRE_NODE_MAX + 6 * 9)

enum cluster_wire_kind {
	CLUSTER_WIRE_EVENT = 1,
	CLUSTER_WIRE_HEAD = 2,
	CLUSTER_WIRE_EPHEMERAL = 3,
	CLUSTER_WIRE_PRESENCE = 4,
	CLUSTER_WIRE_HEARTBEAT = 5,
	CLUSTER_WIRE_LOGOUT = 6,
	CLUSTER_WIRE_USER_GONE = 7,
	CLUSTER_WIRE_KICK = 8,
	CLUSTER_WIRE_JOIN = 9,
};

/* A message, to encode or as decoded. Decoded pointers point into the
 * input buffer (valid while it is); fields a kind does not use are 0. */
struct cluster_wire_msg {
	enum cluster_wire_kind kind;
	const char *node; /* not NUL-terminated */
	size_t node_len;
	int64_t room_id;        /* EVENT HEAD EPHEMERAL KICK JOIN */
	int64_t user_id;        /* EPHEMERAL PRESENCE USER_GONE KICK JOIN */
	int64_t prev_seq;       /* EVENT */
	int64_t seq;            /* EVENT HEAD */
	const uint8_t *payload; /* EVENT EPHEMERAL */
	size_t payload_len;
	int online;                /* PRESENCE: 0 or 1 */
	const uint8_t *token_hash; /* LOGOUT: CLUSTER_WIRE_HASH_LEN bytes */
	/* HEARTBEAT */
	uint32_t ttl_ms;
	uint64_t round;
	uint32_t part, parts;
	/* Decoded: n_users big-endian u64s (read them with cluster_wire_user).
	 * To encode: set users_in, or users (as decoded) if users_in is NULL.
	 */
	const uint8_t *users;
	const int64_t *users_in;
	size_t n_users;
};

/* Bytes cluster_wire_encode needs for m, at most (0 if m is invalid). */
size_t cluster_wire_size(const struct cluster_wire_msg *m);
/* Encodes m into buf (cap bytes): the length written, or -1 if m is
 * invalid (a field out of its range) or cap is too small. */
ssize_t cluster_wire_encode(const struct cluster_wire_msg *m, uint8_t *buf,
                            size_t cap);
/* Encodes m into a malloc'd buffer (the caller frees it) and sets *len;
 * NULL if m is invalid. */
uint8_t *cluster_wire_encode_alloc(const struct cluster_wire_msg *m,
                                   size_t *len);
/* Decodes buf into m: 0, or -1 if buf is not exactly one valid message. */
int cluster_wire_decode(struct cluster_wire_msg *m, const uint8_t *buf,
                        size_t len);
/* User i (< n_users) of a decoded HEARTBEAT. */
int64_t cluster_wire_user(const struct cluster_wire_msg *m, size_t i);
/* The kind's name ("event", ...), or "?" for none. */
const char *cluster_wire_kind_name(int kind);

#endif
