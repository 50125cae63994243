/* chatd/files.c — file attachments: upload, download, lifetimes */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>
#include <openssl/rand.h>

#include "chatd/auth.h"
#include "chatd/blob.h"
#include "chatd/chat.h"
#include "chatd/conn.h"
#include "chatd/fileinfo.h"
#include "chatd/files.h"
#include "chatd/gate.h"
#include "chatd/http.h"
#include "chatd/jsonw.h"
#include "chatd/log.h"
#include "chatd/server.h"
#include "chatd/url.h"
#include "chatd/worker.h"
#include "chatd/xmalloc.h"
#include "storage/storage.h"

/* A user's upload quota (a bucket of bytes refilled over an hour) and
 * uploads in progress. */
struct files_user {
	int64_t user_id;
	double bytes;    /* left to upload */
	int64_t last_ms; /* of the last refill */
	unsigned active;
};

/* A list of hashes. */
struct files_hashes {
	char (*h)[BLOB_HEX + 1];
	size_t n, cap;
};

struct files {
	struct server *srv;
	struct blob_store bs;
	struct worker *worker; /* one thread: fsync and rename */
	struct event *sweep_ev;
	struct blob_scan *orphans; /* the orphan scan under way, or NULL */
	struct event *orphan_ev;   /* its next step */
	int64_t clock_offset_ms;   /* the sweep's clock (tests) */
	unsigned sweeps;
	unsigned active;
	uint64_t max_upload;          /* bytes */
	double quota;                 /* bytes per user per hour; 0: none */
	struct files_hashes pending;  /* being committed: bytes to keep */
	struct files_hashes released; /* rows deleted: bytes to check */
	struct files_user *users;
	size_t nusers, capusers;
};

/* One upload, from its head to its 201. */
struct files_upload {
	struct files *f;
	struct conn *c;
	const struct http_request *req; /* stays parsed while c is held */
	struct blob_upload b;
	int64_t user_id, room_id;
	char room[ROOMNAME_MAX + 1];
	char name[FILE_NAME_MAX + 1];
	char type[FILE_TYPE_MAX + 1];
	double taken; /* quota bytes taken */
	int err;      /* the commit's errno, 0 if it worked */
};

/* Milliseconds of the sweep's clock. */
static int64_t
files_now(struct files *f)
{
	return now_ms() + f->clock_offset_ms;
}

/* Adds hash to a list. */
static void
files_hashes_add(struct files_hashes *l, const char *hash)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 8;
		l->h = xrealloc(l->h, l->cap * sizeof *l->h);
	}
	snprintf(l->h[l->n++], BLOB_HEX + 1, "%s", hash);
}

/* Removes one occurrence of hash from a list. */
static void
files_hashes_del(struct files_hashes *l, const char *hash)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->h[i], hash) == 0) {
			memmove(l->h[i], l->h[l->n - 1], BLOB_HEX + 1);
			l->n--;
			return;
		}
}

/* 1 if hash is in the list. */
static int
files_hashes_has(const struct files_hashes *l, const char *hash)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->h[i], hash) == 0)
			return 1;
	return 0;
}

/* The quota entry of a user, refilled to now (made if new). */
static struct files_user *
files_user(struct files *f, int64_t user_id)
{
	int64_t now = now_ms();
	struct files_user *u = NULL;

	for (size_t i = 0; i < f->nusers; i++)
		if (f->users[i].user_id == user_id)
			u = &f->users[i];
	if (u == NULL) {
		/* Drop entries that are full and idle: they mean nothing. */
		for (size_t i = 0; i < f->nusers;) {
			struct files_user *e = &f->users[i];

			if (e->active == 0 && f->quota > 0 &&
			    e->bytes +
			            (now - e->last_ms) * f->quota / 3600000.0 >=
			        f->quota)
				f->users[i] = f->users[--f->nusers];
			else
				i++;
		}
		if (f->nusers == f->capusers) {
			f->capusers = f->capusers ? f->capusers * 2 : 16;
			f->users =
			    xrealloc(f->users, f->capusers * sizeof *f->users);
		}
		u = &f->users[f->nusers++];
		memset(u, 0, sizeof *u);
		u->user_id = user_id;
		u->bytes = f->quota;
		u->last_ms = now;
	}
	u->bytes += (now - u->last_ms) * f->quota / 3600000.0;
	if (u->bytes > f->quota)
		u->bytes = f->quota;
	u->last_ms = now;
	return u;
}

