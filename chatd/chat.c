/* chatd/chat.c — the chat protocol over WebSocket (PROTOCOL.md): the
 * request dispatcher, the connection callbacks, replies, and the group
 * commit (a loop pass's changes in one transaction, then their actions).
 * Rooms are in chat_room.c, messages in chat_message.c, roles and
 * moderation in chat_mod.c, the session (auth, resync, presence, logout)
 * in chat_session.c, requests waiting for the write lock in chat_park.c,
 * room states in chat_state.c. */
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "chatd/chat.h"
#include "chatd/chat_int.h"
#include "chatd/conn.h"
#include "chatd/files.h"
#include "chatd/gate.h"
#include "chatd/hub.h"
#include "chatd/jsonw.h"
#include "chatd/log.h"
#include "chatd/server.h"
#include "chatd/utf8.h"
#include "chatd/xmalloc.h"
#include "storage/storage.h"

#define CHAT_INDEX_DELAY_MS 200 /* search indexing lags commits by this */
#define CHAT_INDEX_CHUNK 500    /* messages indexed per loop pass */
#define CHAT_OUT_KEEP (256u * 1024) /* reply buffer kept between replies */
/* Milliseconds now (shared clock with the server). */
int64_t
chat_now(void)
{
	return now_ms();
}

/* Sends obj (plus ref when not NULL) to one session; takes obj. */
void
chat_reply(struct session *s, json_t *obj, json_t *ref)
{
	char *text;

	if (s == NULL) {
		json_decref(obj);
		return;
	}
	if (ref != NULL)
		json_object_set(obj, "ref", ref);
	text = json_dumps(obj, JSON_COMPACT);
	conn_ws_send(s->conn, text, strlen(text));
	free(text);
	json_decref(obj);
}

/* Encodes obj once as a shared frame; takes obj. */
struct frame *
chat_frame(json_t *obj)
{
	char *text = json_dumps(obj, JSON_COMPACT);
	struct frame *f = frame_new(text, strlen(text));

	free(text);
	json_decref(obj);
	return f;
}

/* An error reply (PROTOCOL.md Errors). */
void
chat_send_error(struct session *s, json_t *ref, const char *code,
    const char *message)
{
	chat_reply(s,
	    json_pack("{s:s,s:s,s:s}", "type", "error", "code", code,
		"message", message),
	    ref);
}

/* The reply buffer, empty. */
struct jsonw *
chat_out(struct server *srv)
{
	struct jsonw *w = &srv->chat->out;

	jsonw_reset(w);
	return w;
}

/* Sends what the reply buffer holds to one session (none: discards it),
 * and lets a buffer that a big reply grew go. */
void
chat_out_send(struct session *s, struct jsonw *w)
{
	if (s != NULL)
		conn_ws_send_jsonw(s->conn, w);
	jsonw_reset(w);
	if (w->cap > CHAT_OUT_KEEP)
		jsonw_free(w);
}

/* Opens the group-commit transaction if needed; the commit runs once the
 * loop has handled everything that arrived in this pass. 0 or -1. */
int
chat_txn(struct chat *ch, struct server *srv)
{
	int rc;

	if (ch->txn)
		return 0;
	if ((rc = db_begin(srv->db)) != 0) {
		if (rc == DB_BUSY)
			srv->m.db_busy++;
		return rc;
	}
	ch->txn = 1;
	ch->txn_gen++;
	ch->rooms_locked = 0;
	metrics_txn_begin(&srv->m);
	event_active(ch->commit_ev, EV_TIMEOUT, 0);
	return 0;
}

/* Queues what happens after the commit. Takes event (may be NULL). */
struct action *
chat_action(struct chat *ch, enum action_type type, struct session *s,
    json_t *ref, struct hub_room *room, json_t *event)
{
	struct action *a = xcalloc(1, sizeof *a);

	a->type = type;
	a->sess = s;
	a->ref = ref ? json_incref(ref) : NULL;
	a->room = room;
	a->event = event;
	a->user_id = s->user->id;
	snprintf(a->username, sizeof a->username, "%s", s->user->username);
	s->pending++;
	ch->nactions++;
	TAILQ_INSERT_TAIL(&ch->actions, a, link);
	return a;
}

