/* tests/unit/test_auth.c — chatd/auth.c: which stored hashes a login may
 * verify against, and what that costs */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <argon2.h>
#include <cmocka.h>

#include "chatd/auth.h"
#include "chatd/log.h"

#define SALT_HASH "$YW5uc2FsdGFubnNhbHQ$aGFzaC1vZi1hbm4taGFzaC1vZi1hbm4"

/* Milliseconds of CLOCK_MONOTONIC. */
static double
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* An Argon2id hash of pw at m KiB, t passes, one lane, in out. */
static void
hash_at(const char *pw, uint32_t m, uint32_t t, char *out, size_t n)
{
	static const uint8_t salt[16] = "0123456789abcdef";

	assert_int_equal(argon2id_hash_encoded(t, m, 1, pw, strlen(pw), salt,
	                                       sizeof salt, 32, out, n),
	                 ARGON2_OK);
}

static void
test_auth_hash_check_accepts_chatds_own_hashes(void **state)
{
	char h[AUTH_HASH_MAX];

	(void)state;
	assert_int_equal(auth_hash_password("a-password", 10, h, sizeof h), 0);
	assert_int_equal(auth_hash_check(h), 0);
	assert_int_equal(auth_verify_password(h, "a-password", 10), 1);
	assert_int_equal(auth_verify_password(h, "b-password", 10), 0);
	/* Up to 4 times chatd's m=19456, t=2, p=1, and cheaper ones. */
	assert_int_equal(
	    auth_hash_check("$argon2id$v=19$m=77824,t=2,p=1" SALT_HASH), 0);
	assert_int_equal(
	    auth_hash_check("$argon2id$v=19$m=19456,t=8,p=4" SALT_HASH), 0);
	assert_int_equal(
	    auth_hash_check("$argon2id$v=19$m=38912,t=4,p=1" SALT_HASH), 0);
	assert_int_equal(
	    auth_hash_check("$argon2id$v=19$m=8,t=1,p=1" SALT_HASH), 0);
}

static void
test_auth_hash_check_refuses_costly_parameters(void **state)
{
	static const char *costly[] = {
	    "$argon2id$v=19$m=1048576,t=8,p=1" SALT_HASH,
	    "$argon2id$v=19$m=77825,t=1,p=1" SALT_HASH,
	    "$argon2id$v=19$m=19456,t=9,p=1" SALT_HASH,
	    "$argon2id$v=19$m=77824,t=3,p=1" SALT_HASH, /* m*t over 4x */
	    "$argon2id$v=19$m=19456,t=2,p=5" SALT_HASH,
	    "$argon2id$v=19$m=4294967295,t=4294967295,p=16777215" SALT_HASH,
	};

	(void)state;
	for (size_t i = 0; i < sizeof costly / sizeof costly[0]; i++)
		assert_int_equal(auth_hash_check(costly[i]),
		                 AUTH_HASH_TOO_COSTLY);
}

static void
test_auth_hash_check_refuses_malformed_hashes(void **state)
{
	static const char *bad[] = {
	    "",
	    "!",
	    "hash-a",
	    "$argon2i$v=19$m=19456,t=2,p=1" SALT_HASH,
	    "$argon2d$v=19$m=19456,t=2,p=1" SALT_HASH,
	    "$argon2id$v=16$m=19456,t=2,p=1" SALT_HASH,
	    "$argon2id$m=19456,t=2,p=1" SALT_HASH,
	    "$argon2id$v=19$t=2,m=19456,p=1" SALT_HASH,
	    "$argon2id$v=19$m=,t=2,p=1" SALT_HASH,
	    "$argon2id$v=19$m=-1,t=2,p=1" SALT_HASH,
	    "$argon2id$v=19$m=4294967296,t=2,p=1" SALT_HASH,
	    "$argon2id$v=19$m=19456,t=2,p=1",
	    "$argon2id$v=19$m=19456,t=2,p=1$",
	    "$argon2id$v=19$m=19456,t=2,p=1$$",
	    "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ",
	    "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$",
	    "$argon2id$v=19$m=19456,t=2,p=1$c2Fs dHNhbHQ$aGFzaA",
	    "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA$x",
	    /* Longer than a login reads back (AUTH_HASH_MAX). */
	    "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaAaGFzaAaGFzaAaGFza"
	    "AaGFzaAaGFzaAaGFzaAaGFzaAaGFzaAaGFzaAaGFzaAaGFzaAaGFzaAaGFzaAaGF",
	};

	(void)state;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		assert_int_equal(auth_hash_check(bad[i]), AUTH_HASH_MALFORMED);
		assert_int_equal(auth_verify_password(bad[i], "pw", 2), 0);
	}
}

static void
test_auth_verify_refuses_an_expensive_hash_quickly(void **state)
{
	/* An imported hash at m=1 GiB, t=8: Argon2 would take seconds and
	 * 1 GiB for each unauthenticated login attempt. */
	const char *h = "$argon2id$v=19$m=1048576,t=8,p=1$"
	                "MDEyMzQ1Njc4OWFiY2RlZg$"
	                "aGFzaC1vZi1hbm4taGFzaC1vZi1hbm4taGFzaC1vZi0";
	double t0 = mono_ms();

	(void)state;
	assert_int_equal(auth_verify_password(h, "a-password", 10), 0);
	assert_true(mono_ms() - t0 < 100);
}

static void
test_auth_verify_refuses_a_costly_hash_even_with_the_right_password(
    void **state)
{
	char h[AUTH_HASH_MAX];

	(void)state;
	/* 5 times chatd's memory, one pass: refused before Argon2 runs. */
	hash_at("a-password", 5 * 19456, 1, h, sizeof h);
	assert_int_equal(auth_verify_password(h, "a-password", 10), 0);
	/* 4 times, one pass (cheaper than chatd's own two): verifies. */
	hash_at("a-password", 4 * 19456, 1, h, sizeof h);
	assert_int_equal(auth_verify_password(h, "a-password", 10), 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_auth_hash_check_accepts_chatds_own_hashes),
	    cmocka_unit_test(test_auth_hash_check_refuses_costly_parameters),
	    cmocka_unit_test(test_auth_hash_check_refuses_malformed_hashes),
	    cmocka_unit_test(
	        test_auth_verify_refuses_an_expensive_hash_quickly),
	    cmocka_unit_test(
	        test_auth_verify_refuses_a_costly_hash_even_with_the_right_password),
	};

	log_setup(LOG_ERROR, 0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
