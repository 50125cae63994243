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

/* Ids and seqs are 1..SEQ_MAX (2^53 - 1), so that they stay exact as
 * JavaScript numbers in clients; no seq above it is ever stored. */
#define SEQ_MAX ((INT64_C(1) << 53) - 1)
/* Times are ms since the Unix epoch, 0..TS_MAX (2100-01-01T00:00Z):
 * what import accepts. */
#define TS_MAX INT64_C(4102444800000)

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
/* 1 if path is a PostgreSQL connection URI (postgres:// or
 * postgresql://): db_open then connects to it (creating chatd's tables
 * with migrations/postgres/ in one transaction under an advisory lock);
 * anything else is a SQLite file. */
int db_url_is_pg(const char *path);
/* 1 if db is a PostgreSQL connection. */
int db_is_postgres(struct db *db);
/* Connects to the PostgreSQL URI url and runs one query (chatd
 * check-config). 0, or -1 with a one-line reason in err. */
int db_pg_check(const char *url, char *err, size_t errlen);
/* The schema version this chatd writes on PostgreSQL. */
int db_pg_schema_version(void);
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
/* Makes the next db_open calls migrate only up to version (0: all, the
 * default): how the tests build a database of an older chatd to upgrade
 * it. */
void db_set_migrate_limit(int version);
/* Begins the server's write transaction (BEGIN IMMEDIATE: takes the
 * write lock). 0, -1 on error, or DB_BUSY when another connection holds
 * the write lock (after the busy timeout): nothing is open, try again. */
#define DB_BUSY (-2)
int db_begin(struct db *db);
/* How long a statement on db waits for a lock another connection holds
 * before it fails busy (db_open: 5000 ms, what the admin CLI keeps; the
 * server's loop sets 0 and never waits). */
void db_set_busy_timeout(struct db *db, int ms);
/* 1 if the last statement that failed on db failed because another
 * connection held a lock (SQLITE_BUSY or SQLITE_LOCKED): retrying later
 * may succeed. */
int db_busy(struct db *db);
/* A read-only transaction (one snapshot until db_rollback). 0 or -1. */
int db_begin_read(struct db *db);
int db_commit(struct db *db);
int db_rollback(struct db *db);
/* The highest seq stored anywhere (0 for none): seq allocation resumes
 * from it at start-up. At most SEQ_MAX: a database holding a higher one
 * (only a hand-edited file) gets SEQ_MAX, logged, and stores no more
 * changes (message_insert/edit/delete refuse seqs above it). */
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
/* Several nodes on PostgreSQL (issue 17, docs/cluster.md). */

/* PostgreSQL: no statement on db runs, nor waits for a lock, longer than
 * ms (statement_timeout and lock_timeout, on every connection it makes):
 * the server's bound on how long its loop can be held by the database.
 * 0 or -1; a no-op on SQLite. */
int db_set_wait_limit(struct db *db, int ms);
/* PostgreSQL: what SQLite's file lock is for chatd serve and chatd
 * import. A serving chatd (every node) holds it shared, import exclusive,
 * for as long as db's connection lives (taken again after a reconnect).
 * 0 taken, 1 held by another process in a conflicting mode, -1; a no-op
 * (0) on SQLite. */
int db_serving_lock(struct db *db, int exclusive);
/* PostgreSQL: times the server became unreachable, and in *down whether
 * it is now (as of the last statement). 0 and 0 for SQLite. */
uint64_t db_pg_outages(struct db *db, int *down);
/* The next seq of the database's sequence (PostgreSQL), -1 on error (and
 * on SQLite, whose server counts seqs itself). */
int64_t db_seq_next(struct db *db);
/* Moves the sequence up to the highest seq stored (after an import, at
 * start-up); a no-op on SQLite. 0 or -1. */
int db_seq_sync(struct db *db);
/* Inside a transaction, locks room_id for it (released by its end), so
 * that the changes of a room commit in the order of their seqs: the seq
 * is taken after the lock. wait 0: fail at once (1) if another
 * transaction holds it. Sets *last_seq to the room's committed last_seq.
 * 0, 1, 2 if there is no such room, -1 (also on SQLite). */
