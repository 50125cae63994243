/* tests/unit/test_jsonl.c — storage/jsonl.c: the export's lines, and
 * import reading them back into the same bytes */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "chatd/auth.h"
#include "storage/jsonl.h"
#include "storage/storage.h"
#include "tests/unit/tmpdb.h"

/* The name rules chatd import gives the importer. */
static const struct jsonl_names names = {auth_username_fold, auth_room_fold,
                                         auth_hash_check, NULL, NULL};

struct fixture {
	char dir[64];
	char path[TMPDB_PATH_MAX];
	char path2[TMPDB_PATH_MAX];
	struct db *db;
	struct db *db2;
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	char err[256];

	assert_non_null(f);
	strcpy(f->dir, "/tmp/chatd-test-jsonl-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	assert_int_equal(tmpdb_path(f->path, sizeof f->path, f->dir, "a.db"), 0);
	assert_int_equal(tmpdb_path(f->path2, sizeof f->path2, f->dir, "b.db"),
	                 0);
	assert_int_equal(db_open(&f->db, f->path, err, sizeof err), 0);
	assert_int_equal(db_open(&f->db2, f->path2, err, sizeof err), 0);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[160];

	db_close(f->db);
	db_close(f->db2);
	tmpdb_drop(f->path);
	tmpdb_drop(f->path2);
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

/* Stored hashes in chatd's encoding and at its parameters (import
 * checks them; nothing here verifies a password against them). */
#define HASH_A                                                                 \
	"$argon2id$v=19$m=19456,t=2,p=1$YW5uc2FsdGFubnNhbHQ$"                  \
	"aGFzaC1vZi1hbm4taGFzaC1vZi1hbm4taGFzaC1vZi0"
#define HASH_B                                                                 \
	"$argon2id$v=19$m=19456,t=2,p=1$Ym9ic2FsdGJvYnNhbHQ$"                  \
	"aGFzaC1vZi1ib2ItaGFzaC1vZi1ib2ItaGFzaC1vZi0"

/* ann and bob, the room lobby with ann in it, two messages (the second
 * deleted after an edit), and a deleted user cy (whose hash is gone). */
static void
fill(struct db *db)
{
	struct message m = {0};
	struct room lobby;
	int64_t ann, bob, cy;

	assert_int_equal(user_create(db, "ann", HASH_A, 1, &ann), 0);
	assert_int_equal(user_create(db, "bob", HASH_B, 2, &bob), 0);
	assert_int_equal(user_create(db, "cy", "hash-c", 3, &cy), 0);
	assert_int_equal(user_delete(db, cy), 0);
	assert_int_equal(room_create(db, "lobby", ROOM_PUBLIC, 4, &lobby), 0);
	assert_int_equal(member_add(db, lobby.id, ann, 1, 5), 0);
	m.id = m.seq = 1;
	m.room_id = lobby.id;
	m.user_id = ann;
	m.text = "hi \"all\"\n";
	m.text_len = strlen(m.text);
	m.ts = 1000;
	assert_int_equal(message_insert(db, &m, "c1"), 0);
	m.id = m.seq = 2;
	m.user_id = bob;
	m.text = "oops";
	m.text_len = 4;
	m.ts = 1001;
	assert_int_equal(message_insert(db, &m, NULL), 0);
	assert_int_equal(message_edit(db, 2, "oops!", 5, 3, 1002), 0);
	assert_int_equal(message_delete(db, 2, 4, 0), 0);
}

/* The export of db (filtered as jsonl_export's arguments say), as a
 * string to free. */
static char *
export_text(struct db *db, int64_t room_id, int64_t since, int64_t until)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	assert_int_equal(db_begin_read(db), 0);
	assert_int_equal(jsonl_export(db, f, room_id, since, until), 0);
	assert_int_equal(db_rollback(db), 0);
	assert_int_equal(fclose(f), 0);
	return buf;
}

/* Imports text into db in one transaction (committed if it imported);
 * returns jsonl_import's answer, *lineno the line it stopped at. */
static const char *
import_text(struct db *db, const char *text, size_t *lineno)
{
	FILE *f = fmemopen((void *)text, strlen(text), "r");
	const char *why;

	assert_non_null(f);
	assert_int_equal(db_begin(db), 0);
	why = jsonl_import(db, f, &names, lineno);
	assert_int_equal(why == NULL ? db_commit(db) : db_rollback(db), 0);
	fclose(f);
	return why;
}

static void
test_jsonl_export_writes_header_users_rooms_members_messages(void **state)
{
	struct fixture *f = *state;
	char want[2048];
	char *got;

	fill(f->db);
	snprintf(want, sizeof want,
	         "{\"type\":\"chatd_export\",\"version\":1,\"epoch\":\"%s\","
	         "\"seq_floor\":0}\n"
	         "{\"type\":\"user\",\"id\":1,\"username\":\"ann\","
	         "\"created_at\":1,\"pwhash\":\"" HASH_A "\"}\n"
	         "{\"type\":\"user\",\"id\":2,\"username\":\"bob\","
	         "\"created_at\":2,\"pwhash\":\"" HASH_B "\"}\n"
	         "{\"type\":\"user\",\"id\":3,\"username\":\"cy\","
	         "\"created_at\":3,\"pwhash\":\"\",\"deleted\":true}\n"
	         "{\"type\":\"room\",\"room\":\"lobby\",\"kind\":\"public\","
	         "\"created_at\":4,\"last_seq\":4}\n"
	         "{\"type\":\"member\",\"room\":\"lobby\",\"user\":\"ann\","
	         "\"read_seq\":1,\"joined_at\":5}\n"
	         "{\"type\":\"message\",\"id\":1,\"seq\":1,\"room\":\"lobby\","
	         "\"user\":\"ann\",\"text\":\"hi \\\"all\\\"\\n\",\"ts\":1000,"
	         "\"client_msg_id\":\"c1\"}\n"
	         "{\"type\":\"message\",\"id\":2,\"seq\":4,\"room\":\"lobby\","
	         "\"user\":\"bob\",\"ts\":1001,\"deleted\":true,"
	         "\"edited_ts\":1002}\n",
	         db_epoch(f->db));
	got = export_text(f->db, 0, -1, -1);
	assert_string_equal(got, want);
	free(got);
	/* Filtered: message lines only. */
	got = export_text(f->db, 0, 1, -1);
	assert_string_equal(
	    got, "{\"type\":\"message\",\"id\":2,\"seq\":4,\"room\":\"lobby\","
	         "\"user\":\"bob\",\"ts\":1001,\"deleted\":true,"
	         "\"edited_ts\":1002}\n");
	free(got);
	/* --until of a time in ms today, past 2^31 (PostgreSQL took it for
	 * an integer in the files' query once). */
	got = export_text(f->db, 0, -1, 1796395251281LL);
	assert_non_null(strstr(got, "\"id\":1,"));
	assert_non_null(strstr(got, "\"id\":2,"));
	free(got);
}

static void
test_jsonl_import_then_export_gives_the_same_bytes(void **state)
{
	struct fixture *f = *state;
	char *a, *b, err[256];
	size_t n;

	fill(f->db);
	a = export_text(f->db, 0, -1, -1);
	assert_null(import_text(f->db2, a, &n));
	assert_int_equal(n, 8);
	/* Reopened, as chatd export after chatd import: the epoch is read
	 * at open. */
	db_close(f->db2);
	assert_int_equal(db_open(&f->db2, f->path2, err, sizeof err), 0);
	b = export_text(f->db2, 0, -1, -1);
	assert_string_equal(a, b);
	free(a);
	free(b);
}

/* member_rooms callback: adds up the unread counts. */
static int
sum_unread(void *arg, const struct room_state *s)
{
	*(int64_t *)arg += s->unread * 1000 + s->read_seq;
	return 0;
}

/* The unread counts and read positions of username's rooms, folded. */
static int64_t
unread_of(struct db *db, const char *username)
{
	struct user u;
	int64_t sum = 0;

	assert_int_equal(user_by_name(db, username, &u, NULL, 0), 0);
	assert_int_equal(member_rooms(db, u.id, sum_unread, &sum), 0);
	return sum;
}

static void
test_jsonl_import_rebuilds_unread_counts(void **state)
{
	struct fixture *f = *state;
	struct message m = {0};
	struct room lobby;
	int64_t ann, bob, seq = 0;
	char *a;
	size_t n;

	/* The export lists members before messages: the imported counts
	 * must still take the messages into account. */
	assert_int_equal(user_create(f->db, "ann", HASH_A, 1, &ann), 0);
	assert_int_equal(user_create(f->db, "bob", HASH_B, 1, &bob), 0);
	assert_int_equal(room_create(f->db, "lobby", ROOM_PUBLIC, 1, &lobby),
	                 0);
	assert_int_equal(member_add(f->db, lobby.id, ann, 0, 1), 0);
	assert_int_equal(member_add(f->db, lobby.id, bob, 0, 1), 0);
	m.room_id = lobby.id;
	m.text = "x";
	m.text_len = 1;
	for (int i = 0; i < 10; i++) {
		m.id = m.seq = ++seq;
		m.user_id = i % 3 == 0 ? ann : bob;
		assert_int_equal(message_insert(f->db, &m, NULL), 0);
	}
	assert_int_equal(message_delete(f->db, 5, ++seq, 0), 0);
	assert_int_equal(message_delete(f->db, 7, ++seq, 0), 0);
	assert_int_equal(member_set_read(f->db, lobby.id, ann, 3, NULL, NULL),
	                 0);
	assert_int_equal(unread_of(f->db, "ann"), 3 * 1000 + 3);
	assert_int_equal(unread_of(f->db, "bob"), 3 * 1000);
	a = export_text(f->db, 0, -1, -1);
	assert_null(import_text(f->db2, a, &n));
	assert_int_equal(unread_of(f->db2, "ann"), 3 * 1000 + 3);
	assert_int_equal(unread_of(f->db2, "bob"), 3 * 1000);
	free(a);
}

/* fill, plus team rooms: a private room with a topic, roles, a notify
 * level, a ban, and a message a moderator deleted. */
static void
fill_team(struct db *db)
{
	struct message m = {0};
	struct room team;

	fill(db);
	assert_int_equal(room_create(db, "team", ROOM_PRIVATE, 6, &team), 0);
	assert_int_equal(room_set_topic(db, team.id, "plans \"q3\""), 0);
	assert_int_equal(member_add(db, team.id, 1, 0, 7), 0);
	assert_int_equal(member_add(db, team.id, 2, 0, 7), 0);
	assert_int_equal(member_set_role(db, team.id, 1, ROLE_OWNER), 0);
	assert_int_equal(member_set_notify(db, team.id, 2, NOTIFY_MENTIONS),
	                 0);
	assert_int_equal(ban_add(db, team.id, 3, 8), 0);
	m.id = m.seq = 5;
	m.room_id = team.id;
	m.user_id = 2;
	m.text = "rude";
	m.text_len = 4;
	m.ts = 1005;
	assert_int_equal(message_insert(db, &m, NULL), 0);
	assert_int_equal(message_delete(db, 5, 6, 1), 0);
}

static void
test_jsonl_team_rooms_export_import_export_same_bytes(void **state)
{
	struct fixture *f = *state;
	char *a, *b, err[256];
	size_t n;

	fill_team(f->db);
	a = export_text(f->db, 0, -1, -1);
	assert_non_null(strstr(
	    a, "{\"type\":\"room\",\"room\":\"team\",\"kind\":\"private\","
	       "\"created_at\":6,\"last_seq\":6,\"topic\":\"plans \\\"q3\\\"\"}\n"));
	assert_non_null(strstr(
	    a, "{\"type\":\"member\",\"room\":\"team\",\"user\":\"ann\","
	       "\"read_seq\":0,\"joined_at\":7,\"role\":\"owner\"}\n"));
	assert_non_null(strstr(
	    a, "{\"type\":\"member\",\"room\":\"team\",\"user\":\"bob\","
	       "\"read_seq\":0,\"joined_at\":7,\"notify\":\"mentions\"}\n"));
	assert_non_null(strstr(a, "{\"type\":\"ban\",\"room\":\"team\","
	                          "\"user\":\"cy\",\"created_at\":8}\n"));
	assert_non_null(strstr(
	    a, "{\"type\":\"message\",\"id\":5,\"seq\":6,\"room\":\"team\","
	       "\"user\":\"bob\",\"ts\":1005,\"deleted\":true,"
	       "\"deleted_by\":\"ann\"}\n"));
	assert_null(import_text(f->db2, a, &n));
	db_close(f->db2);
	assert_int_equal(db_open(&f->db2, f->path2, err, sizeof err), 0);
	b = export_text(f->db2, 0, -1, -1);
	assert_string_equal(a, b);
	free(a);
	free(b);
}

static void
test_jsonl_import_rejects_bad_team_room_lines(void **state)
{
	struct fixture *f = *state;
	size_t n;

	assert_string_equal(
	    import_text(f->db2,
	                "{\"type\":\"room\",\"room\":\"x\",\"kind\":\"dm\"}\n",
	                &n),
	    "the room's kind does not match its name");
	assert_string_equal(
	    import_text(f->db2,
	                "{\"type\":\"member\",\"room\":\"x\",\"user\":\"a\","
	                "\"role\":\"boss\"}\n",
	                &n),
	    "bad member line");
	assert_string_equal(
	    import_text(f->db2,
	                "{\"type\":\"member\",\"room\":\"dm:a:b\","
	                "\"user\":\"a\",\"role\":\"owner\"}\n",
	                &n),
	    "bad member line");
	assert_string_equal(
	    import_text(f->db2,
	                "{\"type\":\"ban\",\"room\":\"dm:a:b\",\"user\":\"a\"}\n",
	                &n),
	    "bad ban line");
	assert_string_equal(
	    import_text(f->db2,
	                "{\"type\":\"message\",\"id\":1,\"room\":\"x\","
	                "\"user\":\"a\",\"text\":\"t\",\"ts\":1,"
	                "\"deleted_by\":\"b\"}\n",
	                &n),
	    "bad message line");
}

static void
test_jsonl_import_folds_names_and_skips_empty_lines(void **state)
{
	struct fixture *f = *state;
	struct user u;
	struct room r;
	size_t n;

	assert_null(
	    import_text(f->db2,
	                "\r\n{\"type\":\"message\",\"id\":5,\"room\":\"Lobby\","
	                "\"user\":\"ANN\",\"text\":\"x\",\"ts\":9}\n\n",
	                &n));
	assert_int_equal(n, 3);
	assert_int_equal(user_by_name(f->db2, "ann", &u, NULL, 0), 0);
	assert_int_equal(room_by_name(f->db2, "lobby", &r), 0);
	assert_int_equal(r.last_seq, 5);
}

static void
test_jsonl_import_names_the_line_and_why(void **state)
{
	struct fixture *f = *state;
	static const struct {
		const char *text;
		size_t line;
		const char *why;
	} bad[] = {
	    {"{\"type\":\"user\",\"id\":1,\"username\":\"ann\"}\n[]\n", 2,
	     "not a JSON object"},
	    {"{\"id\":1}\n", 1, "no type"},
	    {"{\"type\":\"nope\"}\n", 1, "unknown type"},
	    {"{\"type\":\"user\",\"id\":1,\"username\":\"a b\"}\n", 1,
	     "bad user line"},
	    {"{\"type\":\"room\",\"room\":\"dm:ann:bob\",\"kind\":\"public\"}",
	     1, "the room's kind does not match its name"},
	    {"{\"type\":\"member\",\"room\":\"lobby\"}", 1, "bad member line"},
	    {"{\"type\":\"message\",\"id\":2,\"seq\":1,\"room\":\"lobby\","
	     "\"user\":\"ann\",\"text\":\"x\",\"ts\":1}",
	     1, "seq below id"},
	    {"{\"type\":\"chatd_export\",\"version\":2}", 1,
	     "unsupported export version"},
	    {"{\"type\":\"chatd_export\",\"version\":1,\"epoch\":\"x\"}", 1,
	     "bad header line"},
	    {"{\"type\":\"user\",\"id\":1,\"username\":\"ann\"}\n"
	     "{\"type\":\"user\",\"id\":2,\"username\":\"Ann\"}\n",
	     2, "duplicate user"},
	};
	size_t n;

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		assert_string_equal(import_text(f->db2, bad[i].text, &n),
		                    bad[i].why);
		assert_int_equal(n, bad[i].line);
		assert_int_equal(import_is_empty(f->db2), 1);
	}
}

