/* storage/jsonl.c — the export format: JSON Lines, out and back in */
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "storage/jsonl.h"
#include "storage/storage.h"

json_t *
jsonl_message_json(const struct message *m)
{
	json_t *o =
	    json_pack("{s:I,s:I,s:s,s:s}", "id", (json_int_t)m->id, "seq",
	              (json_int_t)m->seq, "room", m->room, "user", m->username);

	if (m->deleted) {
		json_object_set_new(o, "ts", json_integer(m->ts));
		json_object_set_new(o, "deleted", json_true());
		return o;
	}
	json_object_set_new(o, "text",
	                    json_stringn(m->text ? m->text : "", m->text_len));
	json_object_set_new(o, "ts", json_integer(m->ts));
	if (m->edited_ts > 0)
		json_object_set_new(o, "edited_ts", json_integer(m->edited_ts));
	return o;
}

/* Writes one JSON object as a line on out; takes o. -1 on a write
 * error. */
static int
jsonl_emit(FILE *out, json_t *o)
{
	int rc = json_dumpf(o, out, JSON_COMPACT) == 0 && putc('\n', out) != EOF
	             ? 0
	             : -1;

	json_decref(o);
	return rc;
}

static int
jsonl_user_out(void *arg, const struct export_user *u)
{
	json_t *o = json_pack("{s:s,s:I,s:s,s:I}", "type", "user", "id",
	                      (json_int_t)u->id, "username", u->username,
	                      "created_at", (json_int_t)u->created_at);

	if (u->pwhash != NULL && strcmp(u->pwhash, "!") != 0)
		json_object_set_new(o, "pwhash", json_string(u->pwhash));
	if (u->deleted)
		json_object_set_new(o, "deleted", json_true());
	return jsonl_emit(arg, o);
}

static int
jsonl_room_out(void *arg, const struct room *r)
{
	return jsonl_emit(arg,
	                  json_pack("{s:s,s:s,s:s,s:I,s:I}", "type", "room",
	                            "room", r->name, "kind",
	                            r->kind == ROOM_DM ? "dm" : "public",
	                            "created_at", (json_int_t)r->created_at,
	                            "last_seq", (json_int_t)r->last_seq));
}

static int
jsonl_member_out(void *arg, const struct export_member *m)
{
	return jsonl_emit(arg,
	                  json_pack("{s:s,s:s,s:s,s:I,s:I}", "type", "member",
	                            "room", m->room, "user", m->username,
	                            "read_seq", (json_int_t)m->read_seq,
	                            "joined_at", (json_int_t)m->joined_at));
}

/* A message line: {"type":"message"} and the PROTOCOL.md message object
 * (a tombstone keeps edited_ts if it had one), plus client_msg_id. */
static int
jsonl_message_out(void *arg, const struct message *m, const char *client_msg_id)
{
	json_t *o = json_pack("{s:s}", "type", "message");
	json_t *body = jsonl_message_json(m);

	json_object_update(o, body);
	json_decref(body);
	if (m->deleted && m->edited_ts > 0)
		json_object_set_new(o, "edited_ts", json_integer(m->edited_ts));
	if (client_msg_id != NULL)
		json_object_set_new(o, "client_msg_id",
		                    json_string(client_msg_id));
	return jsonl_emit(arg, o);
}

/* The header line and every user, room and membership. */
static int
jsonl_export_all(struct db *db, FILE *out)
{
	int64_t floor;

	if (export_meta(db, &floor) != 0 ||
	    jsonl_emit(out,
	               json_pack("{s:s,s:i,s:s,s:I}", "type", "chatd_export",
	                         "version", 1, "epoch", db_epoch(db),
	                         "seq_floor", (json_int_t)floor)) != 0)
		return -1;
	if (export_users(db, jsonl_user_out, out) != 0 ||
	    room_list_all(db, jsonl_room_out, out) != 0 ||
	    export_members(db, jsonl_member_out, out) != 0)
		return -1;
	return 0;
}

