/* tests/tools/ws_echo.c — WebSocket echo server on chatd's engine and glue,
 * for conformance testing (Autobahn fuzzingclient) and integration tests.
 * usage: ws_echo PORT — accepts the upgrade on any path, echoes every
 * text and binary message; messages up to 64 MiB. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chatd/conn.h"
#include "chatd/http.h"
#include "chatd/log.h"
#include "chatd/server.h"
#include "chatd/ws_handshake.h"

#define ECHO_MAX_MESSAGE (64u * 1024 * 1024)

/* Any path upgrades; anything that is not an upgrade gets the error. */
static void
echo_request(struct conn *c, const struct http_request *req)
{
	char accept[WS_ACCEPT_LEN + 1];
	int status = ws_handshake_check(req, 0, NULL, accept);

	if (status != 0) {
		http_respond_error(c, req, status, "bad_request",
		    "WebSocket upgrade expected");
		return;
	}
	conn_upgrade(c, accept);
}

static int
echo_message(struct conn *c, int binary, uint8_t *data, size_t len)
{
	conn_ws_send_op(c, binary ? WS_OP_BINARY : WS_OP_TEXT, data, len);
	return 0;
}

static const struct conn_app echo_app = {
	.request = echo_request,
	.ws_message = echo_message,
};

int
main(int argc, char **argv)
{
	static struct config cfg;
	static struct server srv;
	char listen[64];

	if (argc != 2 || atoi(argv[1]) <= 0) {
		fprintf(stderr, "usage: ws_echo PORT\n");
		return 2;
	}
	snprintf(listen, sizeof listen, "127.0.0.1:%d", atoi(argv[1]));
	cfg.listen = listen;
	cfg.max_clients = MAX_CLIENTS;
	cfg.header_timeout = CONN_HEADER_TIMEOUT;
	cfg.idle_timeout = CONN_IDLE_TIMEOUT;
	cfg.ping_interval = 30;
	log_setup(LOG_WARN, 0);
	srv.ws_max_message = ECHO_MAX_MESSAGE;
	if (server_start(&srv, &cfg, &echo_app) != 0)
		return 1;
	server_run(&srv);
	server_free(&srv);
	return 0;
}
