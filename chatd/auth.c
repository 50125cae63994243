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

/* OWASP Password Storage Cheat Sheet: Argon2id, m=19 MiB, t=2, p=1. */
#define AUTH_T_COST 2
#define AUTH_M_COST (19 * 1024)
#define AUTH_PARALLEL 1
#define AUTH_SALT_LEN 16
#define AUTH_HASH_LEN 32

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

int
auth_verify_password(const char *hash, const char *password, size_t len)
{
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
