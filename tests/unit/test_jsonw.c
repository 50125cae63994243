/* tests/unit/test_jsonw.c — the JSON writer and the message encoders */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <jansson.h>

#include "chatd/chat.h"
#include "chatd/conn.h"
#include "chatd/jsonw.h"
#include "storage/jsonl.h"
#include "storage/storage.h"
#include "tests/unit/tmpdb.h"

#define HEAD 16 /* spare bytes the fixture keeps in front */

static int
setup(void **state)
{
	struct jsonw *w = malloc(sizeof *w);

	jsonw_init(w, HEAD);
	*state = w;
	return 0;
}

static int
teardown(void **state)
{
	jsonw_free(*state);
	free(*state);
	return 0;
}

/* Asserts that w holds exactly want (want_len bytes; 0: strlen). */
static void
assert_output(struct jsonw *w, const char *want, size_t want_len)
{
	if (want_len == 0)
		want_len = strlen(want);
	if (jsonw_len(w) != want_len ||
	    memcmp(jsonw_data(w), want, want_len) != 0)
		fail_msg("got '%.*s', want '%.*s'", (int)jsonw_len(w),
		    jsonw_data(w), (int)want_len, want);
}

/* Asserts that w holds what jansson's compact dump of v is; takes v. */
static void
assert_same_as_jansson(struct jsonw *w, json_t *v)
{
	char *want;

	assert_non_null(v);
	want = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	assert_non_null(want);
	assert_output(w, want, 0);
	free(want);
	json_decref(v);
}

/* Parses what w holds with jansson (NULs allowed). */
static json_t *
parse(struct jsonw *w)
{
	json_error_t err;
	json_t *v = json_loadb(jsonw_data(w), jsonw_len(w),
	    JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);

	if (v == NULL)
		fail_msg("does not parse: %s: '%.*s'", err.text,
		    (int)jsonw_len(w), jsonw_data(w));
	return v;
}

static void
test_jsonw_escapes_every_control_char_like_jansson(void **state)
{
	struct jsonw *w = *state;
	static const char *const want[0x20] = {
	    "\\u0000", "\\u0001", "\\u0002", "\\u0003", "\\u0004", "\\u0005",
	    "\\u0006", "\\u0007", "\\b", "\\t", "\\n", "\\u000B", "\\f",
	    "\\r", "\\u000E", "\\u000F", "\\u0010", "\\u0011", "\\u0012",
	    "\\u0013", "\\u0014", "\\u0015", "\\u0016", "\\u0017", "\\u0018",
	    "\\u0019", "\\u001A", "\\u001B", "\\u001C", "\\u001D", "\\u001E",
	    "\\u001F"};
	char c, quoted[16];

	for (int i = 0; i < 0x20; i++) {
		c = (char)i;
		jsonw_reset(w);
		jsonw_stringn(w, &c, 1);
		snprintf(quoted, sizeof quoted, "\"%s\"", want[i]);
		assert_output(w, quoted, 0);
		jsonw_reset(w);
		jsonw_stringn(w, &c, 1);
		assert_same_as_jansson(w, json_stringn(&c, 1));
	}
}

static void
test_jsonw_ascii_matches_jansson(void **state)
{
	struct jsonw *w = *state;
	char all[128];

	/* Every ASCII byte, control characters, '"', '\\', '/' and DEL
	 * included: jansson escapes neither '/' nor DEL, nor do we. */
	for (int i = 0; i < 128; i++)
		all[i] = (char)i;
	jsonw_stringn(w, all, sizeof all);
	assert_same_as_jansson(w, json_stringn(all, sizeof all));
	jsonw_reset(w);
	jsonw_string(w, "a/b\x7f\"q\"\\");
	assert_output(w, "\"a/b\x7f\\\"q\\\"\\\\\"", 0);
}

