/* chatd/server.c — listener, signals, start-up and shutdown */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/event.h>
#include <event2/listener.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "chatd/gate.h"
#include "chatd/http.h"
#include "chatd/log.h"
#include "chatd/server.h"
#include "chatd/ws_deflate.h"
#include "storage/db.h"
#include "storage/storage.h"

int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Pending connections the kernel may queue: a reconnect storm of a
 * thousand clients must not overflow it (libevent's default, 128, made
 * the excess wait a second for their SYN to be retried). The kernel
 * caps it at net.core.somaxconn. */
#define LISTEN_BACKLOG 4096

/* Parses ADDR:PORT or [V6ADDR]:PORT into ss. 0 or -1. */
static int
server_parse_listen(const char *spec, struct sockaddr_storage *ss,
    socklen_t *len)
{
	char host[256];
	const char *colon = strrchr(spec, ':');
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	char *end;
	long port;
	size_t hl;

	if (colon == NULL)
		return -1;
	port = strtol(colon + 1, &end, 10);
	if (*end != '\0' || colon[1] == '\0' || port < 0 || port > 65535)
		return -1;
	hl = colon - spec;
	if (hl >= sizeof host)
		return -1;
	memcpy(host, spec, hl);
	host[hl] = '\0';
	memset(ss, 0, sizeof *ss);
	if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') {
		host[hl - 1] = '\0';
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		*len = sizeof *sin6;
		return inet_pton(AF_INET6, host + 1, &sin6->sin6_addr) == 1 ?
			   0 : -1;
	}
	sin->sin_family = AF_INET;
	sin->sin_port = htons(port);
	*len = sizeof *sin;
	if (hl == 0 || strcmp(host, "*") == 0)
		return 0;
	if (strcmp(host, "localhost") == 0)
		strcpy(host, "127.0.0.1");
	return inet_pton(AF_INET, host, &sin->sin_addr) == 1 ? 0 : -1;
}

/* Formats a peer address for logs and per-address limits. A dual-stack
 * listener's IPv4 peers (::ffff:a.b.c.d) are written as IPv4: one key
 * per client, as --trusted-proxy and X-Forwarded-For write them. */
static void
server_addr_string(const struct sockaddr *sa, char *out, size_t outlen)
{
	const struct in6_addr *a6 = &((struct sockaddr_in6 *)sa)->sin6_addr;

	if (sa->sa_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(a6))
		inet_ntop(AF_INET, &a6->s6_addr[12], out, outlen);
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, a6, out, outlen);
	else if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)sa)->sin_addr, out,
		    outlen);
	else
		snprintf(out, outlen, "unix");
}

/* Stops accepting while at MAX_CLIENTS or out of descriptors. */
static void
server_pause_accept(struct server *srv)
{
	if (!srv->listener_paused && srv->listener != NULL) {
		evconnlistener_disable(srv->listener);
		srv->listener_paused = 1;
	}
}

static void
server_resume_accept(struct server *srv)
{
	if (srv->listener_paused && srv->listener != NULL &&
	    !srv->env.stopping) {
		evconnlistener_enable(srv->listener);
		srv->listener_paused = 0;
	}
}

static void
server_accept_cb(struct evconnlistener *l, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct server *srv = arg;
	char addr[64];
	int one = 1;

	(void)l;
	(void)salen;
	server_addr_string(sa, addr, sizeof addr);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	conn_accept(&srv->env, fd, addr);
	if (srv->env.nconns >= (unsigned)srv->cfg->max_clients) {
		log_warn("%s: %u connections: accept paused", __func__,
		    srv->env.nconns);
		server_pause_accept(srv);
	}
}

/* Out of descriptors (or another accept error): pause, retry soon. */
static void
server_accept_error_cb(struct evconnlistener *l, void *arg)
{
	struct server *srv = arg;
	struct timeval tv = {1, 0};
	int err = EVUTIL_SOCKET_ERROR();

	(void)l;
	log_warn("%s: accept: %s; pausing for 1 s", __func__,
	    evutil_socket_error_to_string(err));
	server_pause_accept(srv);
	evtimer_add(srv->accept_timer, &tv);
}

