/* storage/message_int.h — what the message queries of storage/message.c
 * share with PostgreSQL's search (storage/pg_search.c) */
#ifndef CHATD_STORAGE_MESSAGE_INT_H
#define CHATD_STORAGE_MESSAGE_INT_H

#include <stddef.h>
#include <stdint.h>

#include "storage/db.h"
#include "storage/storage.h"

#define MESSAGE_COLUMNS                                                        \
	"m.id, m.seq, m.room_id, m.user_id, r.name, u.username, m.text,"       \
	" m.ts, m.edited_ts, m.deleted, m.deleted_by, m.reply_to,"             \
	" m.mentions, m.mention_room, m.reacted, m.files"
/* The column after MESSAGE_COLUMNS (or _BARE): a page's has_more. */
#define MESSAGE_NCOLUMNS 16
#define MESSAGE_JOINS                                                          \
	" JOIN rooms r ON r.id = m.room_id JOIN users u ON u.id = m.user_id"
/* The same columns without the names (NULL): for the many-row queries of
 * one room, where message_row looks a name up only when it changes rather
 * than the join fetching two more rows for every message. */
#define MESSAGE_COLUMNS_BARE                                                   \
	"m.id, m.seq, m.room_id, m.user_id, NULL, NULL, m.text,"               \
	" m.ts, m.edited_ts, m.deleted, m.deleted_by, m.reply_to,"             \
	" m.mentions, m.mention_room, m.reacted, m.files"

/* Scope shared by the search statements: one room, or the user's rooms. */
#define MESSAGE_SEARCH_SCOPE                                                   \
	" AND m.deleted = 0 AND CASE WHEN :room_id > 0"                        \
	" THEN m.room_id = :room_id"                                           \
	" ELSE m.room_id IN (SELECT room_id FROM members"                      \
	" WHERE user_id = :user_id EXCEPT SELECT room_id FROM bans"            \
	" WHERE user_id = :user_id) END"

/* Runs st (parameters bound) and calls cb for each message row (until
 * it returns non-zero), at most max (-1: all); *rows (may be NULL) gets
 * the count. Resets st. 0 or -1. */
int message_each(struct db *db, struct db_stmt *st, int64_t max,
                 message_cb cb, void *arg, int64_t *rows);
/* Calls fn for each term of a search query q: the runs between white
 * space (ASCII white space, U+00A0, U+3000), with their length in bytes
 * and in code points. */
typedef void (*message_term_fn)(void *arg, const char *term, size_t len,
                                size_t chars);
void message_terms(const char *q, message_term_fn fn, void *arg);
/* message_search on PostgreSQL (storage/pg_search.c). */
int pg_message_search(struct db *db, int64_t user_id, int64_t room_id,
                      const char *q, int limit, message_cb cb, void *arg);

#endif