/* 1 if quotas apply (they are rate limits). */
static int
files_quota_on(struct files *f)
{
	return f->srv->cfg->rate_limits && f->quota > 0;
}

/* An error answer with an extra header line (or NULL). */
static void
files_error(struct conn *c, const struct http_request *req, int status,
            const char *code, const char *message, const char *extra)
{
	json_t *o = json_pack("{s:{s:s,s:s}}", "error", "code", code, "message",
	                      message);
	char *s = json_dumps(o, JSON_COMPACT);

	http_respond(c, req, status, "application/json", s, strlen(s), extra);
	free(s);
	json_decref(o);
}

/* Answers an upload at its head and has its body dropped: read (keeping
 * the connection) when it is small enough, else a lingering close. */
static void
files_refuse(struct conn *c, const struct http_request *req, int status,
             const char *code, const char *message, const char *extra)
{
	struct files *f = c->srv->files;
	int close = req->expect_continue || !req->keep_alive ||
	            req->content_length > (int64_t)f->max_upload;

	c->srv->m.files_upload_failed++;
	if (close)
		conn_linger_after(c);
	files_error(c, req, status, code, message, extra);
	conn_body_discard(c, close);
}

/* 429 for the quota, with the wait for len bytes. */
static void
files_quota_refuse(struct conn *c, const struct http_request *req, double need,
                   double have)
{
	struct files *f = c->srv->files;
	char extra[64];
	double wait_s = (need - have) * 3600.0 / f->quota;

	c->srv->m.rate_limited++;
	snprintf(extra, sizeof extra, "Retry-After: %lld\r\n",
	         (long long)(wait_s < 1 ? 1 : wait_s + 0.999));
	files_refuse(c, req, 429, "rate_limited",
	             "upload quota used up; try again later", extra);
}

/* Frees an upload, giving back its quota if it failed. */
static void
files_upload_free(struct files_upload *up, int failed)
{
	struct files *f = up->f;
	struct files_user *u = files_user(f, up->user_id);

	blob_upload_abort(&f->bs, &up->b);
	if (failed)
		u->bytes += up->taken;
	if (u->active > 0)
		u->active--;
	f->active--;
	free(up);
}

/* Checks the query of an upload: name and room, the user's membership.
 * Fills up's name, type, room; 0, or -1 after refusing. */
static int
files_upload_check(struct conn *c, const struct http_request *req,
                   const struct user *u, struct files_upload *up)
{
	char raw[ROOMNAME_MAX + 8];
	const char *nv;
	size_t nl;
	struct room r;
	long n;
	int rc;

	if (req->query == NULL ||
	    fileinfo_query_raw(req->query, "name", &nv, &nl) != 0 ||
	    fileinfo_name(nv, nl, up->name) < 0) {
		files_refuse(
		    c, req, 400, "bad_request",
		    "name must be 1-255 bytes of UTF-8 without / \\ or control "
		    "characters",
		    NULL);
		return -1;
	}
	n = url_query_get(req->query, "room", raw, sizeof raw);
	if (n == -1) {
		files_refuse(c, req, 400, "bad_request", "room is required",
		             NULL);
		return -1;
	}
	if (n <= 0 || n > ROOMNAME_MAX || auth_room_fold(raw) < 0) {
		files_refuse(c, req, 400, "invalid_room", "invalid room name",
		             NULL);
		return -1;
	}
	rc = room_by_name(c->srv->db, raw, &r);
	if (rc == 0)
		rc = member_get(c->srv->db, r.id, u->id, NULL);
	else if (rc == 1) {
		files_refuse(c, req, 404, "no_such_room", "no such room", NULL);
		return -1;
	}
	if (rc == 1) {
		files_refuse(c, req, 403, "forbidden",
		             "only members of the room may upload to it", NULL);
		return -1;
	}
	if (rc < 0) {
		files_refuse(c, req, 500, "internal", "database error", NULL);
		return -1;
	}
	up->room_id = r.id;
	snprintf(up->room, sizeof up->room, "%s", r.name);
	fileinfo_type(http_request_header(req, "Content-Type"), up->type);
	return 0;
}

