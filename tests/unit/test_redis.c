/* tests/unit/test_redis.c — pub/sub between two nodes on a real Redis */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "chatd/redis.h"

#define DEADLINE_MS 15000 /* generous: a loaded machine */
#define MAXMSG 8

/* A free loopback port (the kernel's pick, released at once). */
static int
free_port(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	assert_true(fd >= 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

/* Milliseconds of a monotonic clock. */
static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Whether something accepts connections on the loopback port. */
static int
port_open(int port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET,
	                         .sin_port = htons(port)};
	int fd = socket(AF_INET, SOCK_STREAM, 0), ok;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return ok;
}

/* Each running redis-server's log (its standard output), read until it
 * says it is ready, then kept open (its few later lines unread) until it
 * is killed. */
#define REDIS_MAX 4
static struct {
	pid_t pid;
	int fd;
} redis_logs[REDIS_MAX];

/* Starts redis-server on port with the extra arguments (NULL-terminated,
 * or NULL) and waits until its log says it accepts connections (or fails
 * the test: redis-server missing or not starting): a blocking read of the
 * log, no polling. */
static pid_t
redis_start_with(int port, const char *const *extra)
{
	char p[16], buf[8192];
	size_t have = 0;
	int64_t left;
	pid_t pid;
	int fds[2], status;

	snprintf(p, sizeof(p), "%d", port);
	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(fds[1], 1);
		close(fds[0]);
		close(fds[1]);
		const char *argv[32] = {
		    "redis-server", "--port", p,      "--bind",
		    "127.0.0.1",    "--save", "",     "--appendonly",
		    "no",           "--dir",  "/tmp", "--loglevel",
		    "notice"};
		size_t n = 13;

		for (; extra != NULL && *extra != NULL && n < 31; extra++)
			argv[n++] = *extra;
		argv[n] = NULL;
		execvp("redis-server", (char *const *)argv);
		fprintf(stderr, "test_redis: cannot run redis-server: %m\n");
		_exit(127);
	}
	close(fds[1]);
	left = DEADLINE_MS;
	for (;;) {
		struct pollfd pf = {.fd = fds[0], .events = POLLIN};
		int64_t t0 = now_ms();
		ssize_t n;

		if (poll(&pf, 1, (int)left) <= 0) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			fail_msg("redis-server did not start on %d", port);
		}
		n = read(fds[0], buf + have, sizeof(buf) - 1 - have);
		if (n <= 0) {
			waitpid(pid, &status, 0);
			fail_msg("redis-server exited (status %d): is it "
			         "installed (scripts/deps.sh test)?",
			         status);
		}
		have += (size_t)n;
		buf[have] = '\0';
		if (strstr(buf, "Ready to accept connections") != NULL)
			break;
		if (have > sizeof(buf) / 2) { /* keep the tail only */
			memmove(buf, buf + have - 256, 256);
			have = 256;
		}
		left -= now_ms() - t0;
		if (left < 1)
			left = 1;
	}
	assert_true(port_open(port));
	for (int i = 0; i < REDIS_MAX; i++)
		if (redis_logs[i].pid == 0) {
			redis_logs[i].pid = pid;
			redis_logs[i].fd = fds[0];
			return pid;
		}
	fail_msg("more than %d redis-servers at once", REDIS_MAX);
	return pid;
}

/* redis_start_with, without extra arguments. */
static pid_t
redis_start(int port)
{
	return redis_start_with(port, NULL);
}

/* Kills redis-server at once and reaps it. */
static void
redis_kill(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	for (int i = 0; i < REDIS_MAX; i++)
		if (redis_logs[i].pid == pid) {
			close(redis_logs[i].fd);
			redis_logs[i].pid = 0;
		}
}

/* What one node saw. */
struct node {
	struct redis *r;
	int ups, downs;
	int nmsg;
	uint8_t *msg[MAXMSG];
	size_t len[MAXMSG];
	int nfailed;
	uint64_t failed[MAXMSG];
};

static void
on_message(void *arg, const uint8_t *buf, size_t len)
{
	struct node *n = arg;

	assert_true(n->nmsg < MAXMSG);
	n->msg[n->nmsg] = malloc(len ? len : 1);
	memcpy(n->msg[n->nmsg], buf, len);
	n->len[n->nmsg++] = len;
}

static void
on_up(void *arg)
{
	((struct node *)arg)->ups++;
}

