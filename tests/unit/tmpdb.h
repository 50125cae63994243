/* tests/unit/tmpdb.h — a fresh database for a unit test: a SQLite file in
 * a new temporary directory, or, when CHATD_TEST_DB=postgres, a new
 * schema of the throwaway PostgreSQL at CHATD_TEST_PG (started by
 * scripts/services.sh), so that the same storage tests run against both
 * backends (scripts/test.sh runs them twice). */
#ifndef CHATD_TEST_TMPDB_H
#define CHATD_TEST_TMPDB_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#define TMPDB_PATH_MAX 512

/* 1 if the tests run against PostgreSQL. */
static inline int
tmpdb_pg(void)
{
	const char *b = getenv("CHATD_TEST_DB");

	return b != NULL && strcmp(b, "postgres") == 0;
}

/* Runs one statement on the test cluster's database. 0 or -1. */
static inline int
tmpdb_pg_exec(const char *sql)
{
	const char *url = getenv("CHATD_TEST_PG");
	PGconn *c;
	PGresult *r;
	int ok;

	if (url == NULL) {
		fprintf(stderr, "tmpdb: CHATD_TEST_DB=postgres needs "
		                "CHATD_TEST_PG (scripts/services.sh)\n");
		return -1;
	}
	c = PQconnectdb(url);
	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "tmpdb: %s", PQerrorMessage(c));
		PQfinish(c);
		return -1;
	}
	r = PQexec(c, sql);
	ok = PQresultStatus(r) == PGRES_COMMAND_OK;
	if (!ok)
		fprintf(stderr, "tmpdb: %s", PQerrorMessage(c));
	PQclear(r);
	PQfinish(c);
	return ok ? 0 : -1;
}

/* Into path: the database called file in dir (a new schema of the test
 * cluster on PostgreSQL: a URI whose search_path is it). 0 or -1. */
static inline int
tmpdb_path(char *path, size_t n, const char *dir, const char *file)
{
	char schema[64], sql[128];
	const char *b;

	if (!tmpdb_pg()) {
		snprintf(path, n, "%s/%s", dir, file);
		return 0;
	}
	b = strrchr(dir, '-');
	snprintf(schema, sizeof schema, "t_%s_%.16s", b != NULL ? b + 1 : "x",
	         file);
	for (char *p = schema; *p != '\0'; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')))
			*p = '_';
	snprintf(sql, sizeof sql, "CREATE SCHEMA %s", schema);
	if (tmpdb_pg_exec(sql) == -1)
		return -1;
	snprintf(path, n, "%s&options=-csearch_path%%3D%s%%2Cpublic",
	         getenv("CHATD_TEST_PG"), schema);
	return 0;
}

/* Makes /tmp/chatd-test-NAME-XXXXXX into dir and the database chat.db
 * of it into path; 0 or -1. */
static inline int
tmpdb_make(char dir[64], char path[TMPDB_PATH_MAX], const char *name)
{
	snprintf(dir, 64, "/tmp/chatd-test-%.16s-XXXXXX", name);
	if (mkdtemp(dir) == NULL)
		return -1;
	return tmpdb_path(path, TMPDB_PATH_MAX, dir, "chat.db");
}

/* Removes the database at path (a SQLite file with its journal files,
 * or a PostgreSQL schema). */
static inline void
tmpdb_drop(const char *path)
{
	const char *suffix[] = {"", "-wal", "-shm", "-journal"};
	const char *s = strstr(path, "search_path%3D");
	char p[TMPDB_PATH_MAX + 16], sql[128];

	if (s != NULL) {
		s += strlen("search_path%3D");
		snprintf(sql, sizeof sql, "DROP SCHEMA %.*s CASCADE",
		         (int)strcspn(s, "%"), s);
		tmpdb_pg_exec(sql);
		return;
	}
	for (size_t i = 0; i < 4; i++) {
		snprintf(p, sizeof p, "%s%s", path, suffix[i]);
		unlink(p);
	}
}

/* Removes the database at path, then dir (which must be empty but for
 * it). */
static inline void
tmpdb_remove(const char *dir, const char *path)
{
	tmpdb_drop(path);
	rmdir(dir);
}

#endif
