/* storage/storage.h — the chatd data layer: everything chatd asks of SQLite */
#ifndef CHATD_STORAGE_H
#define CHATD_STORAGE_H

#include <stddef.h>
#include <stdint.h>

/*
 * Conventions: functions return 0 on success, 1 for "not found" /
 * "already exists" where documented, and -1 on a database error (logged
 * with the function name). Names passed in are already validated and
 * lower-cased by the caller. Times are ms since the Unix epoch.
 * Only storage/db.c includes sqlite3.h; every other storage file goes
 * through the statement wrappers of storage/db.h.
 */

struct db;

#define USERNAME_MAX 32
#define ROOMNAME_MAX 80 /* "dm:" + two usernames + ':' */
#define EPOCH_LEN 32    /* hex characters */

/* db.c: open, migrate, transactions. */

/* Opens (creating if needed) the database at path in WAL mode and applies
 * the migrations compiled into chatd in one transaction. Returns 0, or -1
 * with a one-line reason in err (unwritable, not a database, a schema
 * newer than this chatd). */
int db_open(struct db **out, const char *path, char *err, size_t errlen);
/* How a commit reaches the disk. NORMAL (the server's default): WAL
 * commits are written to the OS but not fsynced, so a commit survives a
 * crash or kill -9 of chatd, not a power loss or kernel crash; the fsync
 * happens at checkpoints. FULL: every commit fsyncs the WAL first (what
 * db_open sets, for the CLI). 0 or -1. */
enum db_durability { DB_DURABILITY_NORMAL, DB_DURABILITY_FULL };
int db_set_durability(struct db *db, enum db_durability d);
/* Moves WAL checkpoints (copying the WAL into the database file, and its
 * fsync) from the committing thread to a thread of their own, started
 * here and stopped by db_close. 0 or -1. */
int db_checkpointer_start(struct db *db);
/* The WAL size (frames) at which the next started thread lets the WAL
 * restart, instead of its default (256 MiB; tests use less). */
void db_checkpointer_restart_frames(struct db *db, int frames);
/* Checkpoints the thread has run so far. */
uint64_t db_checkpoints(struct db *db);
/* Waits (at most timeout_ms) until the thread has run n checkpoints: 1 if
 * it has, 0 if not (or there is no thread). */
int db_checkpoints_wait(struct db *db, uint64_t n, int timeout_ms);
/* Finalizes every prepared statement and closes. NULL is a no-op. */
void db_close(struct db *db);
/* 0 if the database answers a trivial query, -1 if it is unusable. */
int db_check(struct db *db);
/* The database's epoch: EPOCH_LEN hex characters fixed at creation. */
const char *db_epoch(struct db *db);
/* Gives the database a new random epoch (after a restore). */
int db_new_epoch(struct db *db);
/* The schema version this chatd writes (the highest migration). */
int db_schema_version(void);
int db_begin(struct db *db);
/* A read-only transaction (one snapshot until db_rollback). 0 or -1. */
int db_begin_read(struct db *db);
int db_commit(struct db *db);
int db_rollback(struct db *db);
/* The highest seq stored anywhere (0 for none): seq allocation resumes
 * from it at start-up. */
int64_t db_max_seq(struct db *db);
/* A number that changes when another process (the admin CLI) commits to
 * the database; this connection's own commits leave it. -1 on error. */
int64_t db_data_version(struct db *db);

/* Copies a consistent snapshot of the live database into the file dest
 * with SQLite's online backup API (one read transaction: in WAL mode the
 * server keeps writing meanwhile). dest is written as dest.tmp, synced and
 * renamed over dest. 0, or -1 with a reason in err. */
int db_backup(struct db *db, const char *dest, char *err, size_t errlen);
/* Copies the chatd database file src (opened read-only; refused if it is
 * not a SQLite file with a chatd schema) into the new file dest, which
 * must not exist. 0, or -1 with a reason in err. */
int db_copy_file(const char *src, const char *dest, char *err, size_t errlen);
/* Statements (and commits) slower than ms are logged at warn; 0: off. */
void db_set_slow_ms(int ms);

/* Reader connections, for reads whose cost depends on the request or the
 * data (search) on threads other than the writer's (chatd/reader.c). */

/* Opens a read-only connection to db's file for one other thread: each
 * statement on it reads the snapshot of the last commit when it starts
 * (WAL: it never blocks db's writes, nor they it), with its own
 * statement cache. Free with db_close. 0 or -1 (logged). */