static void
on_down(void *arg)
{
	((struct node *)arg)->downs++;
}

static void
on_publish_failed(void *arg, uint64_t tag)
{
	struct node *n = arg;

	assert_true(n->nfailed < MAXMSG);
	n->failed[n->nfailed++] = tag;
}

/* Starts node n on url. */
static void
node_start(struct node *n, struct event_base *base, const char *url)
{
	struct redis_callbacks cb = {on_message, on_up, on_down,
	                             on_publish_failed, n};
	char err[256];

	memset(n, 0, sizeof(*n));
	n->r = redis_new(base, url, "chatd-test", &cb, err, sizeof(err));
	assert_non_null(n->r);
}

/* Frees n's node and messages. */
static void
node_stop(struct node *n)
{
	redis_free(n->r);
	for (int i = 0; i < n->nmsg; i++)
		free(n->msg[i]);
}

/* Runs the loop until *a >= want (and *b >= want if b): fails the test
 * past the deadline. */
static void
run_until(struct event_base *base, const int *a, const int *b, int want)
{
	int64_t end = now_ms() + DEADLINE_MS;
	struct event *tick = evtimer_new(base, NULL, NULL);
	struct timeval tv = {0, 100000};

	while (*a < want || (b != NULL && *b < want)) {
		assert_true(now_ms() < end);
		/* The tick bounds one turn of the loop, so the deadline is
		 * checked even when nothing happens. */
		evtimer_add(tick, &tv);
		event_base_loop(base, EVLOOP_ONCE);
	}
	event_free(tick);
}

/* The test's Redis and event loop. */
struct fixture {
	struct event_base *base;
	int port;
	pid_t pid;
	char url[64];
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	signal(SIGPIPE, SIG_IGN);
	f->base = event_base_new();
	f->port = free_port();
	snprintf(f->url, sizeof(f->url), "redis://127.0.0.1:%d", f->port);
	f->pid = redis_start(f->port);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	if (f->pid > 0)
		redis_kill(f->pid);
	event_base_free(f->base);
	free(f);
	return 0;
}

static void
test_redis_two_nodes_exchange_messages(void **state)
{
	struct fixture *f = *state;
	struct node a, b;
	static const uint8_t bin[] = {0, 1, 2, 0xff, '\r', '\n', 0};
	size_t big = 1u << 20;
	uint8_t *p = malloc(big);

	node_start(&a, f->base, f->url);
	node_start(&b, f->base, f->url);
	run_until(f->base, &a.ups, &b.ups, 1);
	assert_true(redis_up(a.r) && redis_up(b.r));
	assert_int_equal(redis_stats(a.r)->connects, 2);

	assert_int_equal(redis_publish(a.r, bin, sizeof(bin), 1), 0);
	for (size_t i = 0; i < big; i++)
		p[i] = (uint8_t)(i * 7);
	assert_int_equal(redis_publish(b.r, p, big, 2), 0);
	assert_int_equal(redis_stats(b.r)->pending, 1);
	assert_int_equal(redis_stats(b.r)->pending_bytes, big);
	run_until(f->base, &a.nmsg, &b.nmsg, 2);
	/* Every node gets every message, its own too, each publisher's in
	 * order (here a's went first and was acknowledged... or not: only
	 * compare by content). */
	for (int k = 0; k < 2; k++) {
		struct node *n = k ? &b : &a;
		int bi = n->len[0] == sizeof(bin) ? 0 : 1;

		assert_int_equal(n->len[bi], sizeof(bin));
		assert_memory_equal(n->msg[bi], bin, sizeof(bin));
		assert_int_equal(n->len[1 - bi], big);
		assert_memory_equal(n->msg[1 - bi], p, big);
		assert_int_equal(redis_stats(n->r)->received, 2);
	}
	while (redis_stats(b.r)->published < 1)
		event_base_loop(f->base, EVLOOP_ONCE);
	assert_int_equal(redis_stats(b.r)->pending, 0);
	assert_int_equal(redis_stats(b.r)->pending_bytes, 0);
	assert_int_equal(a.downs, 0);
	assert_int_equal(a.nfailed + b.nfailed, 0);
	node_stop(&a);
	node_stop(&b);
	free(p);
}

