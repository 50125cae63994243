/* fuzz sources: chatd/cluster_wire.c chatd/xmalloc.c */
/* tests/fuzz/fuzz_cluster_wire.c — libFuzzer harness for the node codec */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "chatd/cluster_wire.h"

/*
 * Any input decodes or is refused without reading outside it (the copy
 * is exactly its size, so ASan sees any overread); one that decodes is
 * canonical: encoding the message gives back the same bytes.
 */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cluster_wire_msg m;
	uint8_t *in = malloc(size ? size : 1), *out;
	size_t n;

	memcpy(in, data, size);
	if (cluster_wire_decode(&m, in, size) == 0) {
		if (m.kind == CLUSTER_WIRE_HEARTBEAT)
			for (size_t i = 0; i < m.n_users; i++)
				if (cluster_wire_user(&m, i) < 0)
					abort();
		out = cluster_wire_encode_alloc(&m, &n);
		if (out == NULL || n != size || memcmp(out, in, size) != 0)
			abort();
		free(out);
	}
	free(in);
	return 0;
}