int db_open_reader(struct db *db, struct db **out);
/* Starts a job's time budget on a reader connection: from now on, a
 * statement still running ms later fails (its step returns -1, not
 * logged as an error) and db_budget_exceeded turns 1. ms <= 0: none. A
 * no-op on the writer's connection. */
void db_budget_start(struct db *db, int ms);
/* 1 if a statement was stopped by the budget (or db_cancel) since
 * db_budget_start, else 0. */
int db_budget_exceeded(struct db *db);
/* From any thread: every statement running or started on the reader
 * connection db from now on stops as if out of budget (shutdown). */
void db_cancel(struct db *db);

/* admin.c: counts for /metrics, checks for the running server. */

/* Rooms by kind and live users. 0 or -1. */
int admin_counts(struct db *db, int64_t *public_rooms, int64_t *dm_rooms,
    int64_t *users);
/* 1 if the room was deleted (chatd room del while serving), 0 if it
 * exists or on error. The hub checks its cached rooms with it. */
int admin_room_gone(struct db *db, int64_t room_id);

/* user.c: accounts. */

struct user {
	int64_t id;
	char username[USERNAME_MAX + 1];
	int64_t created_at;
};

/* Creates a user; 0 and *id set, 1 if the name is taken (deleted users'
 * names stay taken), -1 on error. */
int user_create(struct db *db, const char *username, const char *pwhash,
    int64_t now, int64_t *id);
/* Finds a live user by name; copies the password hash (an argon2 encoded
 * string) into pwhash when not NULL. 0, 1 if none, -1. */
int user_by_name(struct db *db, const char *username, struct user *out,
    char *pwhash, size_t pwhash_len);
/* Finds a live user by id. 0, 1 if none, -1. */
int user_by_id(struct db *db, int64_t id, struct user *out);
/* Replaces a user's password hash. 0, 1 if no such user, -1. */
int user_set_password(struct db *db, int64_t id, const char *pwhash);
/* Deletes an account: its sessions and memberships go, its messages stay
 * in history under its name, and the name is never reused. 0, 1, -1. */
int user_delete(struct db *db, int64_t id);
typedef int (*user_cb)(void *arg, const struct user *u);
/* Calls cb for every live user in name order; stops early if cb returns
 * non-zero. 0 or -1. */
int user_list(struct db *db, user_cb cb, void *arg);

/* session.c: login tokens, stored as SHA-256 hashes only. */

/* 0 or -1. */
int session_create(struct db *db, const uint8_t hash[32], int64_t user_id,
    int64_t now, int64_t expires_at);
/* The user of an unexpired session: 0 and *out filled, 1 if none or
 * expired, -1. */
int session_lookup(struct db *db, const uint8_t hash[32], int64_t now,
    struct user *out);
/* Revokes one token. 0, 1 if it did not exist, -1. */
int session_delete(struct db *db, const uint8_t hash[32]);
/* Removes expired sessions. 0 or -1. */
int session_prune(struct db *db, int64_t now);

/* room.c: rooms and membership. */

enum room_kind { ROOM_PUBLIC = 0, ROOM_DM = 1 };

struct room {
	int64_t id;
	char name[ROOMNAME_MAX + 1];
	int kind;
	int64_t last_seq;   /* seq of the room's latest change, 0 if none */
	int64_t created_at;
	int64_t members;    /* count; filled by room_list_public only */
};

/* 0, 1 if no such room, -1. */
int room_by_name(struct db *db, const char *name, struct room *out);
/* Creates a room; 0 and *out filled, 1 if it exists (*out filled too),
 * -1. */
int room_create(struct db *db, const char *name, int kind, int64_t now,
    struct room *out);
/* Deletes a room with its memberships and messages. 0, 1, -1. */
int room_delete(struct db *db, int64_t room_id);
typedef int (*room_cb)(void *arg, const struct room *r);
/* Every public room in name order, with members counted. 0 or -1. */
int room_list_public(struct db *db, room_cb cb, void *arg);
/* Every room of every kind in name order (admin CLI). 0 or -1. */
int room_list_all(struct db *db, room_cb cb, void *arg);

/* Adds a member with the given read_seq. 0 added, 1 already a member,
 * -1. */
int member_add(struct db *db, int64_t room_id, int64_t user_id,
    int64_t read_seq, int64_t now);
/* 0 removed, 1 was not a member, -1. */
int member_remove(struct db *db, int64_t room_id, int64_t user_id);
/* 0 and *read_seq set (may be NULL) if a member, 1 if not, -1. */
int member_get(struct db *db, int64_t room_id, int64_t user_id,
    int64_t *read_seq);