static void
test_redis_refuses_to_publish_while_down_and_past_the_bound(void **state)
{
	struct fixture *f = *state;
	struct node a;
	char url[64];
	int port = free_port();
	pid_t pid;

	/* Nothing listens there yet: the node keeps trying. */
	snprintf(url, sizeof(url), "redis://127.0.0.1:%d", port);
	node_start(&a, f->base, url);
	assert_int_equal(redis_publish(a.r, "x", 1, 1), -1);
	assert_int_equal(redis_stats(a.r)->publish_refused, 1);
	assert_false(redis_up(a.r));
	/* A turn of the loop later, still refused at once. */
	event_base_loop(f->base, EVLOOP_NONBLOCK);
	assert_int_equal(redis_publish(a.r, "x", 1, 1), -1);

	pid = redis_start(port);
	run_until(f->base, &a.ups, NULL, 1);
	redis_set_limits(a.r, 2, 10);
	assert_int_equal(redis_publish(a.r, "12345", 5, 1), 0);
	assert_int_equal(redis_publish(a.r, "123456", 6, 2), -1); /* bytes */
	assert_int_equal(redis_publish(a.r, "12345", 5, 3), 0);
	assert_int_equal(redis_publish(a.r, "1", 1, 4), -1); /* count */
	assert_int_equal(redis_stats(a.r)->publish_overflow, 2);
	run_until(f->base, &a.nmsg, NULL, 2);
	while (redis_stats(a.r)->pending > 0)
		event_base_loop(f->base, EVLOOP_ONCE);
	assert_int_equal(redis_publish(a.r, "1", 1, 5), 0);
	node_stop(&a);
	redis_kill(pid);
}

static void
test_redis_nodes_come_back_after_a_redis_restart(void **state)
{
	struct fixture *f = *state;
	struct node a, b;

	node_start(&a, f->base, f->url);
	node_start(&b, f->base, f->url);
	run_until(f->base, &a.ups, &b.ups, 1);

	/* A publish handed over, then Redis dies before it is written. */
	assert_int_equal(redis_publish(a.r, "lost", 4, 77), 0);
	redis_kill(f->pid);
	f->pid = 0;
	run_until(f->base, &a.downs, &b.downs, 1);
	assert_false(redis_up(a.r));
	assert_int_equal(a.nfailed, 1);
	assert_int_equal(a.failed[0], 77);
	assert_int_equal(redis_stats(a.r)->publish_failures, 1);
	assert_true(redis_stats(a.r)->disconnects >= 1);
	assert_int_equal(redis_publish(a.r, "x", 1, 1), -1);

	/* Same port again: both reconnect with their backoff. */
	f->pid = redis_start(f->port);
	run_until(f->base, &a.ups, &b.ups, 2);
	assert_true(redis_stats(b.r)->connects >= 4);
	assert_int_equal(redis_publish(b.r, "again", 5, 2), 0);
	run_until(f->base, &a.nmsg, &b.nmsg, 1);
	assert_int_equal(a.len[0], 5);
	assert_memory_equal(a.msg[0], "again", 5);
	assert_memory_equal(b.msg[0], "again", 5);
	node_stop(&a);
	node_stop(&b);
}

static void
test_redis_check_pings_a_live_server(void **state)
{
	struct fixture *f = *state;
	char err[256], url[96];

	assert_int_equal(redis_check(f->url, err, sizeof(err)), 0);
	snprintf(url, sizeof(url), "%s/3", f->url);
	assert_int_equal(redis_check(url, err, sizeof(err)), 0);
	snprintf(url, sizeof(url), "%s/99", f->url);
	assert_int_equal(redis_check(url, err, sizeof(err)), -1);
	snprintf(url, sizeof(url), "redis://127.0.0.1:%d", free_port());
	err[0] = '\0';
	assert_int_equal(redis_check(url, err, sizeof(err)), -1);
	assert_true(err[0] != '\0');
	assert_int_equal(redis_check("http://x", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "expected redis://"));
}

