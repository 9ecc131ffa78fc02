/*
 * wait.c: the waiting primitives of the library: small key lists and
 * cancel tokens (a waiter the kernel interrupts stops waiting at once).
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

/* A blocking call run on a thread of its own so that its caller can stop
 * waiting for it (fetch_offload()). */
struct offload {
	struct fetch_library *lib;
	int (*fn)(void *arg);
	void *arg;
	void (*free_arg)(void *arg);
	pthread_cond_t answered; /* with lib->lock: done became 1 */
	int rc;                  /* lib->lock */
	int done;                /* lib->lock */
	int abandoned;           /* lib->lock: the caller left: the thread frees all */
};

static void offload_free(struct offload *o)
{
	pthread_cond_destroy(&o->answered);
	free(o);
}

static void *offload_thread(void *p)
{
	struct offload *o = p;
	struct fetch_library *lib = o->lib;
	int rc = o->fn(o->arg);

	lib_lock(lib);
	o->rc = rc;
	o->done = 1;
	int abandoned = o->abandoned;
	pthread_cond_broadcast(&o->answered);
	lib_unlock(lib);
	if (abandoned) {
		o->free_arg(o->arg);
		offload_free(o);
	}
	lib_lock(lib);
	if (--lib->offloaded == 0)
		pthread_cond_broadcast(&lib->offload_over);
	lib_unlock(lib);
	return NULL;
}

static int offload_start(struct offload *o)
{
	pthread_attr_t attr;
	pthread_t th;
	int rc;

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_mutex_lock(&o->lib->lock);
	o->lib->offloaded++;
	pthread_mutex_unlock(&o->lib->lock);
	rc = -pthread_create(&th, &attr, offload_thread, o);
	pthread_attr_destroy(&attr);
	if (rc < 0) {
		pthread_mutex_lock(&o->lib->lock);
		o->lib->offloaded--;
		pthread_mutex_unlock(&o->lib->lock);
	}
	return rc;
}

int fetch_offload(struct fetch_library *lib, int (*fn)(void *arg), void *arg,
		  void (*free_arg)(void *arg))
{
	struct offload *o;
	int rc = 0;

	/* Nothing can interrupt this thread: no need for another. */
	if (!current || current->lib != lib || !(o = calloc(1, sizeof(*o))))
		return fn(arg);
	*o = (struct offload){ .lib = lib, .fn = fn, .arg = arg, .free_arg = free_arg };
	pthread_cond_init(&o->answered, NULL);
	if (offload_start(o) < 0) {
		offload_free(o);
		return fn(arg);
	}
	lib_lock(lib);
	while (!o->done && rc == 0)
		rc = fetch_wait(lib, &o->answered);
	if (!o->done) {
		o->abandoned = 1;
		lib_unlock(lib);
		return -EINTR;
	}
	rc = o->rc;
	lib_unlock(lib);
	offload_free(o);
	return rc;
}

void fetch_offload_drain(struct fetch_library *lib)
{
	lib_lock(lib);
	while (lib->offloaded)
		lib_cond_wait(lib, &lib->offload_over);
	lib_unlock(lib);
}