static void
test_jsonw_utf8_passes_through(void **state)
{
	struct jsonw *w = *state;
	/* é, €, U+FFFF, an emoji (4 bytes), U+2028 (not escaped), CJK. */
	const char *s = "\xc3\xa9\xe2\x82\xac\xef\xbf\xbf\xf0\x9f\x98\x80"
			"\xe2\x80\xa8\xe6\xbc\xa2\xe5\xad\x97";
	char want[64];
	json_t *v;

	jsonw_string(w, s);
	snprintf(want, sizeof want, "\"%s\"", s);
	assert_output(w, want, 0);
	v = parse(w);
	assert_string_equal(json_string_value(v), s);
	json_decref(v);
	jsonw_reset(w);
	jsonw_string(w, s);
	assert_same_as_jansson(w, json_string(s));
}

static void
test_jsonw_writes_int64_extremes(void **state)
{
	struct jsonw *w = *state;
	static const int64_t v[] = {0, 1, -1, 9, 10, 11, 99, 100, 101, -10,
	    -99, -100, 1234567890, 999999999999, 1000000000000,
	    1767225600000, INT64_MAX, INT64_MIN, INT64_MAX - 1,
	    INT64_MIN + 1, INT32_MAX, INT32_MIN, (int64_t)1 << 53};
	char want[32];

	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
		jsonw_reset(w);
		jsonw_int(w, v[i]);
		snprintf(want, sizeof want, "%lld", (long long)v[i]);
		assert_output(w, want, 0);
	}
	jsonw_reset(w);
	jsonw_int(w, INT64_MIN);
	assert_output(w, "-9223372036854775808", 0);
	jsonw_reset(w);
	jsonw_int(w, INT64_MAX);
	assert_output(w, "9223372036854775807", 0);
	/* Every power of ten and its neighbours, both signs. */
	for (int64_t p = 1; p <= INT64_MAX / 10; p *= 10)
		for (int64_t d = -1; d <= 1; d++)
			for (int64_t sign = -1; sign <= 1; sign += 2) {
				int64_t x = sign * (p * 10 + d);

				jsonw_reset(w);
				jsonw_int(w, x);
				snprintf(want, sizeof want, "%lld",
				    (long long)x);
				assert_output(w, want, 0);
			}
}

static void
test_jsonw_nests_with_commas(void **state)
{
	struct jsonw *w = *state;

	jsonw_object_open(w);
	jsonw_key(w, "a");
	jsonw_array_open(w);
	jsonw_int(w, 1);
	jsonw_array_open(w);
	jsonw_array_close(w);
	jsonw_object_open(w);
	jsonw_object_close(w);
	jsonw_array_open(w);
	jsonw_array_open(w);
	jsonw_string(w, "x");
	jsonw_array_close(w);
	jsonw_null(w);
	jsonw_array_close(w);
	jsonw_array_close(w);
	jsonw_key(w, "b");
	jsonw_object_open(w);
	jsonw_key(w, "c");
	jsonw_null(w);
	jsonw_key(w, "d");
	jsonw_bool(w, 1);
	jsonw_key(w, "e");
	jsonw_bool(w, 0);
	jsonw_key(w, "f");
	jsonw_raw(w, "[1,2]", 5);
	jsonw_object_close(w);
	jsonw_key(w, "k\"ey\n");
	jsonw_int(w, -5);
	jsonw_object_close(w);
	assert_output(w,
	    "{\"a\":[1,[],{},[[\"x\"],null]],\"b\":{\"c\":null,\"d\":true,"
	    "\"e\":false,\"f\":[1,2]},\"k\\\"ey\\n\":-5}",
	    0);
	assert_int_equal(w->depth, 0);
}

static void
test_jsonw_top_level_values_are_back_to_back(void **state)
{
	struct jsonw *w = *state;

	jsonw_object_open(w);
	jsonw_key(w, "a");
	jsonw_int(w, 1);
	jsonw_object_close(w);
	jsonw_object_open(w);
	jsonw_object_close(w);
	jsonw_int(w, 2);
	jsonw_string(w, "s");
	assert_output(w, "{\"a\":1}{}2\"s\"", 0);
}

