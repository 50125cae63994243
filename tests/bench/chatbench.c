/* tests/bench/chatbench.c — load generator for chatd's wire protocol
 * (PROTOCOL.md): one process, one libevent loop, thousands of WebSocket
 * connections; reports throughput, loss and a latency histogram.
 *
 * Build: cc -O2 -g -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -I. \
 *   tests/bench/chatbench.c -o build/chatbench \
 *   $(pkg-config --cflags --libs libevent openssl jansson zlib) -lm -lpthread
 *
 * Modes (one measured point per run; see docs/PERFORMANCE.md):
 *   load       C connections in R rooms, S senders, open loop at --rate
 *              total msg/s, or closed loop (--rate 0, --window W each)
 *   idle       C authenticated connections; server RSS per connection
 *   history    closed-loop `history` pages of 50 from one room
 *   reconnect  C clients drop and reconnect at once with auth + since
 *   healthz    polls /healthz; prints the wall clock when it answers
 *
 * With --searchers N, load mode also runs N threads that each search
 * (GET /api/search?q=--search-q) in a closed loop as users qs0..qsN-1
 * while the messages flow: chat latency under searches (scenario Q).
 *
 * Hot path: frames are parsed in place, and a `message` is classified
 * with memmem on its "type", "text" and "ref" fields, never a JSON parse.
 * The text of a bench message is "b SENDER N T_NS": the room-local sender
 * index, that sender's message number and the monotonic send time,
 * then --pad bytes of 'x' or, with --text-bytes N, words up to N bytes.
 *
 * --deflate: every client offers permessage-deflate (RFC 7692), requires
 * the server to answer with server_no_context_takeover, and inflates the
 * RSV1 frames it receives with one shared zlib stream (each message is
 * whole in one frame and independent). Its own frames go out plain. The
 * summary counts the bytes read from the sockets in the measured window
 * and what they would have been as plain frames.
 *
 * --ports P0,P1,...: several servers (the nodes of a cluster, scenario C):
 * connection i talks to port i % n, HTTP (register, login, searches,
 * uploads) goes to the first. Load mode then also splits the latency by
 * whether the receiver is on its sender's node (local) or not (remote).
 * --server-pid takes a comma-separated list too: the CPU and RSS reported
 * are their sum. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/event_struct.h>
#include <jansson.h>
#include <zlib.h>

#define HIST_SUB 32 /* half the sub-buckets per power of two */
#define HIST_BUCKETS (48 * HIST_SUB)
#define READ_CHUNK (256 * 1024)
#define MAX_FRAME (4 * 1024 * 1024)
#define PASSWORD "benchpassword"
#define MAX_PORTS 16
#define MAX_PIDS 256

enum mode { M_LOAD, M_IDLE, M_HISTORY, M_RECONNECT, M_HEALTHZ };

enum cstate {
	CS_NEW = 0, /* not started */
	CS_CONNECT, /* TCP connect in flight */
	CS_UPGRADE, /* waiting for 101 */
	CS_AUTH,    /* waiting for hello */
	CS_JOIN,    /* waiting for joined */
	CS_RESYNC,  /* reconnect: waiting for the replay to reach target */
	CS_READY,   /* set up */
	CS_DEAD,    /* closed or failed */
};

enum phase { PH_SETUP, PH_RUN, PH_DRAIN, PH_STORM, PH_DONE };

/* Command-line settings. */
struct opts {
	const char *host;
	int port;
	enum mode mode;
	int conns, rooms, senders, users;
	double rate;     /* total msg/s; 0 closed loop */
	int window;      /* closed loop: messages in flight per sender */
	double duration; /* measured seconds */
	double warmup;   /* seconds sent before the measurement */
	double drain;    /* seconds to wait for stragglers */
	int parallel;    /* connections being set up at once */
	int text_pad;    /* extra text bytes */
	int text_bytes;  /* text of about this size, words (0: --pad) */
	int deflate;     /* offer permessage-deflate */
	int server_pid;
	int resync_k;   /* reconnect: messages to replay per room */
	double timeout; /* set-up limit in seconds */
	const char *tokens;
	const char *user_prefix;
	const char *room_prefix;
	const char *label;
	int searchers;        /* search threads (load mode) */
	const char *search_q; /* their query, URL-encoded */
	int uploaders;        /* upload threads (load mode, scenario U) */
	int upload_mb;        /* each upload's size in MiB */
};

/* Log-bucket latency histogram in nanoseconds (about 3 % resolution). */
struct hist {
	uint64_t b[HIST_BUCKETS];
	uint64_t n, max;
};

/* One WebSocket client connection. */
struct conn {
	int fd, idx, room, local, user, sender; /* sender: room-local or -1 */
	int node; /* index in ports[]: idx % nports */
	enum cstate state;
	int deflate; /* permessage-deflate agreed for this socket */
	struct event rev, wev;
	char *in;
	size_t in_len, in_cap;
	char *out;
	size_t out_len, out_cap;
	int64_t target_seq; /* reconnect: resynced once seq >= this */
	int64_t last_seq;   /* highest seq seen */
	int64_t since;      /* reconnect: seq given in auth */
	uint64_t t_start;   /* reconnect: storm start for this client */
	uint32_t next_n;    /* sender: next message number */
	uint32_t inflight;  /* closed loop: own copies outstanding */
	uint64_t **bits;    /* per room sender: numbers received */
	uint32_t *bits_cap; /* words in bits[j] */
	uint32_t *maxn;     /* per room sender: highest number + 1 */
};

/* Run-wide state and counters. */
static struct opts o = {
    .host = "127.0.0.1",
    .port = 8080,
    .mode = M_LOAD,
    .conns = 100,
    .rooms = 1,
    .senders = 1,
    .users = 0,
    .rate = 0,
    .window = 1,
    .duration = 5,
    .warmup = 1,
    .drain = 3,
    .parallel = 256,
    .text_pad = 0,
    .server_pid = 0,
    .resync_k = 20,
    .timeout = 120,
    .tokens = NULL,
    .user_prefix = "bu",
    .room_prefix = "r",
    .label = "",
    .searchers = 0,
    .search_q = "benchmark",
};
static struct event_base *base;
static struct conn *conns;
static char **tokens;
static int cpr, upr, spr; /* conns, users and senders per room */
static int *sender_list, nsenders;
static enum phase phase;
static int next_start, inflight_setup, nready, ndead, nfail;
static uint64_t t_run, t_ws, t_we, t_end, t_drain_end, t_setup0;
static uint64_t sent_total, sent_window, errors_recv, other_recv;
static uint64_t deliv_window, deliv_total, uniq_total, dups, ooo;
static uint64_t late_after_window, history_q, history_window;
static int64_t room_last[100000];
static struct hist lat, resync;
static struct hist lat_local, lat_remote; /* --ports: by receiver's node */
static int ports[MAX_PORTS], nports = 1;  /* --ports (or --port) */
static int srv_pids[MAX_PIDS], nsrv_pids; /* --server-pid */
static struct rusage ru_ws, ru_we;
static double srv_cpu_ws, srv_cpu_we;
static long rss_before, rss_after;
static double setup_s;
static uint64_t rng = 88172645463325252ull;
static char scratch[READ_CHUNK];
static int resynced, truncated_n;
static uint64_t replayed;
static uint64_t read_now;     /* when the current read returned */
static uint64_t wire_window;  /* socket bytes read in the window */
static uint64_t plain_window; /* the same frames, uncompressed */
static uint64_t frames_window, zframes_window; /* frames; compressed */
static z_stream zin;                           /* shared inflater */
static int zin_ready;
static uint8_t *zbuf; /* inflated message */
static size_t zbuf_cap;
static char *filler; /* words for --text-bytes */
static size_t filler_len;

static void conn_start(struct conn *c);
static void conn_close(struct conn *c, const char *why);
static void run_finish(void);

/* Monotonic nanoseconds. */
static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Prints a message and exits with status 2. */
static void
die(const char *fmt, const char *arg)
{
	fprintf(stderr, "chatbench: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n");
	exit(2);
}

/* malloc that exits on failure. */
static void *
xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);

	if (q == NULL)
		die("%s", "out of memory");
	return q;
}

/* xorshift64 pseudo-random numbers. */
static uint64_t
rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* Bucket index of v. */
static int
hist_index(uint64_t v)
{
	int e = 0;

	if (v >= 2 * HIST_SUB)
		e = 63 - __builtin_clzll(v) - 5;
	if (e > 46)
		return HIST_BUCKETS - 1;
	return e * HIST_SUB + (int)(v >> e);
}

/* Upper edge of bucket i. */
static uint64_t
hist_value(int i)
{
	int e = i / HIST_SUB - 1;

	if (i < 2 * HIST_SUB)
		return (uint64_t)i;
	return (((uint64_t)(i % HIST_SUB) + HIST_SUB + 1) << e) - 1;
}