int
jsonl_export(struct db *db, FILE *out, int64_t room_id, int64_t since,
             int64_t until)
{
	int full = room_id == 0 && since < 0 && until < 0;

	if ((full && jsonl_export_all(db, out) != 0) ||
	    export_messages(db, room_id, since, until, jsonl_message_out,
	                    out) != 0 ||
	    fflush(out) != 0)
		return -1;
	return 0;
}

/* The integer field key of o into *out (absent: def, if def >= 0). */
static int
jsonl_int_field(json_t *o, const char *key, int64_t def, int64_t *out)
{
	json_t *v = json_object_get(o, key);

	if (v == NULL && def >= 0) {
		*out = def;
		return 0;
	}
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return -1;
	*out = json_integer_value(v);
	return 0;
}

/* Copies the name field key of o into out (size n), folded by fold: a
 * username (max USERNAME_MAX) or a room name (max ROOMNAME_MAX). -1 if
 * missing or invalid. */
static int
jsonl_name_field(json_t *o, const char *key, int (*fold)(char *), size_t max,
                 char *out, size_t n)
{
	const char *s = json_string_value(json_object_get(o, key));

	if (s == NULL || strlen(s) >= n || strlen(s) > max)
		return -1;
	snprintf(out, n, "%s", s);
	return fold(out) < 0 ? -1 : 0;
}

/* Range errors, for jsonl_ranges. */
#define JSONL_BAD_ID "id out of range (1 to 2^53-1)"
#define JSONL_BAD_SEQ "seq out of range (0 to 2^53-1)"
#define JSONL_BAD_TS "time out of range (0 to 2100-01-01, in ms)"

/* Checks the ids (1..SEQ_MAX), seqs (0..SEQ_MAX) and times (0..TS_MAX)
 * of a line; each list ends with -1 (what no field holds: negative
 * values are refused by jsonl_int_field). NULL or why not. */
static const char *
jsonl_ranges(const int64_t *ids, const int64_t *seqs, const int64_t *times)
{
	for (; ids && *ids != -1; ids++)
		if (*ids < 1 || *ids > SEQ_MAX)
			return JSONL_BAD_ID;
	for (; seqs && *seqs != -1; seqs++)
		if (*seqs > SEQ_MAX)
			return JSONL_BAD_SEQ;
	for (; times && *times != -1; times++)
		if (*times > TS_MAX)
			return JSONL_BAD_TS;
	return NULL;
}

/* 1 if user is one of the two users of the DM room name (folded, so
 * "dm:<a>:<b>" with valid names), 0 if not or not a DM. */
static int
jsonl_dm_has(const char *room, const char *user)
{
	const char *a = room + 3, *colon;
	size_t n = strlen(user);

	if (strncmp(room, "dm:", 3) != 0 || (colon = strchr(a, ':')) == NULL)
		return 0;
	return ((size_t)(colon - a) == n && strncmp(a, user, n) == 0) ||
	       strcmp(colon + 1, user) == 0;
}

/* One user line. */
static const char *
jsonl_user_in(struct db *db, json_t *o, const struct jsonl_names *names)
{
	struct export_user u = {0};
	json_t *pw = json_object_get(o, "pwhash");
	const char *why;

	if (jsonl_int_field(o, "id", -1, &u.id) != 0 ||
	    jsonl_name_field(o, "username", names->user, USERNAME_MAX,
	                     u.username, sizeof u.username) != 0 ||
	    jsonl_int_field(o, "created_at", 0, &u.created_at) != 0 ||
	    (pw != NULL && !json_is_string(pw)))
		return "bad user line";
	if ((why = jsonl_ranges((int64_t[]){u.id, -1}, NULL,
	                        (int64_t[]){u.created_at, -1})) != NULL)
		return why;
	u.pwhash = json_string_value(pw);
	/* "" is a deleted user's hash: nothing verifies against it. */
	if (u.pwhash != NULL && u.pwhash[0] != '\0') {
		switch (names->pwhash(u.pwhash)) {
		case 0:
			break;
		case JSONL_HASH_TOO_COSTLY:
			return "pwhash costs more than 4 times chatd's own "
			       "Argon2id parameters";
		default:
			return "pwhash is not an Argon2id hash";
		}
	}
	u.deleted = json_is_true(json_object_get(o, "deleted"));
	switch (import_user(db, &u)) {
	case 0:
		return NULL;
	case 1:
		return "duplicate user";
	default:
		return "database error";
	}
}

