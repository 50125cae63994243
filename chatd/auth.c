/* chatd/auth.c — passwords (Argon2id), login tokens, name rules */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <argon2.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "chatd/auth.h"
#include "chatd/log.h"

/* OWASP Password Storage Cheat Sheet: Argon2id, m=19 MiB, t=2, p=1. */
#define AUTH_T_COST 2
#define AUTH_M_COST (19 * 1024)
#define AUTH_PARALLEL 1
#define AUTH_SALT_LEN 16
#define AUTH_HASH_LEN 32
/* A stored hash (imported, or made by an older chatd) may cost at most
 * this many times chatd's own: m, t and m*t each, and p. Above it, one
 * unauthenticated login would be a denial of service (m=1 GiB, t=8:
 * 10 s of a worker and 1 GiB). */
#define AUTH_COST_FACTOR 4

int
auth_hash_password(const char *password, size_t len, char *out, size_t outlen)
{
	uint8_t salt[AUTH_SALT_LEN];

	if (RAND_bytes(salt, sizeof salt) != 1)
		return -1;
	if (argon2id_hash_encoded(AUTH_T_COST, AUTH_M_COST, AUTH_PARALLEL,
		password, len, salt, sizeof salt, AUTH_HASH_LEN, out,
		outlen) != ARGON2_OK)
		return -1;
	return 0;
}

/* Reads "KEY<decimal>" then the character end at *s, moving past both.
 * 0, or -1 if not there or above UINT32_MAX. */
static int
auth_hash_num(const char **s, const char *key, char end, uint32_t *out)
{
	const char *p;
	uint64_t v = 0;

	if (strncmp(*s, key, strlen(key)) != 0)
		return -1;
	p = *s + strlen(key);
	if (!isdigit((unsigned char)*p))
		return -1;
	for (; isdigit((unsigned char)*p); p++)
		if ((v = v * 10 + (uint64_t)(*p - '0')) > UINT32_MAX)
			return -1;
	if (*p != end)
		return -1;
	*out = (uint32_t)v;
	*s = p + 1;
	return 0;
}

/* 1 if the n > 0 characters at s are all unpadded base64. */
static int
auth_b64_run(const char *s, size_t n)
{
	static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	                          "abcdefghijklmnopqrstuvwxyz0123456789+/";

	return n > 0 && strspn(s, b64) == n;
}

/* Parses "$argon2id$v=19$m=M,t=T,p=P$SALT$HASH" for its parameters.
 * 0, or -1 if hash is not such a string. */
static int
auth_hash_params(const char *hash, uint32_t *m, uint32_t *t, uint32_t *p)
{
	const char *s = hash, *dollar;
	uint32_t v;

	if (strlen(hash) >= AUTH_HASH_MAX || strncmp(s, "$argon2id$", 10))
		return -1;
	s += 10;
	if (auth_hash_num(&s, "v=", '$', &v) != 0 || v != ARGON2_VERSION_13 ||
	    auth_hash_num(&s, "m=", ',', m) != 0 ||
	    auth_hash_num(&s, "t=", ',', t) != 0 ||
	    auth_hash_num(&s, "p=", '$', p) != 0)
		return -1;
	if ((dollar = strchr(s, '$')) == NULL ||
	    !auth_b64_run(s, (size_t)(dollar - s)) ||
	    !auth_b64_run(dollar + 1, strlen(dollar + 1)))
		return -1;
	return 0;
}

/* 1 if the parameters cost at most AUTH_COST_FACTOR times chatd's. */
static int
auth_cost_ok(uint32_t m, uint32_t t, uint32_t p)
{
	return m <= AUTH_COST_FACTOR * AUTH_M_COST &&
	       t <= AUTH_COST_FACTOR * AUTH_T_COST &&
	       (uint64_t)m * t <=
	           (uint64_t)AUTH_COST_FACTOR * AUTH_M_COST * AUTH_T_COST &&
	       p <= AUTH_COST_FACTOR * AUTH_PARALLEL;
}

