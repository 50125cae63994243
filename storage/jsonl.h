/* storage/jsonl.h — the export format: JSON Lines, out and back in */
#ifndef STORAGE_JSONL_H
#define STORAGE_JSONL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

struct db;
struct message;

/* The name rules (PROTOCOL.md Names, chatd/auth.c), which storage does
 * not know: each checks a name and lower-cases it in place, and returns
 * a negative number if it is invalid. And the password hash rule: 0 if
 * logins may verify against an imported hash, JSONL_HASH_TOO_COSTLY if
 * its parameters would make a login too slow, another negative number if
 * it is not a hash (auth_hash_check). */
#define JSONL_HASH_TOO_COSTLY (-2)
struct jsonl_names {
	int (*user)(char *name);
	int (*room)(char *name);
	int (*pwhash)(const char *hash);
	/* Stores the bytes of a "file" line (chatd/admin_files.c) and
	 * writes their SHA-256 in hex into hash. 0, or -1 (the import
	 * fails). NULL: file lines are refused. */
	int (*file_bytes)(void *arg, const unsigned char *data, size_t len,
	                  char hash[65]);
	void *file_arg;
};

/* A message or tombstone as its PROTOCOL.md JSON object (what export
 * writes, and the oracle of chatd/chat.c's writer in the unit tests). */
json_t *jsonl_message_json(const struct message *m);
/* Writes an export to out: unfiltered (room_id 0, since and until -1),
 * the header line and every user, room and membership first; then the
 * messages of room_id (0: all) changed after seq since and sent at or
 * before ts until (-1: no bound), in id order. Call it inside a read
 * transaction, for one snapshot. 0, or -1 on a database or write error. */
int jsonl_export(struct db *db, FILE *out, int64_t room_id, int64_t since,
                 int64_t until);
/* Reads an export from in, line by line, into db (inside the caller's
 * transaction; empty lines are skipped). *lineno counts the lines read.
 * Refuses (docs/operations.md, Limits and abuse) ids outside
 * 1..SEQ_MAX, seqs above SEQ_MAX or a message's seq below its id, times
 * outside 0..TS_MAX, read_seq above its room's last_seq, DM members and
 * authors other than the two users of the DM's name, and password hashes
 * names->pwhash refuses. NULL, or why line *lineno failed ("read error"
 * if reading did). */
const char *jsonl_import(struct db *db, FILE *in,
                         const struct jsonl_names *names, size_t *lineno);

#endif
