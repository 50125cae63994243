/* chatd/fileinfo.h — file names, types, Content-Disposition and Range:
 * the pure rules of uploads and downloads */
#ifndef CHATD_FILEINFO_H
#define CHATD_FILEINFO_H

#include <stddef.h>
#include <stdint.h>

#define FILE_NAME_MAX 255 /* bytes of UTF-8 */
#define FILE_TYPE_MAX 127 /* bytes of a stored Content-Type */
#define FILE_TYPE_DEFAULT "application/octet-stream"
/* Room for a Content-Disposition value: every name byte percent-encoded
 * twice over (filename and filename*) plus the words around them. */
#define FILE_DISPOSITION_MAX (FILE_NAME_MAX * 4 + 64)

/*
 * Decodes a NAME query value (raw, still percent-encoded: only %XX is
 * decoded, '+' stays a plus sign) into out (FILE_NAME_MAX + 1 bytes).
 * Returns its length, or -1 if it is malformed, empty, over
 * FILE_NAME_MAX bytes, not UTF-8, or holds '/', '\' or a control
 * character (C0, DEL, C1).
 */
long fileinfo_name(const char *raw, size_t rawlen, char *out);
/* Finds parameter name in a query string and points *val at its raw
 * (still percent-encoded) value of *len bytes. 0, or -1 if absent. */
int fileinfo_query_raw(const char *query, const char *name, const char **val,
                       size_t *len);
/*
 * The type to store for a request's Content-Type (NULL: none): the media
 * type lower-cased with its parameters, if it is "type/subtype" of token
 * characters with printable ASCII parameters and at most FILE_TYPE_MAX
 * bytes; FILE_TYPE_DEFAULT otherwise. Writes into out (FILE_TYPE_MAX + 1).
 */
void fileinfo_type(const char *ctype, char *out);
/* 1 if the stored type is shown inline: image/png, image/jpeg,
 * image/gif or image/webp (parameters ignored), else 0. */
int fileinfo_inline(const char *type);
/*
 * Writes the Content-Disposition value for a file called name (valid per
 * fileinfo_name) into out (FILE_DISPOSITION_MAX bytes): inline or
 * attachment, an ASCII fallback filename="..." and RFC 6266/8187
 * filename*=UTF-8''... . Returns the length.
 */
size_t fileinfo_disposition(const char *name, int is_inline, char *out);

/* What a Range header asks of a file of size bytes. */
enum fileinfo_range {
	FILE_RANGE_NONE = 0,    /* no range, or one to ignore: send it all */
	FILE_RANGE_PARTIAL = 1, /* one satisfiable range: 206 */
	FILE_RANGE_UNSATISFIABLE = -1, /* 416 */
};
/*
 * Parses a Range header value (NULL: none) against size: a single
 * "bytes=first-last", "bytes=first-" or "bytes=-suffix" range. Several
 * ranges, another unit or bad syntax are ignored (the whole file, as RFC
 * 9110 allows). Sets *off and *len for FILE_RANGE_PARTIAL.
 */
enum fileinfo_range fileinfo_range(const char *range, uint64_t size,
                                   uint64_t *off, uint64_t *len);

#endif
