/* chatd/admin.h — the admin commands on users and rooms */
#ifndef CHATD_ADMIN_H
#define CHATD_ADMIN_H

struct config;
struct db;

/* Opens the configured database for an admin command; NULL after
 * printing why. must_exist: refuse to create a new, empty one. */
struct db *admin_open(struct config *cfg, int must_exist);
/* chatd user list|add|passwd|del (argv: the words after "user"). Exit
 * status: 0, 1 on failure (printed), 2 on bad arguments (usage). */
int admin_user(struct config *cfg, int argc, char **argv);
/* chatd room list|del, exit status as admin_user's. */
int admin_room(struct config *cfg, int argc, char **argv);

#endif