int db_room_lock(struct db *db, int64_t room_id, int wait, int64_t *last_seq);

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
/* Marks a change that running servers must notice (a room or user gone,
 * sessions revoked), in the caller's transaction: on PostgreSQL raises
 * meta 'admin_version', which db_data_version reads; nothing on SQLite,
 * whose data_version changes with every commit of another connection.
 * 0 or -1. */
int admin_changed(struct db *db);

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
/* Calls cb for at most limit live users whose name starts with prefix
 * (lower-case; "" for all), in name order: a range of the username
 * index, not a scan. 0 or -1. */
int user_prefix(struct db *db, const char *prefix, int limit, user_cb cb,
    void *arg);

/* session.c: login tokens, stored as SHA-256 hashes only. */

/* 0 or -1. */
int session_create(struct db *db, const uint8_t hash[32], int64_t user_id,
    int64_t now, int64_t expires_at);
/* The user of an unexpired session: 0 and *out filled, 1 if none or
 * expired, -1. */
int session_lookup(struct db *db, const uint8_t hash[32], int64_t now,
    struct user *out);
/* When a token stops working: 0 and *expires_at (ms since the epoch),
 * 1 if there is no such session, -1. */
int session_expires(struct db *db, const uint8_t hash[32],
    int64_t *expires_at);
/* Revokes one token. 0, 1 if it did not exist, -1. */
int session_delete(struct db *db, const uint8_t hash[32]);
/* Removes expired sessions. 0 or -1. */
int session_prune(struct db *db, int64_t now);

/* room.c: rooms and membership. */

enum room_kind { ROOM_PUBLIC = 0, ROOM_DM = 1, ROOM_PRIVATE = 2 };
/* A member's role in a public or private room (PROTOCOL.md v2 Roles). */
enum room_role { ROLE_MEMBER = 0, ROLE_MODERATOR = 1, ROLE_OWNER = 2 };
/* A member's notification level in a room. */
enum room_notify { NOTIFY_ALL = 0, NOTIFY_MENTIONS = 1, NOTIFY_NONE = 2 };

#define ROOM_TOPIC_MAX 250    /* code points of a topic */
#define ROOM_TOPIC_BYTES 1000 /* ...so at most this many bytes of UTF-8 */

struct room {
	int64_t id;
	char name[ROOMNAME_MAX + 1];
	int kind;           /* enum room_kind */
	char topic[ROOM_TOPIC_BYTES + 1]; /* "" for none */
	int64_t last_seq;   /* seq of the room's latest change, 0 if none */
	int64_t created_at;
	int64_t members;    /* count; filled by room_list_public only */
};

/* 0, 1 if no such room, -1. */
int room_by_name(struct db *db, const char *name, struct room *out);
/* The same by id. */
int room_by_id(struct db *db, int64_t id, struct room *out);
/* Which of the n users ids share a room with user: fn(arg, id, username)
 * for each, in id order within each batch of MEMBER_SHARING_BATCH (one
 * statement a batch, whatever n); fn returns non-zero to stop. 0 or -1. */
#define MEMBER_SHARING_BATCH 256
typedef int (*member_cb)(void *arg, int64_t user_id, const char *username);
int member_sharing(struct db *db, int64_t user, const int64_t *ids,
    size_t n, member_cb fn, void *arg);
/* Creates a room of kind (ROOM_PUBLIC, ROOM_PRIVATE or ROOM_DM); 0 and
 * *out filled, 1 if it exists (*out filled too), -1. */
int room_create(struct db *db, const char *name, int kind, int64_t now,
    struct room *out);
/* Deletes a room with its memberships and messages. 0, 1, -1. */
int room_delete(struct db *db, int64_t room_id);
typedef int (*room_cb)(void *arg, const struct room *r);
/* Sets a room's topic ("" for none). 0, 1 if no such room, -1. */
int room_set_topic(struct db *db, int64_t room_id, const char *topic);
/* The public rooms (not private, not DM) named after after ("" or NULL:
 * from the first), at most limit of them (-1: all), in name order, with
 * members counted. 0 or -1. */
int room_list_public(struct db *db, const char *after, int64_t limit,
                     room_cb cb, void *arg);