static void
server_accept_timer_cb(int fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	server_resume_accept(arg);
}

/* A connection left (conn_env gone): lets accept resume if it was
 * paused, or ends the loop when the last one leaves while stopping. */
static void
server_conn_gone(struct conn_env *env)
{
	struct server *srv = env->owner;

	if (env->stopping) {
		if (env->nconns == 0)
			event_base_loopexit(srv->base, NULL);
		return;
	}
	if (env->nconns < (unsigned)srv->cfg->max_clients &&
	    !evtimer_pending(srv->accept_timer, NULL))
		server_resume_accept(srv);
}

/* SIGTERM/SIGINT: stop accepting, finish the work, close WebSockets with
 * 1001 and leave the loop when they are gone (or after a grace period). */
static void
server_signal_cb(int sig, short what, void *arg)
{
	struct server *srv = arg;
	struct timeval grace = {3, 0};
	struct conn *c, *next;

	(void)what;
	if (srv->env.stopping)
		return;
	log_info("%s: %s: shutting down", __func__, strsignal(sig));
	srv->env.stopping = 1;
	if (srv->listener != NULL) {
		evconnlistener_free(srv->listener);
		srv->listener = NULL;
	}
	if (srv->env.app->stop != NULL)
		srv->env.app->stop(srv);
	for (c = TAILQ_FIRST(&srv->env.conns); c != NULL; c = next) {
		next = TAILQ_NEXT(c, link);
		if (c->mode == CONN_MODE_WS)
			conn_ws_close(c, 1001, "server shutting down");
		else if (c->mode == CONN_MODE_HTTP)
			conn_flush_close(c, "server shutting down");
	}
	if (srv->env.nconns == 0)
		event_base_loopexit(srv->base, NULL);
	else
		event_base_loopexit(srv->base, &grace);
}

/* Loads the certificate and key for --tls-cert/--tls-key. 0 or -1. */
static int
server_tls_setup(struct server *srv)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	char buf[256];

	if (ctx == NULL)
		return -1;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
	if (SSL_CTX_use_certificate_chain_file(ctx, srv->cfg->tls_cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, srv->cfg->tls_key,
		SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		ERR_error_string_n(ERR_get_error(), buf, sizeof buf);
		fprintf(stderr, "chatd: TLS certificate or key: %s\n", buf);
		SSL_CTX_free(ctx);
		return -1;
	}
	srv->ssl = ctx;
	return 0;
}

/* Fills what every connection gets from the server: conn includes no
 * header above its layer, so the loop, TLS, timeouts, counters, the
 * error responses of http and the accounting reach it through here. */
static void
server_env_setup(struct server *srv, const struct conn_app *app)
{
	struct conn_env *env = &srv->env;

	env->base = srv->base;
	env->ssl = srv->ssl;
	env->app = app;
	env->owner = srv;
	env->m = &srv->m;
	env->header_timeout = srv->cfg->header_timeout;
	env->idle_timeout = srv->cfg->idle_timeout;
	env->ping_interval = srv->cfg->ping_interval;
	env->ws_max_message = srv->ws_max_message;
	env->bad_request = http_respond_error_status;
	env->gone = server_conn_gone;
}