/* Carries out one committed action: in-memory state, replies, fan-out. */
static void
chat_action_run(struct server *srv, struct action *a)
{
	switch (a->type) {
	case ACT_SEND:
	case ACT_CHANGE:
	case ACT_REPLY:
		chat_message_run(srv, a);
		break;
	case ACT_JOIN:
	case ACT_LEAVE:
	case ACT_DM:
	case ACT_READ:
		chat_room_run(srv, a);
		break;
	case ACT_INVITE:
	case ACT_KICK:
	case ACT_EVENT:
	case ACT_NOTIFY:
	case ACT_ANSWER:
		chat_mod_run(srv, a);
		break;
	}
}

/* Frees an action and releases its session. */
static void
chat_action_free(struct action *a)
{
	if (a->sess != NULL)
		a->sess->pending--;
	json_decref(a->ref);
	json_decref(a->event);
	message_free(a->msg);
	free(a);
}

void
chat_flush(struct server *srv)
{
	struct chat *ch = srv->chat;
	struct action *a;
	int ok;

	if (ch == NULL || !ch->txn)
		return;
	ch->txn = 0;
	ch->nactions = 0;
	ok = db_commit(srv->db) == 0;
	metrics_txn_end(&srv->m);
	srv->m.commits++;
	if (!ok) {
		log_error("%s: commit failed: rolling back the batch", __func__);
		db_rollback(srv->db);
	}
	if (ok && !evtimer_pending(ch->index_ev, NULL)) {
		struct timeval tv = {0, CHAT_INDEX_DELAY_MS * 1000};

		evtimer_add(ch->index_ev, &tv);
	}
	/* Bytes of files deleted in the batch, now that it is durable. */
	files_release_bytes(srv);
	while ((a = TAILQ_FIRST(&ch->actions)) != NULL) {
		TAILQ_REMOVE(&ch->actions, a, link);
		if (ok) {
			chat_action_run(srv, a);
		} else {
			if (a->room != NULL)
				a->room->pending_seq = a->room->last_seq;
			chat_send_error(a->sess, a->ref, "internal",
			    "the change could not be stored");
		}
		chat_action_free(a);
	}
	chat_cluster_committed(srv);
}

int64_t
chat_index(struct server *srv, int64_t max)
{
	int64_t n;
	int rc;

	chat_flush(srv);
	if ((rc = db_begin(srv->db)) != 0) {
		if (rc == DB_BUSY)
			srv->m.db_busy++;
		return rc;
	}
	n = message_index_pending(srv->db, max);
	if (n < 0 || db_commit(srv->db) != 0) {
		db_rollback(srv->db);
		return -1;
	}
	return n;
}

/* Indexes what recent commits stored, a chunk per loop pass. */
static void
chat_index_cb(int fd, short what, void *arg)
{
	struct server *srv = arg;
	struct timeval soon = {0, 1000}; /* let the loop serve in between */
	struct timeval later = {0, CHAT_INDEX_DELAY_MS * 1000};
	int64_t n;

	(void)fd;
	(void)what;
	n = chat_index(srv, CHAT_INDEX_CHUNK);
	if (n == CHAT_INDEX_CHUNK)
		evtimer_add(srv->chat->index_ev, &soon);
	else if (n == DB_BUSY) /* another process writes: try again later */
		evtimer_add(srv->chat->index_ev, &later);
}

/* The commit event: the end of a loop pass. On PostgreSQL it is a gate
 * job: if requests wait in the gate behind it (they arrived while the
 * batch's statements waited for the server), the commit goes behind them
 * once, so that they join this batch instead of opening the next one. */
static void
chat_commit_cb(int fd, short what, void *arg)
{
	struct server *srv = arg;
	struct chat *ch = srv->chat;

	(void)fd;
	(void)what;
	if (ch->txn && gate_queued() > 0 && ch->commit_waited != ch->txn_gen) {
		ch->commit_waited = ch->txn_gen;
		event_active(ch->commit_ev, EV_TIMEOUT, 0);
		return;
	}
	chat_flush(srv);
}

/* A string field, or NULL if absent, not a string, or holding a NUL
 * (read as a C string it would be cut there: "send\u0000x" is no type). */