/* A message line in lobby by ann with these id, seq and ts fields. */
#define MSG(fields)                                                            \
	"{\"type\":\"message\",\"room\":\"lobby\",\"user\":\"ann\","           \
	"\"text\":\"x\"," fields "}\n"
/* A user line for ann with this pwhash. */
#define USER_PW(hash)                                                          \
	"{\"type\":\"user\",\"id\":1,\"username\":\"ann\",\"created_at\":1,"   \
	"\"pwhash\":\"" hash "\"}\n"
#define SALT_HASH "$YW5uc2FsdGFubnNhbHQ$aGFzaC1vZi1hbm4taGFzaC1vZi1hbm4"

/* Lines that would break chatd once stored: each stops the import at
 * its line with a reason, and nothing is stored. */
static void
test_jsonl_import_refuses_hostile_lines_and_stores_nothing(void **state)
{
	struct fixture *f = *state;
	/* Line 1 is a valid message, so each bad line is line 2. */
	static const char ok[] = MSG("\"id\":1,\"seq\":1,\"ts\":1");
	static const struct {
		const char *text;
		const char *why;
	} bad[] = {
	    /* Ids and seqs: 1..2^53-1 (the next seq must not overflow, and
	     * JavaScript clients must see them exactly). */
	    {MSG("\"id\":9223372036854775807,\"ts\":1"),
	     "id out of range (1 to 2^53-1)"},
	    {MSG("\"id\":9007199254740992,\"ts\":1"),
	     "id out of range (1 to 2^53-1)"},
	    {MSG("\"id\":2,\"seq\":9007199254740992,\"ts\":1"),
	     "seq out of range (0 to 2^53-1)"},
	    {MSG("\"id\":0,\"ts\":1"), "id out of range (1 to 2^53-1)"},
	    {MSG("\"id\":-5,\"ts\":1"), "bad message line"},
	    {MSG("\"id\":3,\"seq\":2,\"ts\":1"), "seq below id"},
	    {"{\"type\":\"user\",\"id\":0,\"username\":\"bob\"}\n",
	     "id out of range (1 to 2^53-1)"},
	    {"{\"type\":\"user\",\"id\":9223372036854775807,"
	     "\"username\":\"bob\"}\n",
	     "id out of range (1 to 2^53-1)"},
	    {"{\"type\":\"room\",\"room\":\"big\","
	     "\"last_seq\":9007199254740992}\n",
	     "seq out of range (0 to 2^53-1)"},
	    {"{\"type\":\"chatd_export\",\"version\":1,"
	     "\"seq_floor\":9223372036854775807}\n",
	     "seq out of range (0 to 2^53-1)"},
	    /* Times: 0..2100-01-01 in ms. */
	    {MSG("\"id\":2,\"ts\":4102444800001"),
	     "time out of range (0 to 2100-01-01, in ms)"},
	    {MSG("\"id\":2,\"ts\":1,\"edited_ts\":9223372036854775807"),
	     "time out of range (0 to 2100-01-01, in ms)"},
	    {"{\"type\":\"user\",\"id\":2,\"username\":\"bob\","
	     "\"created_at\":4102444800001}\n",
	     "time out of range (0 to 2100-01-01, in ms)"},
	    {"{\"type\":\"room\",\"room\":\"r\",\"created_at\":5000000000000}"
	     "\n",
	     "time out of range (0 to 2100-01-01, in ms)"},
	    {"{\"type\":\"member\",\"room\":\"lobby\",\"user\":\"ann\","
	     "\"joined_at\":5000000000000}\n",
	     "time out of range (0 to 2100-01-01, in ms)"},
	    /* Read positions: at most the room's last_seq (1 here). */
	    {"{\"type\":\"member\",\"room\":\"lobby\",\"user\":\"ann\","
	     "\"read_seq\":2}\n",
	     "read_seq above the room's last_seq"},
	    {"{\"type\":\"member\",\"room\":\"new\",\"user\":\"ann\","
	     "\"read_seq\":1}\n",
	     "read_seq above the room's last_seq"},
	    /* A DM is its two users' only. */
	    {"{\"type\":\"member\",\"room\":\"dm:alice:bob\","
	     "\"user\":\"carol\"}\n",
	     "a DM's members are the two users of its name"},
	    {"{\"type\":\"member\",\"room\":\"dm:alice:bob\","
	     "\"user\":\"alic\"}\n",
	     "a DM's members are the two users of its name"},
	    {"{\"type\":\"message\",\"id\":2,\"room\":\"dm:alice:bob\","
	     "\"user\":\"carol\",\"text\":\"hi\",\"ts\":1}\n",
	     "a DM's messages are by the two users of its name"},
	    /* Hashes: Argon2id at most 4 times chatd's cost. */
	    {USER_PW("$argon2id$v=19$m=1048576,t=8,p=1" SALT_HASH),
	     "pwhash costs more than 4 times chatd's own Argon2id "
	     "parameters"},
	    {USER_PW("$argon2id$v=19$m=77825,t=1,p=1" SALT_HASH),
	     "pwhash costs more than 4 times chatd's own Argon2id "
	     "parameters"},
	    {USER_PW("$argon2id$v=19$m=19456,t=9,p=1" SALT_HASH),
	     "pwhash costs more than 4 times chatd's own Argon2id "
	     "parameters"},
	    {USER_PW("$argon2id$v=19$m=77824,t=3,p=1" SALT_HASH),
	     "pwhash costs more than 4 times chatd's own Argon2id "
	     "parameters"},
	    {USER_PW("$argon2id$v=19$m=19456,t=2,p=5" SALT_HASH),
	     "pwhash costs more than 4 times chatd's own Argon2id "
	     "parameters"},
	    {USER_PW("hash-a"), "pwhash is not an Argon2id hash"},
	    {USER_PW("$argon2i$v=19$m=19456,t=2,p=1" SALT_HASH),
	     "pwhash is not an Argon2id hash"},
	    {USER_PW("$argon2id$m=19456,t=2,p=1" SALT_HASH),
	     "pwhash is not an Argon2id hash"},
	    {USER_PW("$argon2id$v=19$m=99999999999,t=2,p=1" SALT_HASH),
	     "pwhash is not an Argon2id hash"},
	    {USER_PW("$argon2id$v=19$m=19456,t=2,p=1$$"),
	     "pwhash is not an Argon2id hash"},
	    {USER_PW("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$a\\\"b"),
	     "pwhash is not an Argon2id hash"},
	    {USER_PW("!"), "pwhash is not an Argon2id hash"},
	};
	char text[512];
	size_t n;

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		snprintf(text, sizeof text, "%s%s", ok, bad[i].text);
		assert_string_equal(import_text(f->db2, text, &n), bad[i].why);
		assert_int_equal(n, 2);
		assert_int_equal(import_is_empty(f->db2), 1);
	}
}

