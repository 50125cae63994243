/* storage/import.c — loading an export into an empty database */
#include <stdio.h>
#include <string.h>

#include "storage/db.h"
#include "storage/storage.h"

/* A password hash no password verifies against: imported users that
 * came without one get a password with chatd user passwd. */
#define IMPORT_NO_PASSWORD "!"

int
import_is_empty(struct db *db)
{
	struct db_stmt *st = db_prepare(
	    db, "SELECT EXISTS (SELECT 1 FROM users) OR EXISTS (SELECT 1"
	        " FROM rooms) OR EXISTS (SELECT 1 FROM messages)");
	int rc, empty = -1;

	if (st == NULL)
		return -1;
	if ((rc = db_step(st)) == DB_ROW)
		empty = db_column_int64(st, 0) == 0;
	db_reset(st);
	return empty;
}

/* Runs a write statement once; 0, 1 on a constraint, -1. */
static int
import_run(struct db_stmt *st)
{
	int rc = db_step(st);

	db_reset(st);
	return rc == DB_DONE ? 0 : rc == DB_CONSTRAINT ? 1 : -1;
}

int
import_meta(struct db *db, const char *epoch, int64_t seq_floor)
{
	struct db_stmt *st =
	    db_prepare(db, "UPDATE meta SET value = :value WHERE key = :key");
	int rc = 0;

	if (st == NULL)
		return -1;
	if (epoch != NULL) {
		db_bind_text(st, ":key", "epoch", -1);
		db_bind_text(st, ":value", epoch, -1);
		rc = import_run(st);
	}
	if (rc == 0) {
		db_bind_text(st, ":key", "seq_floor", -1);
		db_bind_int64(st, ":value", seq_floor);
		rc = import_run(st);
	}
	return rc == 0 ? 0 : -1;
}

int
import_user(struct db *db, const struct export_user *u)
{
	/* SQLite gives a NULL id the next one; PostgreSQL takes it from the
	 * identity's sequence, which an explicit id must then pass. */
	struct db_stmt *st = db_prepare2(
	    db,
	    "INSERT INTO users (id, username, pwhash, created_at, deleted)"
	    " VALUES (:id, :name, :pwhash, :created, :deleted)",
	    "INSERT INTO users (id, username, pwhash, created_at, deleted)"
	    " VALUES (coalesce(:id::bigint,"
	    " nextval(pg_get_serial_sequence('users', 'id'))), :name, :pwhash,"
	    " :created, :deleted)");
	struct db_stmt *seq = db_is_postgres(db)
	    ? db_prepare(db, "SELECT setval(pg_get_serial_sequence('users',"
	                     " 'id'), (SELECT max(id) FROM users))")
	    : NULL;
	int rc;

	if (st == NULL || (db_is_postgres(db) && seq == NULL))
		return -1;
	if (u->id > 0)
		db_bind_int64(st, ":id", u->id);
	else
		db_bind_null(st, ":id");
	db_bind_text(st, ":name", u->username, -1);
	db_bind_text(st, ":pwhash", u->pwhash ? u->pwhash : IMPORT_NO_PASSWORD,
	             -1);
	db_bind_int64(st, ":created", u->created_at);
	db_bind_int64(st, ":deleted", u->deleted != 0);
	rc = import_run(st);
	if (rc == 0 && seq != NULL && u->id > 0) {
		rc = db_step(seq) == DB_ROW ? 0 : -1;
		db_reset(seq);
	}
	return rc;
}

int
import_room(struct db *db, const struct room *r)
{
	struct db_stmt *st = db_prepare(
	    db, "INSERT INTO rooms (name, kind, private, topic, created_at,"
	        " last_seq) VALUES (:name, :kind, :private, :topic, :created,"
	        " :last_seq)");

	if (st == NULL)
		return -1;
	db_bind_text(st, ":name", r->name, -1);
	db_bind_int64(st, ":kind",
	              r->kind == ROOM_PRIVATE ? ROOM_PUBLIC : r->kind);
	db_bind_int64(st, ":private", r->kind == ROOM_PRIVATE);
	db_bind_text(st, ":topic", r->topic, -1);
	db_bind_int64(st, ":created", r->created_at);
	db_bind_int64(st, ":last_seq", r->last_seq);
	return import_run(st);
}

/* The id of a user by name, deleted ones included: 0, 1 if none, -1. */
static int
import_user_id(struct db *db, const char *name, int64_t *id)
{
	struct db_stmt *st =
	    db_prepare(db, "SELECT id FROM users WHERE username = :name");
	int rc;

	if (st == NULL)
		return -1;
	db_bind_text(st, ":name", name, -1);
	if ((rc = db_step(st)) == DB_ROW)
		*id = db_column_int64(st, 0);
	db_reset(st);
	return rc == DB_ROW ? 0 : rc == DB_DONE ? 1 : -1;
}

/* The id of a user by name, creating a live user without a password if
 * there is none (the messages of users not in the stream still import).
 * 0 or -1. */
