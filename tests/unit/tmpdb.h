/* tests/unit/tmpdb.h — a database file in a fresh temporary directory */
#ifndef CHATD_TEST_TMPDB_H
#define CHATD_TEST_TMPDB_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Makes /tmp/chatd-test-NAME-XXXXXX into dir and dir/chat.db into path;
 * 0 or -1. */
static inline int
tmpdb_make(char dir[64], char path[96], const char *name)
{
	snprintf(dir, 64, "/tmp/chatd-test-%.16s-XXXXXX", name);
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(path, 96, "%s/chat.db", dir);
	return 0;
}

/* Removes the database file with its journal files, then dir. */
static inline void
tmpdb_remove(const char *dir, const char *path)
{
	const char *suffix[] = {"", "-wal", "-shm", "-journal"};
	char p[128];

	for (size_t i = 0; i < 4; i++) {
		snprintf(p, sizeof p, "%s%s", path, suffix[i]);
		unlink(p);
	}
	rmdir(dir);
}

#endif