/* The edges of those limits import. */
static void
test_jsonl_import_accepts_the_limits_themselves(void **state)
{
	struct fixture *f = *state;
	struct user u;
	struct room r;
	size_t n;

	assert_null(import_text(
	    f->db2,
	    "{\"type\":\"chatd_export\",\"version\":1,"
	    "\"seq_floor\":9007199254740991}\n"
	    "{\"type\":\"user\",\"id\":9007199254740991,\"username\":\"ann\","
	    "\"created_at\":4102444800000,"
	    "\"pwhash\":\"$argon2id$v=19$m=77824,t=2,p=1" SALT_HASH "\"}\n"
	    "{\"type\":\"user\",\"id\":2,\"username\":\"alice\","
	    "\"pwhash\":\"$argon2id$v=19$m=19456,t=8,p=4" SALT_HASH "\"}\n"
	    "{\"type\":\"user\",\"id\":3,\"username\":\"bob\","
	    "\"pwhash\":\"\",\"deleted\":true}\n"
	    "{\"type\":\"room\",\"room\":\"dm:alice:bob\",\"last_seq\":3}\n"
	    "{\"type\":\"member\",\"room\":\"dm:alice:bob\",\"user\":\"alice\","
	    "\"read_seq\":3}\n"
	    "{\"type\":\"member\",\"room\":\"dm:alice:bob\",\"user\":\"bob\"}\n"
	    "{\"type\":\"message\",\"id\":3,\"room\":\"dm:alice:bob\","
	    "\"user\":\"bob\",\"text\":\"hi\",\"ts\":0}\n" MSG(
	        "\"id\":9007199254740990,\"seq\":9007199254740991,"
	        "\"ts\":4102444800000,\"edited_ts\":4102444800000"),
	    &n));
	assert_int_equal(n, 9);
	assert_int_equal(user_by_name(f->db2, "ann", &u, NULL, 0), 0);
	assert_int_equal(u.id, SEQ_MAX);
	assert_int_equal(room_by_name(f->db2, "lobby", &r), 0);
	assert_int_equal(r.last_seq, SEQ_MAX);
	assert_int_equal(db_max_seq(f->db2), SEQ_MAX);
}

