/* chatd/api.c — the HTTP API, /healthz, /metrics, the /ws upgrade */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "chatd/api.h"
#include "chatd/auth.h"
#include "chatd/chat.h"
#include "chatd/conn.h"
#include "chatd/files.h"
#include "chatd/gate.h"
#include "chatd/http.h"
#include "chatd/jsonw.h"
#include "chatd/limiter.h"
#include "chatd/log.h"
#include "chatd/metrics_render.h"
#include "chatd/proxy.h"
#include "chatd/reader.h"
#include "chatd/server.h"
#include "chatd/static.h"
#include "chatd/url.h"
#include "chatd/worker.h"
#include "chatd/ws_handshake.h"
#include "chatd/xmalloc.h"
#include "storage/storage.h"

#define API_MAX_LIMIT 100
#define API_ROOMS_MAX_LIMIT 1000 /* rooms in a page of GET /api/rooms */

/* A route: an exact path (or a prefix ending in '*'), the one method it
 * takes (GET also answers HEAD) and its handler. */
typedef void (*api_handler)(struct conn *c, const struct http_request *req);

/* An error response with extra header lines. */
static void
api_respond_static(struct conn *c, const struct http_request *req, int status,
    const char *code, const char *message, const char *extra)
{
	json_t *o = json_pack("{s:{s:s,s:s}}", "error", "code", code,
	    "message", message);
	char *s = json_dumps(o, JSON_COMPACT);

	http_respond(c, req, status, "application/json", s, strlen(s), extra);
	free(s);
	json_decref(o);
}

/* Retry-After of a 503 for a database lock another process holds. */
#define API_LOCKED_RETRY_S 1

/* Answers a failed database call: 503 busy (with Retry-After) when
 * another process held a lock it needed (the loop never waits for one),
 * else 500 internal. */
static void
api_db_error(struct conn *c, const struct http_request *req)
{
	char extra[64];

	if (!db_busy(c->srv->db)) {
		http_respond_error(c, req, 500, "internal", "database error");
		return;
	}
	snprintf(extra, sizeof extra, "Retry-After: %d\r\n",
	    API_LOCKED_RETRY_S);
	api_respond_static(c, req, 503, "busy",
	    "the database is locked by another process; try again shortly",
	    extra);
}

/* The JSON object body of a request, or NULL after answering 400. */
static json_t *
api_body(struct conn *c, const struct http_request *req)
{
	json_error_t err;
	json_t *body = NULL;

	if (req->body != NULL)
		body = json_loadb((const char *)req->body, req->body_len,
		    JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &err);
	if (body == NULL || !json_is_object(body)) {
		json_decref(body);
		http_respond_error(c, req, 400, "bad_request",
		    "the body must be a JSON object");
		return NULL;
	}
	return body;
}

/* Reads the string fields username and password; -1 after a 400. */
static int
api_credentials(struct conn *c, const struct http_request *req, json_t *body,
    const char **user, const char **pass, size_t *passlen)
{
	json_t *u = json_object_get(body, "username");
	json_t *p = json_object_get(body, "password");

	if (!json_is_string(u) || !json_is_string(p)) {
		http_respond_error(c, req, 400, "bad_request",
		    "username and password must be strings");
		return -1;
	}
	/* A name with a NUL in it is no name: make it fail validation. */
	*user = strlen(json_string_value(u)) == json_string_length(u) ?
		    json_string_value(u) : "\x01";
	*pass = json_string_value(p);
	*passlen = json_string_length(p);
	return 0;
}

/* {"id","username"} of a user. */
static json_t *
api_user_json(const struct user *u)
{
	return json_pack("{s:I,s:s}", "id", (json_int_t)u->id, "username",
	    u->username);
}

/* The user behind the request's bearer token; -1 after a 401. */
static int
api_auth(struct conn *c, const struct http_request *req, struct user *u,
    uint8_t hash[32])
{
	const char *token = auth_bearer(http_request_header(req,
	    "Authorization"));
	int rc;

	if (token != NULL) {
		auth_token_hash(token, strlen(token), hash);
		rc = session_lookup(c->srv->db, hash, now_ms(), u);
		if (rc == 0)
			return 0;
		if (rc < 0) {
			api_db_error(c, req);
			return -1;
		}
	}
	http_respond_error(c, req, 401, "unauthorized",
	    "a valid bearer token is required");
	return -1;
}

/* A login or registration whose password hashing runs on a worker. */
struct api_job {
	struct conn *c;
	const struct http_request *req; /* stays parsed while c is held */
	int registering;
	int reserved; /* took failed-login tokens (name, client) */
	char client[sizeof ((struct conn *)0)->client]; /* c->client */
	char name[USERNAME_MAX + 1];
	char pass[PASSWORD_MAX + 1];
	size_t passlen;
	char hash[AUTH_HASH_MAX]; /* login: the stored hash; register: new */
	const char *dummy;        /* login of an unknown user: hash this */
	struct user u;
	int found;
	int ok;
};

/* Refusals of a full hashing queue: a warning at most this often. */
#define API_BUSY_LOG_MS 10000
/* Retry-After of a 503 busy: a queue slot frees within a hash or two. */
#define API_BUSY_RETRY_S 1

static void api_register_finish(struct conn *c, struct api_job *j);
static void api_login_finish(struct conn *c, struct api_job *j);

/* On a worker thread: the slow part, Argon2id. */
static void
api_job_run(void *arg)
{
	struct api_job *j = arg;

	if (j->registering)
		j->ok = auth_hash_password(j->pass, j->passlen, j->hash,
		    sizeof j->hash) == 0;
	else
		j->ok = auth_verify_password(j->found ? j->hash : j->dummy,
		    j->pass, j->passlen) && j->found;
	explicit_bzero(j->pass, sizeof j->pass);
}

/* Back on the loop: store the user, or the session, and answer. */
static void
api_job_done(void *arg)
{
	struct api_job *j = arg;
	struct conn *c = j->c;
	struct server *srv = c->srv;
	int64_t now = now_ms();

	if (!j->registering) {
		srv->m.password_checks++;
		/* The right password: not a failed login, the tokens go back,
		 * even if the client has gone. */
		if (j->ok && j->reserved) {
			limiter_refund(srv->login_user, j->name, now);
			limiter_refund(srv->login_addr, j->client, now);
		}
	}
	if (!(c->flags & CONN_DEAD)) {
		chat_flush(srv);
		if (j->registering)
			api_register_finish(c, j);
		else
			api_login_finish(c, j);
	}
	conn_release(c);
	explicit_bzero(j, sizeof *j);
	free(j);
}

