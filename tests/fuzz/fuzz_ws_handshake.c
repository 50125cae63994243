/* fuzz sources: chatd/ws_handshake.c chatd/http_parser.c chatd/url.c
 * chatd/xmalloc.c chatd/log.c */
/* tests/fuzz/fuzz_ws_handshake.c — libFuzzer harness for the handshake */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "chatd/ws_handshake.h"

/*
 * The input after two option bytes is split into lines "Name: value"
 * that become the request's headers (built by hand, so the HTTP parser's
 * own rules do not filter what reaches the handshake). The check must
 * return 0 with a 28-character accept value, or one of its statuses.
 * permessage-deflate negotiation over the same headers (several
 * Sec-WebSocket-Extensions lines are several headers) must decline, or
 * answer with a well-formed extension whose window bits are 8-15; the
 * answer must fit the response head.
 */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const allowed[] = {
	    "https://chat.example.org", "http://localhost:3000", "null", NULL};
	struct http_request req;
	char *text, *line, *next, *colon, accept[WS_ACCEPT_LEN + 1], out[512];
	char ext[WS_EXT_LEN];
	int r, w;

	if (size < 2)
		return 0;
	memset(&req, 0, sizeof(req));
	req.method = data[0] & 1 ? HTTP_GET : HTTP_POST;
	req.minor = data[0] >> 1 & 1;
	text = malloc(size - 1);
	memcpy(text, data + 2, size - 2);
	text[size - 2] = '\0';
	for (line = text; line != NULL && req.nheaders < HTTP_MAX_HEADERS;
	     line = next) {
		next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		colon = strchr(line, ':');
		if (colon == NULL)
			continue;
		*colon = '\0';
		req.headers[req.nheaders].name = line;
		req.headers[req.nheaders++].value =
		    colon + 1 + (colon[1] == ' ');
	}
	r = ws_handshake_check(&req, data[0] >> 2 & 1,
	                       data[0] & 8 ? allowed : NULL, accept);
	if (r == 0) {
		if (strlen(accept) != WS_ACCEPT_LEN)
			abort();
		if (ws_handshake_response(out, data[1], accept) >= data[1] &&
		    data[1] > 0)
			abort();
	} else if (r != 400 && r != 403 && r != 426) {
		abort();
	}
	w = ws_handshake_deflate(&req, ext);
	if (w == 0 ? ext[0] != '\0'
	           : w < 8 || w > 15 ||
	                 strncmp(ext, "permessage-deflate; ", 20) != 0 ||
	                 strlen(ext) >= WS_EXT_LEN)
		abort();
	if (ws_handshake_response_ext(out, sizeof(out),
	                              "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
	                              ext) == 0)
		abort();
	free(text);
	return 0;
}