static void
test_redis_url_parse(void **state)
{
	struct redis_addr a;
	char err[256];
	static const char *const bad[] = {
	    "",
	    "redis://",
	    "redis://:6379",
	    "redis://h:",
	    "redis://h:0",
	    "redis://h:65536",
	    "redis://h:12x",
	    "redis://h:1/x",
	    "redis://h:1?db=1",
	    "rediss://h:1",
	    "http://h:1",
	    "unix:",
	    "unix:relative/sock",
	    "redis://[::1",
	    "redis://[::1]x",
	    "tcp://h:1",
	};

	(void)state;
	assert_int_equal(
	    redis_url_parse("redis://10.0.0.2:7000/2", &a, err, sizeof(err)),
	    0);
	assert_string_equal(a.host, "10.0.0.2");
	assert_int_equal(a.port, 7000);
	assert_int_equal(a.db, 2);
	assert_string_equal(a.path, "");
	assert_int_equal(redis_url_parse("redis://cache", &a, err, sizeof(err)),
	                 0);
	assert_string_equal(a.host, "cache");
	assert_int_equal(a.port, 6379);
	assert_int_equal(a.db, 0);
	assert_int_equal(
	    redis_url_parse("redis://[::1]:6380/", &a, err, sizeof(err)), 0);
	assert_string_equal(a.host, "::1");
	assert_int_equal(a.port, 6380);
	assert_int_equal(
	    redis_url_parse("unix:/run/redis/redis.sock", &a, err, sizeof(err)),
	    0);
	assert_string_equal(a.path, "/run/redis/redis.sock");
	assert_string_equal(a.host, "");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		assert_int_equal(redis_url_parse(bad[i], &a, err, sizeof(err)),
		                 -1);
		assert_non_null(strstr(err, "expected redis://"));
	}
	assert_null(redis_new(NULL, "nope", "ch", &(struct redis_callbacks){0},
	                      err, sizeof(err)));
}

/* Parses url, expecting success with user and password. */
static void
parse_ok(const char *url, const char *user, const char *password)
{
	struct redis_addr a;
	char err[256] = "";

	if (redis_url_parse(url, &a, err, sizeof(err)) != 0)
		fail_msg("%s: %s", url, err);
	assert_string_equal(a.user, user);
	assert_string_equal(a.password, password);
}

static void
test_redis_url_parse_decodes_the_userinfo(void **state)
{
	struct redis_addr a;
	char err[256];

	(void)state;
	parse_ok("redis://:S3cret@h", "", "S3cret");
	parse_ok("redis://:p%40ss%2Fw%3Ad%25@h:1/2", "", "p@ss/w:d%");
	parse_ok("redis://alice:s3:cr:et@h", "alice", "s3:cr:et");
	parse_ok("redis://%61l%69ce:%F0%9F%94%91@h", "alice",
	         "\xf0\x9f\x94\x91");
	parse_ok("redis://bob@h", "bob", "");        /* the password: a file */
	parse_ok("redis://a+b:c d@h", "a+b", "c d"); /* no form decoding */
	assert_int_equal(redis_url_parse("redis://alice:pw@[::1]:6380/3", &a,
	                                 err, sizeof(err)),
	                 0);
	assert_string_equal(a.host, "::1");
	assert_int_equal(a.port, 6380);
	assert_int_equal(a.db, 3);
	assert_string_equal(a.user, "alice");
	assert_string_equal(a.password, "pw");
	assert_int_equal(redis_url_parse("redis://h:7/1", &a, err, sizeof(err)),
	                 0);
	assert_string_equal(a.user, "");
	assert_string_equal(a.password, "");
}