/* Answers 503 busy: the hashing queue, or this address's share of it, is
 * full. Logged at debug each time, as a warning at most every 10 s. */
static void
api_busy(struct conn *c, const struct http_request *req, int why)
{
	static int64_t logged_ms;
	static uint64_t logged;
	struct server *srv = c->srv;
	int64_t now = now_ms();
	char extra[64];

	srv->m.hash_busy++;
	log_debug("%s: hashing queue %s, 503 to %s", __func__,
	    why == WORKER_FULL ? "full" : "share used up", c->client);
	if (now - logged_ms >= API_BUSY_LOG_MS) {
		log_warn("%s: password hashing queue: %llu requests refused "
			 "with 503 since the last warning (latest from %s: "
			 "%s)",
		    __func__, (unsigned long long)(srv->m.hash_busy - logged),
		    c->client,
		    why == WORKER_FULL ? "queue full" : "its share used up");
		logged_ms = now;
		logged = srv->m.hash_busy;
	}
	snprintf(extra, sizeof extra, "Retry-After: %d\r\n", API_BUSY_RETRY_S);
	api_respond_static(c, req, 503, "busy",
	    "the server is busy checking passwords; try again shortly", extra);
}

/* Hands j to a worker thread, queued fairly by client address; the answer
 * comes from api_job_done. 0, or -1 after answering 503 (j not used). */
static int
api_job_start(struct conn *c, struct api_job *j)
{
	int rc;

	j->c = c;
	snprintf(j->client, sizeof j->client, "%s", c->client);
	rc = worker_submit(c->srv->worker, c->client, api_job_run, api_job_done,
	    j);
	if (rc != 0) {
		api_busy(c, j->req, rc);
		return -1;
	}
	log_debug("%s: %s of '%s' from %s queued (%u jobs)", __func__,
	    j->registering ? "registration" : "login", j->name, c->client,
	    worker_jobs(c->srv->worker));
	conn_hold(c);
	return 0;
}

/* Answers 429 rate_limited with a Retry-After of wait_ms (rounded up). */
static void
api_rate_limited(struct conn *c, const struct http_request *req,
    const char *message, int64_t wait_ms)
{
	char extra[64];

	c->srv->m.rate_limited++;
	snprintf(extra, sizeof extra, "Retry-After: %lld\r\n",
	    (long long)((wait_ms + 999) / 1000));
	api_respond_static(c, req, 429, "rate_limited", message, extra);
}

static void
api_register_finish(struct conn *c, struct api_job *j)
{
	int rc;

	if (!j->ok) {
		http_respond_error(c, j->req, 500, "internal",
		    "hashing failed");
		return;
	}
	rc = user_create(c->srv->db, j->name, j->hash, now_ms(), &j->u.id);
	if (rc == 1) {
		http_respond_error(c, j->req, 409, "username_taken",
		    "that username is taken");
	} else if (rc < 0) {
		api_db_error(c, j->req);
	} else {
		snprintf(j->u.username, sizeof j->u.username, "%s", j->name);
		log_info("%s: new user %s", __func__, j->name);
		http_respond_json(c, j->req, 201,
		    json_pack("{s:o}", "user", api_user_json(&j->u)));
	}
}

/* The token of a registration is taken before the hash is queued (a
 * reservation), so parallel requests can't run more hashes than the
 * bucket holds. */
static void
api_register(struct conn *c, const struct http_request *req)
{
	struct server *srv = c->srv;
	char name[64];
	const char *user, *pass;
	size_t passlen;
	int64_t now = now_ms();
	struct api_job *j;
	json_t *body;

	if ((body = api_body(c, req)) == NULL)
		return;
	if (api_credentials(c, req, body, &user, &pass, &passlen) != 0)
		goto out;
	if (!srv->cfg->registration_open) {
		http_respond_error(c, req, 403, "registration_closed",
		    "registration is closed on this server");
		goto out;
	}
	snprintf(name, sizeof name, "%s", user);
	if (strlen(user) > USERNAME_MAX || auth_username_fold(name) != 0) {
		http_respond_error(c, req, 400, "invalid_username",
		    "1-32 characters of a-z 0-9 _ . -, starting with a "
		    "letter or digit");
		goto out;
	}
	if (auth_password_ok(passlen) != 0) {
		http_respond_error(c, req, 400, "invalid_password",
		    "the password must be 8-256 bytes");
		goto out;
	}
	if (srv->cfg->rate_limits &&
	    !limiter_check(srv->register_addr, c->client, now)) {
		api_rate_limited(c, req,
		    "too many registrations; try again later",
		    limiter_wait_ms(srv->register_addr, c->client, now));
		goto out;
	}
	j = xcalloc(1, sizeof *j);
	j->req = req;
	j->registering = 1;
	snprintf(j->name, sizeof j->name, "%.32s", name);
	memcpy(j->pass, pass, passlen);
	j->passlen = passlen;
	if (api_job_start(c, j) != 0) {
		explicit_bzero(j, sizeof *j);
		free(j);
		goto out;
	}
	/* Queued: the token is spent (checked above, nothing ran since). */
	if (srv->cfg->rate_limits)
		limiter_take(srv->register_addr, c->client, now);
out:
	json_decref(body);
}

static void
api_login_finish(struct conn *c, struct api_job *j)
{
	struct server *srv = c->srv;
	char token[AUTH_TOKEN_LEN + 1];
	uint8_t thash[32];
	int64_t now = now_ms(), expires;

	if (!j->ok) {
		/* Its failed-login tokens were taken in api_login. */
		srv->m.auth_failures++;
		log_info("%s: failed login for '%s' from %s", __func__,
		    j->name, c->client);
		http_respond_error(c, j->req, 401, "bad_credentials",
		    "wrong username or password");
		return;
	}
	expires = now + srv->cfg->token_ttl_ms;
	if (auth_token_new(token, thash) != 0 ||
	    session_create(srv->db, thash, j->u.id, now, expires) != 0) {
		api_db_error(c, j->req);
		return;
	}
	log_debug("%s: login of '%s' from %s", __func__, j->name, c->client);
	http_respond_json(c, j->req, 200,
	    json_pack("{s:s,s:I,s:o}", "token", token, "expires_at",
		(json_int_t)expires, "user", api_user_json(&j->u)));
}

