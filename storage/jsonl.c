/* storage/jsonl.c — the export format: JSON Lines, out and back in */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include <openssl/evp.h>

#include "storage/jsonl.h"
#include "storage/storage.h"

/* A list of names separated by sep (len bytes) as a JSON array. */
static json_t *
jsonl_names(const char *p, size_t len, char sep)
{
	json_t *a = json_array();
	const char *end = p + len, *e;

	for (; p < end; p = e + 1) {
		if ((e = memchr(p, sep, (size_t)(end - p))) == NULL)
			e = end;
		json_array_append_new(a, json_stringn(p, (size_t)(e - p)));
	}
	return a;
}

/* Adds the version 2 members of a live message to o (PROTOCOL.md
 * "Mentions", "Reactions", "Replies"), each omitted when empty. */
static void
jsonl_message_v2(json_t *o, const struct message *m)
{
	const char *p = m->reactions;
	struct reaction_view v;
	json_t *list;

	if (m->reply_to > 0)
		json_object_set_new(o, "reply_to", json_integer(m->reply_to));
	if (m->mentions != NULL && m->mentions_len > 0)
		json_object_set_new(o, "mentions",
		                    jsonl_names(m->mentions, m->mentions_len,
		                                ' '));
	if (m->mention_room)
		json_object_set_new(o, "mention_room", json_true());
	if (m->files != NULL && m->files_len > 0)
		json_object_set_new(o, "files",
		                    json_loadb(m->files, m->files_len, 0, NULL));
	if (p == NULL || m->reactions_len == 0)
		return;
	list = json_array();
	while (reaction_next(&p, m->reactions + m->reactions_len, &v))
		json_array_append_new(
		    list,
		    json_pack("{s:s%,s:I,s:o}", "emoji", v.emoji, v.emoji_len,
		              "count", (json_int_t)v.count, "users",
		              v.users_len > 0
		                  ? jsonl_names(v.users + 1, v.users_len - 1,
		                                REACTION_USER)
		                  : json_array()));
	json_object_set_new(o, "reactions", list);
}