/* Version 2 messages: ann asks, bob answers with mentions of ann and
 * @room, both react; returns the answer's id. */
static int64_t
fill_v2(struct db *db)
{
	struct message m = {0};
	struct room lobby;
	int64_t ann, bob, ids[1];

	assert_int_equal(user_create(db, "ann", HASH_A, 1, &ann), 0);
	assert_int_equal(user_create(db, "bob", HASH_B, 2, &bob), 0);
	assert_int_equal(room_create(db, "lobby", ROOM_PUBLIC, 3, &lobby), 0);
	assert_int_equal(member_add(db, lobby.id, ann, 0, 4), 0);
	assert_int_equal(member_add(db, lobby.id, bob, 0, 4), 0);
	m.id = m.seq = 1;
	m.room_id = lobby.id;
	m.user_id = ann;
	m.text = "question?";
	m.text_len = strlen(m.text);
	m.ts = 1000;
	assert_int_equal(message_insert(db, &m, NULL), 0);
	m.id = m.seq = 2;
	m.user_id = bob;
	m.text = "@ann answer";
	m.text_len = strlen(m.text);
	m.ts = 1001;
	m.reply_to = 1;
	m.mentions = "ann";
	m.mentions_len = 3;
	ids[0] = ann;
	m.mention_ids = ids;
	m.nmention_ids = 1;
	assert_int_equal(message_insert(db, &m, NULL), 0);
	assert_int_equal(reaction_set(db, 2, ann, "\xf0\x9f\x91\x8d", 1, 3), 0);
	assert_int_equal(reaction_set(db, 2, bob, "x", 1, 4), 0);
	assert_int_equal(reaction_set(db, 2, bob, "\xf0\x9f\x91\x8d", 1, 5), 0);
	assert_int_equal(reaction_set(db, 2, bob, "x", 1, 6), 1);
	return 2;
}