/* 1 if a failed login of name from addr would still be allowed. */
static int
api_login_allowed(struct server *srv, const char *name, const char *addr,
    int64_t now, int64_t *wait_ms)
{
	int64_t wu = limiter_wait_ms(srv->login_user, name, now);
	int64_t wa = limiter_wait_ms(srv->login_addr, addr, now);

	*wait_ms = wu > wa ? wu : wa;
	return *wait_ms == 0;
}

/* Every login attempt takes a token from the username's and the
 * address's failed-login buckets before its hash is queued, and a right
 * password gives them back (api_job_done): N parallel wrong passwords
 * cost at most the bucket's burst of Argon2 runs, and a user's own
 * logins never use up their failed-login budget. */
static void
api_login(struct conn *c, const struct http_request *req)
{
	struct server *srv = c->srv;
	char name[64];
	const char *user, *pass;
	size_t passlen;
	int64_t now = now_ms(), wait_ms;
	struct api_job *j;
	json_t *body;
	int rc;

	if ((body = api_body(c, req)) == NULL)
		return;
	if (api_credentials(c, req, body, &user, &pass, &passlen) != 0)
		goto out;
	snprintf(name, sizeof name, "%s", user);
	if (strlen(user) > USERNAME_MAX || auth_username_fold(name) != 0 ||
	    passlen > PASSWORD_MAX)
		name[0] = '\0';
	if (srv->cfg->rate_limits &&
	    !api_login_allowed(srv, name, c->client, now, &wait_ms)) {
		api_rate_limited(c, req,
		    "too many failed logins; try again later", wait_ms);
		goto out;
	}
	j = xcalloc(1, sizeof *j);
	rc = name[0] ? user_by_name(srv->db, name, &j->u, j->hash,
			   sizeof j->hash) : 1;
	if (rc < 0) {
		free(j);
		api_db_error(c, req);
		goto out;
	}
	/* An unknown user costs the same hash as a wrong password. */
	j->found = rc == 0;
	j->dummy = srv->dummy_hash;
	j->req = req;
	snprintf(j->name, sizeof j->name, "%.32s", name);
	if (passlen <= PASSWORD_MAX) {
		memcpy(j->pass, pass, passlen);
		j->passlen = passlen;
	}
	j->reserved = srv->cfg->rate_limits;
	if (api_job_start(c, j) != 0) {
		explicit_bzero(j, sizeof *j);
		free(j);
		goto out;
	}
	/* Queued: take the tokens now (both were there above, and nothing
	 * ran since; j's done callback runs on a later loop turn). */
	if (srv->cfg->rate_limits) {
		limiter_take(srv->login_user, name, now);
		limiter_take(srv->login_addr, c->client, now);
	}
out:
	json_decref(body);
}

static void
api_logout(struct conn *c, const struct http_request *req)
{
	uint8_t hash[32];
	struct user u;

	if (api_auth(c, req, &u, hash) != 0)
		return;
	if (session_delete(c->srv->db, hash) < 0) {
		api_db_error(c, req);
		return;
	}
	chat_logout(c->srv, u.id, hash);
	http_respond(c, req, 204, NULL, NULL, 0, NULL);
}

/* A 200 with the JSON in w as its body; frees w. */
static void
api_respond_jsonw(struct conn *c, const struct http_request *req,
    struct jsonw *w)
{
	http_respond(c, req, 200, "application/json", jsonw_data(w),
	    jsonw_len(w), NULL);
	jsonw_free(w);
}

static void
api_me(struct conn *c, const struct http_request *req)
{
	uint8_t hash[32];
	struct user u;
	struct jsonw w;

	if (api_auth(c, req, &u, hash) != 0)
		return;
	jsonw_init(&w, 0);
	jsonw_object_open(&w);
	JSONW_KEY(&w, "user");
	jsonw_object_open(&w);
	JSONW_KEY(&w, "id");
	jsonw_int(&w, u.id);
	JSONW_KEY(&w, "username");
	jsonw_string(&w, u.username);
	jsonw_object_close(&w);
	JSONW_KEY(&w, "rooms");
	if (chat_room_states(c->srv, u.id, &w) != 0) {
		jsonw_free(&w);
		api_db_error(c, req);
		return;
	}
	jsonw_object_close(&w);
	api_respond_jsonw(c, req, &w);
}

/* Parses an optional non-negative integer query parameter: 0 (absent:
 * *out = -1), 1 present, -1 malformed. */
static int
api_query_uint(const struct http_request *req, const char *name,
    int64_t *out)
{
	char buf[32], *end;
	long long v;
	long n;

	*out = -1;
	if (req->query == NULL ||
	    (n = url_query_get(req->query, name, buf, sizeof buf)) == -1)
		return 0;
	if (n <= 0 || buf[0] < '0' || buf[0] > '9')
		return -1;
	v = strtoll(buf, &end, 10);
	if (*end != '\0' || v < 0)
		return -1;
	*out = v;
	return 1;
}

/* A page of GET /api/rooms being written. */
struct api_rooms {
	struct jsonw *w;
	int64_t limit; /* -1: every room */
	int64_t n;
	int more;      /* a room past the limit exists */
};

/* room_list_public callback: one room of GET /api/rooms. */
static int
api_room_cb(void *arg, const struct room *r)
{
	struct api_rooms *p = arg;

	if (p->limit >= 0 && p->n == p->limit) {
		p->more = 1;
		return 1;
	}
	p->n++;
	jsonw_object_open(p->w);
	jsonw_key(p->w, "name");
	jsonw_string(p->w, r->name);
	jsonw_key(p->w, "members");
	jsonw_int(p->w, r->members);
	jsonw_key(p->w, "last_seq");
	jsonw_int(p->w, r->last_seq);
	jsonw_key(p->w, "created_at");
	jsonw_int(p->w, r->created_at);
	jsonw_key(p->w, "topic");
	jsonw_string(p->w, r->topic);
	jsonw_object_close(p->w);
	return 0;
}

/* GET /api/rooms?limit=&after=: every public room, or a page of them in
 * name order after the name after (docs/protocol.md). */