static void
test_redis_url_parse_refuses_hostile_userinfo_without_showing_it(void **state)
{
	static char big[REDIS_PASSWORD_MAX + 64], bigu[REDIS_USER_MAX + 64];
	struct {
		const char *url;
		const char *why;
	} bad[] = {
	    {"redis://u:S3cret@x@h", "'@' twice"},
	    {"redis://u:S3cret@h@", "'@' twice"},
	    {"redis://:@h", "empty password"},
	    {"redis://u:@h", "empty password"},
	    {"redis://@h", "empty user"},
	    {"redis://:S3cret@", "expected redis://"},
	    {"redis://:S3cret@:6379", "expected redis://"},
	    {"redis://:S3cret@/1", "expected redis://"},
	    {"redis://:S3cret%4@h", "bad %-escape"},
	    {"redis://:S3cret%zz@h", "bad %-escape"},
	    {"redis://:S3cret%@h", "bad %-escape"},
	    {"redis://:S3c%00ret@h", "bad %-escape"},
	    {"redis://:S3c/ret@h", "'/'"},
	    {"redis://:S3cret@h?db=1", "expected redis://"},
	    {"redis://:S3cret@h#x", "expected redis://"},
	    {"unix://:S3cret@/run/redis.sock", "expected redis://"},
	    {"unix:/run/redis.sock?password=S3cret", "expected redis://"},
	    {"rediss://:S3cret@h", "expected redis://"},
	    {big, "longer than 1023 bytes"},
	    {bigu, "longer than 255 bytes"},
	};
	struct redis_addr a;
	char err[256];

	(void)state;
	memcpy(big, "redis://:", 9);
	memset(big + 9, 'S', REDIS_PASSWORD_MAX);
	strcpy(big + 9 + REDIS_PASSWORD_MAX, "@h");
	memcpy(bigu, "redis://", 8);
	memset(bigu + 8, 'u', REDIS_USER_MAX);
	strcpy(bigu + 8 + REDIS_USER_MAX, ":S3cret@h");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		if (redis_url_parse(bad[i].url, &a, err, sizeof(err)) != -1)
			fail_msg("accepted %s", bad[i].url);
		if (strstr(err, bad[i].why) == NULL)
			fail_msg("%s: \"%s\", not \"%s\"", bad[i].url, err,
			         bad[i].why);
		if (strstr(err, "S3c") != NULL || strstr(err, "SSSS") != NULL ||
		    strstr(err, "ret@") != NULL)
			fail_msg("%s: the password in \"%s\"", bad[i].url, err);
		assert_string_equal(a.password, "");
	}
	/* A password just under the bound fits. */
	big[9 + REDIS_PASSWORD_MAX - 1] = '@';
	big[9 + REDIS_PASSWORD_MAX] = 'h';
	big[9 + REDIS_PASSWORD_MAX + 1] = '\0';
	assert_int_equal(redis_url_parse(big, &a, err, sizeof(err)), 0);
	assert_int_equal(strlen(a.password), REDIS_PASSWORD_MAX - 1);
}

static void
test_redis_url_redact_hides_every_password(void **state)
{
	static const char *const cases[][2] = {
	    {"redis://h:1/2", "redis://h:1/2"},
	    {"redis://:S3cret@h:1/2", "redis://:***@h:1/2"},
	    {"redis://alice:S3cret@h", "redis://alice:***@h"},
	    {"redis://S3cret@h", "redis://***@h"}, /* redis-cli's reading */
	    {"redis://u:S3@cr@et@h", "redis://u:***@h"},
	    {"redis://u:S3c/ret@h/1", "redis://u:***@h/1"},
	    {"unix:/run/redis.sock", "unix:/run/redis.sock"},
	    {"unix://:S3cret@/run/redis.sock", "unix://:***@/run/redis.sock"},
	    {"rediss://S3cret@h", "rediss://***@h"},
	    {"unix:/s?password=S3cret&x=1", "unix:/s?password=***&x=1"},
	    {"unix:/s?PASSWORD=ab", "unix:/s?PASSWORD=**"},
	};
	char buf[128], tiny[12];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_string_equal(
		    redis_url_redact(cases[i][0], buf, sizeof(buf)),
		    cases[i][1]);
	assert_string_equal(
	    redis_url_redact("redis://:S3cret@h", tiny, sizeof(tiny)),
	    "redis://:**");
}

/* Writes len bytes of content to a new temporary file; returns its path
 * (static). */