static int
import_user_get(struct db *db, const char *name, int64_t now, int64_t *id)
{
	struct export_user u = {0};
	int rc = import_user_id(db, name, id);

	if (rc != 1)
		return rc;
	snprintf(u.username, sizeof u.username, "%s", name);
	u.created_at = now;
	if (import_user(db, &u) != 0)
		return -1;
	return import_user_id(db, name, id) == 0 ? 0 : -1;
}

/* The id of a room by name, creating it (public, or a DM by its name)
 * if there is none. 0 or -1. */
static int
import_room_get(struct db *db, const char *name, int64_t now, int64_t *id)
{
	struct room r;
	int rc = room_by_name(db, name, &r);

	if (rc == 0)
		*id = r.id;
	if (rc != 1)
		return rc;
	memset(&r, 0, sizeof r);
	snprintf(r.name, sizeof r.name, "%s", name);
	r.kind = strncmp(name, "dm:", 3) == 0 ? ROOM_DM : ROOM_PUBLIC;
	r.created_at = now;
	if (import_room(db, &r) != 0 || room_by_name(db, name, &r) != 0)
		return -1;
	*id = r.id;
	return 0;
}

int
import_member(struct db *db, const struct export_member *m)
{
	struct db_stmt *st = db_prepare(
	    db, "INSERT INTO members (room_id, user_id, read_seq, joined_at,"
	        " role, notify) VALUES (:room, :user, :read_seq, :joined,"
	        " :role, :notify)");
	int64_t room_id, user_id;

	if (st == NULL ||
	    import_room_get(db, m->room, m->joined_at, &room_id) ||
	    import_user_get(db, m->username, m->joined_at, &user_id))
		return -1;
	db_bind_int64(st, ":room", room_id);
	db_bind_int64(st, ":user", user_id);
	db_bind_int64(st, ":read_seq", m->read_seq);
	db_bind_int64(st, ":joined", m->joined_at);
	db_bind_int64(st, ":role", m->role);
	db_bind_int64(st, ":notify", m->notify);
	return import_run(st);
}

/* A name of len bytes (a username) into out, NUL-ended. -1 if too long. */
static int
import_name(const char *s, size_t len, char out[USERNAME_MAX + 1])
{
	if (len == 0 || len > USERNAME_MAX)
		return -1;
	memcpy(out, s, len);
	out[len] = '\0';
	return 0;
}

/* The count rows of an imported live message's mentions (see
 * migrations/006): each named user but the author, unless @room. */
