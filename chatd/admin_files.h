/* chatd/admin_files.h — files in backup, restore, export and import */
#ifndef CHATD_ADMIN_FILES_H
#define CHATD_ADMIN_FILES_H

#include <stdint.h>
#include <stdio.h>

struct config;
struct db;

/* After chatd backup FILE: puts the bytes of every file the backup
 * names into FILE.files/ (hard links, or copies across file systems).
 * 0, or -1 after printing why. */
int admin_files_backup(struct config *cfg, const char *backup);
/* chatd restore FILE: brings FILE.files/ back into the files directory
 * (bytes the restored database does not name are swept by the server).
 * 0, or -1 after printing why. */
int admin_files_restore(struct config *cfg, const char *backup);
/* After an export's messages: one "file" line per attached file of the
 * exported messages, its bytes in base64. 0, or -1 after printing why. */
int admin_files_export(struct config *cfg, struct db *db, FILE *out,
                       int64_t room_id, int64_t since, int64_t until);
/* jsonl_names.file_bytes for import: arg is the struct config. */
int admin_files_import_bytes(void *arg, const unsigned char *data, size_t len,
                             char hash[65]);

#endif
