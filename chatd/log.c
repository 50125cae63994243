/* chatd/log.c — levelled logging to stderr, text or JSON lines */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "chatd/log.h"

static enum log_level log_threshold = LOG_INFO;
static int log_json;
static const char *log_names[] = {"error", "warn", "info", "debug"};

void
log_setup(enum log_level level, int json)
{
	log_threshold = level;
	log_json = json;
}

int
log_level_parse(const char *name)
{
	for (int i = 0; i < 4; i++)
		if (strcmp(name, log_names[i]) == 0)
			return i;
	return -1;
}

int
log_enabled(enum log_level level)
{
	return level <= log_threshold;
}

/* Writes s as the inside of a JSON string. */
static void
log_json_escape(FILE *f, const char *s)
{
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch < 0x20)
			fprintf(f, "\\u%04x", ch);
		else
			fputc(ch, f);
	}
}

void
log_msg(enum log_level level, const char *fmt, ...)
{
	char msg[2048], ts[32];
	struct timespec now;
	struct tm tm;
	va_list ap;

	if (!log_enabled(level))
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
	if (log_json) {
		fprintf(stderr, "{\"ts\":\"%s.%03ldZ\",\"level\":\"%s\",\"msg\":\"",
		    ts, now.tv_nsec / 1000000, log_names[level]);
		log_json_escape(stderr, msg);
		fputs("\"}\n", stderr);
	} else {
		fprintf(stderr, "%s.%03ldZ %s %s\n", ts, now.tv_nsec / 1000000,
		    log_names[level], msg);
	}
}