static void
test_jsonw_keeps_head_room_and_reuses_buffer(void **state)
{
	struct jsonw *w = *state;
	char *base;
	size_t cap;

	jsonw_string(w, "x");
	assert_ptr_equal(jsonw_data(w), w->buf + HEAD);
	/* The spare bytes are the caller's to write. */
	memset(jsonw_data(w) - HEAD, 0xaa, HEAD);
	assert_output(w, "\"x\"", 0);
	base = w->buf;
	cap = w->cap;
	jsonw_reset(w);
	assert_int_equal(jsonw_len(w), 0);
	jsonw_string(w, "y");
	assert_ptr_equal(w->buf, base);
	assert_int_equal(w->cap, cap);
	assert_output(w, "\"y\"", 0);
}

static void
test_jsonw_grows_for_long_escaped_strings(void **state)
{
	struct jsonw *w = *state;
	size_t n = 300000;
	char *s = malloc(n);

	/* Every other byte needs \u00XX: six times the room of the text. */
	for (size_t i = 0; i < n; i++)
		s[i] = i % 2 ? (char)(i % 32) : (char)('a' + i % 26);
	jsonw_array_open(w);
	jsonw_stringn(w, s, n);
	jsonw_stringn(w, s, n / 3);
	jsonw_array_close(w);
	{
		json_t *a = json_array();

		json_array_append_new(a, json_stringn(s, n));
		json_array_append_new(a, json_stringn(s, n / 3));
		assert_same_as_jansson(w, a);
	}
	assert_true(w->cap >= HEAD + jsonw_len(w));
	free(s);
}

/* A random valid UTF-8 string of at most max bytes, any code points
 * (controls, quotes, NUL, astral) but no surrogates. */
static size_t
random_utf8(char *out, size_t max, unsigned *seed)
{
	size_t n = 0;

	while (n + 4 <= max && rand_r(seed) % 40 != 0) {
		unsigned cp, kind = (unsigned)rand_r(seed) % 4;

		if (kind == 0)
			cp = (unsigned)rand_r(seed) % 0x80;
		else if (kind == 1)
			cp = 0x80 + (unsigned)rand_r(seed) % 0x780;
		else if (kind == 2)
			cp = 0x800 + (unsigned)rand_r(seed) % 0xf800;
		else
			cp = 0x10000 + (unsigned)rand_r(seed) % 0x100000;
		if (cp >= 0xd800 && cp <= 0xdfff)
			cp = '"';
		if (cp < 0x80) {
			out[n++] = (char)cp;
		} else if (cp < 0x800) {
			out[n++] = (char)(0xc0 | cp >> 6);
			out[n++] = (char)(0x80 | (cp & 0x3f));
		} else if (cp < 0x10000) {
			out[n++] = (char)(0xe0 | cp >> 12);
			out[n++] = (char)(0x80 | (cp >> 6 & 0x3f));
			out[n++] = (char)(0x80 | (cp & 0x3f));
		} else {
			out[n++] = (char)(0xf0 | cp >> 18);
			out[n++] = (char)(0x80 | (cp >> 12 & 0x3f));
			out[n++] = (char)(0x80 | (cp >> 6 & 0x3f));
			out[n++] = (char)(0x80 | (cp & 0x3f));
		}
	}
	return n;
}

static void
test_jsonw_random_strings_match_jansson(void **state)
{
	struct jsonw *w = *state;
	unsigned seed = 12345;
	char s[512];
	size_t n;

	for (int i = 0; i < 2000; i++) {
		n = random_utf8(s, sizeof s, &seed);
		jsonw_reset(w);
		jsonw_stringn(w, s, n);
		assert_same_as_jansson(w, json_stringn(s, n));
	}
}

