/* chatd/main.c — picks the command of the command line and runs it */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chatd/admin.h"
#include "chatd/admin_db.h"
#include "chatd/config.h"
#include "chatd/log.h"
#include "chatd/serve.h"

/* The admin commands: name, and the function that runs it. */
static const struct {
	const char *name;
	int (*fn)(struct config *cfg, int argc, char **argv);
} commands[] = {
	{"user", admin_user},
	{"room", admin_room},
	{"backup", admin_db_backup},
	{"restore", admin_db_restore},
	{"export", admin_db_export},
	{"import", admin_db_import},
};

int
main(int argc, char **argv)
{
	static struct config cfg;
	char **pos = calloc(argc + 1, sizeof *pos);
	int npos, rc;

	rc = config_load(&cfg, argc, argv, pos, &npos);
	if (rc <= 0) {
		free(pos);
		return rc == 0 ? 0 : 2;
	}
	log_setup(cfg.log_level, cfg.log_json);
	if (npos == 0) {
		free(pos);
		return serve_run(&cfg);
	}
	if (cfg.export_room != NULL || cfg.export_since >= 0 ||
	    cfg.export_until >= 0) {
		if (strcmp(pos[0], "export") != 0) {
			fprintf(stderr, "chatd: --room, --since and --until "
					"are options of export\n");
			free(pos);
			return 2;
		}
	}
	if ((cfg.room_private || cfg.room_owner != NULL ||
		cfg.room_topic != NULL) &&
	    !(strcmp(pos[0], "room") == 0 && npos > 1 &&
		strcmp(pos[1], "create") == 0)) {
		fprintf(stderr, "chatd: --private, --owner and --topic are "
				"options of room create\n");
		free(pos);
		return 2;
	}
	rc = -1;
	if (strcmp(pos[0], "check-config") == 0)
		rc = config_check(&cfg, npos - 1);
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		if (strcmp(pos[0], commands[i].name) == 0)
			rc = commands[i].fn(&cfg, npos - 1, pos + 1);
	if (rc == -1) {
		fprintf(stderr, "chatd: unknown command '%s' (see chatd "
				"--help)\n", pos[0]);
		rc = 2;
	}
	free(pos);
	return rc;
}