static void
api_rooms(struct conn *c, const struct http_request *req)
{
	char after[ROOMNAME_MAX + 1] = "";
	uint8_t hash[32];
	struct user u;
	struct api_rooms p = {0};
	struct jsonw w;
	long n = -1;

	if (api_auth(c, req, &u, hash) != 0)
		return;
	if (req->query != NULL)
		n = url_query_get(req->query, "after", after, sizeof after);
	if (n == -2 || api_query_uint(req, "limit", &p.limit) < 0 ||
	    p.limit == 0 || p.limit > API_ROOMS_MAX_LIMIT) {
		http_respond_error(c, req, 400, "bad_request",
		    "limit is 1-1000; after is a room name");
		return;
	}
	jsonw_init(&w, 0);
	p.w = &w;
	jsonw_object_open(&w);
	jsonw_key(&w, "rooms");
	jsonw_array_open(&w);
	if (room_list_public(c->srv->db, after,
		p.limit < 0 ? -1 : p.limit + 1, api_room_cb, &p) != 0) {
		jsonw_free(&w);
		api_db_error(c, req);
		return;
	}
	jsonw_array_close(&w);
	/* Paged (limit or after given): has_more, as history's. */
	if (p.limit >= 0 || n >= 0) {
		jsonw_key(&w, "has_more");
		jsonw_bool(&w, p.more);
	}
	jsonw_object_close(&w);
	api_respond_jsonw(c, req, &w);
}

/* Checks a room name from a URL and finds the room the user may read
 * (chat_message_readable: not someone else's DM or private room, not
 * banned); 0, or -1 after answering 400/403/404. */
static int
api_readable_room(struct conn *c, const struct http_request *req,
    const char *raw, const struct user *u, struct room *r)
{
	char name[ROOMNAME_MAX + 8];
	int rc;

	if (strlen(raw) > ROOMNAME_MAX ||
	    url_path_decode(raw, name, sizeof name) < 0 ||
	    auth_room_fold(name) < 0) {
		http_respond_error(c, req, 400, "invalid_room",
		    "invalid room name");
		return -1;
	}
	rc = room_by_name(c->srv->db, name, r);
	if (rc == 1) {
		http_respond_error(c, req, 404, "no_such_room", "no such room");
		return -1;
	}
	if (rc == 0)
		rc = chat_message_readable(c->srv, r->id, r->kind, u->id, 0) ==
			1 ? 0 : 2;
	if (rc == 2) {
		http_respond_error(c, req, 403, "forbidden",
		    "a private room, someone else's direct messages, or banned");
		return -1;
	}
	if (rc < 0) {
		api_db_error(c, req);
		return -1;
	}
	return 0;
}

/* GET /api/rooms/{room}/messages */
static void
api_messages(struct conn *c, const struct http_request *req)
{
	const char *p = req->path + strlen("/api/rooms/");
	const char *slash = strchr(p, '/');
	char raw[256];
	int64_t before, after, limit, around;
	uint8_t hash[32];
	struct user u;
	struct room r;
	struct jsonw w;
	int rc;

	if (slash == NULL || strcmp(slash, "/messages") != 0 ||
	    (size_t)(slash - p) >= sizeof raw || slash == p) {
		http_respond_error(c, req, 404, "not_found", "no such path");
		return;
	}
	if (api_auth(c, req, &u, hash) != 0)
		return;
	snprintf(raw, sizeof raw, "%.*s", (int)(slash - p), p);
	if (api_readable_room(c, req, raw, &u, &r) != 0)
		return;
	if (api_query_uint(req, "before", &before) < 0 ||
	    api_query_uint(req, "after", &after) < 0 ||
	    api_query_uint(req, "limit", &limit) < 0 ||
	    api_query_uint(req, "around", &around) < 0 ||
	    !chat_message_page_ok(before, after, limit) ||
	    (around >= 0 && (before >= 0 || after >= 0))) {
		http_respond_error(c, req, 400, "bad_request",
		    CHAT_PAGE_RULES);
		return;
	}
	jsonw_init(&w, 0);
	jsonw_object_open(&w);
	jsonw_key(&w, "room");
	jsonw_string(&w, r.name);
	rc = around >= 0 ? chat_message_around(c->srv, r.id, around, limit, &w)
			 : chat_message_page(c->srv, r.id, before, after, limit, &w);
	if (rc != 0) {
		jsonw_free(&w);
		api_db_error(c, req);
		return;
	}
	jsonw_object_close(&w);
	api_respond_jsonw(c, req, &w);
}

/* A search running on a reader thread. */
struct api_search_job {
	struct conn *c;
	const struct http_request *req; /* stays parsed while c is held */
	int64_t user_id, room_id;
	int limit;
	char q[1024];
	struct jsonw w; /* the 200 body, written on the reader thread */
	int64_t start_us;
};

/* Timeouts of searches: a warning at most this often. */
#define API_SEARCH_LOG_MS 10000
/* Retry-After of a 503 from search: a reader is free within a budget. */
#define API_SEARCH_RETRY_S 1

/* On a reader thread: the query, into j->w. 0 or -1. */
static int
api_search_run(struct db *rdb, void *arg)
{
	struct api_search_job *j = arg;
	int rc;

	jsonw_object_open(&j->w);
	jsonw_key(&j->w, "results");
	jsonw_array_open(&j->w);
	rc = message_search(rdb, j->user_id, j->room_id, j->q, j->limit,
	    chat_message_cb, &j->w);
	jsonw_array_close(&j->w);
	jsonw_object_close(&j->w);
	return rc;
}

/* Counts and logs a search stopped by --query-timeout-ms: at debug each
 * time, as a warning at most every 10 s. */
static void
api_search_timed_out(struct server *srv, const struct api_search_job *j)
{
	static int64_t logged_ms;
	static uint64_t logged;
	int64_t now = now_ms();

	srv->m.search_timeouts++;
	log_debug("%s: search of user %lld (%zu bytes) stopped after %lld ms",
	    __func__, (long long)j->user_id, strlen(j->q),
	    (long long)((metrics_now_us() - j->start_us) / 1000));
	if (now - logged_ms >= API_SEARCH_LOG_MS) {
		log_warn("%s: %llu searches stopped by --query-timeout-ms (%d "
			 "ms) since the last warning (latest: user %lld, %zu "
			 "bytes of query)",
		    __func__,
		    (unsigned long long)(srv->m.search_timeouts - logged),
		    srv->cfg->query_timeout_ms, (long long)j->user_id,
		    strlen(j->q));
		logged_ms = now;
		logged = srv->m.search_timeouts;
	}
}