static void
test_jsonw_round_trips_through_jansson(void **state)
{
	struct jsonw *w = *state;
	json_t *v, *a;

	jsonw_object_open(w);
	jsonw_key(w, "min");
	jsonw_int(w, INT64_MIN);
	jsonw_key(w, "max");
	jsonw_int(w, INT64_MAX);
	jsonw_key(w, "s");
	jsonw_stringn(w, "q\"\\\n\x00\x1f\xf0\x9f\x98\x80/", 12);
	jsonw_key(w, "t");
	jsonw_bool(w, 1);
	jsonw_key(w, "f");
	jsonw_bool(w, 0);
	jsonw_key(w, "n");
	jsonw_null(w);
	jsonw_key(w, "a");
	jsonw_array_open(w);
	jsonw_int(w, 0);
	jsonw_object_open(w);
	jsonw_object_close(w);
	jsonw_array_close(w);
	jsonw_object_close(w);
	v = parse(w);
	assert_true(json_is_object(v));
	assert_int_equal(json_object_size(v), 7);
	assert_true(json_integer_value(json_object_get(v, "min")) == INT64_MIN);
	assert_true(json_integer_value(json_object_get(v, "max")) == INT64_MAX);
	assert_int_equal(json_string_length(json_object_get(v, "s")), 12);
	assert_memory_equal(json_string_value(json_object_get(v, "s")),
	    "q\"\\\n\x00\x1f\xf0\x9f\x98\x80/", 12);
	assert_true(json_is_true(json_object_get(v, "t")));
	assert_true(json_is_false(json_object_get(v, "f")));
	assert_true(json_is_null(json_object_get(v, "n")));
	a = json_object_get(v, "a");
	assert_int_equal(json_array_size(a), 2);
	assert_int_equal(json_integer_value(json_array_get(a, 0)), 0);
	assert_true(json_is_object(json_array_get(a, 1)));
	json_decref(v);
}

static void
test_jsonw_steal_hands_over_the_buffer(void **state)
{
	struct jsonw *w = *state;
	char *buf;

	jsonw_int(w, 42);
	buf = jsonw_steal(w);
	assert_non_null(buf);
	assert_memory_equal(buf + HEAD, "42", 2);
	assert_null(w->buf);
	assert_int_equal(jsonw_len(w), 0);
	assert_int_equal(w->head, HEAD);
	free(buf);
	jsonw_int(w, 7);
	assert_output(w, "7", 0);
}

/* A message as storage hands it over. */
static struct message
message_fixture(const char *text, size_t len)
{
	struct message m;

	memset(&m, 0, sizeof m);
	m.id = 1000001;
	m.seq = 1000007;
	m.room_id = 3;
	m.user_id = 9;
	snprintf(m.room, sizeof m.room, "general");
	snprintf(m.username, sizeof m.username, "alice.b-c_d");
	m.text = text;
	m.text_len = len;
	m.ts = 1767225600123;
	return m;
}

/* chat_message_write must give exactly the bytes of jansson's dump of
 * jsonl_message_json (what export writes). */
static void
assert_message_like_jansson(struct jsonw *w, const struct message *m)
{
	jsonw_reset(w);
	chat_message_write(w, m);
	assert_same_as_jansson(w, jsonl_message_json(m));
}

