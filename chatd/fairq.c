/* chatd/fairq.c — a bounded job queue shared fairly between keys */
#include <stdlib.h>
#include <string.h>

#include "chatd/fairq.h"
#include "chatd/xmalloc.h"

/* The items of one key: a ring of queued ones, and a count of all it
 * holds. A lane with nothing held is free. */
struct fairq_lane {
	char key[FAIRQ_KEY_MAX + 1];
	unsigned held;   /* queued + popped, not done */
	unsigned queued; /* in ring, from head */
	unsigned head;
	void **ring; /* per_key slots */
};

/* At most max lanes (each holds an item); pop walks them from next. */
struct fairq {
	unsigned max;
	unsigned per_key;
	unsigned held;
	unsigned next; /* the lane served after the last one popped */
	struct fairq_lane *lanes;
};

struct fairq *
fairq_new(unsigned max, unsigned per_key)
{
	struct fairq *q = xcalloc(1, sizeof *q);

	q->max = max > 0 ? max : 1;
	q->per_key = per_key > 0 ? per_key : 1;
	q->lanes = xcalloc(q->max, sizeof *q->lanes);
	for (unsigned i = 0; i < q->max; i++)
		q->lanes[i].ring = xcalloc(q->per_key, sizeof(void *));
	return q;
}

void
fairq_free(struct fairq *q)
{
	if (q == NULL)
		return;
	for (unsigned i = 0; i < q->max; i++)
		free(q->lanes[i].ring);
	free(q->lanes);
	free(q);
}

/* key's lane, or NULL if it holds nothing. */
static struct fairq_lane *
fairq_lane(const struct fairq *q, const char *key)
{
	for (unsigned i = 0; i < q->max; i++)
		if (q->lanes[i].held > 0 &&
		    strncmp(q->lanes[i].key, key, FAIRQ_KEY_MAX) == 0)
			return &q->lanes[i];
	return NULL;
}

int
fairq_push(struct fairq *q, const char *key, void *item)
{
	struct fairq_lane *l = fairq_lane(q, key);

	if (q->held >= q->max)
		return FAIRQ_FULL;
	if (l != NULL && l->held >= q->per_key)
		return FAIRQ_KEY_FULL;
	if (l == NULL) {
		/* held < max, so a lane is free. */
		for (l = q->lanes; l->held > 0; l++)
			;
		memset(l->key, 0, sizeof l->key);
		strncpy(l->key, key, FAIRQ_KEY_MAX);
		l->queued = 0;
		l->head = 0;
	}
	l->ring[(l->head + l->queued) % q->per_key] = item;
	l->queued++;
	l->held++;
	q->held++;
	return 0;
}

void *
fairq_pop(struct fairq *q)
{
	for (unsigned n = 0; n < q->max; n++) {
		unsigned i = (q->next + n) % q->max;
		struct fairq_lane *l = &q->lanes[i];
		void *item;

		if (l->queued == 0)
			continue;
		item = l->ring[l->head];
		l->head = (l->head + 1) % q->per_key;
		l->queued--;
		q->next = (i + 1) % q->max;
		return item;
	}
	return NULL;
}

void
fairq_done(struct fairq *q, const char *key)
{
	struct fairq_lane *l = fairq_lane(q, key);

	/* Only a popped item may be done: one more held than queued. */
	if (l == NULL || l->held <= l->queued)
		abort();
	l->held--;
	q->held--;
}

unsigned
fairq_held(const struct fairq *q)
{
	return q->held;
}

unsigned
fairq_key_held(const struct fairq *q, const char *key)
{
	const struct fairq_lane *l = fairq_lane(q, key);

	return l != NULL ? l->held : 0;
}
