/*
 * wait.c: small key lists and cancel tokens (a waiter the kernel
 * interrupts stops waiting at once); request.c waits through them.
 */
#include <assert.h>
#include "library_int.h"

#include <errno.h>
#include <stdlib.h>

/* The token the calling thread's waits answer to (fetch_cancel_enter()). */
static __thread struct fetch_cancel *current;

void fetch_keys_add(struct fetch_keys *k, int64_t key)
{
	if (k->n == k->cap) {
		size_t cap = k->cap ? k->cap * 2 : 16;
		int64_t *v = realloc(k->v, cap * sizeof(*v));
		if (!v)
			abort();
		k->v = v;
		k->cap = cap;
	}
	k->v[k->n++] = key;
}

void fetch_keys_remove(struct fetch_keys *k, int64_t key)
{
	for (size_t i = 0; i < k->n; i++) {
		if (k->v[i] == key) {
			k->v[i] = k->v[--k->n];
			return;
		}
	}
}

int fetch_keys_has(const struct fetch_keys *k, int64_t key)
{
	for (size_t i = 0; i < k->n; i++)
		if (k->v[i] == key)
			return 1;
	return 0;
}

void fetch_cancel_init(struct fetch_cancel *c, struct fetch_library *lib)
{
	c->lib = lib;
	atomic_init(&c->fired, 0);
	c->cond = NULL;
}

void fetch_cancel_enter(struct fetch_cancel *c)
{
	current = c;
}

void fetch_cancel_fire(struct fetch_cancel *c)
{
	/* Set before taking the lock the waiter checks it under: either the
	 * waiter sees it before sleeping, or it sleeps on c->cond by now. */
	atomic_store(&c->fired, 1);
	pthread_mutex_lock(&c->lib->lock);
	if (c->cond)
		pthread_cond_broadcast(c->cond);
	pthread_mutex_unlock(&c->lib->lock);
}

int fetch_cancelled(void)
{
	return current && atomic_load(&current->fired);
}

int fetch_wait(struct fetch_library *lib, pthread_cond_t *cond)
{
	assert(lib_locked(lib));
	struct fetch_cancel *c = current && current->lib == lib ? current : NULL;

	if (c && atomic_load(&c->fired))
		return -EINTR;
	if (c)
		c->cond = cond;
	lib_cond_wait(lib, cond);
	if (c)
		c->cond = NULL;
	return 0;
}