/* Back on the loop: the answer, if the client is still there. */
static void
api_search_done(void *arg, int result)
{
	struct api_search_job *j = arg;
	struct conn *c = j->c;
	char extra[64];

	if (result == READER_TIMEOUT)
		api_search_timed_out(c->srv, j);
	snprintf(extra, sizeof extra, "Retry-After: %d\r\n",
	    API_SEARCH_RETRY_S);
	if (c->flags & CONN_DEAD)
		;
	else if (result == READER_OK)
		http_respond(c, j->req, 200, "application/json",
		    jsonw_data(&j->w), jsonw_len(&j->w), NULL);
	else if (result == READER_TIMEOUT)
		api_respond_static(c, j->req, 503, "timeout",
		    "the search took too long; try more specific terms",
		    extra);
	else if (result == READER_CANCELLED)
		api_respond_static(c, j->req, 503, "unavailable",
		    "the server is shutting down", extra);
	else
		http_respond_error(c, j->req, 500, "internal",
		    "database error");
	conn_release(c);
	jsonw_free(&j->w);
	free(j);
}

/* Answers 503 busy: the search queue, or this user's share, is full. */
static void
api_search_busy(struct conn *c, const struct http_request *req, int why)
{
	char extra[64];

	c->srv->m.search_busy++;
	log_debug("%s: search queue %s, 503 to %s", __func__,
	    why == READER_FULL ? "full" : "share used up", c->client);
	snprintf(extra, sizeof extra, "Retry-After: %d\r\n",
	    API_SEARCH_RETRY_S);
	api_respond_static(c, req, 503, "busy",
	    "too many searches at once; try again shortly", extra);
}

/* GET /api/search?q=&room=&limit=: checked here, run on a reader thread
 * (its cost depends on q and on the data), answered by
 * api_search_done. */
static void
api_search(struct conn *c, const struct http_request *req)
{
	char q[1024], raw[256], key[32];
	int64_t limit;
	uint8_t hash[32];
	struct user u;
	struct room r = {0};
	struct api_search_job *j;
	long n;
	int rc;

	if (api_auth(c, req, &u, hash) != 0)
		return;
	n = req->query ? url_query_get(req->query, "q", q, sizeof q) : -1;
	if (n <= 0 || api_query_uint(req, "limit", &limit) < 0 ||
	    limit == 0 || limit > API_MAX_LIMIT) {
		http_respond_error(c, req, 400, "bad_request",
		    "q is required; limit is 1-100");
		return;
	}
	n = url_query_get(req->query, "room", raw, sizeof raw);
	if (n == -2 || n == 0) {
		http_respond_error(c, req, 400, "invalid_room",
		    "invalid room name");
		return;
	}
	if (n > 0 && api_readable_room(c, req, raw, &u, &r) != 0)
		return;
	/* Sends are indexed after their commit: catch up first, here on
	 * the writer's connection. Its commit is done before the job is
	 * queued, so the reader's snapshot holds every acknowledged
	 * message, indexed. */
	if (chat_index(c->srv, INT64_MAX) < 0) {
		api_db_error(c, req);
		return;
	}
	j = xcalloc(1, sizeof *j);
	j->c = c;
	j->req = req;
	j->user_id = u.id;
	j->room_id = r.id;
	j->limit = limit < 0 ? 20 : (int)limit;
	snprintf(j->q, sizeof j->q, "%s", q);
	jsonw_init(&j->w, 0);
	j->start_us = metrics_now_us();
	/* Fair by user: one user's many searches wait behind one of each
	 * other user's. */
	snprintf(key, sizeof key, "u%lld", (long long)u.id);
	rc = reader_submit(c->srv->reader, key, api_search_run,
	    api_search_done, j);
	if (rc != 0) {
		jsonw_free(&j->w);
		free(j);
		api_search_busy(c, req, rc);
		return;
	}
	conn_hold(c);
}

/* The user of a request's bearer token without answering: 0, 1 if none
 * or invalid, -1 on a database error. */
static int
api_auth_quiet(struct conn *c, const struct http_request *req, struct user *u)
{
	const char *token = auth_bearer(http_request_header(req,
	    "Authorization"));
	uint8_t hash[32];

	if (token == NULL)
		return 1;
	auth_token_hash(token, strlen(token), hash);
	return session_lookup(c->srv->db, hash, now_ms(), u);
}

/* POST /api/files, its body complete (or empty). */
static void
api_upload(struct conn *c, const struct http_request *req)
{
	uint8_t hash[32];
	struct user u;

	if (c->body_data == NULL && api_auth(c, req, &u, hash) != 0)
		return;
	files_upload_done(c, req, c->body_data == NULL ? &u : NULL);
}

/* GET /api/files/{id} */
static void
api_download(struct conn *c, const struct http_request *req)
{
	uint8_t hash[32];
	struct user u;

	if (api_auth(c, req, &u, hash) != 0)
		return;
	files_download(c, req, &u);
}

/* A request head with a body: POST /api/files streams it (after the
 * checks its head allows); every other body is buffered as before. */
static uint64_t
api_head_now(struct conn *c, const struct http_request *req, int *stream)
{
	struct user u;
	int rc;

	if (req->method != HTTP_POST || strcmp(req->path, "/api/files") != 0)
		return 0;
	chat_flush(c->srv);
	rc = api_auth_quiet(c, req, &u);
	if (rc != 0) {
		c->srv->m.files_upload_failed++;
		conn_linger_after(c);
		if (rc < 0)
			http_respond_error(c, req, 500, "internal",
			    "database error");
		else
			http_respond_error(c, req, 401, "unauthorized",
			    "a valid bearer token is required");
		conn_body_discard(c, 1);
		return 0;
	}
	return files_upload_head(c, req, &u, stream);
}

/* A connection goes: its upload, then its chat session. */
static void
api_gone_now(struct conn *c)
{
	files_conn_gone(c);
	chat_gone(c);
}