typedef int (*member_cb)(void *arg, int64_t user_id, const char *username);
/* Members of a room in name order. 0 or -1. */
int member_list(struct db *db, int64_t room_id, member_cb cb, void *arg);
struct room_state {
	struct room room;
	int64_t read_seq;
	int64_t unread; /* messages with id > read_seq by others, not deleted */
};
typedef int (*room_state_cb)(void *arg, const struct room_state *s);
/* The rooms a user is a member of, in name order, with read state. */
int member_rooms(struct db *db, int64_t user_id, room_state_cb cb, void *arg);
/* Moves read_seq up to min(seq, room's last_seq), never down. Returns 0
 * and the stored value in *stored, 1 if not a member, -1. *moved is set
 * to 1 if the stored value changed. */
int member_set_read(struct db *db, int64_t room_id, int64_t user_id,
    int64_t seq, int64_t *stored, int *moved);

/* message.c: messages, edits, tombstones, paging, resync. */

struct message {
	int64_t id;       /* the seq that created it */
	int64_t seq;      /* the seq of its latest change */
	int64_t room_id;
	int64_t user_id;
	char room[ROOMNAME_MAX + 1];
	char username[USERNAME_MAX + 1];
	const char *text; /* NULL when deleted; valid only during a callback,
	                     or owned by the caller after message_copy */
	size_t text_len;
	int64_t ts;
	int64_t edited_ts; /* 0 if never edited */
	int deleted;
};
typedef int (*message_cb)(void *arg, const struct message *m);
/* A copy of m that owns its text (one allocation): free with
 * message_free. */
struct message *message_copy(const struct message *m);
void message_free(struct message *m);

/* Stores a new message whose id and seq are m->id (allocated by the
 * caller), and sets the room's last_seq. client_msg_id may be NULL.
 * 0, 1 if (user, client_msg_id) exists already (nothing stored), -1. */
int message_insert(struct db *db, const struct message *m,
    const char *client_msg_id);
/* The message a user sent with client_msg_id, through cb. 0, 1 if none,
 * -1. */
int message_by_client_id(struct db *db, int64_t user_id,
    const char *client_msg_id, message_cb cb, void *arg);
/* One message by id, through cb. 0, 1 if none, -1. */
int message_get(struct db *db, int64_t id, message_cb cb, void *arg);
/* Replaces the text of a live message and gives it seq and edited_ts;
 * sets the room's last_seq. 0, 1 if missing or deleted, -1. */
int message_edit(struct db *db, int64_t id, const char *text, size_t len,
    int64_t seq, int64_t ts);
/* Turns a live message into a tombstone (text dropped, also from the
 * search index) with the given seq; sets the room's last_seq. 0, 1, -1. */
int message_delete(struct db *db, int64_t id, int64_t seq);
/* A page of a room's history (PROTOCOL.md "Paging"): before > 0 gives
 * the limit newest with id < before; after >= 0 (before 0) the limit
 * oldest with id > after; both 0 / -1 (before = 0, after = -1) the
 * newest. cb sees them in ascending id order; *has_more tells whether
 * more exist beyond the page in its direction. 0 or -1. */
int message_page(struct db *db, int64_t room_id, int64_t before,
    int64_t after, int limit, message_cb cb, void *arg, int *has_more);
/* How many of a room's messages changed after seq, counting at most
 * max + 1. -1 on error. */
int64_t message_count_changed(struct db *db, int64_t room_id, int64_t since,
    int64_t max);
/* The room's messages changed after seq, in ascending seq order. 0, -1. */
int message_changed(struct db *db, int64_t room_id, int64_t since,
    message_cb cb, void *arg);
/* Adds up to max messages not yet in the full-text indexes (sends leave
 * them out to stay cheap). Call inside a transaction; search sees only
 * indexed messages, so catch up fully before searching. Returns how many
 * ids it covered (0: all caught up), or -1. */
int64_t message_index_pending(struct db *db, int64_t max);
/* Full-text search, newest first (PROTOCOL.md /api/search): over the
 * rooms user_id is a member of, or only room_id when it is > 0 (the
 * caller has checked access). Words, and substrings of 3 or more
 * characters in any script; q is literal text, never FTS syntax. 0, -1. */
int message_search(struct db *db, int64_t user_id, int64_t room_id,
    const char *q, int limit, message_cb cb, void *arg);

/* export.c: the whole database out, row by row (constant memory). */