/* One room line. */
static const char *
jsonl_room_in(struct db *db, json_t *o, const struct jsonl_names *names)
{
	struct room r = {0};
	const char *kind = json_string_value(json_object_get(o, "kind"));
	const char *why;
	int k;

	if (jsonl_name_field(o, "room", names->room, ROOMNAME_MAX, r.name,
	                     sizeof r.name) != 0 ||
	    jsonl_int_field(o, "created_at", 0, &r.created_at) != 0 ||
	    jsonl_int_field(o, "last_seq", 0, &r.last_seq) != 0)
		return "bad room line";
	if ((why = jsonl_ranges(NULL, (int64_t[]){r.last_seq, -1},
	                        (int64_t[]){r.created_at, -1})) != NULL)
		return why;
	k = strncmp(r.name, "dm:", 3) == 0 ? ROOM_DM : ROOM_PUBLIC;
	if (kind != NULL && strcmp(kind, k == ROOM_DM ? "dm" : "public") != 0)
		return "the room's kind does not match its name";
	r.kind = k;
	switch (import_room(db, &r)) {
	case 0:
		return NULL;
	case 1:
		return "duplicate room";
	default:
		return "database error";
	}
}

/* Checks a member line against its room as imported so far: a DM's
 * members are the two users of its name, and read_seq is at most the
 * room's last_seq (0 for a room not defined yet). NULL or why not. */
static const char *
jsonl_member_fits(struct db *db, const char *room, const char *user,
                  int64_t read_seq)
{
	struct room r = {0};
	int rc;

	if (strncmp(room, "dm:", 3) == 0 && !jsonl_dm_has(room, user))
		return "a DM's members are the two users of its name";
	if ((rc = room_by_name(db, room, &r)) < 0)
		return "database error";
	if (read_seq > (rc == 0 ? r.last_seq : 0))
		return "read_seq above the room's last_seq";
	return NULL;
}

/* One member line. */
static const char *
jsonl_member_in(struct db *db, json_t *o, const struct jsonl_names *names)
{
	char room[ROOMNAME_MAX + 1], user[USERNAME_MAX + 1];
	int64_t read_seq, joined;
	const char *why;

	if (jsonl_name_field(o, "room", names->room, ROOMNAME_MAX, room,
	                     sizeof room) != 0 ||
	    jsonl_name_field(o, "user", names->user, USERNAME_MAX, user,
	                     sizeof user) != 0 ||
	    jsonl_int_field(o, "read_seq", 0, &read_seq) != 0 ||
	    jsonl_int_field(o, "joined_at", 0, &joined) != 0)
		return "bad member line";
	if ((why = jsonl_ranges(NULL, (int64_t[]){read_seq, -1},
	                        (int64_t[]){joined, -1})) != NULL ||
	    (why = jsonl_member_fits(db, room, user, read_seq)) != NULL)
		return why;
	switch (import_member(db, room, user, read_seq, joined)) {
	case 0:
		return NULL;
	case 1:
		return "duplicate member";
	default:
		return "database error";
	}
}