json_t *
jsonl_message_json(const struct message *m)
{
	json_t *o =
	    json_pack("{s:I,s:I,s:s,s:s}", "id", (json_int_t)m->id, "seq",
	              (json_int_t)m->seq, "room", m->room, "user", m->username);

	if (m->deleted) {
		json_object_set_new(o, "ts", json_integer(m->ts));
		json_object_set_new(o, "deleted", json_true());
		if (m->deleted_by[0] != '\0')
			json_object_set_new(o, "deleted_by",
			                    json_string(m->deleted_by));
		return o;
	}
	json_object_set_new(o, "text",
	                    json_stringn(m->text ? m->text : "", m->text_len));
	json_object_set_new(o, "ts", json_integer(m->ts));
	if (m->edited_ts > 0)
		json_object_set_new(o, "edited_ts", json_integer(m->edited_ts));
	jsonl_message_v2(o, m);
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

/* The names of enum room_kind, enum room_role and enum room_notify. */
static const char *const jsonl_kinds[] = {"public", "dm", "private"};
static const char *const jsonl_roles[] = {"member", "moderator", "owner"};
static const char *const jsonl_levels[] = {"all", "mentions", "none"};

/* The index of name in names[n], or -1. */
static int
jsonl_enum(const char *name, const char *const *names, int n)
{
	for (int i = 0; name != NULL && i < n; i++)
		if (strcmp(name, names[i]) == 0)
			return i;
	return -1;
}

/* A room line; "topic" only when the room has one (a version 1 room's
 * line is as it was). */
static int
jsonl_room_out(void *arg, const struct room *r)
{
	json_t *o = json_pack("{s:s,s:s,s:s,s:I,s:I}", "type", "room", "room",
	                      r->name, "kind",
	                      jsonl_kinds[r->kind >= 0 && r->kind <= 2 ? r->kind
	                                                               : 0],
	                      "created_at", (json_int_t)r->created_at,
	                      "last_seq", (json_int_t)r->last_seq);

	if (r->topic[0] != '\0')
		json_object_set_new(o, "topic", json_string(r->topic));
	return jsonl_emit(arg, o);
}

/* A member line; "role" and "notify" only when not the defaults. */
static int
jsonl_member_out(void *arg, const struct export_member *m)
{
	json_t *o = json_pack("{s:s,s:s,s:s,s:I,s:I}", "type", "member",
	                      "room", m->room, "user", m->username, "read_seq",
	                      (json_int_t)m->read_seq, "joined_at",
	                      (json_int_t)m->joined_at);

	if (m->role > ROLE_MEMBER && m->role <= ROLE_OWNER)
		json_object_set_new(o, "role", json_string(jsonl_roles[m->role]));
	if (m->notify > NOTIFY_ALL && m->notify <= NOTIFY_NONE)
		json_object_set_new(o, "notify",
		                    json_string(jsonl_levels[m->notify]));
	return jsonl_emit(arg, o);
}

static int
jsonl_ban_out(void *arg, const struct export_ban *b)
{
	return jsonl_emit(arg, json_pack("{s:s,s:s,s:s,s:I}", "type", "ban",
	                                 "room", b->room, "user", b->username,
	                                 "created_at",
	                                 (json_int_t)b->created_at));
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
	    export_members(db, jsonl_member_out, out) != 0 ||
	    export_bans(db, jsonl_ban_out, out) != 0)
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
	json_t *kind = json_object_get(o, "kind");
	json_t *topic = json_object_get(o, "topic");
	const char *why;
	int dm, k;

	if (jsonl_name_field(o, "room", names->room, ROOMNAME_MAX, r.name,
	                     sizeof r.name) != 0 ||
	    jsonl_int_field(o, "created_at", 0, &r.created_at) != 0 ||
	    jsonl_int_field(o, "last_seq", 0, &r.last_seq) != 0 ||
	    (topic != NULL &&
	     (!json_is_string(topic) ||
	      json_string_length(topic) > ROOM_TOPIC_BYTES ||
	      strlen(json_string_value(topic)) != json_string_length(topic))))
		return "bad room line";
	if ((why = jsonl_ranges(NULL, (int64_t[]){r.last_seq, -1},
	                        (int64_t[]){r.created_at, -1})) != NULL)
		return why;
	dm = strncmp(r.name, "dm:", 3) == 0;
	k = kind == NULL ? (dm ? ROOM_DM : ROOM_PUBLIC)
	                 : jsonl_enum(json_string_value(kind), jsonl_kinds, 3);
	if (k < 0 || (k == ROOM_DM) != dm)
		return "the room's kind does not match its name";
	r.kind = k;
	if (topic != NULL)
		snprintf(r.topic, sizeof r.topic, "%s", json_string_value(topic));
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
	struct export_member m = {0};
	json_t *role = json_object_get(o, "role");
	json_t *notify = json_object_get(o, "notify");
	const char *why;

	if (jsonl_name_field(o, "room", names->room, ROOMNAME_MAX, m.room,
	                     sizeof m.room) != 0 ||
	    jsonl_name_field(o, "user", names->user, USERNAME_MAX, m.username,
	                     sizeof m.username) != 0 ||
	    jsonl_int_field(o, "read_seq", 0, &m.read_seq) != 0 ||
	    jsonl_int_field(o, "joined_at", 0, &m.joined_at) != 0 ||
	    (role != NULL && (m.role = jsonl_enum(json_string_value(role),
	                                          jsonl_roles, 3)) < 0) ||
	    (notify != NULL &&
	     (m.notify = jsonl_enum(json_string_value(notify), jsonl_levels,
	                            3)) < 0))
		return "bad member line";
	if ((why = jsonl_ranges(NULL, (int64_t[]){m.read_seq, -1},
	                        (int64_t[]){m.joined_at, -1})) != NULL ||
	    (why = jsonl_member_fits(db, m.room, m.username, m.read_seq)) !=
	        NULL)
		return why;
	/* DM rooms have no roles. */
	if (m.role != ROLE_MEMBER && strncmp(m.room, "dm:", 3) == 0)
		return "bad member line";
	switch (import_member(db, &m)) {
	case 0:
		return NULL;
	case 1:
		return "duplicate member";
	default:
		return "database error";
	}
}

/* One ban line. */
static const char *
jsonl_ban_in(struct db *db, json_t *o, const struct jsonl_names *names)
{
	struct export_ban b = {0};

	if (jsonl_name_field(o, "room", names->room, ROOMNAME_MAX, b.room,
	                     sizeof b.room) != 0 ||
	    jsonl_name_field(o, "user", names->user, USERNAME_MAX, b.username,
	                     sizeof b.username) != 0 ||
	    jsonl_int_field(o, "created_at", 0, &b.created_at) != 0 ||
	    strncmp(b.room, "dm:", 3) == 0)
		return "bad ban line";
	switch (import_ban(db, &b)) {
	case 0:
		return NULL;
	case 1:
		return "duplicate ban";
	default:
		return "database error";
	}
}

/* A growing string for the encoded lists of struct message. */
struct jsonl_buf {
	char *s;
	size_t len, cap;
};

/* Appends n bytes of p. */
static void
jsonl_put(struct jsonl_buf *b, const char *p, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2;
		b->s = realloc(b->s, b->cap);
		if (b->s == NULL)
			abort();
	}
	memcpy(b->s + b->len, p, n);
	b->len += n;
	b->s[b->len] = '\0';
}