/* Checks an upload and opens its temporary file: the new upload, or
 * NULL after refusing. */
static struct files_upload *
files_upload_begin(struct conn *c, const struct http_request *req,
                   const struct user *u)
{
	struct files *f = c->srv->files;
	struct files_upload *up = xcalloc(1, sizeof *up);
	struct files_user *fu;
	char msg[96];

	up->b.fd = -1;
	if (files_upload_check(c, req, u, up) != 0) {
		free(up);
		return NULL;
	}
	if (req->content_length > (int64_t)f->max_upload) {
		free(up);
		snprintf(msg, sizeof msg, "a file may have at most %llu bytes",
		         (unsigned long long)f->max_upload);
		files_refuse(c, req, 413, "too_large", msg, NULL);
		return NULL;
	}
	fu = files_user(f, u->id);
	if (files_quota_on(f) && req->content_length > 0 &&
	    (double)req->content_length > fu->bytes) {
		free(up);
		files_quota_refuse(c, req, (double)req->content_length,
		                   fu->bytes);
		return NULL;
	}
	if (f->active >= FILES_MAX_ACTIVE) {
		free(up);
		files_refuse(c, req, 503, "busy",
		             "too many uploads at once; try again shortly",
		             "Retry-After: 1\r\n");
		return NULL;
	}
	if (files_quota_on(f) && fu->active >= FILES_MAX_ACTIVE_USER) {
		free(up);
		c->srv->m.rate_limited++;
		files_refuse(c, req, 429, "rate_limited",
		             "too many uploads at once", "Retry-After: 1\r\n");
		return NULL;
	}
	if (blob_upload_start(&f->bs, &up->b) != 0) {
		log_error("%s: cannot create a file in %s: %s", __func__,
		          f->bs.dir, strerror(errno));
		free(up);
		files_refuse(c, req, 500, "internal", "cannot store files",
		             NULL);
		return NULL;
	}
	up->f = f;
	up->c = c;
	up->user_id = u->id;
	fu->active++;
	f->active++;
	return up;
}

uint64_t
files_upload_head(struct conn *c, const struct http_request *req,
                  const struct user *u, int *stream)
{
	struct files_upload *up = files_upload_begin(c, req, u);

	if (up == NULL)
		return c->srv->files->max_upload;
	c->body_data = up;
	*stream = 1;
	return c->srv->files->max_upload;
}

/* A write failed (disk full, I/O): answers 507 or 500 and drops the
 * upload. */
static void
files_write_failed(struct conn *c, struct files_upload *up, int err)
{
	const struct http_request *req = &c->http->req;
	int full = err == ENOSPC || err == EDQUOT;

	log_warn("%s: upload of %s by user %lld: %s", __func__, up->name,
	         (long long)up->user_id, strerror(err));
	c->body_data = NULL;
	files_upload_free(up, 1);
	c->srv->m.files_upload_failed++;
	files_error(c, req, full ? 507 : 500,
	            full ? "insufficient_storage" : "internal",
	            full ? "the server has no room for the file"
	                 : "the file could not be stored",
	            NULL);
	/* The rest of the body is dropped; then the next request. */
}

int
files_upload_body(struct conn *c, const uint8_t *data, size_t len)
{
	struct files_upload *up = c->body_data;
	struct files *f = c->srv->files;
	struct files_user *fu;

	if (up == NULL)
		return -1;
	if (files_quota_on(f)) {
		fu = files_user(f, up->user_id);
		if ((double)len > fu->bytes) {
			const struct http_request *req = &c->http->req;

			c->body_data = NULL;
			files_upload_free(up, 1);
			files_quota_refuse(c, req, (double)len, fu->bytes);
			return -1;
		}
		fu->bytes -= (double)len;
		up->taken += (double)len;
	}
	if (blob_upload_write(&up->b, data, len) != 0) {
		files_write_failed(c, up, errno);
		return -1;
	}
	return 0;
}