static void
test_jsonl_v2_messages_round_trip(void **state)
{
	struct fixture *f = *state;
	struct mention_count *mc;
	char *a, *b, *line, err[256];
	size_t n;
	int64_t ann = 0;
	struct user u;

	fill_v2(f->db);
	a = export_text(f->db, 0, -1, -1);
	line = strstr(a, "{\"type\":\"message\",\"id\":2");
	assert_non_null(line);
	assert_memory_equal(
	    line,
	    "{\"type\":\"message\",\"id\":2,\"seq\":5,\"room\":\"lobby\","
	    "\"user\":\"bob\",\"text\":\"@ann answer\",\"ts\":1001,"
	    "\"reply_to\":1,\"mentions\":[\"ann\"],\"reactions\":["
	    "{\"emoji\":\"\xf0\x9f\x91\x8d\",\"count\":2,"
	    "\"users\":[\"ann\",\"bob\"]},"
	    "{\"emoji\":\"x\",\"count\":1,\"users\":[\"bob\"]}]}\n",
	    strlen(line));
	assert_null(import_text(f->db2, a, &n));
	db_close(f->db2);
	assert_int_equal(db_open(&f->db2, f->path2, err, sizeof err), 0);
	b = export_text(f->db2, 0, -1, -1);
	assert_string_equal(a, b);
	free(b);
	/* The imported mention counts for ann, and reactions made after
	 * the import go after the imported ones. */
	assert_int_equal(user_by_name(f->db2, "ann", &u, NULL, 0), 0);
	ann = u.id;
	assert_int_equal(mention_counts(f->db2, ann, &mc, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(mc[0].count, 1);
	free(mc);
	assert_int_equal(reaction_set(f->db2, 2, ann, "x", 1, 6), 0);
	assert_int_equal(reaction_set(f->db2, 2, ann, "z", 1, 7), 0);
	b = export_text(f->db2, 0, -1, -1);
	assert_non_null(strstr(b, "{\"emoji\":\"x\",\"count\":2,"
	                          "\"users\":[\"bob\",\"ann\"]},"
	                          "{\"emoji\":\"z\",\"count\":1,"
	                          "\"users\":[\"ann\"]}]"));
	free(a);
	free(b);
}

static void
test_jsonl_import_refuses_bad_v2_fields(void **state)
{
	struct fixture *f = *state;
	static const char *const bad[] = {
	    "\"mentions\":\"ann\"",
	    "\"mentions\":[\"a b\"]",
	    "\"reactions\":{}",
	    "\"reactions\":[{\"emoji\":\"\",\"users\":[\"ann\"]}]",
	    "\"reactions\":[{\"emoji\":\"x\",\"users\":[]}]",
	    "\"reactions\":[{\"emoji\":\"x\",\"users\":[\"A B\"]}]",
	    "\"reply_to\":-1",
	};
	char text[512];
	size_t n;

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		snprintf(text, sizeof text,
		         "{\"type\":\"message\",\"id\":5,\"room\":\"lobby\","
		         "\"user\":\"ann\",\"text\":\"x\",\"ts\":9,%s}\n",
		         bad[i]);
		assert_string_equal(import_text(f->db2, text, &n),
		                    "bad message line");
		assert_int_equal(import_is_empty(f->db2), 1);
	}
}

/* member_rooms callback: each state's fields folded into a string. */
static int
states_cb(void *arg, const struct room_state *s)
{
	char *out = arg;
	size_t n = strlen(out);

	snprintf(out + n, 1024 - n, "%s/%d/%s/%lld/%lld/%lld/%d/%d;",
	         s->room.name, s->room.kind, s->room.topic,
	         (long long)s->read_seq, (long long)s->unread,
	         (long long)s->mentions, s->role, s->notify);
	return 0;
}

/* Every room state of username, as one string (1024 bytes). */
static void
states_of(struct db *db, const char *username, char *out)
{
	struct user u;

	out[0] = '\0';
	assert_int_equal(user_by_name(db, username, &u, NULL, 0), 0);
	assert_int_equal(member_rooms(db, u.id, states_cb, out), 0);
}

/* Every version 2 field at once (a private room with a topic, roles, a
 * notify level, a ban, a moderator's delete, a reply with a mention and
 * reactions, unread counters): export, import, export gives the same
 * bytes, and the imported room states (unread and mention counts
 * included) are the same. */
static void
test_jsonl_all_v2_fields_round_trip_with_the_same_room_states(void **state)
{
	struct fixture *f = *state;
	struct message m = {0};
	struct room team;
	struct user u;
	int64_t ann, bob, cy, ids[1];
	char *a, *b, err[256], s1[1024], s2[1024];
	size_t n;

	fill_v2(f->db);
	assert_int_equal(user_by_name(f->db, "ann", &u, NULL, 0), 0);
	ann = u.id;
	assert_int_equal(user_by_name(f->db, "bob", &u, NULL, 0), 0);
	bob = u.id;
	assert_int_equal(user_create(f->db, "cy", HASH_A, 5, &cy), 0);
	assert_int_equal(room_create(f->db, "team", ROOM_PRIVATE, 6, &team), 0);
	assert_int_equal(room_set_topic(f->db, team.id, "plans"), 0);
	assert_int_equal(member_add(f->db, team.id, ann, 6, 7), 0);
	assert_int_equal(member_add(f->db, team.id, bob, 6, 7), 0);
	assert_int_equal(member_set_role(f->db, team.id, ann, ROLE_OWNER), 0);
	assert_int_equal(member_set_notify(f->db, team.id, bob, NOTIFY_NONE), 0);
	assert_int_equal(ban_add(f->db, team.id, cy, 8), 0);
	m.room_id = team.id;
	m.user_id = bob;
	m.ts = 1010;
	m.id = m.seq = 7;
	m.text = "rude";
	m.text_len = 4;
	assert_int_equal(message_insert(f->db, &m, NULL), 0);
	m.id = m.seq = 8;
	m.text = "sorry @ann";
	m.text_len = strlen(m.text);
	m.reply_to = 7;
	m.mentions = "ann";
	m.mentions_len = 3;
	ids[0] = ann;
	m.mention_ids = ids;
	m.nmention_ids = 1;
	assert_int_equal(message_insert(f->db, &m, NULL), 0);
	assert_int_equal(message_delete(f->db, 7, 9, ann), 0);
	assert_int_equal(reaction_set(f->db, 8, ann, "ok", 1, 10), 0);
	states_of(f->db, "ann", s1);
	assert_string_equal(s1, "lobby/0//0/1/1/0/0;team/2/plans/6/1/1/2/0;");
	a = export_text(f->db, 0, -1, -1);
	assert_null(import_text(f->db2, a, &n));
	db_close(f->db2);
	assert_int_equal(db_open(&f->db2, f->path2, err, sizeof err), 0);
	b = export_text(f->db2, 0, -1, -1);
	assert_string_equal(a, b);
	states_of(f->db2, "ann", s2);
	assert_string_equal(s1, s2);
	states_of(f->db, "bob", s1);
	states_of(f->db2, "bob", s2);
	assert_string_equal(s1, s2);
	free(a);
	free(b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(
	        test_jsonl_export_writes_header_users_rooms_members_messages,
	        setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_jsonl_team_rooms_export_import_export_same_bytes, setup,
	        teardown),
	    cmocka_unit_test_setup_teardown(
	        test_jsonl_import_rejects_bad_team_room_lines, setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_jsonl_import_then_export_gives_the_same_bytes, setup,
	        teardown),
	    cmocka_unit_test_setup_teardown(
	        test_jsonl_import_folds_names_and_skips_empty_lines, setup,
	        teardown),
	    cmocka_unit_test_setup_teardown(
	        test_jsonl_import_names_the_line_and_why, setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_jsonl_import_refuses_hostile_lines_and_stores_nothing,
	        setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_jsonl_import_accepts_the_limits_themselves, setup,
	        teardown),
	    cmocka_unit_test_setup_teardown(
	        test_jsonl_import_rebuilds_unread_counts, setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_jsonl_all_v2_fields_round_trip_with_the_same_room_states,
	        setup, teardown),
	    cmocka_unit_test_setup_teardown(test_jsonl_v2_messages_round_trip,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_jsonl_import_refuses_bad_v2_fields, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