/* Appends a username (checked and folded), after sep unless first. -1 if
 * it is not a username. */
static int
jsonl_put_name(struct jsonl_buf *b, json_t *v, const struct jsonl_names *names,
               char sep, int first)
{
	char name[USERNAME_MAX + 1];
	const char *s = json_string_value(v);

	if (s == NULL || strlen(s) > USERNAME_MAX ||
	    strlen(s) != json_string_length(v))
		return -1;
	snprintf(name, sizeof name, "%s", s);
	if (names->user(name) < 0)
		return -1;
	if (!first)
		jsonl_put(b, &sep, 1);
	jsonl_put(b, name, strlen(name));
	return 0;
}

/* Reads a message line's "mentions" (an array of usernames) into b,
 * space-separated. -1 if malformed. */
static int
jsonl_mentions_in(json_t *o, const struct jsonl_names *names,
                  struct jsonl_buf *b)
{
	json_t *a = json_object_get(o, "mentions"), *v;
	size_t i;

	if (a == NULL)
		return 0;
	if (!json_is_array(a))
		return -1;
	json_array_foreach(a, i, v) if (jsonl_put_name(b, v, names, ' ',
	                                               i == 0) != 0) return -1;
	return 0;
}

/* Reads a message line's "reactions" into b, encoded as m->reactions
 * (storage.h). -1 if malformed. */
static int
jsonl_reactions_in(json_t *o, const struct jsonl_names *names,
                   struct jsonl_buf *b)
{
	json_t *a = json_object_get(o, "reactions"), *r, *users, *u;
	const char *emoji;
	char sep = REACTION_SEP;
	size_t i, j, elen;

	if (a == NULL)
		return 0;
	if (!json_is_array(a))
		return -1;
	json_array_foreach(a, i, r)
	{
		emoji = json_string_value(json_object_get(r, "emoji"));
		users = json_object_get(r, "users");
		if (emoji == NULL || !json_is_array(users) ||
		    json_array_size(users) == 0)
			return -1;
		elen = json_string_length(json_object_get(r, "emoji"));
		if (elen == 0 || elen > REACTION_EMOJI_MAX ||
		    memchr(emoji, REACTION_SEP, elen) != NULL ||
		    memchr(emoji, REACTION_USER, elen) != NULL ||
		    strlen(emoji) != elen)
			return -1;
		if (i > 0)
			jsonl_put(b, &sep, 1);
		jsonl_put(b, emoji, elen);
		json_array_foreach(users, j, u) if (
		    jsonl_put_name(b, u, names, REACTION_USER, 0) != 0) return -1;
	}
	return 0;
}

/* 1 if s is a public file id: FILE_ID_LEN lower-case hex digits. */
static int
jsonl_file_id_ok(const char *s)
{
	return s != NULL && strlen(s) == FILE_ID_LEN &&
	       strspn(s, "0123456789abcdef") == FILE_ID_LEN;
}

/* A message's "files" (PROTOCOL.md): checked and written compact into
 * *out (malloc'd; NULL when absent). 0 or -1. */
static int
jsonl_files_in(json_t *o, char **out)
{
	json_t *a = json_object_get(o, "files"), *f, *size;
	size_t i;

	*out = NULL;
	if (a == NULL)
		return 0;
	if (!json_is_array(a) || json_array_size(a) == 0 ||
	    json_array_size(a) > 10)
		return -1;
	json_array_foreach(a, i, f)
	{
		size = json_object_get(f, "size");
		if (!json_is_object(f) || json_object_size(f) != 4 ||
		    !jsonl_file_id_ok(
		        json_string_value(json_object_get(f, "id"))) ||
		    !json_is_string(json_object_get(f, "name")) ||
		    !json_is_string(json_object_get(f, "type")) ||
		    !json_is_integer(size) || json_integer_value(size) < 0)
			return -1;
	}
	*out = json_dumps(a, JSON_COMPACT);
	return *out != NULL ? 0 : -1;
}