/* Records one latency. */
static void
hist_add(struct hist *h, uint64_t v)
{
	h->b[hist_index(v)]++;
	h->n++;
	if (v > h->max)
		h->max = v;
}

/* The q-quantile (0..1) in nanoseconds. */
static uint64_t
hist_q(const struct hist *h, double q)
{
	uint64_t want, acc = 0;
	int i;

	if (h->n == 0)
		return 0;
	want = (uint64_t)ceil(q * (double)h->n);
	if (want < 1)
		want = 1;
	for (i = 0; i < HIST_BUCKETS; i++) {
		acc += h->b[i];
		if (acc >= want)
			return hist_value(i) < h->max ? hist_value(i) : h->max;
	}
	return h->max;
}

/* User plus system CPU seconds of pid from /proc, or -1. */
static double
proc_cpu(int pid)
{
	char path[64], buf[1024], *p;
	unsigned long ut, st;
	FILE *f;
	size_t n;

	if (pid <= 0)
		return -1;
	snprintf(path, sizeof path, "/proc/%d/stat", pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	if ((p = strrchr(buf, ')')) == NULL)
		return -1;
	/* fields after "(comm)": state is 3rd, utime 14th, stime 15th */
	if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
	           &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* VmRSS of pid in KiB, or -1. */
static long
proc_rss(int pid)
{
	char path[64], line[256];
	long kb = -1;
	FILE *f;

	if (pid <= 0)
		return -1;
	snprintf(path, sizeof path, "/proc/%d/status", pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof line, f) != NULL)
		if (sscanf(line, "VmRSS: %ld", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

/* User plus system CPU seconds of the --server-pid processes, or -1. */
static double
srv_cpu(void)
{
	double sum = 0, v;

	if (nsrv_pids == 0)
		return -1;
	for (int i = 0; i < nsrv_pids; i++) {
		if ((v = proc_cpu(srv_pids[i])) < 0)
			return -1;
		sum += v;
	}
	return sum;
}

/* Summed VmRSS of the --server-pid processes in KiB, or -1. */
static long
srv_rss(void)
{
	long sum = 0, v;

	if (nsrv_pids == 0)
		return -1;
	for (int i = 0; i < nsrv_pids; i++) {
		if ((v = proc_rss(srv_pids[i])) < 0)
			return -1;
		sum += v;
	}
	return sum;
}

/* CPU seconds used by this process in r. */
static double
ru_cpu(const struct rusage *r)
{
	return (double)r->ru_utime.tv_sec + r->ru_utime.tv_usec / 1e6 +
	       (double)r->ru_stime.tv_sec + r->ru_stime.tv_usec / 1e6;
}

/* ---- blocking HTTP client for register/login/healthz ---- */

/* Connects a TCP socket (non-blocking if nonblock) to the server on
 * port, or returns -1. */
static int
tcp_connect_port(int port, int nonblock)
{
	struct sockaddr_in sa;
	int fd, one = 1;

	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, o.host, &sa.sin_addr) != 1)
		die("bad host %s (an IPv4 address is needed)", o.host);
	fd = socket(AF_INET, SOCK_STREAM | (nonblock ? SOCK_NONBLOCK : 0), 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0 &&
	    errno != EINPROGRESS) {
		close(fd);
		return -1;
	}
	return fd;
}

/* tcp_connect_port to the first server (the HTTP one). */
static int
tcp_connect(int nonblock)
{
	return tcp_connect_port(o.port, nonblock);
}

/* One HTTP request, with a bearer token if token is not NULL; returns
 * the status and the body in body (caller frees), or -1. Connection:
 * close keeps the reading trivial. */
static int
http_do_auth(const char *method, const char *path, const char *json,
             const char *token, char **body)
{
	struct timeval tv = {30, 0};
	char req[2048], auth[512] = "", *resp = NULL, *p;
	size_t len = 0, cap = 0;
	int fd, status = -1;
	ssize_t n;

	if ((fd = tcp_connect(0)) < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	if (token != NULL)
		snprintf(auth, sizeof auth, "Authorization: Bearer %s\r\n",
		         token);
	n = snprintf(
	    req, sizeof req,
	    "%s %s HTTP/1.1\r\nHost: %s:%d\r\nConnection: close\r\n%s"
	    "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
	    method, path, o.host, o.port, auth, json ? strlen(json) : 0,
	    json ? json : "");
	if (write(fd, req, (size_t)n) != n) {
		close(fd);
		return -1;
	}
	for (;;) {
		if (cap - len < 4096)
			resp = xrealloc(resp, cap = cap * 2 + 8192);
		n = read(fd, resp + len, cap - len - 1);
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	if (resp == NULL)
		return -1;
	resp[len] = '\0';
	if (sscanf(resp, "HTTP/1.%*d %d", &status) != 1)
		status = -1;
	p = strstr(resp, "\r\n\r\n");
	if (body != NULL)
		*body = strdup(p ? p + 4 : "");
	free(resp);
	return status;
}

/* http_do_auth without a token. */
static int
http_do(const char *method, const char *path, const char *json, char **body)
{
	return http_do_auth(method, path, json, NULL, body);
}

/* Registers (409 is fine) and logs in user prefix+i; returns its token. */
static char *
user_login_as(const char *prefix, int i)
{
	char req[256], *body = NULL, *tok = NULL;
	json_t *j;
	int st;

	snprintf(req, sizeof req, "{\"username\":\"%s%d\",\"password\":\"%s\"}",
	         prefix, i, PASSWORD);
	st = http_do("POST", "/api/register", req, &body);
	free(body);
	if (st != 201 && st != 409)
		die("register failed for user %s", req);
	st = http_do("POST", "/api/login", req, &body);
	if (st != 200 || (j = json_loads(body, 0, NULL)) == NULL)
		die("login failed for user %s", req);
	if (json_is_string(json_object_get(j, "token")))
		tok = strdup(json_string_value(json_object_get(j, "token")));
	json_decref(j);
	free(body);
	if (tok == NULL)
		die("no token for %s", req);
	return tok;
}

/* Fills tokens[] from the cache file, logging in the missing users and
 * appending them to it. */
static void
tokens_load(int nusers)
{
	char line[512], name[128], tok[384];
	FILE *f;
	int i, k, fresh = 0;

	tokens = calloc((size_t)nusers, sizeof *tokens);
	if (o.tokens != NULL && (f = fopen(o.tokens, "r")) != NULL) {
		while (fgets(line, sizeof line, f) != NULL) {
			if (sscanf(line, "%127s %383s", name, tok) != 2)
				continue;
			k = (int)strlen(o.user_prefix);
			if (strncmp(name, o.user_prefix, (size_t)k) != 0)
				continue;
			i = atoi(name + k);
			if (i >= 0 && i < nusers && tokens[i] == NULL)
				tokens[i] = strdup(tok);
		}
		fclose(f);
	}
	f = o.tokens ? fopen(o.tokens, "a") : NULL;
	for (i = 0; i < nusers; i++) {
		if (tokens[i] != NULL)
			continue;
		tokens[i] = user_login_as(o.user_prefix, i);
		fresh++;
		if (f != NULL)
			fprintf(f, "%s%d %s\n", o.user_prefix, i, tokens[i]);
	}
	if (f != NULL)
		fclose(f);
	if (fresh > 0)
		fprintf(stderr, "chatbench: logged in %d new users\n", fresh);
}

/* healthz mode: polls until 200; prints CLOCK_REALTIME ns of success. */
static int
healthz_wait(void)
{
	uint64_t end = now_ns() + (uint64_t)(o.timeout * 1e9);
	struct timespec ts, nap = {0, 2000000};

	while (now_ns() < end) {
		if (http_do("GET", "/healthz", NULL, NULL) == 200) {
			clock_gettime(CLOCK_REALTIME, &ts);
			printf("%llu\n",
			       (unsigned long long)ts.tv_sec * 1000000000ull +
			           (unsigned long long)ts.tv_nsec);
			return 0;
		}
		nanosleep(&nap, NULL);
	}
	fprintf(stderr, "chatbench: /healthz did not answer\n");
	return 1;
}

/* ---- WebSocket client ---- */

/* Queues or writes bytes to c. */
static void
conn_write(struct conn *c, const void *buf, size_t len)
{
	ssize_t n = 0;

	if (c->state == CS_DEAD)
		return;
	if (c->out_len == 0) {
		n = write(c->fd, buf, len);
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
			conn_close(c, "write");
			return;
		}
		if (n < 0)
			n = 0;
		if ((size_t)n == len)
			return;
	}
	if (c->out_cap - c->out_len < len - (size_t)n) {
		c->out_cap = (c->out_len + len) * 2;
		c->out = xrealloc(c->out, c->out_cap);
	}
	memcpy(c->out + c->out_len, (const char *)buf + n, len - (size_t)n);
	c->out_len += len - (size_t)n;
	event_add(&c->wev, NULL);
}

/* Sends payload as one masked client frame of opcode op. */
static void
ws_send(struct conn *c, int op, const char *payload, size_t len)
{
	static const uint8_t mask[4] = {0x37, 0xfa, 0x21, 0x3d};
	uint8_t frame[8192 + 14];
	size_t h = 0, i;

	if (len > 8192)
		return;
	frame[h++] = (uint8_t)(0x80 | op);
	if (len < 126) {
		frame[h++] = (uint8_t)(0x80 | len);
	} else {
		frame[h++] = 0x80 | 126;
		frame[h++] = (uint8_t)(len >> 8);
		frame[h++] = (uint8_t)len;
	}
	memcpy(frame + h, mask, 4);
	h += 4;
	for (i = 0; i < len; i++)
		frame[h + i] = (uint8_t)payload[i] ^ mask[i & 3];
	conn_write(c, frame, h + len);
}

/* Sends a JSON text built by the caller. */
static void
ws_text(struct conn *c, const char *s)
{
	ws_send(c, 1, s, strlen(s));
}

/* Fills filler with 64 KiB of words drawn at random from a small
 * vocabulary: chat-like text that deflates to about half, where --pad's
 * 'x's shrink to almost nothing. */
static void
filler_init(void)
{
	static const char *words[] = {
	    "the",     "a",      "to",       "and",     "of",     "in",
	    "is",      "it",     "you",      "that",    "we",     "for",
	    "on",      "this",   "with",     "be",      "are",    "have",
	    "not",     "but",    "can",      "will",    "if",     "so",
	    "just",    "what",   "when",     "about",   "there",  "think",
	    "server",  "build",  "release",  "test",    "merge",  "branch",
	    "deploy",  "review", "tomorrow", "meeting", "lunch",  "coffee",
	    "latency", "bug",    "fixed",    "broken",  "again",  "please",
	    "thanks",  "sure",   "maybe",    "later",   "today",  "week",
	    "room",    "chat",   "message",  "client",  "socket", "database",
	    "looks",   "good",   "weird",    "check",   "logs",   "config",
	    "issue",   "update", "version",  "works",   "fails",  "slow",
	    "fast",    "should", "would",    "could",   "need",   "want",
	    "know",    "see",    "try",      "run",     "again",  "now",
	};
	size_t nw = sizeof words / sizeof *words, cap = 65536, len;
	const char *w;

	filler = xrealloc(NULL, cap + 32);
	filler_len = 0;
	while (filler_len < cap) {
		w = words[rnd() % nw];
		len = strlen(w);
		memcpy(filler + filler_len, w, len);
		filler_len += len;
		filler[filler_len++] = rnd() % 12 == 0 ? '.' : ' ';
	}
}

/* Sends the next bench message from sender connection c, stamped t. */
static void
send_message(struct conn *c, uint64_t t)
{
	static char pad[4097];
	const char *fill = pad;
	char buf[4400], head[64];
	int n, hn, fl = o.text_pad;

	if (pad[0] == '\0')
		memset(pad, 'x', sizeof pad - 1);
	hn = snprintf(head, sizeof head, "b %d %u %llu ", c->sender, c->next_n,
	              (unsigned long long)t);
	if (o.text_bytes > 0) {
		/* a different stretch of words each time */
		fl = o.text_bytes > hn ? o.text_bytes - hn : 0;
		fill = filler + rnd() % (filler_len - (size_t)fl);
	}
	n = snprintf(buf, sizeof buf,
	             "{\"type\":\"send\",\"room\":\"%s%d\",\"ref\":\"%u\","
	             "\"text\":\"%s%.*s\"}",
	             o.room_prefix, c->room, c->next_n, head, fl, fill);
	c->next_n++;
	c->inflight++;
	sent_total++;
	if (t >= t_ws && t < t_we)
		sent_window++;
	ws_send(c, 1, buf, (size_t)n);
}

/* Sends a history request for a random page. */
static void
send_history(struct conn *c)
{
	char buf[256];
	int64_t top = room_last[c->room];
	uint64_t before = top > 51 ? 51 + rnd() % (uint64_t)(top - 50) : 1;

	snprintf(buf, sizeof buf,
	         "{\"type\":\"history\",\"room\":\"%s%d\",\"before\":%llu,"
	         "\"limit\":50,\"ref\":\"%llu\"}",
	         o.room_prefix, c->room, (unsigned long long)before,
	         (unsigned long long)now_ns());
	c->inflight = 1;
	ws_text(c, buf);
}

/* Sends the auth message (with since in reconnect storms). */
static void
send_auth(struct conn *c)
{
	char buf[640];

	if (o.mode == M_RECONNECT && phase == PH_STORM)
		snprintf(buf, sizeof buf,
		         "{\"type\":\"auth\",\"token\":\"%s\",\"since\":"
		         "{\"%s%d\":%lld}}",
		         tokens[c->user], o.room_prefix, c->room,
		         (long long)c->since);
	else
		snprintf(buf, sizeof buf,
		         "{\"type\":\"auth\",\"token\":\"%s\"}",
		         tokens[c->user]);
	ws_text(c, buf);
}

/* Finds needle in [p, p+n), or NULL. */
static const char *
find(const char *p, size_t n, const char *needle)
{
	return memmem(p, n, needle, strlen(needle));
}

/* Parses the integer after key (like "\"seq\":"), or -1. */
static int64_t
field_int(const char *p, size_t n, const char *key)
{
	const char *q = find(p, n, key), *end = p + n;
	int64_t v = 0;

	if (q == NULL)
		return -1;
	for (q += strlen(key); q < end && *q >= '0' && *q <= '9'; q++)
		v = v * 10 + (*q - '0');
	return v;
}

/* Parses an unsigned decimal at *pp, moving past one trailing space. */
static uint64_t
scan_u(const char **pp, const char *end)
{
	const char *q = *pp;
	uint64_t v = 0;

	while (q < end && *q >= '0' && *q <= '9')
		v = v * 10 + (uint64_t)(*q++ - '0');
	if (q < end && *q == ' ')
		q++;
	*pp = q;
	return v;
}

/* Marks number n of room sender j as received; 1 if it is new. */
static int
mark_received(struct conn *c, int j, uint32_t n)
{
	uint32_t w = n / 64, cap;

	if (w >= c->bits_cap[j]) {
		cap = (w + 1) * 2;
		c->bits[j] = xrealloc(c->bits[j], cap * sizeof(uint64_t));
		memset(c->bits[j] + c->bits_cap[j], 0,
		       (cap - c->bits_cap[j]) * sizeof(uint64_t));
		c->bits_cap[j] = cap;
	}
	if (c->bits[j][w] & (1ull << (n % 64))) {
		dups++;
		return 0;
	}
	c->bits[j][w] |= 1ull << (n % 64);
	if (n + 1 < c->maxn[j])
		ooo++;
	else
		c->maxn[j] = n + 1;
	return 1;
}

/* Handles a `message` event on c (p, n: its JSON). */
static void
on_message(struct conn *c, const char *p, size_t n, uint64_t now)
{
	const char *t = find(p, n, "\"text\":\"b "), *end = p + n;
	uint64_t j, num, ts;

	if (o.mode == M_RECONNECT) {
		int64_t seq = field_int(p, n, "\"seq\":");

		if (seq <= c->last_seq)
			ooo++;
		c->last_seq = seq;
		replayed++;
		if (c->state == CS_RESYNC && seq >= c->target_seq) {
			c->state = CS_READY;
			hist_add(&resync, now - c->t_start);
			resynced++;
		}
		return;
	}
	if (t == NULL) {
		other_recv++;
		return;
	}
	t += 10;
	j = scan_u(&t, end);
	num = scan_u(&t, end);
	ts = scan_u(&t, end);
	deliv_total++;
	if (now >= t_ws && now < t_we)
		deliv_window++;
	if ((int)j >= spr) {
		other_recv++;
		return;
	}
	uniq_total += (uint64_t)mark_received(c, (int)j, (uint32_t)num);
	if (ts >= t_ws && ts < t_we) {
		hist_add(&lat, now - ts);
		if (nports > 1)
			hist_add(conns[c->room * cpr + (int)j].node == c->node
			             ? &lat_local
			             : &lat_remote,
			         now - ts);
	} else if (ts >= t_we)
		late_after_window++;
	if (c->sender == (int)j && find(end - (n < 80 ? n : 80),
	                                n < 80 ? n : 80, "\"ref\":") != NULL) {
		if (c->inflight > 0)
			c->inflight--;
		if (o.rate <= 0 && phase == PH_RUN && now < t_end)
			send_message(c, now_ns());
	}
}

/* Moves c to READY during set-up, starting more connections. */
static void
conn_ready(struct conn *c)
{
	c->state = CS_READY;
	nready++;
	inflight_setup--;
	while (inflight_setup < o.parallel && next_start < o.conns)
		conn_start(&conns[next_start++]);
}

/* Sends c's join request. */
static void
send_join(struct conn *c)
{
	char buf[160];

	snprintf(buf, sizeof buf, "{\"type\":\"join\",\"room\":\"%s%d\"}",
	         o.room_prefix, c->room);
	c->state = CS_JOIN;
	ws_text(c, buf);
}

/* Handles one text message from the server. */
static void
on_text(struct conn *c, const char *p, size_t n)
{
	const char *ty = find(p, n < 64 ? n : 64, "\"type\":\"");
	uint64_t now = now_ns();

	if (ty == NULL) {
		other_recv++;
		return;
	}
	ty += 8;
	if (strncmp(ty, "message\"", 8) == 0) {
		on_message(c, p, n, now);
	} else if (strncmp(ty, "hello\"", 6) == 0 && c->state == CS_AUTH) {
		if (o.mode == M_RECONNECT && phase == PH_STORM) {
			c->state = CS_RESYNC;
			if (c->target_seq <= c->since) {
				c->state = CS_READY;
				hist_add(&resync, now - c->t_start);
				resynced++;
			}
		} else {
			send_join(c);
		}
	} else if (strncmp(ty, "joined\"", 7) == 0 && c->state == CS_JOIN) {
		int64_t ls = field_int(p, n, "\"last_seq\":");

		if (ls > room_last[c->room])
			room_last[c->room] = ls;
		c->last_seq = ls;
		conn_ready(c);
	} else if (strncmp(ty, "history\"", 8) == 0) {
		int64_t t0 = field_int(p, n, "\"ref\":\"");

		c->inflight = 0;
		history_q++;
		if (now >= t_ws && now < t_we) {
			history_window++;
			hist_add(&lat, now - (uint64_t)t0);
		}
		if (phase == PH_RUN && now < t_end)
			send_history(c);
	} else if (strncmp(ty, "truncated\"", 10) == 0) {
		truncated_n++;
		if (c->state == CS_RESYNC) {
			c->state = CS_READY;
			hist_add(&resync, now - c->t_start);
			resynced++;
		}
	} else if (strncmp(ty, "error\"", 6) == 0) {
		errors_recv++;
		if (errors_recv <= 5)
			fprintf(stderr, "chatbench: error: %.*s\n", (int)n, p);
		if (c->state == CS_AUTH || c->state == CS_JOIN)
			conn_close(c, "refused");
	} else {
		other_recv++;
	}
}

/* The value of the Sec-WebSocket-Extensions line in the response head
 * [p, p+n) copied to ext (size cap), lower-cased; 0 if there is none. */
static int
upgrade_extensions(const char *p, size_t n, char *ext, size_t cap)
{
	static const char name[] = "\r\nsec-websocket-extensions:";
	size_t i, k, len = sizeof name - 1;

	for (i = 0; i + len <= n; i++) {
		if (strncasecmp(p + i, name, len) != 0)
			continue;
		for (i += len, k = 0; i < n && p[i] != '\r' && k + 1 < cap; i++)
			ext[k++] = (char)(p[i] >= 'A' && p[i] <= 'Z' ? p[i] + 32
			                                             : p[i]);
		ext[k] = '\0';
		return 1;
	}
	return 0;
}

/* Handles a complete upgrade response head in c->in; returns bytes used
 * or 0 if incomplete. With --deflate the server must have agreed to
 * permessage-deflate without context takeover on its side; without it,
 * it must not have answered with an extension. */
static size_t
on_upgrade(struct conn *c, const char *p, size_t n)
{
	const char *e = find(p, n, "\r\n\r\n");
	char ext[256];
	int has;

	if (e == NULL)
		return 0;
	if (n < 12 || strncmp(p + 9, "101", 3) != 0) {
		conn_close(c, "upgrade refused");
		return n;
	}
	has = upgrade_extensions(p, (size_t)(e + 2 - p), ext, sizeof ext);
	c->deflate = has && strstr(ext, "permessage-deflate") != NULL;
	if (o.deflate && !c->deflate) {
		conn_close(c, "permessage-deflate not agreed");
		return n;
	}
	if (has && !o.deflate) {
		conn_close(c, "an extension that was not offered");
		return n;
	}
	if (c->deflate && strstr(ext, "server_no_context_takeover") == NULL) {
		conn_close(c, "server context takeover (not supported)");
		return n;
	}
	c->state = CS_AUTH;
	send_auth(c);
	return (size_t)(e + 4 - p);
}

/* Inflates one compressed message [in, in+len) (RFC 7692 7.2.2: the
 * payload plus 00 00 ff ff) into zbuf; returns its length or -1. The
 * server takes no context over, so the stream restarts every time. */
static ssize_t
inflate_msg(const uint8_t *in, size_t len)
{
	static const uint8_t tail[4] = {0, 0, 0xff, 0xff};
	size_t used = 0;
	int part, r = Z_OK;

	if (!zin_ready) {
		if (inflateInit2(&zin, -15) != Z_OK)
			die("%s", "inflateInit2 failed");
		zin_ready = 1;
	} else {
		inflateReset(&zin);
	}
	for (part = 0; part < 2 && r != Z_STREAM_END; part++) {
		zin.next_in = (Bytef *)(part ? tail : in);
		zin.avail_in = part ? 4 : (uInt)len;
		while (zin.avail_in > 0 && r != Z_STREAM_END) {
			if (zbuf_cap - used < 4096) {
				if (zbuf_cap > 4 * MAX_FRAME)
					return -1;
				zbuf_cap = zbuf_cap * 2 + 65536;
				zbuf = xrealloc(zbuf, zbuf_cap);
			}
			zin.next_out = zbuf + used;
			zin.avail_out = (uInt)(zbuf_cap - used);
			r = inflate(&zin, Z_SYNC_FLUSH);
			used = zbuf_cap - zin.avail_out;
			if (r != Z_OK && r != Z_STREAM_END)
				return -1; /* Z_BUF_ERROR: no progress */
		}
	}
	return (ssize_t)used;
}

/* Counts one received frame in the window: plain, its payload
 * uncompressed; deflated, whether it came compressed. */
static void
count_frame(size_t plain, int deflated)
{
	if (read_now < t_ws || read_now >= t_we)
		return;
	frames_window++;
	zframes_window += (uint64_t)deflated;
	plain_window +=
	    plain + 2 + (plain >= 126 ? 2 : 0) + (plain >= 65536 ? 6 : 0);
}

/* Parses whole frames in [p, p+n); returns bytes consumed. */
static size_t
parse_frames(struct conn *c, char *p, size_t n)
{
	size_t used = 0, h, len;
	ssize_t zn;
	uint8_t *b;

	if (c->state == CS_UPGRADE) {
		used = on_upgrade(c, p, n);
		if (used == 0 || c->state == CS_DEAD)
			return used;
	}
	while (n - used >= 2 && c->state != CS_DEAD) {
		b = (uint8_t *)p + used;
		len = b[1] & 0x7f;
		h = 2;
		if (len == 126) {
			if (n - used < 4)
				break;
			len = (size_t)b[2] << 8 | b[3];
			h = 4;
		} else if (len == 127) {
			if (n - used < 10)
				break;
			len = 0;
			for (h = 2; h < 10; h++)
				len = len << 8 | b[h];
		}
		if (b[1] & 0x80)
			h += 4; /* a masked server frame: not expected */
		if (len > MAX_FRAME) {
			conn_close(c, "frame too big");
			return n;
		}
		if (n - used < h + len)
			break;
		if ((b[0] & 0x40) &&
		    (!c->deflate || (b[0] & 0x0f) != 1 || !(b[0] & 0x80))) {
			conn_close(c, "RSV1 on a frame that cannot have it");
			return n;
		}
		switch (b[0] & 0x0f) {
		case 1:
			if (!(b[0] & 0x40)) {
				count_frame(len, 0);
				on_text(c, (char *)b + h, len);
				break;
			}
			if ((zn = inflate_msg(b + h, len)) < 0) {
				conn_close(c, "bad compressed message");
				return n;
			}
			count_frame((size_t)zn, 1);
			on_text(c, (char *)zbuf, (size_t)zn);
			break;
		case 8:
			conn_close(c, "closed by server");
			return n;
		case 9:
			ws_send(c, 10, (char *)b + h, len);
			break;
		default:
			break;
		}
		used += h + len;
	}
	return used;
}

/* Counts n bytes read from a socket now. */
static void
count_read(size_t n)
{
	read_now = now_ns();
	if (read_now >= t_ws && read_now < t_we)
		wire_window += n;
}

/* Read callback: pulls bytes and parses frames. */
static void
conn_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	ssize_t n;
	size_t used;
	int rounds;

	(void)what;
	for (rounds = 0; rounds < 4 && c->state != CS_DEAD; rounds++) {
		if (c->in_len == 0) {
			n = read(fd, scratch, sizeof scratch);
			if (n <= 0)
				goto eof;
			count_read((size_t)n);
			used = parse_frames(c, scratch, (size_t)n);
			if (used < (size_t)n && c->state != CS_DEAD) {
				c->in_cap = (size_t)n - used + 16384;
				c->in = xrealloc(c->in, c->in_cap);
				memcpy(c->in, scratch + used, (size_t)n - used);
				c->in_len = (size_t)n - used;
			}
		} else {
			if (c->in_cap - c->in_len < 65536) {
				c->in_cap = c->in_len + READ_CHUNK;
				c->in = xrealloc(c->in, c->in_cap);
			}
			n = read(fd, c->in + c->in_len, c->in_cap - c->in_len);
			if (n <= 0)
				goto eof;
			count_read((size_t)n);
			c->in_len += (size_t)n;
			used = parse_frames(c, c->in, c->in_len);
			if (c->state == CS_DEAD)
				return;
			memmove(c->in, c->in + used, c->in_len - used);
			c->in_len -= used;
		}
		if ((size_t)n < sizeof scratch)
			return;
	}
	return;
eof:
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return;
	conn_close(c, n == 0 ? "eof" : "read error");
}

/* Write callback: finishes connecting, or flushes queued output. */
static void
conn_write_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	char req[512];
	int err = 0;
	socklen_t el = sizeof err;
	ssize_t n;

	(void)what;
	if (c->state == CS_CONNECT) {
		getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
		if (err != 0) {
			conn_close(c, "connect");
			return;
		}
		c->state = CS_UPGRADE;
		event_del(&c->wev);
		event_add(&c->rev, NULL);
		n = snprintf(
		    req, sizeof req,
		    "GET /ws HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
		    "Connection: Upgrade\r\n"
		    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
		    "Sec-WebSocket-Version: 13\r\n%s\r\n",
		    o.host, ports[c->node],
		    o.deflate ? "Sec-WebSocket-Extensions: permessage-deflate; "
		                "client_max_window_bits\r\n"
		              : "");
		conn_write(c, req, (size_t)n);
		return;
	}
	n = write(fd, c->out, c->out_len);
	if (n < 0) {
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			conn_close(c, "write");
		return;
	}
	memmove(c->out, c->out + n, c->out_len - (size_t)n);
	c->out_len -= (size_t)n;
	if (c->out_len == 0)
		event_del(&c->wev);
}

/* Starts connecting c. */
static void
conn_start(struct conn *c)
{
	c->fd = tcp_connect_port(ports[c->node], 1);
	c->in_len = c->out_len = 0;
	if (c->fd < 0) {
		nfail++;
		c->state = CS_DEAD;
		return;
	}
	c->state = CS_CONNECT;
	if (phase != PH_STORM)
		inflight_setup++;
	event_assign(&c->rev, base, c->fd, EV_READ | EV_PERSIST, conn_read_cb,
	             c);
	event_assign(&c->wev, base, c->fd, EV_WRITE | EV_PERSIST, conn_write_cb,
	             c);
	event_add(&c->wev, NULL);
}

/* Closes c's socket (the one way out). */
static void
conn_close(struct conn *c, const char *why)
{
	if (c->state == CS_DEAD)
		return;
	if (c->state != CS_READY && c->state != CS_RESYNC) {
		nfail++;
		if (nfail <= 5)
			fprintf(stderr, "chatbench: conn %d failed: %s\n",
			        c->idx, why);
		if (phase == PH_SETUP)
			inflight_setup--;
	} else {
		ndead++;
		if (ndead <= 5)
			fprintf(stderr, "chatbench: conn %d closed: %s\n",
			        c->idx, why);
	}
	c->state = CS_DEAD;
	event_del(&c->rev);
	event_del(&c->wev);
	close(c->fd);
	c->fd = -1;
	if (phase == PH_SETUP && next_start < o.conns)
		conn_start(&conns[next_start++]);
}

/* Lays out connection i: room, user and sender role. */
static void
conn_layout(struct conn *c, int i)
{
	c->idx = i;
	c->node = i % nports;
	c->fd = -1;
	c->room = i / cpr;
	c->local = i % cpr;
	c->user = c->room * upr + c->local % upr;
	c->sender = -1;
	if (o.mode == M_LOAD && c->local < spr &&
	    c->room * spr + c->local < o.senders)
		c->sender = c->local;
	if (o.mode == M_LOAD) {
		c->bits = calloc((size_t)spr, sizeof *c->bits);
		c->bits_cap = calloc((size_t)spr, sizeof *c->bits_cap);
		c->maxn = calloc((size_t)spr, sizeof *c->maxn);
	}
}

/* Open loop: sends every message due by now, each stamped with its
 * scheduled time, then sets pace_ev for the next one. The base has
 * precise (timerfd) timers, so sends leave within microseconds of their
 * schedule instead of in bursts on a millisecond tick. */
static struct event *pace_ev;

static void
pace_cb(evutil_socket_t fd, short what, void *arg)
{
	uint64_t now = now_ns(), due, t, next;
	struct timeval tv;
	struct conn *c;

	(void)fd, (void)what, (void)arg;
	if (phase != PH_RUN || o.mode != M_LOAD || o.rate <= 0 ||
	    nsenders == 0 || now >= t_end)
		return;
	due = (uint64_t)((double)(now - t_run) * o.rate / 1e9) + 1;
	while (sent_total < due) {
		c = &conns[sender_list[sent_total % nsenders]];
		t = t_run + (uint64_t)((double)sent_total * 1e9 / o.rate);
		if (c->state == CS_READY)
			send_message(c, t);
		else
			sent_total++;
	}
	next = t_run + (uint64_t)((double)sent_total * 1e9 / o.rate);
	now = now_ns();
	next = next > now ? next - now : 0;
	tv.tv_sec = (time_t)(next / 1000000000u);
	tv.tv_usec = (suseconds_t)(next % 1000000000u / 1000u);
	evtimer_add(pace_ev, &tv);
}

/* ---- searchers (scenario Q): blocking HTTP on threads of their own ---- */

static void print_lat(const char *name, const struct hist *h);
static void json_lat(json_t *j, const char *key, const struct hist *h);

/* What one search thread counts (in the measured window only). */
struct searcher {
	pthread_t thread;
	char *token;
	struct hist lat;
	uint64_t ok, timeout, busy, other;
};
static struct searcher *searchers;
static atomic_int search_stop;

/* A search thread: GET /api/search in a closed loop until told to stop;
 * a search counts if it ends inside the measured window. */
static void *
searcher_main(void *arg)
{
	struct searcher *s = arg;
	char path[1200], *body;
	uint64_t t0, t1;
	int st;

	snprintf(path, sizeof path, "/api/search?q=%s&limit=20", o.search_q);
	while (!atomic_load(&search_stop)) {
		body = NULL;
		t0 = now_ns();
		st = http_do_auth("GET", path, NULL, s->token, &body);
		t1 = now_ns();
		if (t1 >= t_ws && t1 <= t_we) {
			hist_add(&s->lat, t1 - t0);
			if (st == 200)
				s->ok++;
			else if (st == 503 && body && strstr(body, "\"timeout\""))
				s->timeout++;
			else if (st == 503 && body && strstr(body, "\"busy\""))
				s->busy++;
			else
				s->other++;
		}
		free(body);
	}
	return NULL;
}

/* Logs in the search users and starts their threads. */
static void
searchers_start(void)
{
	searchers = calloc((size_t)o.searchers, sizeof *searchers);
	for (int i = 0; i < o.searchers; i++)
		searchers[i].token = user_login_as("qs", i);
	for (int i = 0; i < o.searchers; i++)
		if (pthread_create(&searchers[i].thread, NULL, searcher_main,
		                   &searchers[i]) != 0)
			die("%s", "cannot start a search thread");
}

/* Stops the search threads and adds their counts to j (and prints them). */
static void
searchers_finish(json_t *j, double dur)
{
	struct hist all;
	uint64_t ok = 0, to = 0, busy = 0, other = 0;

	memset(&all, 0, sizeof all);
	atomic_store(&search_stop, 1);
	for (int i = 0; i < o.searchers; i++) {
		struct searcher *s = &searchers[i];

		pthread_join(s->thread, NULL);
		ok += s->ok;
		to += s->timeout;
		busy += s->busy;
		other += s->other;
		for (int b = 0; b < HIST_BUCKETS; b++)
			all.b[b] += s->lat.b[b];
		all.n += s->lat.n;
		if (s->lat.max > all.max)
			all.max = s->lat.max;
		free(s->token);
	}
	free(searchers);
	printf("  %d searchers: %llu answered (%.1f/s), %llu timed out, "
	       "%llu busy, %llu other\n",
	       o.searchers, (unsigned long long)ok, ok / dur,
	       (unsigned long long)to, (unsigned long long)busy,
	       (unsigned long long)other);
	print_lat("search", &all);
	json_object_set_new(j, "searchers", json_integer(o.searchers));
	json_object_set_new(j, "searches_ok", json_integer((json_int_t)ok));
	json_object_set_new(j, "searches_per_s", json_real(ok / dur));
	json_object_set_new(j, "search_timeouts", json_integer((json_int_t)to));
	json_object_set_new(j, "search_busy", json_integer((json_int_t)busy));
	json_object_set_new(j, "search_other", json_integer((json_int_t)other));
	json_lat(j, "search_ms", &all);
}

/* ---- uploaders (scenario U): POST /api/files on threads of their own ---- */

/* What one upload thread counts (uploads ending in the window). */
struct uploader {
	pthread_t thread;
	const char *token;
	char room[64];
	struct hist lat;
	uint64_t ok, failed;
};
static struct uploader *uploaders;
static atomic_int upload_stop;
static long upload_rss_max; /* the server's highest VmRSS meanwhile */

/* One upload of o.upload_mb MiB (random bytes, written 64 KiB at a
 * time); the HTTP status, or -1. */
static int
upload_once(struct uploader *u, const char *buf, size_t bufsz)
{
	struct timeval tv = {60, 0};
	uint64_t total = (uint64_t)o.upload_mb << 20, sent = 0;
	char head[1024], resp[4096];
	int fd, status = -1, n;
	ssize_t r;

	if ((fd = tcp_connect(0)) < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	n = snprintf(head, sizeof head,
	             "POST /api/files?room=%s&name=bench.bin HTTP/1.1\r\n"
	             "Host: %s:%d\r\nConnection: close\r\n"
	             "Authorization: Bearer %s\r\n"
	             "Content-Type: application/octet-stream\r\n"
	             "Content-Length: %llu\r\n\r\n",
	             u->room, o.host, o.port, u->token,
	             (unsigned long long)total);
	if (write(fd, head, (size_t)n) != n)
		goto out;
	while (sent < total) {
		size_t k = total - sent < bufsz ? (size_t)(total - sent) : bufsz;

		if ((r = write(fd, buf, k)) <= 0)
			goto out;
		sent += (uint64_t)r;
	}
	r = read(fd, resp, sizeof resp - 1);
	if (r > 0) {
		resp[r] = '\0';
		if (sscanf(resp, "HTTP/1.%*d %d", &status) != 1)
			status = -1;
	}
out:
	close(fd);
	return status;
}

/* An upload thread: uploads in a closed loop until told to stop. */
static void *
uploader_main(void *arg)
{
	struct uploader *u = arg;
	size_t bufsz = 65536;
	char *buf = xrealloc(NULL, bufsz);
	uint64_t t0, t1;
	int st;

	for (size_t i = 0; i < bufsz; i++)
		buf[i] = (char)(rand() & 0xff);
	while (!atomic_load(&upload_stop)) {
		t0 = now_ns();
		st = upload_once(u, buf, bufsz);
		t1 = now_ns();
		if (t1 >= t_ws && t1 <= t_we) {
			hist_add(&u->lat, t1 - t0);
			if (st == 201)
				u->ok++;
			else
				u->failed++;
		}
	}
	free(buf);
	return NULL;
}

/* Samples the server's RSS while the uploads run. */
static void *
upload_rss_main(void *arg)
{
	(void)arg;
	while (!atomic_load(&upload_stop)) {
		long kb = srv_rss();

		if (kb > upload_rss_max)
			upload_rss_max = kb;
		usleep(100000);
	}
	return NULL;
}
static pthread_t upload_rss_thread;

/* Starts the upload threads: uploader i is connection i's user, in
 * connection i's room (of which it is a member). */
static void
uploaders_start(void)
{
	uploaders = calloc((size_t)o.uploaders, sizeof *uploaders);
	upload_rss_max = srv_rss();
	for (int i = 0; i < o.uploaders; i++) {
		struct conn *c = &conns[i % o.conns];

		uploaders[i].token = tokens[c->user];
		snprintf(uploaders[i].room, sizeof uploaders[i].room, "%s%d",
		         o.room_prefix, c->room);
		if (pthread_create(&uploaders[i].thread, NULL, uploader_main,
		                   &uploaders[i]) != 0)
			die("%s", "cannot start an upload thread");
	}
	pthread_create(&upload_rss_thread, NULL, upload_rss_main, NULL);
}

/* Stops the upload threads and adds their counts to j. */
static void
uploaders_finish(json_t *j, double dur)
{
	struct hist all;
	uint64_t ok = 0, failed = 0;

	memset(&all, 0, sizeof all);
	atomic_store(&upload_stop, 1);
	pthread_join(upload_rss_thread, NULL);
	for (int i = 0; i < o.uploaders; i++) {
		struct uploader *u = &uploaders[i];

		pthread_join(u->thread, NULL);
		ok += u->ok;
		failed += u->failed;
		for (int b = 0; b < HIST_BUCKETS; b++)
			all.b[b] += u->lat.b[b];
		all.n += u->lat.n;
		if (u->lat.max > all.max)
			all.max = u->lat.max;
	}
	free(uploaders);
	printf("  %d uploaders of %d MiB: %llu stored (%.1f MiB/s), %llu "
	       "failed; server RSS max %ld KiB\n",
	       o.uploaders, o.upload_mb, (unsigned long long)ok,
	       ok * o.upload_mb / dur, (unsigned long long)failed,
	       upload_rss_max);
	print_lat("upload", &all);
	json_object_set_new(j, "uploaders", json_integer(o.uploaders));
	json_object_set_new(j, "upload_mb", json_integer(o.upload_mb));
	json_object_set_new(j, "uploads_ok", json_integer((json_int_t)ok));
	json_object_set_new(j, "uploads_failed",
	                    json_integer((json_int_t)failed));
	json_object_set_new(j, "upload_mib_per_s",
	                    json_real(ok * o.upload_mb / dur));
	json_object_set_new(j, "upload_rss_max_kib",
	                    json_integer(upload_rss_max));
	json_lat(j, "upload_ms", &all);
}

/* Starts the measured phase: sending, history or the storm. */
static void
run_start(void)
{
	uint64_t now = now_ns();
	int i, w;

	setup_s = (double)(now - t_setup0) / 1e9;
	t_run = now;
	t_ws = now + (uint64_t)(o.warmup * 1e9);
	t_we = t_ws + (uint64_t)(o.duration * 1e9);
	t_end = t_we;
	phase = PH_RUN;
	if (o.mode == M_IDLE) {
		t_ws = now;
		t_end = t_we = now + (uint64_t)(o.duration * 1e9);
		return;
	}
	if (o.mode == M_RECONNECT) {
		t_end = t_we = t_ws = now;
		return;
	}
	if (o.mode == M_HISTORY) {
		for (i = 0; i < o.conns; i++)
			if (conns[i].state == CS_READY)
				send_history(&conns[i]);
		return;
	}
	if (o.searchers > 0)
		searchers_start();
	if (o.uploaders > 0)
		uploaders_start();
	if (o.rate <= 0)
		for (i = 0; i < nsenders; i++)
			for (w = 0; w < o.window; w++)
				send_message(&conns[sender_list[i]], now_ns());
	else
		pace_cb(-1, 0, NULL);
}

/* Reconnect storm: drops every client and reconnects them at once. */
static void
storm_start(void)
{
	uint64_t now;
	int i;

	for (i = 0; i < o.conns; i++) {
		struct conn *c = &conns[i];

		c->target_seq = room_last[c->room];
		c->since = c->target_seq - o.resync_k;
		if (c->since < 0)
			c->since = 0;
		c->last_seq = c->since;
		if (c->state == CS_READY) {
			event_del(&c->rev);
			event_del(&c->wev);
			close(c->fd);
			c->fd = -1;
		}
	}
	phase = PH_STORM;
	nfail = ndead = 0;
	now = now_ns();
	t_ws = now;
	for (i = 0; i < o.conns; i++) {
		conns[i].t_start = now;
		conn_start(&conns[i]);
	}
}

/* The 1 ms ticker: moves between phases. */
static void
tick_cb(evutil_socket_t fd, short what, void *arg)
{
	uint64_t now = now_ns();

	(void)fd, (void)what, (void)arg;
	if (phase == PH_SETUP) {
		if (nready + nfail >= o.conns && inflight_setup <= 0) {
			if (nfail > 0 && nready == 0)
				die("%s", "no connection could be set up");
			if (o.mode == M_IDLE || o.mode == M_LOAD)
				srv_cpu_ws = srv_cpu();
			run_start();
		} else if (now - t_setup0 > (uint64_t)(o.timeout * 1e9)) {
			fprintf(stderr,
			        "chatbench: set-up timed out: %d of %d "
			        "ready\n",
			        nready, o.conns);
			exit(3);
		}
		return;
	}
	if (phase == PH_STORM) {
		if (resynced + nfail >= o.conns ||
		    now - t_ws > (uint64_t)(o.timeout * 1e9)) {
			t_we = now;
			run_finish();
		}
		return;
	}
	if (phase == PH_RUN && now >= t_ws && ru_ws.ru_utime.tv_sec == 0 &&
	    ru_ws.ru_utime.tv_usec == 0) {
		getrusage(RUSAGE_SELF, &ru_ws);
		if (ru_ws.ru_utime.tv_usec == 0)
			ru_ws.ru_utime.tv_usec = 1;
		srv_cpu_ws = srv_cpu();
	}
	if (phase == PH_RUN && now >= t_end) {
		getrusage(RUSAGE_SELF, &ru_we);
		srv_cpu_we = srv_cpu();
		if (o.mode == M_IDLE || o.mode == M_LOAD)
			rss_after = srv_rss();
		if (o.mode == M_RECONNECT) {
			storm_start();
			return;
		}
		phase = PH_DRAIN;
		t_drain_end = now + (uint64_t)(o.drain * 1e9);
	}
	if (phase == PH_DRAIN) {
		uint64_t expected = 0;
		int i;

		for (i = 0; i < nsenders; i++)
			expected += (uint64_t)conns[sender_list[i]].next_n;
		expected *= (uint64_t)cpr;
		if (uniq_total >= expected || now >= t_drain_end ||
		    o.mode != M_LOAD)
			run_finish();
	}
}

/* Prints a latency line from h. */
static void
print_lat(const char *name, const struct hist *h)
{
	printf("  %-10s p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f ms "
	       "(n=%llu)\n",
	       name, hist_q(h, 0.5) / 1e6, hist_q(h, 0.9) / 1e6,
	       hist_q(h, 0.99) / 1e6, hist_q(h, 0.999) / 1e6, h->max / 1e6,
	       (unsigned long long)h->n);
}

/* Adds a latency object to j. */
static void
json_lat(json_t *j, const char *key, const struct hist *h)
{
	json_object_set_new(
	    j, key,
	    json_pack("{s:f,s:f,s:f,s:f,s:f,s:I}", "p50", hist_q(h, 0.5) / 1e6,
	              "p90", hist_q(h, 0.9) / 1e6, "p99", hist_q(h, 0.99) / 1e6,
	              "p999", hist_q(h, 0.999) / 1e6, "max", h->max / 1e6, "n",
	              (json_int_t)h->n));
}

/* Prints and adds to j the bytes read in the window, per unit (n of
 * them): as they came, and as plain frames. */
static void
summary_bytes(json_t *j, uint64_t n, const char *unit)
{
	double d = n ? (double)n : 1;

	printf("  socket bytes %llu (%.1f per %s), as plain frames %llu "
	       "(%.1f): %.1f %%; %llu of %llu frames compressed\n",
	       (unsigned long long)wire_window, wire_window / d, unit,
	       (unsigned long long)plain_window, plain_window / d,
	       plain_window ? 100.0 * wire_window / plain_window : 0,
	       (unsigned long long)zframes_window,
	       (unsigned long long)frames_window);
	json_object_set_new(j, "deflate", json_boolean(o.deflate));
	json_object_set_new(j, "text_bytes", json_integer(o.text_bytes));
	json_object_set_new(j, "wire_bytes",
	                    json_integer((json_int_t)wire_window));
	json_object_set_new(j, "plain_bytes",
	                    json_integer((json_int_t)plain_window));
	json_object_set_new(j, "frames",
	                    json_integer((json_int_t)frames_window));
	json_object_set_new(j, "deflated_frames",
	                    json_integer((json_int_t)zframes_window));
	if (n > 0) {
		json_object_set_new(j, "wire_bytes_per_unit",
		                    json_real(wire_window / d));
		json_object_set_new(j, "plain_bytes_per_unit",
		                    json_real(plain_window / d));
	}
}

/* Prints and adds to j the server's VmRSS growth per connection. */
static void
summary_rss(json_t *j, const char *note)
{
	double per = (rss_after - rss_before) / (double)(nready ? nready : 1);

	if (rss_before < 0 || rss_after < 0)
		return;
	printf("  server RSS %ld KiB -> %ld KiB: %.2f KiB per connection %s\n",
	       rss_before, rss_after, per, note);
	json_object_set_new(j, "rss_before_kib", json_integer(rss_before));
	json_object_set_new(j, "rss_after_kib", json_integer(rss_after));
	json_object_set_new(j, "rss_per_conn_kib", json_real(per));
}

/* Prints the human summary and the JSON line, then stops the loop. */
static void
run_finish(void)
{
	static const char *names[] = {"load", "idle", "history", "reconnect",
	                              "healthz"};
	double dur = (double)(t_we - t_ws) / 1e9, gen_cpu, srv_cpu;
	uint64_t expected = 0, lost;
	json_t *j;
	char *s;
	int i;

	phase = PH_DONE;
	for (i = 0; i < nsenders; i++)
		expected += (uint64_t)conns[sender_list[i]].next_n;
	expected *= (uint64_t)cpr;
	lost = expected > uniq_total ? expected - uniq_total : 0;
	gen_cpu = ru_cpu(&ru_we) - ru_cpu(&ru_ws);
	srv_cpu = srv_cpu_we - srv_cpu_ws;
	if (nsrv_pids == 0 || srv_cpu_ws < 0)
		srv_cpu = -1;
	j = json_pack("{s:s,s:s,s:i,s:i,s:i,s:i,s:f,s:s,s:f,s:f}", "label",
	              o.label, "mode", names[o.mode], "conns", o.conns, "ready",
	              nready, "rooms", o.rooms, "senders", nsenders, "rate",
	              o.rate, "loop", o.rate > 0 ? "open" : "closed",
	              "duration_s", dur, "setup_s", setup_s);
	printf("chatbench %s [%s] conns %d (ready %d, failed %d, dropped %d) "
	       "rooms %d, set-up %.2f s\n",
	       names[o.mode], o.label, o.conns, nready, nfail, ndead, o.rooms,
	       setup_s);
	if (o.mode == M_LOAD) {
		double dps = dur > 0 ? deliv_window / dur : 0;

		if (o.rate > 0)
			printf("  open loop at %.0f msg/s", o.rate);
		else
			printf("  closed loop, window %d", o.window);
		printf(", %d senders: sent %llu (%.0f/s)\n", nsenders,
		       (unsigned long long)sent_total, sent_window / dur);
		printf("  deliveries %.0f/s; received %llu of %llu expected: "
		       "lost %llu, dup %llu, out-of-order %llu\n",
		       dps, (unsigned long long)uniq_total,
		       (unsigned long long)expected, (unsigned long long)lost,
		       (unsigned long long)dups, (unsigned long long)ooo);
		print_lat("latency", &lat);
		if (nports > 1) {
			print_lat("local", &lat_local);
			print_lat("remote", &lat_remote);
			json_lat(j, "latency_local_ms", &lat_local);
			json_lat(j, "latency_remote_ms", &lat_remote);
			json_object_set_new(j, "nodes", json_integer(nports));
		}
		json_object_set_new(j, "sent",
		                    json_integer((json_int_t)sent_total));
		json_object_set_new(j, "sent_per_s",
		                    json_real(sent_window / dur));
		json_object_set_new(j, "deliveries_per_s", json_real(dps));
		json_object_set_new(j, "received",
		                    json_integer((json_int_t)uniq_total));
		json_object_set_new(j, "expected",
		                    json_integer((json_int_t)expected));
		json_object_set_new(j, "lost", json_integer((json_int_t)lost));
		json_object_set_new(j, "duplicates",
		                    json_integer((json_int_t)dups));
		json_object_set_new(j, "out_of_order",
		                    json_integer((json_int_t)ooo));
		json_lat(j, "latency_ms", &lat);
		if (srv_cpu >= 0 && deliv_window > 0)
			json_object_set_new(
			    j, "server_cpu_us_per_delivery",
			    json_real(srv_cpu * 1e6 / deliv_window));
		if (o.searchers > 0)
			searchers_finish(j, dur);
		if (o.uploaders > 0)
			uploaders_finish(j, dur);
		summary_bytes(j, deliv_window, "delivery");
		summary_rss(j, "(the server's growth since before the "
		               "connections; on a fresh server: per "
		               "connection under load)");
	} else if (o.mode == M_HISTORY) {
		printf("  history pages of 50: %.0f queries/s\n",
		       history_window / dur);
		print_lat("latency", &lat);
		json_object_set_new(j, "queries_per_s",
		                    json_real(history_window / dur));
		json_lat(j, "latency_ms", &lat);
		if (srv_cpu >= 0 && history_window > 0)
			json_object_set_new(
			    j, "server_cpu_us_per_query",
			    json_real(srv_cpu * 1e6 / history_window));
		summary_bytes(j, history_window, "query");
	} else if (o.mode == M_IDLE) {
		summary_rss(j, "");
		json_object_set_new(
		    j, "connects_per_s",
		    json_real(setup_s > 0 ? nready / setup_s : 0));
	} else if (o.mode == M_RECONNECT) {
		printf("  storm: %d of %d resynced in %.3f s, %llu messages "
		       "replayed, %d truncated, %llu out-of-order\n",
		       resynced, o.conns, dur, (unsigned long long)replayed,
		       truncated_n, (unsigned long long)ooo);
		print_lat("resync", &resync);
		json_object_set_new(j, "resynced", json_integer(resynced));
		json_object_set_new(j, "all_resynced_ms", json_real(dur * 1e3));
		json_object_set_new(j, "replayed",
		                    json_integer((json_int_t)replayed));
		json_object_set_new(j, "truncated", json_integer(truncated_n));
		json_object_set_new(j, "out_of_order",
		                    json_integer((json_int_t)ooo));
		json_lat(j, "resync_ms", &resync);
	}
	if (o.mode != M_RECONNECT) {
		printf("  generator CPU %.0f %%",
		       dur > 0 ? 100 * gen_cpu / dur : 0);
		if (srv_cpu >= 0)
			printf(", server CPU %.0f %%", 100 * srv_cpu / dur);
		printf("\n");
		json_object_set_new(
		    j, "gen_cpu_pct",
		    json_real(dur > 0 ? 100 * gen_cpu / dur : 0));
		if (srv_cpu >= 0)
			json_object_set_new(j, "server_cpu_pct",
			                    json_real(100 * srv_cpu / dur));
	}
	json_object_set_new(j, "failed", json_integer(nfail));
	json_object_set_new(j, "dropped", json_integer(ndead));
	json_object_set_new(j, "errors", json_integer((json_int_t)errors_recv));
	s = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(6));
	printf("%s\n", s);
	fflush(stdout);
	free(s);
	json_decref(j);
	event_base_loopbreak(base);
}

/* Prints the usage and exits. */
static void
usage(void)
{
	fprintf(stderr,
	        "usage: chatbench [--host IP] [--port N | --ports N,N,...] "
	        "[--mode "
	        "load|idle|history|reconnect|healthz]\n"
	        "  [--conns C] [--rooms R] [--users U] [--senders S] [--rate "
	        "MSG_PER_S (0: closed loop)]\n"
	        "  [--window W] [--duration S] [--warmup S] [--drain S] "
	        "[--parallel N] [--pad BYTES]\n"
	        "  [--text-bytes N] [--deflate 0|1]\n"
	        "  [--tokens FILE] [--user-prefix P] [--room-prefix P] "
	        "[--server-pid PID[,PID...]]\n"
	        "  [--resync-k K] [--timeout S] [--label TEXT]\n"
	        "  [--searchers N] [--search-q URL_ENCODED_QUERY]\n"
	        "  [--uploaders N] [--upload-mb MIB]\n");
	exit(2);
}

/* Parses a comma-separated list of positive integers into out (at most
 * max); exits on a bad one. */
static void
parse_ints(const char *v, int *out, int max, int *n, const char *what)
{
	char *end;
	long x;

	*n = 0;
	for (;;) {
		x = strtol(v, &end, 10);
		if (end == v || x <= 0 || x > 0x7fffffff || *n >= max ||
		    (*end != ',' && *end != '\0'))
			die("bad list of numbers in %s", what);
		out[(*n)++] = (int)x;
		if (*end == '\0')
			return;
		v = end + 1;
	}
}

/* Parses argv into o. */
static void
parse_args(int argc, char **argv)
{
	int i;

	ports[0] = o.port;
	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (v == NULL)
			usage();
		i++;
		if (strcmp(a, "--host") == 0)
			o.host = v;
		else if (strcmp(a, "--port") == 0)
			o.port = ports[0] = atoi(v);
		else if (strcmp(a, "--ports") == 0)
			parse_ints(v, ports, MAX_PORTS, &nports, "--ports");
		else if (strcmp(a, "--mode") == 0)
			o.mode = strcmp(v, "idle") == 0        ? M_IDLE
			         : strcmp(v, "history") == 0   ? M_HISTORY
			         : strcmp(v, "reconnect") == 0 ? M_RECONNECT
			         : strcmp(v, "healthz") == 0   ? M_HEALTHZ
			                                       : M_LOAD;
		else if (strcmp(a, "--conns") == 0)
			o.conns = atoi(v);
		else if (strcmp(a, "--rooms") == 0)
			o.rooms = atoi(v);
		else if (strcmp(a, "--users") == 0)
			o.users = atoi(v);
		else if (strcmp(a, "--senders") == 0)
			o.senders = atoi(v);
		else if (strcmp(a, "--rate") == 0)
			o.rate = atof(v);
		else if (strcmp(a, "--window") == 0)
			o.window = atoi(v);
		else if (strcmp(a, "--duration") == 0)
			o.duration = atof(v);
		else if (strcmp(a, "--warmup") == 0)
			o.warmup = atof(v);
		else if (strcmp(a, "--drain") == 0)
			o.drain = atof(v);
		else if (strcmp(a, "--parallel") == 0)
			o.parallel = atoi(v);
		else if (strcmp(a, "--pad") == 0)
			o.text_pad = atoi(v);
		else if (strcmp(a, "--text-bytes") == 0)
			o.text_bytes = atoi(v);
		else if (strcmp(a, "--deflate") == 0)
			o.deflate = atoi(v);
		else if (strcmp(a, "--tokens") == 0)
			o.tokens = v;
		else if (strcmp(a, "--user-prefix") == 0)
			o.user_prefix = v;
		else if (strcmp(a, "--room-prefix") == 0)
			o.room_prefix = v;
		else if (strcmp(a, "--server-pid") == 0)
			parse_ints(v, srv_pids, MAX_PIDS, &nsrv_pids,
			           "--server-pid");
		else if (strcmp(a, "--resync-k") == 0)
			o.resync_k = atoi(v);
		else if (strcmp(a, "--timeout") == 0)
			o.timeout = atof(v);
		else if (strcmp(a, "--label") == 0)
			o.label = v;
		else if (strcmp(a, "--searchers") == 0)
			o.searchers = atoi(v);
		else if (strcmp(a, "--search-q") == 0)
			o.search_q = v;
		else if (strcmp(a, "--uploaders") == 0)
			o.uploaders = atoi(v);
		else if (strcmp(a, "--upload-mb") == 0)
			o.upload_mb = atoi(v);
		else
			usage();
	}
	if (o.conns < 1 || o.rooms < 1 || o.rooms > 100000 ||
	    o.conns % o.rooms != 0)
		die("%s", "--conns must be a multiple of --rooms (<= 100000)");
	if (o.text_pad < 0 || o.text_pad > 4000 || o.text_bytes < 0 ||
	    o.text_bytes > 4000)
		die("%s", "--pad and --text-bytes must be 0..4000");
	o.port = ports[0];
	o.server_pid = nsrv_pids > 0 ? srv_pids[0] : 0;
	if (o.users <= 0)
		o.users = o.rooms;
	if (o.users % o.rooms != 0 || o.users / o.rooms > o.conns / o.rooms)
		die("%s", "--users must be a multiple of --rooms, <= --conns");
	if (o.window < 1 || o.parallel < 1)
		die("%s", "--window and --parallel must be positive");
}

