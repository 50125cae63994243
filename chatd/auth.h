/* chatd/auth.h — passwords (Argon2id), login tokens, name rules */
#ifndef CHATD_AUTH_H
#define CHATD_AUTH_H

#include <stddef.h>
#include <stdint.h>

#define AUTH_HASH_MAX 128  /* an encoded Argon2id hash fits */
#define AUTH_TOKEN_LEN 43  /* base64url of 32 random bytes, no padding */
#define PASSWORD_MIN 8
#define PASSWORD_MAX 256

/* Hashes password with Argon2id at OWASP's parameters (19 MiB, t=2, p=1)
 * and a random 16-byte salt into out (encoded form). 0 or -1. */
int auth_hash_password(const char *password, size_t len, char *out,
    size_t outlen);
/* 1 if password matches the encoded hash, 0 if not, or if the hash is
 * not an Argon2id one (an empty or "!" hash: no password), or costs more
 * than 4 times chatd's own (refused before Argon2 runs, logged). */
int auth_verify_password(const char *hash, const char *password, size_t len);
/* Checks a stored hash (chatd import): 0 if logins may verify against
 * it, AUTH_HASH_MALFORMED if it is not an encoded Argon2id (v=19) hash
 * shorter than AUTH_HASH_MAX, AUTH_HASH_TOO_COSTLY if its m, t, m*t or p
 * are more than 4 times chatd's own (m=76 MiB, t=8, p=4 at most). */
#define AUTH_HASH_MALFORMED (-1)
#define AUTH_HASH_TOO_COSTLY (-2)
int auth_hash_check(const char *hash);
/* Makes a new token (256 random bits, base64url) and its SHA-256. 0/-1. */
int auth_token_new(char token[AUTH_TOKEN_LEN + 1], uint8_t hash[32]);
/* SHA-256 of a presented token, for lookup. */
void auth_token_hash(const char *token, size_t len, uint8_t hash[32]);
/* Checks and lower-cases a username in place (PROTOCOL.md Names). 0/-1. */
int auth_username_fold(char *name);
/* Checks and lower-cases a room name in place: ROOM_PUBLIC (0) for
 * [a-z0-9_-]{1,64} starting with a letter or digit, ROOM_DM (1) for
 * dm:<a>:<b> with valid usernames in byte order, -1 if invalid. */
int auth_room_fold(char *name);
/* Checks a password length (8-256 bytes). 0 or -1. */
int auth_password_ok(size_t len);
/* The token of "Authorization: Bearer <token>", or NULL. */
const char *auth_bearer(const char *header);

#endif