int
server_start(struct server *srv, struct config *cfg,
    const struct conn_app *app)
{
	struct sockaddr_storage ss;
	socklen_t sslen;
	char err[512];

	srv->cfg = cfg;
	conn_env_init(&srv->env);
	srv->started_ms = now_ms();
	signal(SIGPIPE, SIG_IGN);
	if (server_parse_listen(cfg->listen, &ss, &sslen) != 0) {
		fprintf(stderr, "chatd: --listen %s: expected ADDR:PORT\n",
		    cfg->listen);
		return -1;
	}
	if (cfg->web_dir != NULL &&
	    realpath(cfg->web_dir, srv->web_root) == NULL) {
		fprintf(stderr, "chatd: --web %s: %s\n", cfg->web_dir,
		    strerror(errno));
		return -1;
	}
	if (cfg->db_path != NULL &&
	    db_open(&srv->db, cfg->db_path, err, sizeof err) != 0) {
		char shown[4096];

		fprintf(stderr, "chatd: --db %s: %s\n",
		    config_redact(cfg->db_path, shown, sizeof shown), err);
		return -1;
	}
	if (srv->db != NULL &&
	    (db_set_durability(srv->db, cfg->durability_full
	                                    ? DB_DURABILITY_FULL
	                                    : DB_DURABILITY_NORMAL) != 0 ||
	     db_checkpointer_start(srv->db) != 0)) {
		fprintf(stderr, "chatd: --db %s: cannot configure\n",
		    cfg->db_path);
		return -1;
	}
	/* The loop never sleeps in SQLite: a lock another process holds
	 * fails at once, and changes are retried from a timer (chat.c). On
	 * PostgreSQL no statement or lock wait passes --db-wait-ms. */
	if (srv->db != NULL)
		db_set_busy_timeout(srv->db, 0);
	if (srv->db != NULL && db_set_wait_limit(srv->db, cfg->db_wait_ms) != 0) {
		fprintf(stderr, "chatd: --db: cannot set --db-wait-ms\n");
		return -1;
	}
	if (cfg->tls_cert != NULL && server_tls_setup(srv) != 0)
		return -1;
	srv->base = event_base_new();
	/* PostgreSQL: loop-side storage calls run as gate jobs on a fiber,
	 * so that a wait for the server does not block the loop. */
	if (cfg->db_path != NULL && db_url_is_pg(cfg->db_path)) {
		_Static_assert(GATE_WAIT_READ == DB_WAIT_READ &&
		    GATE_WAIT_WRITE == DB_WAIT_WRITE, "one set of wait flags");
		gate_start(srv->base);
		db_set_waiter(gate_db_wait);
	}
	server_env_setup(srv, app);
	srv->accept_timer = evtimer_new(srv->base, server_accept_timer_cb, srv);
	srv->listener = evconnlistener_new_bind(srv->base, server_accept_cb,
	    srv, LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE, LISTEN_BACKLOG,
	    (struct sockaddr *)&ss, sslen);
	if (srv->listener == NULL) {
		fprintf(stderr, "chatd: cannot listen on %s: %s\n",
		    cfg->listen, strerror(errno));
		return -1;
	}
	evconnlistener_set_error_cb(srv->listener, server_accept_error_cb);
	/* The shutdown runs after the work queued before it (gate.h). */
	srv->sig_term = gate_event_new(srv->base, SIGTERM,
	    EV_SIGNAL | EV_PERSIST, server_signal_cb, srv);
	srv->sig_int = gate_event_new(srv->base, SIGINT, EV_SIGNAL | EV_PERSIST,
	    server_signal_cb, srv);
	evsignal_add(srv->sig_term, NULL);
	evsignal_add(srv->sig_int, NULL);
	return 0;
}

int
server_run(struct server *srv)
{
	log_info("chatd listening on %s%s", srv->cfg->listen,
	    srv->ssl ? " (TLS)" : "");
	gate_loop_running(1);
	event_base_dispatch(srv->base);
	gate_loop_running(0);
	/* A job still waiting fails; queued ones run now, blocking. */
	gate_stop();
	log_info("chatd stopped");
	return 0;
}

void
server_close_conns(struct server *srv)
{
	struct conn *c;

	while ((c = TAILQ_FIRST(&srv->env.conns)) != NULL)
		conn_close(c, "server exit");
}

void
server_free(struct server *srv)
{
	server_close_conns(srv);
	if (srv->listener != NULL)
		evconnlistener_free(srv->listener);
	if (srv->sig_term != NULL)
		gate_event_free(srv->sig_term);
	if (srv->sig_int != NULL)
		gate_event_free(srv->sig_int);
	if (srv->accept_timer != NULL)
		event_free(srv->accept_timer);
	if (srv->base != NULL)
		event_base_free(srv->base);
	if (srv->ssl != NULL)
		SSL_CTX_free(srv->ssl);
	db_close(srv->db);
	ws_deflate_free(srv->env.deflate);
	srv->env.deflate = NULL;
}
