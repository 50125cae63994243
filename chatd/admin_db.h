/* chatd/admin_db.h — backup, restore, export, import; the serving lock */
#ifndef CHATD_ADMIN_DB_H
#define CHATD_ADMIN_DB_H

struct config;

/* Each command takes the words after its name, and returns the exit
 * status: 0, 1 on failure (printed), 2 on bad arguments (usage). */

/* chatd backup FILE: a consistent copy of the live database. */
int admin_db_backup(struct config *cfg, int argc, char **argv);
/* chatd restore FILE: puts a backup in place of --db, chatd stopped. */
int admin_db_restore(struct config *cfg, int argc, char **argv);
/* chatd export [--room R] [--since SEQ] [--until TS]: JSON Lines on
 * stdout. */
int admin_db_export(struct config *cfg, int argc, char **argv);
/* chatd import < FILE: an export into an empty database, chatd
 * stopped. */
int admin_db_import(struct config *cfg, int argc, char **argv);
/* Takes a BSD lock on the database file at path: shared while serving,
 * exclusive while restoring or importing. Returns the descriptor holding
 * it, -2 if the other side holds it, -1 on another error (errno). */
int admin_db_lock(const char *path, int exclusive);

#endif