/* On the worker thread: fsync, rename, fsync of the directory. */
static void
files_commit_run(void *arg)
{
	struct files_upload *up = arg;

	up->err = blob_upload_commit(&up->f->bs, &up->b) == 0 ? 0 : errno;
}

/* A new random public id. 0 or -1. */
static int
files_new_id(char id[FILE_ID_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char r[FILE_ID_LEN / 2];

	if (RAND_bytes(r, sizeof r) != 1)
		return -1;
	for (size_t i = 0; i < sizeof r; i++) {
		id[2 * i] = hex[r[i] >> 4];
		id[2 * i + 1] = hex[r[i] & 15];
	}
	id[FILE_ID_LEN] = '\0';
	return 0;
}

/* Stores the row of a committed upload. 0, or -1. */
static int
files_upload_store(struct files_upload *up, struct file_row *row)
{
	struct server *srv = up->f->srv;
	int rc = 1;

	memset(row, 0, sizeof *row);
	row->room_id = up->room_id;
	row->user_id = up->user_id;
	snprintf(row->name, sizeof row->name, "%s", up->name);
	snprintf(row->type, sizeof row->type, "%s", up->type);
	row->size = (int64_t)up->b.size;
	snprintf(row->hash, sizeof row->hash, "%s", up->b.hash);
	row->created_at = now_ms();
	chat_flush(srv); /* no batch open: the insert commits at once */
	for (int i = 0; i < 3 && rc == 1; i++)
		if (files_new_id(row->id) == 0)
			rc = file_insert(srv->db, row);
	return rc == 0 ? 0 : -1;
}

/* Back on the loop: the row, then 201 (or the error). */
static void
files_commit_done(void *arg)
{
	struct files_upload *up = arg;
	struct files *f = up->f;
	struct server *srv = f->srv;
	struct conn *c = up->c;
	struct file_row row;
	int failed = 1;

	if (c->flags & CONN_DEAD) {
		/* Nobody will learn the id: no row; the bytes go if no row
		 * needs them. */
		log_debug("%s: client gone before the 201", __func__);
	} else if (up->err != 0) {
		int full = up->err == ENOSPC || up->err == EDQUOT;

		log_warn("%s: upload of %s: %s", __func__, up->name,
		         strerror(up->err));
		files_error(c, up->req, full ? 507 : 500,
		            full ? "insufficient_storage" : "internal",
		            full ? "the server has no room for the file"
		                 : "the file could not be stored",
		            NULL);
	} else if (files_upload_store(up, &row) != 0) {
		files_error(c, up->req, 500, "internal", "database error",
		            NULL);
	} else {
		failed = 0;
		srv->m.files_uploaded++;
		srv->m.files_upload_bytes += up->b.size;
		http_respond_json(
		    c, up->req, 201,
		    json_pack("{s:{s:s,s:s,s:I,s:s,s:s}}", "file", "id", row.id,
		              "name", row.name, "size", (json_int_t)row.size,
		              "type", row.type, "room", up->room));
	}
	files_hashes_del(&f->pending, up->b.hash);
	if (failed) {
		srv->m.files_upload_failed++;
		if (up->err == 0)
			files_hashes_add(&f->released, up->b.hash);
	}
	files_upload_free(up, failed);
	files_release_bytes(srv);
	conn_release(c);
}

void
files_upload_done(struct conn *c, const struct http_request *req,
                  const struct user *u)
{
	struct files *f = c->srv->files;
	struct files_upload *up = c->body_data;
	int rc;

	/* No body at all (Content-Length: 0): the head was not seen. */
	if (up == NULL && (up = files_upload_begin(c, req, u)) == NULL)
		return;
	c->body_data = NULL;
	up->req = req;
	blob_upload_finish(&up->b);
	files_hashes_add(&f->pending, up->b.hash);
	rc = worker_submit(f->worker, "files", files_commit_run,
	                   files_commit_done, up);
	if (rc != 0) {
		files_hashes_del(&f->pending, up->b.hash);
		files_upload_free(up, 1);
		c->srv->m.files_upload_failed++;
		files_error(c, req, 503, "busy",
		            "too many uploads at once; try again shortly",
		            "Retry-After: 1\r\n");
		return;
	}
	conn_hold(c);
}

void
files_conn_gone(struct conn *c)
{
	struct files_upload *up = c->body_data;

	if (up == NULL || c->srv->files == NULL)
		return;
	c->body_data = NULL;
	c->srv->m.files_upload_failed++;
	log_debug("%s: upload of %s cut short", __func__, up->name);
	files_upload_free(up, 1);
}

/* 1 if user u may read the file's room (0 after answering 403). */
static int
files_readable(struct conn *c, const struct http_request *req,
               const struct user *u, const struct file_row *row)
{
	int rc = member_get(c->srv->db, row->room_id, u->id, NULL);

	/* As for history: public rooms to all but the banned, other rooms
	 * to their members. */
	if (rc >= 0)
		rc = chat_message_readable(c->srv, row->room_id, row->room_kind,
		                           u->id, rc == 0);
	if (rc == 1)
		return 1;
	if (rc < 0)
		files_error(c, req, 500, "internal", "database error", NULL);
	else
		files_error(c, req, 403, "forbidden",
		            "only members of the room may read its files",
		            NULL);
	return 0;
}

void
files_download(struct conn *c, const struct http_request *req,
               const struct user *u)
{
	struct files *f = c->srv->files;
	const char *id = req->path + strlen("/api/files/");
	char headers[FILE_DISPOSITION_MAX + 1024], disp[FILE_DISPOSITION_MAX];
	char range[96] = "";
	uint64_t size, off = 0, len;
	struct file_row row;
	enum fileinfo_range r;
	int fd, rc, n;

	rc = 1;
	for (n = 0; id[n] != '\0'; n++)
		if (!((id[n] >= '0' && id[n] <= '9') ||
		      (id[n] >= 'a' && id[n] <= 'f')))
			break;
	if (n == FILE_ID_LEN && id[n] == '\0')
		rc = file_get(c->srv->db, id, &row);
	if (rc < 0) {
		files_error(c, req, 500, "internal", "database error", NULL);
		return;
	}
	if (rc == 1 || row.message_id == 0) {
		files_error(c, req, 404, "not_found", "no such file", NULL);
		return;
	}
	if (!files_readable(c, req, u, &row))
		return;
	if ((fd = blob_open(&f->bs, row.hash, &size)) < 0) {
		log_error("%s: file %s: bytes %s: %s", __func__, row.id,
		          row.hash, strerror(errno));
		files_error(c, req, 500, "internal", "the file is missing",
		            NULL);
		return;
	}
	len = size;
	r = fileinfo_range(http_request_header(req, "Range"), size, &off, &len);
	if (r == FILE_RANGE_PARTIAL) {
		const char *ifr = http_request_header(req, "If-Range");

		/* If-Range with another validator: the whole file. */
		if (ifr != NULL &&
		    (strlen(ifr) != BLOB_HEX + 2 ||
		     strncmp(ifr + 1, row.hash, BLOB_HEX) != 0)) {
			r = FILE_RANGE_NONE;
			off = 0;
			len = size;
		}
	}
	if (r == FILE_RANGE_UNSATISFIABLE) {
		close(fd);
		snprintf(range, sizeof range, "Content-Range: bytes */%llu\r\n",
		         (unsigned long long)size);
		files_error(c, req, 416, "range_not_satisfiable",
		            "the range is outside the file", range);
		return;
	}
	if (r == FILE_RANGE_PARTIAL)
		snprintf(range, sizeof range,
		         "Content-Range: bytes %llu-%llu/%llu\r\n",
		         (unsigned long long)off,
		         (unsigned long long)(off + len - 1),
		         (unsigned long long)size);
	fileinfo_disposition(row.name, fileinfo_inline(row.type), disp);
	snprintf(headers, sizeof headers,
	         "Content-Type: %s\r\n"
	         "Content-Length: %llu\r\n"
	         "%s"
	         "ETag: \"%s\"\r\n"
	         "Accept-Ranges: bytes\r\n"
	         "X-Content-Type-Options: nosniff\r\n"
	         "Content-Security-Policy: sandbox\r\n"
	         "Content-Disposition: %s\r\n"
	         "Cache-Control: private, no-store\r\n"
	         "Cross-Origin-Resource-Policy: same-origin\r\n"
	         "Referrer-Policy: no-referrer\r\n",
	         row.type, (unsigned long long)len, range, row.hash, disp);
	c->srv->m.files_downloads++;
	if (req->method != HTTP_HEAD)
		c->srv->m.files_download_bytes += len;
	http_respond_file(c, req, r == FILE_RANGE_PARTIAL ? 206 : 200, headers,
	                  fd, off, len);
}

/* 1 if id has the form of a public file id. */
static int
files_id_ok(const char *id)
{
	size_t k;

	for (k = 0; id[k] != '\0'; k++)
		if (!((id[k] >= '0' && id[k] <= '9') ||
		      (id[k] >= 'a' && id[k] <= 'f')))
			return 0;
	return k == FILE_ID_LEN;
}

int
files_message_json(struct server *srv, const char *const *ids, size_t n,
                   int64_t user_id, int64_t room_id, char **out)
{
	struct file_row fr;
	struct jsonw w;
	int rc = 0;

	*out = NULL;
	jsonw_init(&w, 0);
	jsonw_array_open(&w);
	for (size_t i = 0; i < n && rc == 0; i++) {
		if (!files_id_ok(ids[i])) {
			rc = 1;
			break;
		}
		for (size_t k = 0; k < i; k++)
			if (strcmp(ids[k], ids[i]) == 0)
				rc = 1;
		if (rc == 0)
			rc = file_get(srv->db, ids[i], &fr);
		if (rc == 0 && (fr.user_id != user_id ||
		                fr.room_id != room_id || fr.message_id != 0))
			rc = 1;
		if (rc != 0)
			break;
		jsonw_object_open(&w);
		jsonw_key(&w, "id");
		jsonw_string(&w, fr.id);
		jsonw_key(&w, "name");
		jsonw_string(&w, fr.name);
		jsonw_key(&w, "size");
		jsonw_int(&w, fr.size);
		jsonw_key(&w, "type");
		jsonw_string(&w, fr.type);
		jsonw_object_close(&w);
	}
	jsonw_array_close(&w);
	if (rc == 0)
		*out = xstrndup(jsonw_data(&w), jsonw_len(&w));
	jsonw_free(&w);
	return rc;
}

/* file_cb: remembers a deleted row's hash for files_release_bytes. */
static int
files_released_cb(void *arg, const struct file_row *fr)
{
	struct files *f = arg;

	files_hashes_add(&f->released, fr->hash);
	return 0;
}

int
files_delete_message(struct server *srv, int64_t message_id)
{
	return file_delete_message(srv->db, message_id, files_released_cb,
	                           srv->files);
}

void
files_release_bytes(struct server *srv)
{
	struct files *f = srv->files;
	struct files_hashes *l;
	int used;

	if (f == NULL)
		return;
	l = &f->released;
	while (l->n > 0) {
		const char *h = l->h[l->n - 1];

		used = files_hashes_has(&f->pending, h)
		           ? 1
		           : file_hash_used(srv->db, h);
		if (used == 0 && blob_remove(&f->bs, h) < 0)
			log_warn("%s: cannot remove %s/%s: %s", __func__,
			         f->bs.dir, h, strerror(errno));
		l->n--;
	}
}

/* blob_cb of the orphan scan: bytes no row names and no upload is
 * committing are released. */
static void
files_orphan_cb(void *arg, const char *hash, uint64_t size, int64_t mtime_ms)
{
	struct files *f = arg;

	(void)size;
	(void)mtime_ms;
	if (!files_hashes_has(&f->pending, hash) &&
	    file_hash_used(f->srv->db, hash) == 0)
		files_hashes_add(&f->released, hash);
}

/* Schedules the next step of the orphan scan for a later loop pass. */
static void
files_orphan_next(struct files *f)
{
	struct timeval now = {0, 0};

	evtimer_add(f->orphan_ev, &now);
}

/* One step of the orphan scan: FILES_ORPHAN_BATCH hashes checked and
 * their unused bytes released in the same loop pass (after a flush, so
 * no open transaction hides a row), then the next step in a later
 * pass. */
static void
files_orphan_step(int fd, short what, void *arg)
{
	struct server *srv = arg;
	struct files *f = srv->files;
	int rc;

	(void)fd;
	(void)what;
	chat_flush(srv);
	rc = blob_scan_step(f->orphans, FILES_ORPHAN_BATCH, files_orphan_cb, f);
	files_release_bytes(srv);
	if (rc == 1) {
		files_orphan_next(f);
		return;
	}
	if (rc < 0)
		log_warn("%s: the scan of the files directory failed",
		         __func__);
	blob_scan_close(f->orphans);
	f->orphans = NULL;
}

void
files_sweep(struct server *srv)
{
	struct files *f = srv->files;
	int64_t cutoff = files_now(f) - FILES_UNATTACHED_MS;
	size_t before = f->released.n;

	chat_flush(srv);
	if (file_sweep(srv->db, cutoff, files_released_cb, f) != 0)
		log_warn("%s: the sweep of unattached files failed", __func__);
	if (f->released.n > before)
		log_info("%s: %zu unattached files older than 24 hours "
		         "deleted",
		         __func__, f->released.n - before);
	/* Bytes of rows deleted elsewhere (room del, user del, a crash
	 * between a rename and its row): at start-up in one go, before
	 * anyone is served; later in steps (files_orphan_step), so a store
	 * of many files never holds the loop for long. */
	if (f->sweeps++ % FILES_ORPHAN_EVERY == 0) {
		if (f->orphan_ev == NULL)
			blob_scan(&f->bs, files_orphan_cb, f);
		else if (f->orphans == NULL &&
		         (f->orphans = blob_scan_open(&f->bs)) != NULL)
			files_orphan_next(f);
	}
	files_release_bytes(srv);
}

/* The sweep timer. */
static void
files_sweep_cb(int fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	files_sweep(arg);
}

unsigned
files_active(struct server *srv)
{
	return srv->files ? srv->files->active : 0;
}

int
files_start(struct server *srv)
{
	struct files *f = xcalloc(1, sizeof *f);
	struct timeval tv = {FILES_SWEEP_INTERVAL_S, 0};
	const char *skew = getenv("CHATD_TEST_CLOCK_OFFSET_MS");
	char err[256];

	f->srv = srv;
	f->max_upload = (uint64_t)srv->cfg->max_upload_mb * 1024 * 1024;
	f->quota = (double)srv->cfg->upload_quota_mb * 1024 * 1024;
	/* A test hook: moves the sweep's clock (docs/testing.md). */
	if (skew != NULL)
		f->clock_offset_ms = strtoll(skew, NULL, 10);
	/* Several nodes (--redis) share the directory. */
	if (blob_store_open(&f->bs, srv->cfg->files_dir,
		srv->cfg->redis_url != NULL ? FILES_SHARED_MS : 0, err,
		sizeof err) != 0) {
		fprintf(stderr, "chatd: --files %s: %s\n", srv->cfg->files_dir,
		        err);
		free(f);
		return -1;
	}
	f->worker = worker_new_ctx(srv->base, 1, 1024, 1024, NULL);
	if (f->worker == NULL) {
		fprintf(stderr, "chatd: cannot start the files thread\n");
		blob_store_close(&f->bs);
		free(f);
		return -1;
	}
	srv->files = f;
	files_sweep(srv);
	f->orphan_ev = gate_event_new(srv->base, -1, 0, files_orphan_step,
	    srv);
	f->sweep_ev = gate_event_new(srv->base, -1, EV_PERSIST,
	    files_sweep_cb, srv);
	event_add(f->sweep_ev, &tv);
	return 0;
}

void
files_drain(struct server *srv)
{
	struct files *f = srv->files;

	if (f == NULL || f->worker == NULL)
		return;
	worker_free(f->worker);
	f->worker = NULL;
}

void
files_free(struct server *srv)
{
	struct files *f = srv->files;

	if (f == NULL)
		return;
	files_drain(srv);
	if (f->sweep_ev != NULL)
		gate_event_free(f->sweep_ev);
	if (f->orphan_ev != NULL)
		gate_event_free(f->orphan_ev);
	blob_scan_close(f->orphans);
	blob_store_close(&f->bs);
	free(f->pending.h);
	free(f->released.h);
	free(f->users);
	free(f);
	srv->files = NULL;
}