static void
test_chat_message_write_matches_jsonl_message_json(void **state)
{
	struct jsonw *w = *state;
	const char *texts[] = {
	    "hello",
	    "she said \"hi\" \\o/",
	    "line one\nline two\r\n\ttabbed",
	    "emoji \xf0\x9f\x98\x80\xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd and "
	    "\xe6\xbc\xa2\xe5\xad\x97",
	    "</script><b>&amp;</b>",
	};
	struct message m;
	json_t *v;

	for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
		m = message_fixture(texts[i], strlen(texts[i]));
		assert_message_like_jansson(w, &m);
		m.edited_ts = m.ts + 5000;
		assert_message_like_jansson(w, &m);
	}
	/* U+0000 is allowed in text. */
	m = message_fixture("a\0b", 3);
	assert_message_like_jansson(w, &m);
	/* A tombstone: no text, "deleted": true, no edited_ts. */
	m = message_fixture(NULL, 0);
	m.deleted = 1;
	m.edited_ts = m.ts + 1;
	assert_message_like_jansson(w, &m);
	jsonw_reset(w);
	chat_message_write(w, &m);
	assert_output(w,
	    "{\"id\":1000001,\"seq\":1000007,\"room\":\"general\","
	    "\"user\":\"alice.b-c_d\",\"ts\":1767225600123,\"deleted\":true}",
	    0);
	/* An edited message, field by field after a round trip. */
	m = message_fixture("x\"y\n\xf0\x9f\x98\x80", 8);
	m.edited_ts = 1767225700000;
	jsonw_reset(w);
	chat_message_write(w, &m);
	v = parse(w);
	assert_int_equal(json_integer_value(json_object_get(v, "id")), m.id);
	assert_int_equal(json_integer_value(json_object_get(v, "seq")), m.seq);
	assert_string_equal(json_string_value(json_object_get(v, "room")),
	    "general");
	assert_string_equal(json_string_value(json_object_get(v, "user")),
	    "alice.b-c_d");
	assert_string_equal(json_string_value(json_object_get(v, "text")),
	    "x\"y\n\xf0\x9f\x98\x80");
	assert_int_equal(json_integer_value(json_object_get(v, "ts")), m.ts);
	assert_int_equal(json_integer_value(json_object_get(v, "edited_ts")),
	    m.edited_ts);
	assert_null(json_object_get(v, "deleted"));
	json_decref(v);
}

static void
test_chat_event_write_puts_type_first_and_ref_last(void **state)
{
	struct jsonw *w = *state;
	struct message m = message_fixture("hi \"you\"", 8);
	json_t *ref = json_string("r\"1\xe2\x82\xac");
	json_t *want, *body;

	chat_event_write(w, "message", &m, ref);
	/* What the jansson encoder sent: type, the message, then ref. */
	want = json_pack("{s:s}", "type", "message");
	body = jsonl_message_json(&m);
	json_object_update(want, body);
	json_decref(body);
	json_object_set(want, "ref", ref);
	assert_same_as_jansson(w, want);
	jsonw_reset(w);
	m.deleted = 1;
	chat_event_write(w, "deleted", &m, NULL);
	assert_output(w,
	    "{\"type\":\"deleted\",\"id\":1000001,\"seq\":1000007,"
	    "\"room\":\"general\",\"user\":\"alice.b-c_d\","
	    "\"ts\":1767225600123,\"deleted\":true}",
	    0);
	json_decref(ref);
}

/* message_cb: each stored message, encoded both ways, must be the same
 * bytes; the authors and rooms are recorded in order. */
struct page_check {
	struct jsonw *w;
	char users[16][USERNAME_MAX + 1];
	char rooms[16][ROOMNAME_MAX + 1];
	int n;
};

static int
page_check_cb(void *arg, const struct message *m)
{
	struct page_check *pc = arg;

	assert_true(pc->n < 16);
	assert_message_like_jansson(pc->w, m);
	snprintf(pc->users[pc->n], sizeof pc->users[0], "%s", m->username);
	snprintf(pc->rooms[pc->n], sizeof pc->rooms[0], "%s", m->room);
	pc->n++;
	return 0;
}

/* Stores a message; returns its id. */
static int64_t
store(struct db *db, int64_t *seq, int64_t room, const char *rname,
    int64_t user, const char *uname, const char *text)
{
	struct message m;

	memset(&m, 0, sizeof m);
	m.id = m.seq = ++*seq;
	m.room_id = room;
	m.user_id = user;
	snprintf(m.room, sizeof m.room, "%s", rname);
	snprintf(m.username, sizeof m.username, "%s", uname);
	m.text = text;
	m.text_len = strlen(text);
	m.ts = 1767225600000 + *seq;
	assert_int_equal(message_insert(db, &m, NULL), 0);
	return m.id;
}