int
auth_hash_check(const char *hash)
{
	uint32_t m, t, p;

	if (auth_hash_params(hash, &m, &t, &p) != 0)
		return AUTH_HASH_MALFORMED;
	return auth_cost_ok(m, t, p) ? 0 : AUTH_HASH_TOO_COSTLY;
}

int
auth_verify_password(const char *hash, const char *password, size_t len)
{
	uint32_t m, t, p;

	/* Checked before Argon2 runs: the hash decides what a login costs. */
	if (auth_hash_params(hash, &m, &t, &p) != 0)
		return 0;
	if (!auth_cost_ok(m, t, p)) {
		log_warn("%s: refused a stored hash costing more than %d times "
		         "chatd's (m=%u, t=%u, p=%u): set a new password with "
		         "chatd user passwd",
		         __func__, AUTH_COST_FACTOR, m, t, p);
		return 0;
	}
	return argon2id_verify(hash, password, len) == ARGON2_OK;
}

int
auth_token_new(char token[AUTH_TOKEN_LEN + 1], uint8_t hash[32])
{
	static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				     "abcdefghijklmnopqrstuvwxyz0123456789-_";
	uint8_t raw[33];
	size_t i, j = 0;

	if (RAND_bytes(raw, 32) != 1)
		return -1;
	raw[32] = 0;
	/* 32 bytes -> 43 characters: ten groups of 3, then 2 bytes. */
	for (i = 0; i < 33; i += 3) {
		uint32_t v = raw[i] << 16 | raw[i + 1] << 8 | raw[i + 2];

		token[j++] = b64url[v >> 18 & 63];
		token[j++] = b64url[v >> 12 & 63];
		token[j++] = b64url[v >> 6 & 63];
		if (j < AUTH_TOKEN_LEN)
			token[j++] = b64url[v & 63];
	}
	token[AUTH_TOKEN_LEN] = '\0';
	auth_token_hash(token, AUTH_TOKEN_LEN, hash);
	return 0;
}

void
auth_token_hash(const char *token, size_t len, uint8_t hash[32])
{
	SHA256((const unsigned char *)token, len, hash);
}

int
auth_username_fold(char *name)
{
	size_t n = strlen(name);

	if (n < 1 || n > 32)
		return -1;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)tolower((unsigned char)name[i]);

		if (!(isdigit(ch) || (ch >= 'a' && ch <= 'z') ||
			((ch == '_' || ch == '.' || ch == '-') && i > 0)))
			return -1;
		name[i] = (char)ch;
	}
	return 0;
}

int
auth_password_ok(size_t len)
{
	return len >= PASSWORD_MIN && len <= PASSWORD_MAX ? 0 : -1;
}

const char *
auth_bearer(const char *header)
{
	if (header == NULL || strncasecmp(header, "Bearer ", 7) != 0)
		return NULL;
	header += 7;
	while (*header == ' ')
		header++;
	return *header ? header : NULL;
}

/* 1 if ch may appear in a public room name at position i. */
static int
auth_room_char(unsigned char ch, size_t i)
{
	return isdigit(ch) || (ch >= 'a' && ch <= 'z') ||
	    ((ch == '_' || ch == '-') && i > 0);
}

int
auth_room_fold(char *name)
{
	size_t n = strlen(name);
	char a[40], b[40], *colon;

	for (size_t i = 0; i < n; i++)
		name[i] = (char)tolower((unsigned char)name[i]);
	if (strncmp(name, "dm:", 3) == 0) {
		colon = strchr(name + 3, ':');
		if (colon == NULL || (size_t)(colon - (name + 3)) >= sizeof a ||
		    strlen(colon + 1) >= sizeof b)
			return -1;
		snprintf(a, sizeof a, "%.*s", (int)(colon - (name + 3)),
		    name + 3);
		snprintf(b, sizeof b, "%s", colon + 1);
		if (auth_username_fold(a) != 0 || auth_username_fold(b) != 0 ||
		    strcmp(a, b) > 0)
			return -1;
		return 1;
	}
	if (n < 1 || n > 64)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (!auth_room_char((unsigned char)name[i], i))
			return -1;
	return 0;
}
