/* chatd/files.h — file attachments: upload, download, lifetimes */
#ifndef CHATD_FILES_H
#define CHATD_FILES_H

/*
 * POST /api/files streams the body to a temporary file (hashing as it
 * goes), and a worker thread makes it durable under its SHA-256 before
 * the 201; GET /api/files/{id} sends the bytes from the file with
 * backpressure. Metadata lives in the files table (storage/file.c), the
 * bytes in the files directory (chatd/blob.c). See docs/files.md.
 */

#include <stddef.h>
#include <stdint.h>

#include "chatd/http_parser.h"

struct conn;
struct server;
struct user;
struct jsonw;

#define FILES_MAX_PER_MESSAGE 10
#define FILES_UNATTACHED_MS (24 * 3600 * 1000LL) /* then swept */
#define FILES_SWEEP_INTERVAL_S 600 /* the sweep of unattached files */
#define FILES_ORPHAN_BATCH 256 /* stored files checked per loop pass */
#define FILES_ORPHAN_EVERY                                                     \
	6                       /* sweeps between scans for bytes              \
	                           no row names */
/* Several nodes share the files directory (--redis): a temporary file
 * or stored bytes younger than this may be another node's upload in
 * progress, and neither the start-up clean-up nor the release of unused
 * bytes touches them (a later scan does). Uploads write continuously and
 * stall at most the header timeout: an hour is far beyond any of them. */
#define FILES_SHARED_MS (3600 * 1000LL)
#define FILES_MAX_ACTIVE 64     /* uploads at once: then 503 */
#define FILES_MAX_ACTIVE_USER 4 /* per user (rate limits): 429 */

/* Opens the files directory and starts the commit thread and the sweep
 * (which runs once at once). 0, or -1 after printing why. */
int files_start(struct server *srv);
/* Stops the commit thread: pending commits finish (and answer) first.
 * Before the connections close: it releases those it holds. */
void files_drain(struct server *srv);
/* Frees the rest (after the connections are gone). NULL-safe. */
void files_free(struct server *srv);

/* The head of POST /api/files, by the authenticated user u: checks the
 * name, room, membership, size and quota, and starts the upload (the
 * body then streams to files_upload_body). Returns the body limit and
 * sets *stream, or answers the request (and discards its body). */
uint64_t files_upload_head(struct conn *c, const struct http_request *req,
                           const struct user *u, int *stream);
/* A piece of an upload's body: written and hashed. 0, or -1 after
 * answering (disk full, quota). */
int files_upload_body(struct conn *c, const uint8_t *data, size_t len);
/* The whole body has arrived (or there was none: u is then checked as
 * by files_upload_head): commits it on the worker, then answers 201. */
void files_upload_done(struct conn *c, const struct http_request *req,
                       const struct user *u);
/* The connection is going: drops an unfinished upload. */
void files_conn_gone(struct conn *c);
/* GET /api/files/{id} by user u. */
void files_download(struct conn *c, const struct http_request *req,
                    const struct user *u);

/* Checks a send's "files" (ids of the user's unattached uploads to the
 * room, each once) and writes the message's "files" array of
 * {"id","name","size","type"} into *out (malloc'd). 0, 1 if one is not
 * such a file (not_found), -1. */
int files_message_json(struct server *srv, const char *const *ids, size_t n,
    int64_t user_id, int64_t room_id, char **out);
/* Deletes a message's file rows (inside the caller's transaction) and
 * remembers their hashes: files_release_bytes removes the bytes no row
 * needs, once that transaction has committed. 0 or -1. */
int files_delete_message(struct server *srv, int64_t message_id);
/* After a commit: removes the bytes of deleted files no row names. */
void files_release_bytes(struct server *srv);
/* Runs the sweep now (tests call it through the sweep timer). */
void files_sweep(struct server *srv);
/* /metrics: uploads in progress (the stored files are counted on a
 * reader thread: metrics_db_read). */
unsigned files_active(struct server *srv);

#endif
