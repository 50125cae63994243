/* fuzz sources: chatd/jsonw.c chatd/xmalloc.c */
/* tests/fuzz/fuzz_jsonw.c — libFuzzer harness for the JSON writer */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "chatd/jsonw.h"

#define MAX_DEPTH 32

/*
 * The input is a script: each byte picks an operation (open an array or
 * an object, close, a string of the next bytes, an integer of the next 8,
 * true/false, null), done both with jsonw and on a jansson tree. Object
 * members get unique keys, strings that are not valid UTF-8 are skipped
 * (jansson refuses them). At the end the two encodings must be the same
 * bytes, and jsonw's must parse.
 */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *stack[MAX_DEPTH + 1], *v;
	struct jsonw w;
	size_t i = 0, n;
	int depth = 0;
	unsigned keys = 0;
	char key[16], *want;
	int64_t x;
	json_error_t err;

	jsonw_init(&w, 8);
	stack[0] = json_array();
	jsonw_array_open(&w);
	while (i < size) {
		uint8_t op = data[i++];

		v = NULL;
		switch (op % 8) {
		case 0:
		case 1:
			if (depth == MAX_DEPTH)
				continue;
			v = op % 8 == 0 ? json_array() : json_object();
			break;
		case 2:
			if (depth == 0)
				continue;
			if (json_is_array(stack[depth]))
				jsonw_array_close(&w);
			else
				jsonw_object_close(&w);
			depth--;
			continue;
		case 3:
			n = i < size ? data[i++] % 64 : 0;
			if (n > size - i)
				n = size - i;
			v = json_stringn((const char *)data + i, n);
			if (v == NULL) {
				i += n;
				continue;
			}
			break;
		case 4:
			x = 0;
			n = size - i < 8 ? size - i : 8;
			memcpy(&x, data + i, n);
			v = json_integer(x);
			break;
		case 5:
			v = json_boolean(op & 0x80);
			break;
		default:
			v = json_null();
			break;
		}
		if (json_is_object(stack[depth])) {
			snprintf(key, sizeof key, "k%u\n", keys++);
			jsonw_key(&w, key);
			json_object_set_new(stack[depth], key, v);
		} else {
			json_array_append_new(stack[depth], v);
		}
		switch (op % 8) {
		case 0:
			jsonw_array_open(&w);
			stack[++depth] = v;
			break;
		case 1:
			jsonw_object_open(&w);
			stack[++depth] = v;
			break;
		case 3:
			jsonw_stringn(&w, (const char *)data + i, n);
			i += n;
			break;
		case 4:
			jsonw_int(&w, x);
			i += n;
			break;
		case 5:
			jsonw_bool(&w, op & 0x80);
			break;
		default:
			jsonw_null(&w);
			break;
		}
	}
	for (; depth > 0; depth--)
		if (json_is_array(stack[depth]))
			jsonw_array_close(&w);
		else
			jsonw_object_close(&w);
	jsonw_array_close(&w);
	want = json_dumps(stack[0], JSON_COMPACT);
	if (want == NULL || strlen(want) != jsonw_len(&w) ||
	    memcmp(want, jsonw_data(&w), jsonw_len(&w)) != 0) {
		fprintf(stderr, "jansson: %s\njsonw:   %.*s\n", want,
		    (int)jsonw_len(&w), jsonw_data(&w));
		abort();
	}
	v = json_loadb(jsonw_data(&w), jsonw_len(&w), JSON_ALLOW_NUL, &err);
	if (v == NULL || !json_equal(v, stack[0]))
		abort();
	json_decref(v);
	free(want);
	json_decref(stack[0]);
	jsonw_free(&w);
	return 0;
}