/* user_prefix callback: {"username","online"} into a JSON array. */
static int
api_user_cb(void *arg, const struct user *u)
{
	struct conn *c = ((void **)arg)[0];

	json_array_append_new(((void **)arg)[1],
	    json_pack("{s:s,s:b}", "username", u->username, "online",
		chat_user_online(c->srv, u->id)));
	return 0;
}

/* GET /api/users?q=PREFIX&limit=N: users by name prefix, with presence. */
static void
api_users(struct conn *c, const struct http_request *req)
{
	char q[USERNAME_MAX + 2] = "";
	int64_t limit;
	uint8_t hash[32];
	struct user u;
	json_t *users;
	void *arg[2];
	long n;
	int match = 1;

	if (api_auth(c, req, &u, hash) != 0)
		return;
	if (api_query_uint(req, "limit", &limit) < 0 || limit == 0 ||
	    limit > API_MAX_LIMIT) {
		http_respond_error(c, req, 400, "bad_request",
		    "limit is 1-100");
		return;
	}
	n = req->query ? url_query_get(req->query, "q", q, sizeof q) : -1;
	if (n < 0)
		q[0] = '\0';
	/* A prefix no username can start with matches nobody. */
	if (n == -2 || n > USERNAME_MAX)
		match = 0;
	for (long i = 0; i < n && match; i++) {
		q[i] = (char)(q[i] >= 'A' && q[i] <= 'Z' ? q[i] - 'A' + 'a'
							 : q[i]);
		match = (q[i] >= 'a' && q[i] <= 'z') ||
		    (q[i] >= '0' && q[i] <= '9') || q[i] == '_' ||
		    q[i] == '.' || q[i] == '-';
	}
	users = json_array();
	arg[0] = c;
	arg[1] = users;
	if (match && user_prefix(c->srv->db, q, limit < 0 ? 20 : (int)limit,
			 api_user_cb, arg) != 0) {
		json_decref(users);
		api_db_error(c, req);
		return;
	}
	http_respond_json(c, req, 200, json_pack("{s:o}", "users", users));
}

/* 200 ok while the database answers and changes are not held up; 503
 * unavailable if it does not answer, 503 stalled while changes have
 * waited for a write lock another process holds (chat_stalled). */
static void
api_healthz(struct conn *c, const struct http_request *req)
{
	struct server *srv = c->srv;
	json_t *o;
	char *s;

	if (db_check(srv->db) != 0) {
		http_respond_error(c, req, 503, "unavailable",
		    "the database is not usable");
	} else if (srv->chat != NULL && chat_stalled(srv)) {
		o = json_pack("{s:s,s:I,s:I,s:{s:s,s:s}}", "status", "stalled",
		    "waiting", (json_int_t)chat_lock_waiting(srv), "waited_ms",
		    (json_int_t)chat_lock_wait_ms(srv), "error", "code",
		    "unavailable", "message",
		    "changes are waiting for a database lock another process "
		    "holds");
		s = json_dumps(o, JSON_COMPACT);
		http_respond(c, req, 503, "application/json", s, strlen(s),
		    "Retry-After: 1\r\n");
		free(s);
		json_decref(o);
	} else {
		http_respond_json(c, req, 200,
		    json_pack("{s:s}", "status", "ok"));
	}
}

/* A /metrics request waiting for the database gauges. */
struct api_metrics_job {
	struct conn *c;
	const struct http_request *req;
	struct metrics_db dbc;
};

/* Answers /metrics, with the database gauges when dbc is not NULL. */
static void
api_metrics_respond(struct conn *c, const struct http_request *req,
    const struct metrics_db *dbc)
{
	size_t len;
	char *text = metrics_render(c->srv, dbc, &len);

	http_respond(c, req, 200, "text/plain; version=0.0.4; charset=utf-8",
	    text, len, NULL);
	free(text);
}

/* reader_fn: the database gauges of a /metrics request. */
static int
api_metrics_read(struct db *rdb, void *arg)
{
	struct api_metrics_job *j = arg;

	return metrics_db_read(rdb, &j->dbc);
}

/* Back on the loop with the database gauges (or without them, if their
 * read failed or was cancelled: the rest is still worth a scrape). */
static void
api_metrics_done(void *arg, int result)
{
	struct api_metrics_job *j = arg;

	if (!(j->c->flags & CONN_DEAD))
		api_metrics_respond(j->c, j->req,
		    result == READER_OK ? &j->dbc : NULL);
	conn_release(j->c);
	free(j);
}

/* GET /metrics: the counters at once; the gauges counted in the database
 * (whose cost grows with the data) on a reader thread of their own
 * (srv->gauges, never behind searches), never on the loop. With its
 * queue full, the page goes without them. */
static void
api_metrics(struct conn *c, const struct http_request *req)
{
	struct api_metrics_job *j = xcalloc(1, sizeof *j);

	j->c = c;
	j->req = req;
	if (c->srv->gauges == NULL ||
	    reader_submit(c->srv->gauges, "metrics", api_metrics_read,
		api_metrics_done, j) != 0) {
		free(j);
		api_metrics_respond(c, req, NULL);
		return;
	}
	conn_hold(c);
}

/* GET /ws: the upgrade, with optional bearer authentication. */
static void
api_ws(struct conn *c, const struct http_request *req)
{
	char accept[WS_ACCEPT_LEN + 1], ext[WS_EXT_LEN];
	const char *token;
	uint8_t hash[32];
	struct user u;
	int status, wbits;

	status = ws_handshake_check(req, (c->flags & CONN_TLS) != 0,
	    c->srv->cfg->origins, accept);
	if (status == 426) {
		api_respond_static(c, req, 426, "bad_request",
		    "WebSocket version 13 is required",
		    "Sec-WebSocket-Version: 13\r\n");
		return;
	}
	if (status != 0) {
		http_respond_error(c, req, status,
		    status == 403 ? "forbidden" : "bad_request",
		    status == 403 ? "origin not allowed" :
				    "not a valid WebSocket upgrade");
		return;
	}
	token = http_request_header(req, "Authorization");
	if (token != NULL) {
		chat_flush(c->srv);
		if (api_auth(c, req, &u, hash) != 0)
			return;
	}
	ext[0] = '\0';
	wbits = c->srv->cfg->ws_compression ? ws_handshake_deflate(req, ext)
	                                    : 0;
	conn_upgrade_ext(c, accept, ext, wbits);
	if (token != NULL)
		chat_ws_authenticated(c, &u, hash);
}