static const char *
write_file(const void *content, size_t len)
{
	static char path[64];
	int fd;

	snprintf(path, sizeof(path), "/tmp/test_redis_pw_XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, content, len), (ssize_t)len);
	close(fd);
	return path;
}

static void
test_redis_password_read_takes_one_line(void **state)
{
	static const struct {
		const char *content;
		size_t len;
		const char *want; /* NULL: refused with why */
		const char *why;
	} cases[] = {
	    {"S3cret\n", 7, "S3cret", NULL},
	    {"S3cret\r\n", 8, "S3cret", NULL},
	    {"S3cret", 6, "S3cret", NULL},
	    {" sp ace \n", 9, " sp ace ", NULL},
	    {"", 0, NULL, "empty"},
	    {"\n", 1, NULL, "empty"},
	    {"S3cret\n\n", 8, NULL, "more than one line"},
	    {"S3\ncret\n", 8, NULL, "more than one line"},
	    {"S3\0cret\n", 8, NULL, "NUL"},
	};
	char pw[REDIS_PASSWORD_MAX + 2], err[256], big[REDIS_PASSWORD_MAX + 2];
	const char *path;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		path = write_file(cases[i].content, cases[i].len);
		err[0] = '\0';
		if (cases[i].want != NULL) {
			assert_int_equal(redis_password_read(path, pw,
			                                     sizeof(pw), err,
			                                     sizeof(err)),
			                 0);
			assert_string_equal(pw, cases[i].want);
		} else {
			assert_int_equal(redis_password_read(path, pw,
			                                     sizeof(pw), err,
			                                     sizeof(err)),
			                 -1);
			if (strstr(err, cases[i].why) == NULL)
				fail_msg("case %zu: \"%s\"", i, err);
			assert_null(strstr(err, "S3"));
			assert_non_null(strstr(err, path));
		}
		unlink(path);
	}
	/* REDIS_PASSWORD_MAX - 1 bytes and a newline fit; one more not. */
	memset(big, 'S', sizeof(big));
	big[REDIS_PASSWORD_MAX - 1] = '\n';
	path = write_file(big, REDIS_PASSWORD_MAX);
	assert_int_equal(
	    redis_password_read(path, pw, sizeof(pw), err, sizeof(err)), 0);
	assert_int_equal(strlen(pw), REDIS_PASSWORD_MAX - 1);
	unlink(path);
	big[REDIS_PASSWORD_MAX - 1] = 'S';
	big[REDIS_PASSWORD_MAX] = '\n';
	path = write_file(big, REDIS_PASSWORD_MAX + 1);
	assert_int_equal(
	    redis_password_read(path, pw, sizeof(pw), err, sizeof(err)), -1);
	assert_non_null(strstr(err, "too long"));
	unlink(path);
	path = write_file(big, sizeof(big));
	assert_int_equal(
	    redis_password_read(path, pw, sizeof(pw), err, sizeof(err)), -1);
	assert_non_null(strstr(err, "at most"));
	unlink(path);
	assert_int_equal(redis_password_read("/nonexistent/pw", pw, sizeof(pw),
	                                     err, sizeof(err)),
	                 -1);
	assert_non_null(strstr(err, "/nonexistent/pw"));
}

/* A Redis wanting a password (S3cret), with an ACL user alice (al1ce). */
static int
setup_auth(void **state)
{
	static char sock[64];
	const char *const extra[] = {"--requirepass",
	                             "S3cret",
	                             "--user",
	                             "alice",
	                             "on",
	                             ">al1ce",
	                             "~*",
	                             "&*",
	                             "+@all",
	                             "--unixsocket",
	                             sock,
	                             NULL};
	struct fixture *f = calloc(1, sizeof(*f));

	signal(SIGPIPE, SIG_IGN);
	f->base = event_base_new();
	f->port = free_port();
	snprintf(f->url, sizeof(f->url), "127.0.0.1:%d", f->port);
	snprintf(sock, sizeof(sock), "/tmp/test_redis_%d.sock", f->port);
	f->pid = redis_start_with(f->port, extra);
	*state = f;
	return 0;
}

static int
teardown_auth(void **state)
{
	struct fixture *f = *state;
	char sock[64];

	snprintf(sock, sizeof(sock), "/tmp/test_redis_%d.sock", f->port);
	redis_set_password(NULL);
	if (f->pid > 0)
		redis_kill(f->pid);
	f->pid = 0;
	unlink(sock);
	return teardown(state);
}

/* redis_check of redis://USERINFO@ADDR[/db]: its result; err must not
 * hold the password (pw). */
static int
check_as(struct fixture *f, const char *userinfo, const char *db,
         const char *pw, char *err, size_t errlen)
{
	char url[256];
	int rc;

	snprintf(url, sizeof(url), "redis://%s%s%s%s", userinfo,
	         userinfo[0] ? "@" : "", f->url, db);
	err[0] = '\0';
	rc = redis_check(url, err, errlen);
	if (pw != NULL && strstr(err, pw) != NULL)
		fail_msg("the password in \"%s\"", err);
	return rc;
}