/* Every room of every kind in name order (admin CLI). 0 or -1. */
int room_list_all(struct db *db, room_cb cb, void *arg);

/* Adds a member (role member, notify all) with the given read_seq. 0
 * added, 1 already a member, -1. */
int member_add(struct db *db, int64_t room_id, int64_t user_id,
    int64_t read_seq, int64_t now);
/* How many rooms a user is a member of, counting at most max + 1 (so
 * the cost stays bounded by max): 0 and *count set, or -1. */
int member_count(struct db *db, int64_t user_id, int64_t max, int64_t *count);
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
	int role;       /* enum room_role */
	int notify;     /* enum room_notify */
	int64_t mentions; /* those of them that mention the user or @room */
};
typedef int (*room_state_cb)(void *arg, const struct room_state *s);
/* The rooms a user is a member of, in name order, with read state. The
 * unread counts are maintained counters (migration 004): no message is
 * read, whatever the backlog. 0 or -1. */
int member_rooms(struct db *db, int64_t user_id, room_state_cb cb, void *arg);
/* Moves read_seq up to min(seq, room's last_seq), never down, and the
 * unread count with it (up to last_seq: no message is read; part way: a
 * count over the shorter side of the new position). Returns 0
 * and the stored value in *stored, 1 if not a member, -1. *moved is set
 * to 1 if the stored value changed. */
int member_set_read(struct db *db, int64_t room_id, int64_t user_id,
    int64_t seq, int64_t *stored, int *moved);

/* Recomputes every room's msgs and every member's seen from the
 * messages (the unread counters): after an import. 0 or -1. */
int room_counts_rebuild(struct db *db);
/* member.c: members' roles and notification levels. */

/* The role of a member: 0 and *role set, 1 if not a member, -1. */
int member_role(struct db *db, int64_t room_id, int64_t user_id, int *role);
/* Sets a member's role. 0, 1 if not a member, -1. */
int member_set_role(struct db *db, int64_t room_id, int64_t user_id,
    int role);
/* Sets a member's notification level. 0, 1 if not a member, -1. */
int member_set_notify(struct db *db, int64_t room_id, int64_t user_id,
    int level);
typedef int (*member_role_cb)(void *arg, const char *username, int role);
/* The members of a room whose role is not member, in name order. 0, -1. */
int member_roles(struct db *db, int64_t room_id, member_role_cb cb,
    void *arg);

/* ban.c: who is banned from which room. */

/* Bans a user from a room. 0 banned, 1 was banned already, -1. */
int ban_add(struct db *db, int64_t room_id, int64_t user_id, int64_t now);
/* Lifts a ban. 0 lifted, 1 was not banned, -1. */
int ban_remove(struct db *db, int64_t room_id, int64_t user_id);
/* 0 if the user is banned from the room, 1 if not, -1. */
int ban_get(struct db *db, int64_t room_id, int64_t user_id);

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
	/* Who deleted it when not its author (a moderator); "" otherwise. */
	char deleted_by[USERNAME_MAX + 1];
	/* Version 2 (none of them on a tombstone; strings valid like text): */
	int64_t reply_to;     /* the message this one answers; 0: none */
	const char *mentions; /* the mentioned usernames, sorted, each once,
	                         separated by one space; NULL: none */
	size_t mentions_len;
	int mention_room;     /* the text holds @room */
	const char *reactions; /* NULL: none; else REACTION_SEP-separated
	                          records "emoji" REACTION_USER "user"...,
	                          in the order of PROTOCOL.md (read with
	                          reaction_next) */
	size_t reactions_len;
	const char *files; /* NULL: none; else the "files" JSON array */
	size_t files_len;
	/* Input of message_insert only: the files to attach (file_attach). */
	const char *const *file_ids;
	size_t nfile_ids;
	/* Input of message_insert and message_replace only (reads leave them
	 * 0): the ids of the users named in mentions, for the counts. */
	const int64_t *mention_ids;
	size_t nmention_ids;
};
typedef int (*message_cb)(void *arg, const struct message *m);
/* A copy of m that owns its strings (one allocation): free with
 * message_free. */
struct message *message_copy(const struct message *m);
void message_free(struct message *m);