static const struct {
	const char *path;  /* a trailing '*' matches any rest */
	enum http_method method;
	api_handler fn;
} api_routes[] = {
	{"/api/register", HTTP_POST, api_register},
	{"/api/login", HTTP_POST, api_login},
	{"/api/logout", HTTP_POST, api_logout},
	{"/api/me", HTTP_GET, api_me},
	{"/api/rooms", HTTP_GET, api_rooms},
	{"/api/rooms/*", HTTP_GET, api_messages},
	{"/api/search", HTTP_GET, api_search},
	{"/api/users", HTTP_GET, api_users},
	{"/api/files", HTTP_POST, api_upload},
	{"/api/files/*", HTTP_GET, api_download},
	{"/healthz", HTTP_GET, api_healthz},
	{"/metrics", HTTP_GET, api_metrics},
	{"/ws", HTTP_GET, api_ws},
};

/* 1 if path matches a route pattern. */
static int
api_match(const char *pattern, const char *path)
{
	size_t n = strlen(pattern);

	if (pattern[n - 1] == '*')
		return strncmp(pattern, path, n - 1) == 0 && path[n - 1];
	return strcmp(pattern, path) == 0;
}

/* Sets c->client for this request: the peer, or, from a trusted proxy
 * (--trusted-proxy), the client its X-Forwarded-For or Forwarded names.
 * Per request: a proxy's keep-alive connection carries many clients. */
static void
api_client(struct conn *c, const struct http_request *req)
{
	const struct proxy_list *l = &c->srv->cfg->trusted_proxies;
	const char *xff[HTTP_MAX_HEADERS], *fwd[HTTP_MAX_HEADERS];
	size_t nxff = 0, nfwd = 0;
	enum proxy_from from;

	if (l->n == 0)
		return; /* c->client is the peer, from conn_accept */
	for (size_t i = 0; i < req->nheaders; i++) {
		if (strcasecmp(req->headers[i].name, "X-Forwarded-For") == 0)
			xff[nxff++] = req->headers[i].value;
		else if (strcasecmp(req->headers[i].name, "Forwarded") == 0)
			fwd[nfwd++] = req->headers[i].value;
	}
	from = proxy_client(l, c->addr, xff, nxff, fwd, nfwd, c->client,
	    sizeof c->client);
	if (from == PROXY_PEER_BAD)
		log_debug("%s: #%llu: malformed %s from proxy %s: its address "
			  "counts",
		    __func__, (unsigned long long)c->id,
		    nxff > 0 ? "X-Forwarded-For" : "Forwarded", c->addr);
}

static void
api_request_now(struct conn *c, const struct http_request *req)
{
	enum http_method m = req->method == HTTP_HEAD ? HTTP_GET : req->method;

	api_client(c, req);
	if (req->method == HTTP_UNKNOWN) {
		http_respond_error(c, req, 501, "not_implemented",
		    "unknown method");
		return;
	}
	/* Whatever the request reads or writes, the open batch is durable
	 * and delivered first. */
	chat_flush(c->srv);
	for (size_t i = 0; i < sizeof api_routes / sizeof api_routes[0]; i++) {
		if (!api_match(api_routes[i].path, req->path))
			continue;
		if (api_routes[i].method != m) {
			api_respond_static(c, req, 405, "method_not_allowed",
			    "method not allowed", api_routes[i].method ==
				    HTTP_GET ? "Allow: GET, HEAD\r\n" :
					       "Allow: POST\r\n");
			return;
		}
		api_routes[i].fn(c, req);
		return;
	}
	if (strncmp(req->path, "/api/", 5) == 0) {
		http_respond_error(c, req, 404, "not_found", "no such endpoint");
		return;
	}
	if (m != HTTP_GET) {
		api_respond_static(c, req, 405, "method_not_allowed",
		    "method not allowed", "Allow: GET, HEAD\r\n");
		return;
	}
	static_serve(c, req);
}

/*
 * On PostgreSQL the callbacks that may touch the database run as gate
 * jobs (chatd/gate.h): the request, the head of an upload, a WebSocket
 * message and a connection going. A job that finishes before gate_post
 * returns is answered as a direct call would; one that waits holds the
 * connection (HTTP: conn_hold, the request stays parsed; WebSocket:
 * conn_ref, the message copied) until it ran. A connection with
 * API_CONN_QUEUE messages queued reads no more until half have run.
 */
#define API_CONN_QUEUE 32
/* ...or this many bytes of messages; and while messages of every
 * connection together hold API_QUEUE_BYTES, a connection that has one
 * queued reads no more either (one that has none may still send one:
 * its own turn comes). */
#define API_CONN_QUEUE_BYTES (256u * 1024)
#define API_QUEUE_BYTES (64u * 1024 * 1024)

/* Bytes of WebSocket messages queued, every connection's. */
static size_t api_queued_bytes;

/* An HTTP request (or, head set, the head of an upload) as a gate job. */
struct api_gate_job {
	struct gate_job job;
	struct conn *c;
	const struct http_request *req;
	int head;       /* api_head_now, not api_request_now */
	uint64_t max;   /* head: the body's limit */
	int stream;     /* head: stream the body */
	int held;       /* the poster returned: the job ends the hold */
	int done;
};

/* A static file (no route, not under /api/): no database, never queued
 * behind it. */
static int
api_is_static(const struct http_request *req)
{
	if (strncmp(req->path, "/api/", 5) == 0)
		return 0;
	for (size_t i = 0; i < sizeof api_routes / sizeof api_routes[0]; i++)
		if (api_match(api_routes[i].path, req->path))
			return 0;
	return 1;
}

static void
api_gate_run(struct gate_job *g)
{
	struct api_gate_job *j = (struct api_gate_job *)g;
	struct conn *c = j->c;
	uint64_t max;
	int stream, head = j->head;

	if (!(c->flags & CONN_DEAD)) {
		if (head)
			j->max = api_head_now(c, j->req, &j->stream);
		else
			api_request_now(c, j->req);
	}
	j->done = 1;
	if (!j->held)
		return; /* the poster takes the answer */
	max = j->max;
	stream = j->stream;
	free(j);
	if (head)
		conn_head_done(c, max, stream);
	else
		conn_release(c);
}

