/* chatd/serve.h — the default command: the chat server until a signal */
#ifndef CHATD_SERVE_H
#define CHATD_SERVE_H

struct config;

/* Runs chatd until SIGTERM/SIGINT. Exit status: 0, or 1 after printing
 * why it could not start. */
int serve_run(struct config *cfg);

#endif