/* Raises the open-file limit to its hard maximum. */
static void
raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_cur < (rlim_t)o.conns + 64)
		fprintf(stderr,
		        "chatbench: open-file limit %llu is below "
		        "--conns\n",
		        (unsigned long long)rl.rlim_cur);
}

int
main(int argc, char **argv)
{
	struct event *tick;
	struct timeval ms = {0, 1000};
	int i;

	parse_args(argc, argv);
	signal(SIGPIPE, SIG_IGN);
	if (o.mode == M_HEALTHZ)
		return healthz_wait();
	raise_nofile();
	cpr = o.conns / o.rooms;
	upr = o.users / o.rooms;
	spr = o.senders >= o.rooms ? o.senders / o.rooms : 1;
	if (o.mode == M_IDLE || o.mode == M_LOAD)
		rss_before = srv_rss();
	if (o.text_bytes > 0)
		filler_init();
	tokens_load(o.users);
	{
		struct event_config *cfg = event_config_new();

		event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER);
		base = event_base_new_with_config(cfg);
		event_config_free(cfg);
	}
	pace_ev = evtimer_new(base, pace_cb, NULL);
	conns = calloc((size_t)o.conns, sizeof *conns);
	sender_list = calloc((size_t)o.conns, sizeof *sender_list);
	for (i = 0; i < o.conns; i++)
		conn_layout(&conns[i], i);
	/* interleave rooms so consecutive sends go to different rooms */
	for (int j = 0; j < spr; j++)
		for (int r = 0; r < o.rooms; r++)
			if (conns[r * cpr + j].sender >= 0)
				sender_list[nsenders++] = r * cpr + j;
	tick = event_new(base, -1, EV_PERSIST, tick_cb, NULL);
	event_add(tick, &ms);
	t_setup0 = now_ns();
	phase = PH_SETUP;
	while (inflight_setup < o.parallel && next_start < o.conns)
		conn_start(&conns[next_start++]);
	event_base_dispatch(base);
	return phase == PH_DONE ? 0 : 1;
}