/* Stores a new message whose id and seq are m->id (allocated by the
 * caller), and sets the room's last_seq; attaches m->file_ids. client_msg_id
 * may be NULL. 0, 1 if (user, client_msg_id) exists already (nothing
 * stored), 2 if a file cannot be attached (nothing stored), -1 (also,
 * logged, for an id outside 1..SEQ_MAX). */
int message_insert(struct db *db, const struct message *m,
    const char *client_msg_id);
/* The message a user sent with client_msg_id, through cb. 0, 1 if none,
 * -1. */
int message_by_client_id(struct db *db, int64_t user_id,
    const char *client_msg_id, message_cb cb, void *arg);
/* One message by id, through cb. 0, 1 if none, -1. */
int message_get(struct db *db, int64_t id, message_cb cb, void *arg);
/* Replaces the text of a live message and gives it seq and edited_ts;
 * sets the room's last_seq. 0, 1 if missing or deleted, -1 (also,
 * logged, for a seq outside 1..SEQ_MAX). */
int message_edit(struct db *db, int64_t id, const char *text, size_t len,
    int64_t seq, int64_t ts);
/* message_edit of m->id with m->text, m->seq and m->edited_ts that also
 * replaces its mentions (m->mentions, mention_room, mention_ids). */
int message_replace(struct db *db, const struct message *m);
/* A page around a message (PROTOCOL.md "Replies and jumping"): at most
 * (limit - 1) / 2 of the nearest ids below around, then around itself if
 * it is in the room, then the nearest above it, limit in all; cb sees
 * them in ascending id order. *before / *after: more exist below / above
 * the page. 0 or -1. */
int message_page_around(struct db *db, int64_t room_id, int64_t around,
    int limit, message_cb cb, void *arg, int *before, int *after);
/* Turns a live message into a tombstone (text dropped, also from the
 * search index) with the given seq; sets the room's last_seq. by: the
 * user who deleted it when not the author (a moderator), else 0.
 * 0, 1, -1 (also, logged, for a seq outside 1..SEQ_MAX). */
int message_delete(struct db *db, int64_t id, int64_t seq, int64_t by);
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
 * rooms user_id is a member of and not banned from, or only room_id when
 * it is > 0 (the caller has checked access). Words, and substrings of 3 or more
 * characters in any script; q is literal text, never FTS syntax. 0, -1. */
int message_search(struct db *db, int64_t user_id, int64_t room_id,
    const char *q, int limit, message_cb cb, void *arg);

/* mention.c: the mention counts of room states. */

/* 0 and *user_id set if name (lower case) is a member of the room, 1 if
 * not, -1. */
int mention_member(struct db *db, int64_t room_id, const char *name,
    int64_t *user_id);
/* A room's count of a user's unread mentions (PROTOCOL.md room state). */
struct mention_count {
	int64_t room_id;
	int64_t count;
};
/* The user's unread mentions of every room they are a member of that has
 * some, sorted by room_id, in *out (free it; *n of them): messages with
 * id > read_seq, by others, live, naming the user or @room. Two index
 * ranges per room: as long as the unread mentions. 0 or -1. */
int mention_counts(struct db *db, int64_t user_id, struct mention_count **out,
    size_t *n);
/* The count of room_id in such an array (0 if not in it). */
int64_t mention_count_of(const struct mention_count *c, size_t n,
    int64_t room_id);
/* Replaces the count rows of message m (m->id, room_id, user_id,
 * mention_room, mention_ids): inside message_insert / message_replace.
 * 0 or -1. */
int mention_index(struct db *db, const struct message *m);

/* reaction.c: reactions to messages. */

#define REACTION_SEP '\x1e'  /* between the records of m->reactions */
#define REACTION_USER '\x1f' /* before each user of a record */
#define REACTION_EMOJI_MAX 32 /* bytes */
/* What one message carries at most (docs/operations.md "Limits and
 * abuse"): every reaction event, history page, resync and export carries
 * its whole list, so the list is bounded. */