static void
test_stored_pages_encode_like_jansson(void **state)
{
	struct jsonw *w = *state;
	static const char *const want_users[] = {"ann", "ann", "bob", "ann",
	    "bob", "bob", "ann"};
	char dir[64], path[TMPDB_PATH_MAX], err[256];
	struct page_check pc = {.w = w};
	struct db *db;
	struct room lobby, other;
	int64_t ann, bob, seq = 0, edited, deleted;
	int more, i;

	assert_int_equal(tmpdb_make(dir, path, "jsonw"), 0);
	assert_int_equal(db_open(&db, path, err, sizeof err), 0);
	assert_int_equal(user_create(db, "ann", "h", 1, &ann), 0);
	assert_int_equal(user_create(db, "bob", "h", 1, &bob), 0);
	assert_int_equal(room_create(db, "lobby", ROOM_PUBLIC, 1, &lobby), 0);
	assert_int_equal(room_create(db, "other", ROOM_PUBLIC, 1, &other), 0);
	/* Authors alternate and other rooms interleave: every row must
	 * carry its own names. */
	store(db, &seq, lobby.id, "lobby", ann, "ann", "say \"hi\"");
	edited = store(db, &seq, lobby.id, "lobby", ann, "ann", "a\nb");
	store(db, &seq, other.id, "other", bob, "bob", "elsewhere");
	store(db, &seq, lobby.id, "lobby", bob, "bob", "\xf0\x9f\x98\x80 ok");
	deleted = store(db, &seq, lobby.id, "lobby", ann, "ann", "oops");
	store(db, &seq, lobby.id, "lobby", bob, "bob", "tab\there");
	store(db, &seq, other.id, "other", ann, "ann", "also elsewhere");
	store(db, &seq, lobby.id, "lobby", bob, "bob", "back\\slash");
	store(db, &seq, lobby.id, "lobby", ann, "ann", "\x01\x1f\x7f/");
	assert_int_equal(message_edit(db, edited, "edited \"x\"", 10, ++seq,
	    1767225700000), 0);
	assert_int_equal(message_delete(db, deleted, ++seq, 0), 0);
	/* The newest 7 of lobby's 7, backwards and forwards. */
	assert_int_equal(message_page(db, lobby.id, 0, -1, 7, page_check_cb,
	    &pc, &more), 0);
	assert_int_equal(pc.n, 7);
	assert_false(more);
	for (i = 0; i < 7; i++) {
		assert_string_equal(pc.users[i], want_users[i]);
		assert_string_equal(pc.rooms[i], "lobby");
	}
	pc.n = 0;
	assert_int_equal(message_page(db, lobby.id, 0, 0, 3, page_check_cb,
	    &pc, &more), 0);
	assert_int_equal(pc.n, 3);
	assert_true(more);
	for (i = 0; i < 3; i++)
		assert_string_equal(pc.users[i], want_users[i]);
	/* Every change in seq order, across both rooms' messages. */
	pc.n = 0;
	assert_int_equal(message_changed(db, other.id, 0, page_check_cb, &pc),
	    0);
	assert_int_equal(pc.n, 2);
	assert_string_equal(pc.users[0], "bob");
	assert_string_equal(pc.users[1], "ann");
	assert_string_equal(pc.rooms[1], "other");
	db_close(db);
	tmpdb_remove(dir, path);
}

/* The version 2 members (reply_to, mentions, mention_room, reactions),
 * alone and together, with characters that need escaping in emojis. */