/* One message line (PROTOCOL.md message or tombstone). */
static const char *
jsonl_message_in(struct db *db, json_t *o, const struct jsonl_names *names)
{
	struct message m = {0};
	json_t *text = json_object_get(o, "text");
	json_t *cid = json_object_get(o, "client_msg_id");
	const char *why;

	m.deleted = json_is_true(json_object_get(o, "deleted"));
	if (jsonl_int_field(o, "id", -1, &m.id) != 0 ||
	    jsonl_int_field(o, "seq", m.id, &m.seq) != 0 ||
	    jsonl_name_field(o, "room", names->room, ROOMNAME_MAX, m.room,
	                     sizeof m.room) != 0 ||
	    jsonl_name_field(o, "user", names->user, USERNAME_MAX, m.username,
	                     sizeof m.username) != 0 ||
	    jsonl_int_field(o, "ts", -1, &m.ts) != 0 ||
	    jsonl_int_field(o, "edited_ts", 0, &m.edited_ts) != 0 ||
	    (!m.deleted && !json_is_string(text)) ||
	    (cid != NULL &&
	     (!json_is_string(cid) || json_string_length(cid) > 64)))
		return "bad message line";
	if ((why = jsonl_ranges((int64_t[]){m.id, -1}, (int64_t[]){m.seq, -1},
	                        (int64_t[]){m.ts, m.edited_ts, -1})) != NULL)
		return why;
	/* A change takes a seq after the message's creation. */
	if (m.seq < m.id)
		return "seq below id";
	if (strncmp(m.room, "dm:", 3) == 0 && !jsonl_dm_has(m.room, m.username))
		return "a DM's messages are by the two users of its name";
	if (!m.deleted) {
		m.text = json_string_value(text);
		m.text_len = json_string_length(text);
	}
	switch (import_message(db, &m, json_string_value(cid))) {
	case 0:
		return NULL;
	case 1:
		return "duplicate message id, seq or client_msg_id";
	default:
		return "database error";
	}
}

/* The header line: the epoch and seq_floor of the exported database. */
static const char *
jsonl_header_in(struct db *db, json_t *o)
{
	const char *epoch = json_string_value(json_object_get(o, "epoch"));
	int64_t version, floor;

	if (jsonl_int_field(o, "version", -1, &version) != 0 || version != 1)
		return "unsupported export version";
	if (jsonl_int_field(o, "seq_floor", 0, &floor) != 0 ||
	    (epoch != NULL && (strlen(epoch) != EPOCH_LEN ||
	                       strspn(epoch, "0123456789abcdef") != EPOCH_LEN)))
		return "bad header line";
	if (floor > SEQ_MAX)
		return JSONL_BAD_SEQ;
	return import_meta(db, epoch, floor) == 0 ? NULL : "database error";
}

/* Imports one line; NULL or why it failed. */
static const char *
jsonl_line_in(struct db *db, const char *line, size_t len,
              const struct jsonl_names *names)
{
	json_error_t jerr;
	json_t *o = json_loadb(line, len, JSON_ALLOW_NUL, &jerr);
	const char *type, *why;

	if (!json_is_object(o)) {
		json_decref(o);
		return "not a JSON object";
	}
	type = json_string_value(json_object_get(o, "type"));
	if (type == NULL)
		why = "no type";
	else if (strcmp(type, "message") == 0)
		why = jsonl_message_in(db, o, names);
	else if (strcmp(type, "user") == 0)
		why = jsonl_user_in(db, o, names);
	else if (strcmp(type, "room") == 0)
		why = jsonl_room_in(db, o, names);
	else if (strcmp(type, "member") == 0)
		why = jsonl_member_in(db, o, names);
	else if (strcmp(type, "chatd_export") == 0)
		why = jsonl_header_in(db, o);
	else
		why = "unknown type";
	json_decref(o);
	return why;
}

const char *
jsonl_import(struct db *db, FILE *in, const struct jsonl_names *names,
             size_t *lineno)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	const char *why = NULL;

	*lineno = 0;
	while (why == NULL && (len = getline(&line, &cap, in)) != -1) {
		(*lineno)++;
		while (len > 0 &&
		       (line[len - 1] == '\n' || line[len - 1] == '\r'))
			len--;
		if (len > 0)
			why = jsonl_line_in(db, line, (size_t)len, names);
	}
	if (why == NULL && ferror(in))
		why = "read error";
	free(line);
	return why;
}