static int
import_mentions(struct db *db, const struct message *m, int64_t room_id,
                int64_t author)
{
	struct db_stmt *ins = db_prepare(
	    db, "INSERT INTO mentions (user_id, room_id, message_id)"
	        " VALUES (:user_id, :room_id, :id) ON CONFLICT DO NOTHING");
	const char *p = m->mentions, *end = p + m->mentions_len, *sp;
	char name[USERNAME_MAX + 1];
	int64_t user_id;
	int rc;

	if (ins == NULL)
		return -1;
	if (m->deleted || m->mention_room || p == NULL)
		return 0;
	for (; p < end; p = sp + 1) {
		if ((sp = memchr(p, ' ', (size_t)(end - p))) == NULL)
			sp = end;
		if (import_name(p, (size_t)(sp - p), name) != 0 ||
		    import_user_get(db, name, m->ts, &user_id) != 0)
			return -1;
		if (user_id == author)
			continue;
		db_bind_int64(ins, ":user_id", user_id);
		db_bind_int64(ins, ":room_id", room_id);
		db_bind_int64(ins, ":id", m->id);
		rc = import_run(ins);
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* An imported message's reactions, in their order: negative orders,
 * below every seq, so that reactions made after the import go after
 * them. */
static int
import_reactions(struct db *db, const struct message *m)
{
	struct db_stmt *ins = db_prepare(
	    db, "INSERT INTO reactions (message_id, emoji, user_id, emoji_ord,"
	        " ord) VALUES (:id, :emoji, :user_id, :emoji_ord, :ord)");
	struct db_stmt *flag =
	    db_prepare(db, "UPDATE messages SET reacted = 1 WHERE id = :id");
	const char *p = m->reactions, *end = p + m->reactions_len, *u, *ue;
	char name[USERNAME_MAX + 1];
	struct reaction_view v;
	int64_t ord = -(int64_t)m->reactions_len - 1, eord = ord, user_id;
	int rc;

	if (ins == NULL || flag == NULL)
		return -1;
	if (m->deleted || p == NULL || m->reactions_len == 0)
		return 0;
	while (reaction_next(&p, end, &v)) {
		eord++;
		for (u = v.users; u < v.users + v.users_len; u = ue) {
			u++; /* REACTION_USER */
			ue = memchr(u, REACTION_USER,
			            (size_t)(v.users + v.users_len - u));
			if (ue == NULL)
				ue = v.users + v.users_len;
			if (import_name(u, (size_t)(ue - u), name) != 0 ||
			    import_user_get(db, name, m->ts, &user_id) != 0)
				return -1;
			db_bind_int64(ins, ":id", m->id);
			db_bind_text(ins, ":emoji", v.emoji,
			             (ptrdiff_t)v.emoji_len);
			db_bind_int64(ins, ":user_id", user_id);
			db_bind_int64(ins, ":emoji_ord", eord);
			db_bind_int64(ins, ":ord", ++ord);
			if ((rc = import_run(ins)) != 0)
				return rc;
		}
	}
	return db_run_id(flag, m->id);
}

int
import_ban(struct db *db, const struct export_ban *b)
{
	int64_t room_id, user_id;
	int rc;

	if (import_room_get(db, b->room, b->created_at, &room_id) ||
	    import_user_get(db, b->username, b->created_at, &user_id))
		return -1;
	rc = ban_add(db, room_id, user_id, b->created_at);
	return rc;
}

int
import_message(struct db *db, const struct message *m,
               const char *client_msg_id)
{
	struct db_stmt *ins = db_prepare(
	    db, "INSERT INTO messages (id, seq, room_id, user_id, text, ts,"
	        " edited_ts, deleted, client_msg_id, deleted_by, reply_to,"
	        " mentions, mention_room, files) VALUES (:id, :seq, :room,"
	        " :user, :text, :ts, :edited, :deleted, :client,"
	        " nullif(:by, 0), :reply_to, :mentions, :mention_room,"
	        " :files)");
	struct db_stmt *last =
	    db_prepare2(db, "UPDATE rooms SET last_seq = max(last_seq, :seq)"
	                    " WHERE id = :room",
	                "UPDATE rooms SET last_seq = greatest(last_seq, :seq)"
	                " WHERE id = :room");
	int64_t room_id, user_id, by = 0;
	int rc;

	if (ins == NULL || last == NULL ||
	    import_room_get(db, m->room, m->ts, &room_id) ||
	    import_user_get(db, m->username, m->ts, &user_id) ||
	    (m->deleted_by[0] != '\0' &&
	     import_user_get(db, m->deleted_by, m->ts, &by)))
		return -1;
	db_bind_int64(ins, ":by", by);
	db_bind_int64(ins, ":id", m->id);
	db_bind_int64(ins, ":seq", m->seq);
	db_bind_int64(ins, ":room", room_id);
	db_bind_int64(ins, ":user", user_id);
	db_bind_text(ins, ":text", m->deleted ? NULL : m->text,
	             (ptrdiff_t)m->text_len);
	db_bind_int64(ins, ":ts", m->ts);
	db_bind_int64(ins, ":edited", m->edited_ts);
	db_bind_int64(ins, ":deleted", m->deleted != 0);
	db_bind_text(ins, ":client", client_msg_id, -1);
	if (m->reply_to > 0 && !m->deleted)
		db_bind_int64(ins, ":reply_to", m->reply_to);
	else
		db_bind_null(ins, ":reply_to");
	db_bind_text(ins, ":mentions", m->deleted ? NULL : m->mentions,
	             (ptrdiff_t)m->mentions_len);
	db_bind_int64(ins, ":mention_room", m->mention_room && !m->deleted);
	db_bind_text(ins, ":files", m->deleted ? NULL : m->files,
	             (ptrdiff_t)m->files_len);
	if ((rc = import_run(ins)) != 0 ||
	    (rc = import_mentions(db, m, room_id, user_id)) != 0 ||
	    (rc = import_reactions(db, m)) != 0)
		return rc;
	db_bind_int64(last, ":seq", m->seq);
	db_bind_int64(last, ":room", room_id);
	return import_run(last);
}

int
import_file(struct db *db, const struct file_row *f, const char *room,
            const char *user)
{
	struct db_stmt *ins = db_prepare(
	    db, "INSERT INTO files (id, room_id, user_id, message_id, pos,"
	        " name, type, size, hash, created_at)"
	        " SELECT :id, m.room_id, :user, m.id, :pos, :name, :type,"
	        " :size, :hash, :now FROM messages m"
	        " WHERE m.id = :msg AND m.room_id = :room AND m.deleted = 0");
	int64_t room_id, user_id;
	int rc;

	if (ins == NULL)
		return -1;
	if ((rc = import_room_get(db, room, f->created_at, &room_id)) != 0 ||
	    (rc = import_user_get(db, user, f->created_at, &user_id)) != 0)
		return rc;
	db_bind_text(ins, ":id", f->id, -1);
	db_bind_int64(ins, ":user", user_id);
	db_bind_int64(ins, ":pos", f->pos);
	db_bind_text(ins, ":name", f->name, -1);
	db_bind_text(ins, ":type", f->type, -1);
	db_bind_int64(ins, ":size", f->size);
	db_bind_text(ins, ":hash", f->hash, -1);
	db_bind_int64(ins, ":now", f->created_at);
	db_bind_int64(ins, ":msg", f->message_id);
	db_bind_int64(ins, ":room", room_id);
	if ((rc = import_run(ins)) != 0)
		return rc;
	return db_changes(db) == 1 ? 0 : 2;
}