static void
test_chat_message_write_v2_members_match_jansson(void **state)
{
	struct jsonw *w = *state;
	/* Encoded as storage hands them over (storage.h). */
	static const char reactions[] =
	    "\xf0\x9f\x91\x8d\x1f" "ann\x1f" "bob.x\x1e"
	    "\"q\"\\\x1f" "ann\x1e"
	    "\xe2\x9d\xa4\xef\xb8\x8f\x1f" "z_9";
	struct message m;

	m = message_fixture("@ann @bob.x hi", 14);
	m.reply_to = 999;
	assert_message_like_jansson(w, &m);
	m.mentions = "ann bob.x";
	m.mentions_len = 9;
	assert_message_like_jansson(w, &m);
	m.mention_room = 1;
	m.edited_ts = m.ts + 1;
	assert_message_like_jansson(w, &m);
	m.reactions = reactions;
	m.reactions_len = sizeof reactions - 1;
	assert_message_like_jansson(w, &m);
	jsonw_reset(w);
	chat_message_write(w, &m);
	assert_output(w,
	    "{\"id\":1000001,\"seq\":1000007,\"room\":\"general\","
	    "\"user\":\"alice.b-c_d\",\"text\":\"@ann @bob.x hi\","
	    "\"ts\":1767225600123,\"edited_ts\":1767225600124,"
	    "\"reply_to\":999,\"mentions\":[\"ann\",\"bob.x\"],"
	    "\"mention_room\":true,\"reactions\":["
	    "{\"emoji\":\"\xf0\x9f\x91\x8d\",\"count\":2,"
	    "\"users\":[\"ann\",\"bob.x\"]},"
	    "{\"emoji\":\"\\\"q\\\"\\\\\",\"count\":1,\"users\":[\"ann\"]},"
	    "{\"emoji\":\"\xe2\x9d\xa4\xef\xb8\x8f\",\"count\":1,"
	    "\"users\":[\"z_9\"]}]}",
	    0);
	/* Only reactions; one mention. */
	m = message_fixture("x", 1);
	m.reactions = "a\x1fz";
	m.reactions_len = 3;
	assert_message_like_jansson(w, &m);
	m.mentions = "z";
	m.mentions_len = 1;
	assert_message_like_jansson(w, &m);
	/* An event, with a ref. */
	jsonw_reset(w);
	{
		json_t *ref = json_string("r1");
		json_t *want = json_pack("{s:s}", "type", "reaction");
		json_t *body = jsonl_message_json(&m);

		chat_event_write(w, "reaction", &m, ref);
		json_object_update(want, body);
		json_decref(body);
		json_object_set(want, "ref", ref);
		assert_same_as_jansson(w, want);
		json_decref(ref);
	}
}

/* Stored version 2 messages, read back through every read path of
 * storage, encode the same both ways; a tombstone loses them. */
static void
test_stored_v2_messages_encode_like_jansson(void **state)
{
	struct jsonw *w = *state;
	char dir[64], path[TMPDB_PATH_MAX], err[256];
	struct page_check pc = {.w = w};
	struct db *db;
	struct room lobby;
	struct message m;
	int64_t ann, bob, ids[2], seq = 0;
	int more, b, a;

	assert_int_equal(tmpdb_make(dir, path, "jsonw2"), 0);
	assert_int_equal(db_open(&db, path, err, sizeof err), 0);
	assert_int_equal(user_create(db, "ann", "h", 1, &ann), 0);
	assert_int_equal(user_create(db, "bob", "h", 1, &bob), 0);
	assert_int_equal(room_create(db, "lobby", ROOM_PUBLIC, 1, &lobby), 0);
	store(db, &seq, lobby.id, "lobby", ann, "ann", "first");
	memset(&m, 0, sizeof m);
	m.id = m.seq = ++seq;
	m.room_id = lobby.id;
	m.user_id = bob;
	m.text = "@ann @bob @room";
	m.text_len = strlen(m.text);
	m.ts = 1767225600000;
	m.reply_to = 1;
	m.mentions = "ann bob";
	m.mentions_len = 7;
	m.mention_room = 1;
	ids[0] = ann;
	ids[1] = bob;
	m.mention_ids = ids;
	m.nmention_ids = 2;
	assert_int_equal(message_insert(db, &m, NULL), 0);
	assert_int_equal(reaction_set(db, m.id, ann, "\"", 1, ++seq), 0);
	assert_int_equal(reaction_set(db, m.id, bob, "\"", 1, ++seq), 0);
	assert_int_equal(reaction_set(db, m.id, bob, "ok", 1, ++seq), 0);
	store(db, &seq, lobby.id, "lobby", ann, "ann", "third");
	assert_int_equal(reaction_set(db, seq, bob, "ok", 1, seq + 1), 0);
	seq++;
	assert_int_equal(message_page(db, lobby.id, 0, -1, 10, page_check_cb,
	    &pc, &more), 0);
	assert_int_equal(pc.n, 3);
	pc.n = 0;
	assert_int_equal(message_page_around(db, lobby.id, 2, 3, page_check_cb,
	    &pc, &b, &a), 0);
	assert_int_equal(pc.n, 3);
	pc.n = 0;
	assert_int_equal(message_changed(db, lobby.id, 0, page_check_cb, &pc),
	    0);
	assert_int_equal(pc.n, 3);
	pc.n = 0;
	assert_int_equal(message_get(db, 2, page_check_cb, &pc), 0);
	assert_int_equal(pc.n, 1);
	/* A tombstone: no reactions, mentions, reply_to. */
	assert_int_equal(message_delete(db, 2, ++seq, 0), 0);
	jsonw_reset(w);
	assert_int_equal(message_get(db, 2, chat_message_cb, w), 0);
	assert_output(w,
	    "{\"id\":2,\"seq\":8,\"room\":\"lobby\",\"user\":\"bob\","
	    "\"ts\":1767225600000,\"deleted\":true}",
	    0);
	db_close(db);
	tmpdb_remove(dir, path);
}