static void
test_redis_check_authenticates(void **state)
{
	struct fixture *f = *state;
	char err[256], url[64];

	assert_int_equal(check_as(f, "", "", NULL, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "NOAUTH"));
	assert_non_null(strstr(err, "--redis-password-file"));
	assert_int_equal(check_as(f, ":wr0ng", "", "wr0ng", err, sizeof(err)),
	                 -1);
	assert_non_null(strstr(err, "refused the password"));
	assert_int_equal(
	    check_as(f, "alice:S3cret", "", "S3cret", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "WRONGPASS"));
	assert_int_equal(check_as(f, ":S3cret", "", NULL, err, sizeof(err)), 0);
	assert_int_equal(check_as(f, ":S3cret", "/99", NULL, err, sizeof(err)),
	                 -1);
	assert_non_null(strstr(err, "SELECT"));
	assert_int_equal(
	    check_as(f, "alice:al1ce", "/3", NULL, err, sizeof(err)), 0);
	assert_int_equal(
	    check_as(f, "default:S3cret", "", NULL, err, sizeof(err)), 0);
	/* The password of the file (redis_set_password) when the URL has
	 * none; a URL's own wins. */
	assert_int_equal(check_as(f, "alice", "", NULL, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "a user but no password"));
	redis_set_password("S3cret");
	assert_int_equal(check_as(f, "", "", NULL, err, sizeof(err)), 0);
	assert_int_equal(check_as(f, "alice", "", "S3cret", err, sizeof(err)),
	                 -1);
	assert_non_null(strstr(err, "WRONGPASS"));
	assert_int_equal(check_as(f, "alice:al1ce", "", NULL, err, sizeof(err)),
	                 0);
	redis_set_password("al1ce");
	assert_int_equal(check_as(f, "alice", "/1", NULL, err, sizeof(err)), 0);
	/* A Unix socket: the password of the file only. */
	redis_set_password("S3cret");
	snprintf(url, sizeof(url), "unix:/tmp/test_redis_%d.sock", f->port);
	assert_int_equal(redis_check(url, err, sizeof(err)), 0);
	redis_set_password(NULL);
	assert_int_equal(redis_check(url, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "NOAUTH"));
	assert_int_equal(check_as(f, "", "", NULL, err, sizeof(err)), -1);
}

static void
test_redis_nodes_authenticate_before_subscribing(void **state)
{
	struct fixture *f = *state;
	struct node a, b, c;
	char url[160];

	snprintf(url, sizeof(url), "redis://:S3cret@%s", f->url);
	node_start(&a, f->base, url);
	snprintf(url, sizeof(url), "redis://alice:al1ce@%s/2", f->url);
	node_start(&b, f->base, url);
	redis_set_password("S3cret");
	snprintf(url, sizeof(url), "redis://%s", f->url);
	node_start(&c, f->base, url);
	redis_set_password(NULL); /* c keeps its copy */
	run_until(f->base, &a.ups, &b.ups, 1);
	run_until(f->base, &c.ups, NULL, 1);
	assert_int_equal(redis_publish(b.r, "hi", 2, 1), 0);
	run_until(f->base, &a.nmsg, &c.nmsg, 1);
	assert_memory_equal(a.msg[0], "hi", 2);
	assert_memory_equal(c.msg[0], "hi", 2);
	assert_int_equal(a.nfailed + b.nfailed + c.nfailed, 0);
	/* A user without a password is refused at once. */
	snprintf(url, sizeof(url), "redis://alice@%s", f->url);
	assert_null(redis_new(f->base, url, "ch", &(struct redis_callbacks){0},
	                      url, sizeof(url)));
	node_stop(&a);
	node_stop(&b);
	node_stop(&c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_redis_url_parse),
	    cmocka_unit_test(test_redis_url_parse_decodes_the_userinfo),
	    cmocka_unit_test(
	        test_redis_url_parse_refuses_hostile_userinfo_without_showing_it),
	    cmocka_unit_test(test_redis_url_redact_hides_every_password),
	    cmocka_unit_test(test_redis_password_read_takes_one_line),
	    cmocka_unit_test_setup_teardown(test_redis_check_authenticates,
	                                    setup_auth, teardown_auth),
	    cmocka_unit_test_setup_teardown(
	        test_redis_nodes_authenticate_before_subscribing, setup_auth,
	        teardown_auth),
	    cmocka_unit_test_setup_teardown(
	        test_redis_two_nodes_exchange_messages, setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_redis_refuses_to_publish_while_down_and_past_the_bound,
	        setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_redis_nodes_come_back_after_a_redis_restart, setup,
	        teardown),
	    cmocka_unit_test_setup_teardown(
	        test_redis_check_pings_a_live_server, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