#define REACTION_EMOJIS_MAX 50    /* different emojis on one message */
#define REACTION_USER_MAX 20      /* one user's reactions on one message */
#define REACTION_MESSAGE_MAX 1000 /* reactions on one message, in all */
/* reaction_set's answers past a cap. */
enum reaction_over {
	REACTION_OVER_USER = 3,
	REACTION_OVER_EMOJIS,
	REACTION_OVER_MESSAGE,
};

/* Adds (on) or removes user_id's reaction emoji to live message id as the
 * change seq: the message takes seq, its room last_seq. 0 if that changed
 * something, 1 if not (nothing stored), 2 if the message is missing or a
 * tombstone, REACTION_OVER_* if adding it would pass a cap (nothing
 * stored; removing is never refused), -1. */
int reaction_set(struct db *db, int64_t id, int64_t user_id,
    const char *emoji, int on, int64_t seq);
/* Writes message id's reactions, encoded as m->reactions, into *buf
 * (grown with xrealloc; *cap its size) and their length into *len (0:
 * none). 0 or -1. */
int reaction_list(struct db *db, int64_t id, char **buf, size_t *cap,
    size_t *len);
/* One record of an encoded reaction list. */
struct reaction_view {
	const char *emoji;
	size_t emoji_len;
	const char *users; /* REACTION_USER-separated, after the emoji */
	size_t users_len;
	int64_t count;
};
/* Reads the record at *p (before end) into v and moves *p past it: 1, or
 * 0 at the end. */
int reaction_next(const char **p, const char *end, struct reaction_view *v);

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
	int role;   /* enum room_role */
	int notify; /* enum room_notify */
};
struct export_ban {
	char room[ROOMNAME_MAX + 1];
	char username[USERNAME_MAX + 1];
	int64_t created_at;
};
typedef int (*export_user_cb)(void *arg, const struct export_user *u);
typedef int (*export_member_cb)(void *arg, const struct export_member *m);
typedef int (*export_ban_cb)(void *arg, const struct export_ban *b);
/* m->text and client_msg_id (NULL if none) are valid during the call. */
typedef int (*export_message_cb)(void *arg, const struct message *m,
    const char *client_msg_id);

/* meta's seq_floor. 0 or -1. */
int export_meta(struct db *db, int64_t *seq_floor);
/* Every user, deleted ones too, in id order. 0 or -1. */
int export_users(struct db *db, export_user_cb cb, void *arg);
/* Every membership, by room name then username. 0 or -1. */
int export_members(struct db *db, export_member_cb cb, void *arg);
/* Every ban, by room name then username. 0 or -1. */
int export_bans(struct db *db, export_ban_cb cb, void *arg);
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
/* A room with its kind, topic, created_at and last_seq (id is new). 0, 1
 * if it exists, -1. */
int import_room(struct db *db, const struct room *r);
/* A membership with its read position, role and notification level. 0,
 * 1 if already a member, -1. */
int import_member(struct db *db, const struct export_member *m);
/* A ban. 0, 1 if the user is banned from the room already, -1. */
int import_ban(struct db *db, const struct export_ban *b);
/* A message with its id, seq and times as given, deleted_by (a username,
 * if not ""), its reply_to, mentions (m->mentions by name: the count rows
 * are made for them) and reactions (m->reactions by name, in their
 * order); raises the room's last_seq to its seq. 0, 1 if the id, seq or
 * client id exists, -1. */
int import_message(struct db *db, const struct message *m,
    const char *client_msg_id);
struct file_row;
/* An exported file of message f->message_id (which must be a live
 * message of room), uploaded by user. 0, 1 on a constraint (duplicate
 * id), 2 if the message is not such a message, -1. */
int import_file(struct db *db, const struct file_row *f, const char *room,
                const char *user);

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
	int64_t pos;   /* its place in its message; import and export */
	char room[ROOMNAME_MAX + 1];     /* file_list_export only */
	char username[USERNAME_MAX + 1]; /* file_list_export only */
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
/* Every file row in id order (backup, restore). 0 or -1. */
int file_list_all(struct db *db, file_cb cb, void *arg);
/* The files of the live messages an export of room_id (0: all), since
 * and until (-1: no bound) writes, with room, username and pos. 0 or
 * -1. */
int file_list_export(struct db *db, int64_t room_id, int64_t since,
    int64_t until, file_cb cb, void *arg);

#endif