static void
test_frame_from_jsonw_frames_in_place(void **state)
{
	static const size_t sizes[] = {0, 10, 125, 126, 65535, 65536, 70000};
	struct jsonw w;
	struct frame *f;
	size_t hl, n;
	char *s;

	(void)state;
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		n = sizes[i];
		s = malloc(n + 1);
		memset(s, 'z', n);
		jsonw_init(&w, CONN_JSONW_HEAD);
		jsonw_raw(&w, s, n);
		f = frame_from_jsonw(&w);
		assert_null(w.buf);
		hl = n < 126 ? 2 : n < 65536 ? 4 : 10;
		assert_int_equal(f->refs, 1);
		assert_int_equal(f->len, hl + n);
		assert_int_equal(f->bytes[0], 0x81); /* FIN, text */
		if (hl == 2) {
			assert_int_equal(f->bytes[1], n);
		} else if (hl == 4) {
			assert_int_equal(f->bytes[1], 126);
			assert_int_equal(f->bytes[2] << 8 | f->bytes[3], n);
		} else {
			assert_int_equal(f->bytes[1], 127);
			assert_int_equal(f->bytes[7] << 16 | f->bytes[8] << 8 |
			    f->bytes[9], n);
		}
		assert_memory_equal(f->bytes + hl, s, n);
		frame_unref(f);
		free(s);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(
		test_jsonw_escapes_every_control_char_like_jansson, setup,
		teardown),
	    cmocka_unit_test_setup_teardown(test_jsonw_ascii_matches_jansson,
		setup, teardown),
	    cmocka_unit_test_setup_teardown(test_jsonw_utf8_passes_through,
		setup, teardown),
	    cmocka_unit_test_setup_teardown(test_jsonw_writes_int64_extremes,
		setup, teardown),
	    cmocka_unit_test_setup_teardown(test_jsonw_nests_with_commas,
		setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_jsonw_top_level_values_are_back_to_back, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_jsonw_keeps_head_room_and_reuses_buffer, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_jsonw_grows_for_long_escaped_strings, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_jsonw_random_strings_match_jansson, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_jsonw_round_trips_through_jansson, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_jsonw_steal_hands_over_the_buffer, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_chat_message_write_matches_jsonl_message_json, setup,
		teardown),
	    cmocka_unit_test_setup_teardown(
		test_chat_event_write_puts_type_first_and_ref_last, setup,
		teardown),
	    cmocka_unit_test_setup_teardown(
		test_stored_pages_encode_like_jansson, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_chat_message_write_v2_members_match_jansson, setup,
		teardown),
	    cmocka_unit_test_setup_teardown(
		test_stored_v2_messages_encode_like_jansson, setup, teardown),
	    cmocka_unit_test(test_frame_from_jsonw_frames_in_place),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