struct export_user {
	int64_t id;
	char username[USERNAME_MAX + 1];
	const char *pwhash; /* valid during the callback; NULL: none */
	int64_t created_at;
	int deleted;
};
struct export_member {
	char room[ROOMNAME_MAX + 1];
	char username[USERNAME_MAX + 1];
	int64_t read_seq;
	int64_t joined_at;
};
typedef int (*export_user_cb)(void *arg, const struct export_user *u);
typedef int (*export_member_cb)(void *arg, const struct export_member *m);
/* m->text and client_msg_id (NULL if none) are valid during the call. */
typedef int (*export_message_cb)(void *arg, const struct message *m,
    const char *client_msg_id);

/* meta's seq_floor. 0 or -1. */
int export_meta(struct db *db, int64_t *seq_floor);
/* Every user, deleted ones too, in id order. 0 or -1. */
int export_users(struct db *db, export_user_cb cb, void *arg);
/* Every membership, by room name then username. 0 or -1. */
int export_members(struct db *db, export_member_cb cb, void *arg);
/* Messages (tombstones too) in id order: of one room if room_id > 0,
 * with seq > since if since >= 0, with ts <= until if until >= 0.
 * Streams one statement: constant memory. 0 or -1. */
int export_messages(struct db *db, int64_t room_id, int64_t since,
    int64_t until, export_message_cb cb, void *arg);

/* import.c: an export into an empty database (inside the caller's
 * transaction). Rooms and users that a member or message names but the
 * stream did not define are created: rooms public (or DM by name), users
 * live without a usable password. */

/* 1 if there are no users, rooms or messages, 0 if there are, -1. */
int import_is_empty(struct db *db);
/* Sets the epoch (if not NULL) and seq_floor. 0 or -1. */
int import_meta(struct db *db, const char *epoch, int64_t seq_floor);
/* A user with its id (u->id 0: a new one) and hash (NULL: no usable
 * password). 0, 1 if the id or name exists, -1. */
int import_user(struct db *db, const struct export_user *u);
/* A room with its kind, created_at and last_seq (id is new). 0, 1 if it
 * exists, -1. */
int import_room(struct db *db, const struct room *r);
/* 0, 1 if already a member, -1. */
int import_member(struct db *db, const char *room, const char *user,
    int64_t read_seq, int64_t joined_at);
/* A message with its id, seq and times as given; raises the room's
 * last_seq to its seq. 0, 1 if the id, seq or client id exists, -1. */
int import_message(struct db *db, const struct message *m,
    const char *client_msg_id);

/* file.c: file attachments' metadata (the bytes: chatd/blob.c). */

#define FILE_ID_LEN 32 /* hex characters of a public file id */

struct file_row {
	char id[FILE_ID_LEN + 1];
	int64_t room_id;
	int64_t user_id;
	int64_t message_id; /* 0: not attached */
	char name[256];
	char type[128];
	int64_t size;
	char hash[65];
	int64_t created_at;
	int room_kind; /* enum room_kind; file_get only */
};

/* Stores a new, unattached file. 0, 1 if the id is taken, -1. */
int file_insert(struct db *db, const struct file_row *f);
/* The file with public id. 0, 1 if none, -1. */
int file_get(struct db *db, const char *id, struct file_row *out);
/* Attaches files ids[0..n) to message_id in that order: each must be
 * unattached, uploaded by user_id to room_id, and named once. 0, 1 if one
 * is not (nothing attached), -1. */
int file_attach(struct db *db, const char *const *ids, size_t n,
    int64_t user_id, int64_t room_id, int64_t message_id);
typedef int (*file_cb)(void *arg, const struct file_row *f);
/* The files of a message, in order. 0 or -1. */
int file_list_message(struct db *db, int64_t message_id, file_cb cb,
    void *arg);
/* Deletes the files of a message; cb gets each deleted row (to remove
 * bytes no other row needs). 0 or -1. */
int file_delete_message(struct db *db, int64_t message_id, file_cb cb,
    void *arg);
/* Deletes the unattached files created before cutoff; cb gets each
 * deleted row. 0 or -1. */
int file_sweep(struct db *db, int64_t cutoff, file_cb cb, void *arg);
/* 1 if some file row names hash, 0 if none, -1. */
int file_hash_used(struct db *db, const char *hash);
/* Files (rows), attached files, and the distinct bytes they need. 0 or
 * -1. */
int file_counts(struct db *db, int64_t *files, int64_t *attached,
    int64_t *bytes);
/* Every file row in id order (backup, export). 0 or -1. */
int file_list_all(struct db *db, file_cb cb, void *arg);

#endif