/* Runs req (or its head) as a gate job. 1 if it ran before this returned
 * (head: *max and *stream filled, as api_head_now would); 0 if it waits,
 * c held until it ran (conn_release or conn_head_done). */
static int
api_gate(struct conn *c, const struct http_request *req, int head,
    uint64_t *max, int *stream)
{
	struct api_gate_job *j = xcalloc(1, sizeof *j);

	j->c = c;
	j->req = req;
	j->head = head;
	gate_post(&j->job, api_gate_run);
	if (j->done) {
		if (head) {
			*max = j->max;
			*stream = j->stream;
		}
		free(j);
		return 1;
	}
	j->held = 1;
	conn_hold(c);
	return 0;
}

void
api_request(struct conn *c, const struct http_request *req)
{
	if (!gate_on() || api_is_static(req)) {
		api_request_now(c, req);
		return;
	}
	if (strcmp(req->path, "/metrics") == 0 &&
	    (req->method == HTTP_GET || req->method == HTTP_HEAD)) {
		/* Counters, and gauges from a reader of their own: no
		 * database of the loop's, so no flush and no turn to wait
		 * for. Monitoring works while the database is slow. */
		api_client(c, req);
		api_metrics(c, req);
		return;
	}
	api_gate(c, req, 0, NULL, NULL);
}

static uint64_t
api_head(struct conn *c, const struct http_request *req, int *stream)
{
	uint64_t max = 0;

	if (!gate_on() || req->method != HTTP_POST ||
	    strcmp(req->path, "/api/files") != 0)
		return api_head_now(c, req, stream);
	api_gate(c, req, 1, &max, stream);
	return max;
}

/* A connection's WebSocket messages waiting for the gate, in order, and
 * whether it has gone: one gate job per connection runs them, one message
 * a turn (connections take turns), then the going. */
struct api_msg {
	TAILQ_ENTRY(api_msg) link;
	int binary;
	size_t len;
	uint8_t data[];
};

struct api_queue {
	struct gate_job job;
	struct conn *c;
	TAILQ_HEAD(api_msg_list, api_msg) msgs;
	unsigned n;
	size_t bytes;
	int gone;
};

/* Takes m off q's list. */
static void
api_queue_take(struct api_queue *q, struct api_msg *m)
{
	TAILQ_REMOVE(&q->msgs, m, link);
	q->n--;
	q->bytes -= m->len;
	api_queued_bytes -= m->len;
}

/* Whether q's connection must stop reading (conn_input_hold). */
static int
api_queue_full(const struct api_queue *q)
{
	return q->n >= API_CONN_QUEUE || q->bytes >= API_CONN_QUEUE_BYTES ||
	    (q->n > 0 && api_queued_bytes >= API_QUEUE_BYTES);
}

/* c's queue, made (holding c) on first use. */
static struct api_queue *
api_queue(struct conn *c)
{
	struct api_queue *q = c->app_queue;

	if (q == NULL) {
		q = xcalloc(1, sizeof *q);
		q->c = c;
		TAILQ_INIT(&q->msgs);
		conn_ref(c);
		c->app_queue = q;
	}
	return q;
}

static void
api_queue_run(struct gate_job *g)
{
	struct api_queue *q = (struct api_queue *)g;
	struct conn *c = q->c;
	struct api_msg *m;

	if ((m = TAILQ_FIRST(&q->msgs)) != NULL &&
	    (c->flags & (CONN_READ_PAUSED | CONN_DEAD | CONN_OVERFLOW)) ==
		CONN_READ_PAUSED) {
		/* Its output is over the mark: what waits here goes back in
		 * front of what conn holds, for when it drains (a paused
		 * peer's requests produce nothing). */
		while ((m = TAILQ_LAST(&q->msgs, api_msg_list)) != NULL) {
			api_queue_take(q, m);
			conn_unread(c, m->binary, m->data, m->len);
			free(m);
		}
		conn_input_release(c);
	} else if (m != NULL) {
		api_queue_take(q, m);
		/* Run even if c closed meanwhile: it had arrived before. */
		chat_ws_message(c, m->binary, m->data, m->len);
		free(m);
		if (q->n <= API_CONN_QUEUE / 2 &&
		    q->bytes <= API_CONN_QUEUE_BYTES / 2 &&
		    (q->n == 0 || api_queued_bytes < API_QUEUE_BYTES))
			conn_input_release(c);
	}
	if (!TAILQ_EMPTY(&q->msgs)) {
		gate_post(&q->job, api_queue_run); /* its next turn */
		return;
	}
	if (!q->gone)
		return; /* posted again by the next message */
	c->app_queue = NULL;
	gate_cancel(&q->job); /* posted again while it ran */
	free(q);
	api_gone_now(c);
	conn_unref(c);
}

static int
api_ws_message(struct conn *c, int binary, uint8_t *data, size_t len)
{
	struct api_queue *q;
	struct api_msg *m;

	if (!gate_on())
		return chat_ws_message(c, binary, data, len);
	q = api_queue(c);
	m = xmalloc(sizeof *m + len);
	m->binary = binary;
	m->len = len;
	memcpy(m->data, data, len);
	TAILQ_INSERT_TAIL(&q->msgs, m, link);
	q->n++;
	q->bytes += len;
	api_queued_bytes += len;
	gate_post(&q->job, api_queue_run); /* nothing if queued already */
	if (c->flags & CONN_DEAD)
		return -1;
	if (c->app_queue != NULL && api_queue_full(q)) {
		gate_note_input_hold();
		conn_input_hold(c);
	}
	return 0;
}

static void
api_gone(struct conn *c)
{
	if (!gate_on() && c->app_queue == NULL) {
		api_gone_now(c);
		return;
	}
	api_queue(c)->gone = 1;
	gate_post(&api_queue(c)->job, api_queue_run);
}

/* Shutdown: whatever is pending is committed and delivered first, and
 * searches still running stop (their clients get 503 unavailable). */
static void
api_stop(struct server *srv)
{
	chat_flush(srv);
	reader_cancel(srv->reader);
	reader_cancel(srv->gauges);
}

const struct conn_app api_app = {
	.request = api_request,
	.head = api_head,
	.body = files_upload_body,
	.ws_open = chat_ws_open,
	.ws_message = api_ws_message,
	.gone = api_gone,
	.stop = api_stop,
	.ws_auth_timeout = CHAT_AUTH_TIMEOUT,
};
