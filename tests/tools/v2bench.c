/* tests/tools/v2bench.c — figures of docs/PERFORMANCE.md "Messages v2":
 * the room states of a user with 100 rooms and 100 000 unread messages
 * (mentions counted by index), and the WAL frames a reaction commit
 * writes next to an edit's. usage: v2bench DB (a new file) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "storage/db.h"
#include "storage/storage.h"

#define ROOMS 100
#define PER_ROOM 1000
#define RUNS 20

/* Milliseconds of CLOCK_MONOTONIC. */
static double
ms_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* room_state_cb: sums the counts. */
static int
sum_cb(void *arg, const struct room_state *s)
{
	int64_t *sum = arg;

	sum[0] += s->unread;
	sum[1] += s->mentions;
	return 0;
}

/* The WAL file's size in frames (4 KiB pages). */
static long
wal_frames(const char *db)
{
	char path[4200];
	struct stat st;

	snprintf(path, sizeof path, "%s-wal", db);
	if (stat(path, &st) != 0 || st.st_size < 32)
		return 0;
	return (long)((st.st_size - 32) / (4096 + 24));
}

/* Runs one statement of fixed SQL (a PRAGMA). */
static void
run(struct db *db, const char *sql)
{
	struct db_stmt *st = db_prepare(db, sql);

	if (st == NULL)
		exit(1);
	while (db_step(st) == DB_ROW)
		;
	db_reset(st);
}

int
main(int argc, char **argv)
{
	static const char long_text[] = "a long message, about 3 KiB of it ";
	char err[256], name[32], *text;
	struct db *db;
	struct room r;
	struct message m;
	int64_t me, author, seq = 0, ids[1], sum[2], msg_id = 0;
	double t0, best = 1e9, t;
	long f0, f1, f2;

	if (argc != 2 || db_open(&db, argv[1], err, sizeof err) != 0) {
		fprintf(stderr, "usage: v2bench NEW.db (%s)\n", err);
		return 2;
	}
	db_set_durability(db, DB_DURABILITY_NORMAL);
	user_create(db, "me", "h", 1, &me);
	user_create(db, "author", "h", 1, &author);
	ids[0] = me;
	/* 100 rooms of 1000 unread messages: 1 in 50 names me, 1 in 200
	 * holds @room. */
	db_begin(db);
	for (int i = 0; i < ROOMS; i++) {
		snprintf(name, sizeof name, "room%03d", i);
		room_create(db, name, ROOM_PUBLIC, 1, &r);
		member_add(db, r.id, me, 0, 1);
		member_add(db, r.id, author, 0, 1);
		for (int j = 0; j < PER_ROOM; j++) {
			memset(&m, 0, sizeof m);
			m.id = m.seq = ++seq;
			m.room_id = r.id;
			m.user_id = author;
			m.text = j % 50 == 0 ? "@me look" : j % 200 == 1 ? "@room"
			                                               : "hello";
			m.text_len = strlen(m.text);
			m.ts = seq;
			if (j % 50 == 0) {
				m.mentions = "me";
				m.mentions_len = 2;
				m.mention_ids = ids;
				m.nmention_ids = 1;
			}
			m.mention_room = j % 200 == 1;
			message_insert(db, &m, NULL);
		}
	}
	db_commit(db);
	for (int i = 0; i < RUNS; i++) {
		sum[0] = sum[1] = 0;
		t0 = ms_now();
		member_rooms(db, me, sum_cb, sum);
		t = ms_now() - t0;
		if (t < best)
			best = t;
	}
	printf("room states: %d rooms, %lld unread, %lld mentions: best of "
	       "%d %.2f ms\n",
	       ROOMS, (long long)sum[0], (long long)sum[1], RUNS, best);
	{
		struct mention_count *mc;
		size_t n;

		best = 1e9;
		for (int i = 0; i < RUNS; i++) {
			t0 = ms_now();
			mention_counts(db, me, &mc, &n);
			t = ms_now() - t0;
			free(mc);
			if (t < best)
				best = t;
		}
		printf("mention counts alone: best of %d %.3f ms\n", RUNS, best);
	}
	/* WAL frames per commit: a reaction vs an edit of a long message
	 * (3 KiB of text: the row spans an overflow page). */
	run(db, "PRAGMA wal_autocheckpoint = 0");
	text = malloc(3100);
	text[0] = '\0';
	while (strlen(text) + sizeof long_text < 3100)
		strcat(text, long_text);
	memset(&m, 0, sizeof m);
	m.id = m.seq = msg_id = ++seq;
	m.room_id = r.id;
	m.user_id = author;
	m.text = text;
	m.text_len = strlen(text);
	m.ts = seq;
	db_begin(db);
	message_insert(db, &m, NULL);
	db_commit(db);
	/* From an empty WAL on, every frame is appended: its size counts. */
	run(db, "PRAGMA wal_checkpoint(TRUNCATE)");
	f0 = wal_frames(argv[1]);
	for (int i = 0; i < 100; i++) {
		db_begin(db);
		snprintf(name, sizeof name, "e%d", i);
		reaction_set(db, msg_id, i % 2 ? me : author, name, 1, ++seq);
		db_commit(db);
	}
	f1 = wal_frames(argv[1]);
	for (int i = 0; i < 100; i++) {
		db_begin(db);
		seq++;
		message_edit(db, msg_id, text, strlen(text), seq, seq);
		db_commit(db);
	}
	f2 = wal_frames(argv[1]);
	/* The same burst on a short message, for comparison. */
	for (int i = 0; i < 100; i++) {
		db_begin(db);
		snprintf(name, sizeof name, "e%d", i);
		reaction_set(db, msg_id - 1, i % 2 ? me : author, name, 1,
		             ++seq);
		db_commit(db);
	}
	printf("WAL frames per commit: reaction %.2f (on a short message "
	       "%.2f), edit of the same 3 KiB message %.2f\n",
	       (f1 - f0) / 100.0, (wal_frames(argv[1]) - f2) / 100.0,
	       (f2 - f1) / 100.0);
	free(text);
	db_close(db);
	return 0;
}