const char *
chat_str(json_t *req, const char *key)
{
	json_t *v = json_object_get(req, key);
	const char *str = json_string_value(v);

	if (str == NULL || strlen(str) != json_string_length(v))
		return NULL;
	return str;
}

/* Reads "ref": 0 and *ref (borrowed, may be NULL), or -1 if invalid. */
static int
chat_ref(json_t *req, json_t **ref)
{
	json_t *v = json_object_get(req, "ref");

	*ref = NULL;
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_string(v) ||
	    utf8_codepoints((const uint8_t *)json_string_value(v),
		json_string_length(v)) > CHAT_MAX_REF)
		return -1;
	*ref = v;
	return 0;
}

/* The requests of an authenticated session, by type; write: a change,
 * which runs inside the group-commit transaction. */
static const struct {
	const char *type;
	chat_handler fn;
	int write;
} chat_handlers[] = {
	{"join", chat_room_join, 1},
	{"leave", chat_room_leave, 1},
	{"dm", chat_room_dm, 1},
	{"send", chat_message_send, 1},
	{"edit", chat_message_edit, 1},
	{"delete", chat_message_delete, 1},
	{"react", chat_react, 1},
	{"history", chat_message_history, 0},
	{"read", chat_room_read, 1},
	{"typing", chat_session_typing, 0},
	{"create", chat_mod_create, 1},
	{"invite", chat_mod_invite, 1},
	{"kick", chat_mod_kick, 1},
	{"unban", chat_mod_unban, 1},
	{"role", chat_mod_role, 1},
	{"topic", chat_mod_topic, 1},
	{"notify", chat_mod_notify, 1},
};

/* How often a PostgreSQL server reads meta 'admin_version' (a round
 * trip to the database), in microseconds. */
#define CHAT_PG_ADMIN_CHECK_US 500000

/* Applies what another process (the admin CLI) committed since the last
 * request (checked once per loop pass): deleted rooms are forgotten,
 * deleted users' sockets closed.
 * One cheap PRAGMA when nothing changed. On PostgreSQL the version is
 * meta 'admin_version', which the admin commands raise (admin_changed),
 * read by a query: at most every CHAT_PG_ADMIN_CHECK_US, so a change
 * shows at the first request half a second after it at the latest. */
static void
chat_external_changes(struct server *srv)
{
	struct chat *ch = srv->chat;
	struct timeval now, next;
	int64_t v;

	/* Once per loop pass (libevent's cached time changes with each):
	 * the PRAGMA is a read transaction of its own. */
	event_base_gettimeofday_cached(srv->base, &now);
	if (timercmp(&now, &ch->dv_checked, ==))
		return;
	if (db_is_postgres(srv->db)) {
		next = ch->dv_checked;
		next.tv_usec += CHAT_PG_ADMIN_CHECK_US;
		next.tv_sec += next.tv_usec / 1000000;
		next.tv_usec %= 1000000;
		if (timercmp(&now, &next, <) &&
		    timercmp(&now, &ch->dv_checked, >=))
			return;
	}
	ch->dv_checked = now;
	v = db_data_version(srv->db);
	if (v == ch->data_version)
		return;
	ch->data_version = v;
	hub_rooms_check(ch->hub, srv->db);
	hub_user_each(ch->hub, chat_session_check_user, srv);
}