/* One message line (PROTOCOL.md message or tombstone). */
static const char *
jsonl_message_in(struct db *db, json_t *o, const struct jsonl_names *names)
{
	struct message m = {0};
	json_t *text = json_object_get(o, "text");
	json_t *cid = json_object_get(o, "client_msg_id");
	json_t *by = json_object_get(o, "deleted_by");
	struct jsonl_buf mentions = {0}, reactions = {0};
	char *files = NULL;
	const char *why;

	m.deleted = json_is_true(json_object_get(o, "deleted"));
	if (by != NULL &&
	    (!m.deleted || jsonl_name_field(o, "deleted_by", names->user,
	                                    USERNAME_MAX, m.deleted_by,
	                                    sizeof m.deleted_by) != 0))
		return "bad message line";
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
	if (jsonl_int_field(o, "reply_to", 0, &m.reply_to) != 0 ||
	    jsonl_mentions_in(o, names, &mentions) != 0 ||
	    jsonl_reactions_in(o, names, &reactions) != 0 ||
	    jsonl_files_in(o, &files) != 0) {
		free(mentions.s);
		free(reactions.s);
		free(files);
		return "bad message line";
	}
	/* A reply answers an earlier message. */
	if (m.reply_to != 0 && m.reply_to >= m.id) {
		free(mentions.s);
		free(reactions.s);
		free(files);
		return "reply_to is not an earlier message";
	}
	m.files = files;
	m.files_len = files != NULL ? strlen(files) : 0;
	m.mentions = mentions.len > 0 ? mentions.s : NULL;
	m.mentions_len = mentions.len;
	m.mention_room = json_is_true(json_object_get(o, "mention_room"));
	m.reactions = reactions.len > 0 ? reactions.s : NULL;
	m.reactions_len = reactions.len;
	switch (import_message(db, &m, json_string_value(cid))) {
	case 0:
		why = NULL;
		break;
	case 1:
		why = "duplicate message id, seq or client_msg_id";
		break;
	default:
		why = "database error";
		break;
	}
	free(mentions.s);
	free(reactions.s);
	free(files);
	return why;
}

/* A "file" line (docs/files.md): an attached file with its bytes in
 * base64; the bytes go to names->file_bytes, the row to the files
 * table. */
static const char *
jsonl_file_in(struct db *db, json_t *o, const struct jsonl_names *names)
{
	const char *data = json_string_value(json_object_get(o, "data"));
	const char *id = json_string_value(json_object_get(o, "id"));
	const char *name = json_string_value(json_object_get(o, "name"));
	const char *type =
	    json_string_value(json_object_get(o, "content_type"));
	struct file_row f = {0};
	char room[ROOMNAME_MAX + 1], user[USERNAME_MAX + 1];
	unsigned char *bytes;
	size_t dlen, n;
	int rc;

	if (names->file_bytes == NULL)
		return "file lines need a files directory";
	if (!jsonl_file_id_ok(id) || name == NULL || strlen(name) == 0 ||
	    strlen(name) >= sizeof f.name || type == NULL ||
	    strlen(type) >= sizeof f.type || data == NULL ||
	    jsonl_name_field(o, "room", names->room, ROOMNAME_MAX, room,
	                     sizeof room) != 0 ||
	    jsonl_name_field(o, "user", names->user, USERNAME_MAX, user,
	                     sizeof user) != 0 ||
	    jsonl_int_field(o, "message", -1, &f.message_id) != 0 ||
	    jsonl_int_field(o, "pos", 0, &f.pos) != 0 ||
	    jsonl_int_field(o, "size", -1, &f.size) != 0 ||
	    jsonl_int_field(o, "created_at", -1, &f.created_at) != 0)
		return "bad file line";
	dlen = json_string_length(json_object_get(o, "data"));
	if (dlen % 4 != 0)
		return "bad file line: data is not base64";
	bytes = malloc(dlen / 4 * 3 + 1);
	if (bytes == NULL)
		return "out of memory";
	rc = EVP_DecodeBlock(bytes, (const unsigned char *)data, (int)dlen);
	n = rc < 0 ? 0 : (size_t)rc;
	/* EVP_DecodeBlock counts the padding's zero bytes. */
	if (dlen > 0 && data[dlen - 1] == '=')
		n--;
	if (dlen > 1 && data[dlen - 2] == '=')
		n--;
	if (rc < 0 || (int64_t)n != f.size) {
		free(bytes);
		return "bad file line: data does not match size";
	}
	rc = names->file_bytes(names->file_arg, bytes, n, f.hash);
	free(bytes);
	if (rc != 0)
		return "cannot store the file's bytes";
	snprintf(f.id, sizeof f.id, "%s", id);
	snprintf(f.name, sizeof f.name, "%s", name);
	snprintf(f.type, sizeof f.type, "%s", type);
	switch (import_file(db, &f, room, user)) {
	case 0:
		return NULL;
	case 1:
		return "duplicate file id";
	case 2:
		return "the file's message is not a live message of its room";
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
	else if (strcmp(type, "ban") == 0)
		why = jsonl_ban_in(db, o, names);
	else if (strcmp(type, "file") == 0)
		why = jsonl_file_in(db, o, names);
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
	/* The unread counters follow from the lines, in whatever order
	 * the members and messages came. */
	if (why == NULL && (room_counts_rebuild(db) != 0 || db_seq_sync(db) != 0))
		why = "database error";
	free(line);
	return why;
}
