/*
 * Blocking calls over http_submit(): the caller's thread waits on a
 * condition variable while the engine thread works. Never call them from a
 * done callback (the engine thread would wait for itself).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_int.h"

struct waiter {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	size_t left;
};

static void waiter_init(struct waiter *w, size_t n)
{
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	w->left = n;
}

static void waiter_done(struct waiter *w)
{
	pthread_mutex_lock(&w->lock);
	if (--w->left == 0)
		pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

/* Wait until every request counted in w has ended, then dispose of w. */
static void waiter_wait(struct waiter *w)
{
	pthread_mutex_lock(&w->lock);
	while (w->left > 0)
		pthread_cond_wait(&w->cond, &w->lock);
	pthread_mutex_unlock(&w->lock);
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->lock);
}

/* One request's result, copied out on the engine thread. */
struct waited {
	struct waiter *w;
	struct http_result *res;
};

static void waited_done(void *arg, const struct http_result *res)
{
	struct waited *item = arg;
	*item->res = *res;
	waiter_done(item->w);
}

static void result_failed(struct http_result *res, int err)
{
	memset(res, 0, sizeof(*res));
	res->err = err;
	res->size = -1;
	snprintf(res->reason, sizeof(res->reason), "not submitted: %s", strerror(-err));
}

int http_submit_document(struct http_engine *e, enum http_base base, const char *path,
			  enum http_priority prio, struct http_membuf *m, http_done_fn done,
			  void *arg)
{
	struct http_sink sink = http_membuf_sink(m);

	return http_submit_enc(e, base, path, HTTP_GET, prio, 1, NULL, &sink, done, arg);
}

int http_get_memory(struct http_engine *e, enum http_base base, const char *path,
		     enum http_priority prio, size_t max_bytes, char **body, size_t *len,
		     struct http_result *res)
{
	struct http_membuf m = { .max = max_bytes };
	struct http_result local;
	struct waiter w;
	struct waited item = { &w, res ? res : &local };
	int rc;

	*body = NULL;
	*len = 0;
	waiter_init(&w, 1);
	rc = http_submit_document(e, base, path, prio, &m, waited_done, &item);
	if (rc < 0) {
		result_failed(item.res, rc);
		waiter_done(&w);
	}
	waiter_wait(&w);
	rc = item.res->err;
	if (rc == 0)
		rc = http_membuf_finish(&m);
	if (rc < 0) {
		free(m.buf);
		return rc;
	}
	*body = m.buf;
	*len = m.len;
	return 0;
}

int http_head_if(struct http_engine *e, enum http_base base, const char *path,
		 const struct http_cond *cond, struct http_result *res)
{
	struct waiter w;
	struct waited item = { &w, res };
	int rc;

	waiter_init(&w, 1);
	rc = http_submit_enc(e, base, path, HTTP_HEAD, HTTP_PROBE, 0, cond, NULL, waited_done,
			     &item);
	if (rc < 0) {
		result_failed(res, rc);
		waiter_done(&w);
	}
	waiter_wait(&w);
	return res->err;
}

int http_head_batch(struct http_engine *e, enum http_base base, const char *const *paths,
		     size_t n, struct http_result *res)
{
	struct waited *items = calloc(n ? n : 1, sizeof(*items));
	struct waiter w;
	int first = 0;

	if (!items)
		return -ENOMEM;
	waiter_init(&w, n);
	for (size_t i = 0; i < n; i++) {
		int rc;
		items[i] = (struct waited){ &w, &res[i] };
		rc = http_submit(e, base, paths[i], HTTP_HEAD, HTTP_PROBE, NULL, waited_done,
				  &items[i]);
		if (rc < 0) {
			result_failed(&res[i], rc);
			waiter_done(&w);
			if (!first)
				first = rc;
		}
	}
	waiter_wait(&w);
	free(items);
	return first;
}