/* One WebSocket message: auth first, then requests by their type. */
int
chat_ws_message(struct conn *c, int binary, uint8_t *data, size_t len)
{
	struct session *s = c->app_data;
	struct server *srv = c->srv;
	json_t *req, *ref;
	const char *type;
	json_error_t jerr;

	if (binary) {
		conn_ws_close(c, 1003, "binary messages are not supported");
		return 0;
	}
	chat_external_changes(srv);
	if (c->mode != CONN_MODE_WS)
		return 0; /* closed by it: the account is gone */
	req = json_loadb((const char *)data, len,
	    JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL,
	    &jerr);
	if (req != NULL && !json_is_object(req)) {
		json_decref(req);
		req = NULL;
	}
	if (!(c->flags & CONN_AUTHED)) {
		if (req == NULL) {
			chat_session_auth_fail(s, NULL,
			    "the first message must be auth");
			return 0;
		}
		chat_ref(req, &ref);
		chat_session_auth(s, req, ref);
		json_decref(req);
		return 0;
	}
	if (req == NULL) {
		chat_send_error(s, NULL, "bad_request",
		    "a message must be a JSON object");
		return 0;
	}
	if (chat_ref(req, &ref) != 0) {
		chat_send_error(s, NULL, "bad_request",
		    "ref must be a string of at most 64 characters");
		json_decref(req);
		return 0;
	}
	if (srv->cfg->rate_limits &&
	    !bucket_take(&s->rate, srv->cfg->msg_rate, srv->cfg->msg_burst,
		chat_now())) {
		srv->m.rate_limited++;
		chat_send_error(s, ref, "rate_limited", "slow down");
		json_decref(req);
		return 0;
	}
	/* A pass that brings more than a batch commits early: memory and
	 * the wait for the first of them stay bounded under overload. */
	if (srv->chat->nactions >= CHAT_BATCH_MAX)
		chat_flush(srv);
	type = chat_str(req, "type");
	for (size_t i = 0; type != NULL &&
	     i < sizeof chat_handlers / sizeof chat_handlers[0]; i++)
		if (strcmp(type, chat_handlers[i].type) == 0) {
			chat_request(srv, s, chat_handlers[i].fn,
			    chat_handlers[i].write, req, ref);
			return 0;
		}
	chat_send_error(s, ref, "bad_request",
	    type == NULL ? "type must be a string" : "unknown type");
	json_decref(req);
	return 0;
}

/* A fresh WebSocket: its session, not yet authenticated. */
void
chat_ws_open(struct conn *c)
{
	struct session *s = xcalloc(1, sizeof *s);

	s->conn = c;
	LIST_INIT(&s->subs);
	c->app_data = s;
}

/* A connection is going away: presence, subscriptions, pending actions. */
void
chat_gone(struct conn *c)
{
	struct session *s = c->app_data;
	struct server *srv = c->srv;
	struct action *a;

	if (s == NULL)
		return;
	chat_park_drop_session(srv, s);
	if (s->pending > 0)
		TAILQ_FOREACH(a, &srv->chat->actions, link)
			if (a->sess == s) {
				a->sess = NULL;
				s->pending--;
			}
	if (s->user != NULL && s->user->nsessions == 1) {
		/* Offline for everyone only if no other node has them. */
		if (!chat_cluster_online_elsewhere(srv, s->user->id))
			chat_session_presence(srv, s->user, "offline");
		chat_cluster_presence(srv, s->user->id, 0);
	}
	hub_user_detach(srv->chat->hub, s);
	if (s->expiry != NULL)
		gate_event_free(s->expiry);
	free(s);
	c->app_data = NULL;
}

int
chat_start(struct server *srv)
{
	struct chat *ch = xcalloc(1, sizeof *ch);

	ch->hub = hub_new();
	ch->next_seq = db_max_seq(srv->db) + 1;
	/* PostgreSQL's sequence takes the seqs: never below what is stored
	 * (an import with its seqs). */
	if (db_is_postgres(srv->db) && db_seq_sync(srv->db) != 0) {
		fprintf(stderr, "chatd: cannot read the database's seqs\n");
		hub_free(ch->hub);
		free(ch);
		return -1;
	}
	TAILQ_INIT(&ch->actions);
	ch->commit_ev = gate_event_new(srv->base, -1, 0, chat_commit_cb, srv);
	ch->index_ev = gate_event_new(srv->base, -1, 0, chat_index_cb, srv);
	jsonw_init(&ch->out, CONN_JSONW_HEAD);
	srv->chat = ch;
	chat_park_init(srv);
	return chat_cluster_start(srv);
}

void
chat_free(struct server *srv)
{
	struct chat *ch = srv->chat;

	if (ch == NULL)
		return;
	chat_flush(srv);
	chat_cluster_stop(srv);
	chat_park_free(srv);
	gate_event_free(ch->commit_ev);
	gate_event_free(ch->index_ev);
	hub_free(ch->hub);
	jsonw_free(&ch->out);
	free(ch);
	srv->chat = NULL;
}
