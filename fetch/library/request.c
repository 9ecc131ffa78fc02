/*
 * request.c: requests to the engine, their states (library_int.h draws
 * them) and the one wait every caller uses. Whatever a request carries
 * (an asset's temporary, a document in memory), it moves the same way and
 * is waited for the same way.
 */
#include <assert.h>
#include "library_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct fetch_request *fetch_request_new(struct fetch_library *lib, enum fetch_request_kind kind,
					enum http_priority prio)
{
	assert(lib_locked(lib)); /* outstanding */
	struct fetch_request *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->lib = lib;
	r->kind = kind;
	r->state = FETCH_REQ_PENDING;
	r->prio = prio;
	r->refs = 1; /* the flight's, until request_end() */
	r->body_fd = -1;
	r->follow_fd = -1;
	r->body.max = FETCH_DOC_MAX;
	atomic_init(&r->content_length, -1);
	atomic_init(&r->bytes, 0);
	atomic_init(&r->abandoned, 0);
	atomic_init(&r->followers, 0);
	pthread_cond_init(&r->changed, NULL);
	pthread_cond_init(&r->grew, NULL);
	lib->outstanding++;
	return r;
}

struct fetch_request *fetch_request_joined(struct fetch_library *lib,
					   enum fetch_request_kind kind, enum http_priority prio)
{
	assert(!lib_locked(lib));
	lib_lock(lib);
	struct fetch_request *r = fetch_request_new(lib, kind, prio);
	if (r)
		fetch_request_join(lib, r);
	lib_unlock(lib);
	return r;
}

void fetch_request_put(struct fetch_request *r)
{
	assert(lib_locked(r->lib));
	assert(r->refs > 0);
	if (--r->refs > 0)
		return;
	assert(fetch_request_ended(r) || r->state == FETCH_REQ_PENDING);
	pthread_cond_destroy(&r->changed);
	pthread_cond_destroy(&r->grew);
	free(r->body.buf);
	free(r);
}

int fetch_request_ended(const struct fetch_request *r)
{
	return r->state >= FETCH_REQ_DONE;
}

/* The state moved on: wake whoever waits for a state or for bytes. */
static void request_moved(struct fetch_request *r, enum fetch_request_state to)
{
	assert(lib_locked(r->lib));
	assert(to > r->state || (to == FETCH_REQ_BODY && r->state == FETCH_REQ_BODY));
	r->state = to;
	pthread_cond_broadcast(&r->changed);
	pthread_cond_broadcast(&r->grew);
}

/* PENDING -> QUEUED; or -ECANCELED if its last waiter left already: it
 * must not be submitted, and request_end(-ECANCELED) abandons it. */
int request_submit(struct fetch_library *lib, struct fetch_request *r)
{
	(void)lib; /* for the asserts */
	assert(lib_locked(lib));
	assert(r->state == FETCH_REQ_PENDING);
	if (!request_wanted(r))
		return -ECANCELED;
	request_moved(r, FETCH_REQ_QUEUED);
	return 0;
}

/* QUEUED -> BODY: the answer's headers came (again, on a retry). */
void request_heard(struct fetch_library *lib, struct fetch_request *r)
{
	(void)lib; /* for the asserts */
	assert(lib_locked(lib));
	assert(r->state == FETCH_REQ_QUEUED || r->state == FETCH_REQ_BODY);
	request_moved(r, FETCH_REQ_BODY);
}

/* QUEUED or BODY -> COMMITTING: the engine is through with an asset GET. */
void request_received(struct fetch_library *lib, struct fetch_request *r)
{
	(void)lib; /* for the asserts */
	assert(lib_locked(lib));
	assert(r->kind == FETCH_REQ_ASSET);
	assert(r->state == FETCH_REQ_QUEUED || r->state == FETCH_REQ_BODY);
	request_moved(r, FETCH_REQ_COMMITTING);
}

/* COMMITTING -> SERVED: fd reads the checked body before the commit. */
void request_serve(struct fetch_library *lib, struct fetch_request *r, int fd)
{
	(void)lib; /* for the asserts */
	assert(lib_locked(lib));
	assert(r->state == FETCH_REQ_COMMITTING);
	r->body_fd = fd;
	request_moved(r, FETCH_REQ_SERVED);
}

/* Unlink an asset GET from the single-flight list. */
static void download_unlink(struct fetch_library *lib, struct fetch_request *r)
{
	assert(lib_locked(lib));
	for (struct fetch_request **p = &lib->downloads; *p; p = &(*p)->next) {
		if (*p == r) {
			*p = r->next;
			return;
		}
	}
}

/* Any state short of an end -> DONE (err 0), ABANDONED (-ECANCELED after
 * its sink refused bytes no one wanted) or FAILED; drops the flight's
 * reference. A served body's descriptor is the caller's to close first. */
void request_end(struct fetch_library *lib, struct fetch_request *r, int err)
{
	assert(lib_locked(lib));
	assert(!fetch_request_ended(r));
	assert(r->body_fd < 0 && r->follow_fd < 0);
	r->err = err;
	request_moved(r, err == 0			  ? FETCH_REQ_DONE
			 : err == -ECANCELED && r->dropped ? FETCH_REQ_ABANDONED
							   : FETCH_REQ_FAILED);
	if (r->kind == FETCH_REQ_ASSET)
		download_unlink(lib, r);
	if (--lib->outstanding == 0 && lib->stopping)
		pthread_cond_broadcast(&lib->job_ready);
	fetch_request_put(r);
}

void request_grew(struct fetch_request *r, int64_t bytes)
{
	atomic_store(&r->bytes, bytes);
	/* Followers count themselves before they look at bytes: one of the
	 * two sees the other. */
	if (atomic_load(&r->followers) == 0)
		return;
	lib_lock(r->lib);
	pthread_cond_broadcast(&r->grew);
	lib_unlock(r->lib);
}

void fetch_request_join(struct fetch_library *lib, struct fetch_request *r)
{
	(void)lib; /* for the asserts */
	assert(lib_locked(lib));
	r->waiters++;
	r->refs++;
	atomic_store(&r->abandoned, 0);
}

void fetch_request_leave(struct fetch_library *lib, struct fetch_request *r)
{
	(void)lib; /* for the asserts */
	assert(lib_locked(lib));
	assert(r->waiters > 0);
	if (--r->waiters == 0 && !fetch_request_ended(r) && !r->keep)
		atomic_store(&r->abandoned, 1);
	fetch_request_put(r);
}

void fetch_request_release(struct fetch_library *lib, struct fetch_request *r)
{
	if (!r)
		return;
	lib_lock(lib);
	fetch_request_leave(lib, r);
	lib_unlock(lib);
}

int fetch_request_wait(struct fetch_library *lib, struct fetch_request *r,
		       enum fetch_request_state until)
{
	assert(lib_locked(lib));
	assert(r->waiters > 0);
	int rc = 0;

	while (r->state < until && !lib->stopping && rc == 0)
		rc = fetch_wait(lib, &r->changed);
	if (r->state >= until)
		return 0;
	return rc < 0 ? rc : -ECANCELED;
}

int fetch_request_outcome(struct fetch_library *lib, struct fetch_request *r)
{
	assert(!lib_locked(lib));
	lib_lock(lib);
	int rc = fetch_request_wait(lib, r, FETCH_REQ_DONE);
	if (rc == 0)
		rc = r->err;
	lib_unlock(lib);
	return rc;
}

/* The engine's done callback of a HEAD or a document: its end. */
static void request_answered(void *arg, const struct http_result *res)
{
	struct fetch_request *r = arg;
	struct fetch_library *lib = r->lib;
	int err = res->err;

	r->res = *res;
	if (err == 0 && r->kind == FETCH_REQ_DOCUMENT)
		err = http_membuf_finish(&r->body);
	lib_lock(lib);
	request_end(lib, r, err);
	lib_unlock(lib);
}

void request_raise(struct fetch_library *lib, struct fetch_request *r, enum http_priority prio)
{
	assert(!lib_locked(lib)); /* http_promote() takes the engine's lock */
	lib_lock(lib);
	assert(r->refs > 0);
	int raise = prio < r->prio && !fetch_request_ended(r), queued = r->state == FETCH_REQ_QUEUED;
	if (raise)
		r->prio = prio;
	lib_unlock(lib);
	/* PENDING: its launcher submits it at the new priority. */
	if (raise && queued)
		http_promote(lib->engine, r->kind == FETCH_REQ_ASSET ? fetch_asset_done
								      : request_answered,
			     r, prio);
}

int request_wanted(void *ctx)
{
	struct fetch_request *r = ctx;

	if (!atomic_load(&r->abandoned))
		return 1;
	r->dropped = 1;
	return 0;
}

/* A document's sink: the memory buffer, refusing bytes no one wants. */
static int doc_begin(void *ctx, int64_t content_length)
{
	struct fetch_request *r = ctx;
	struct http_sink m = http_membuf_sink(&r->body);

	if (!request_wanted(r))
		return -ECANCELED;
	atomic_store(&r->content_length, content_length);
	lib_lock(r->lib);
	request_heard(r->lib, r);
	lib_unlock(r->lib);
	return m.begin(m.ctx, content_length);
}

static int doc_write(void *ctx, const void *buf, size_t n)
{
	struct fetch_request *r = ctx;
	struct http_sink m = http_membuf_sink(&r->body);

	if (!request_wanted(r))
		return -ECANCELED;
	return m.write(m.ctx, buf, n);
}

static int doc_reset(void *ctx)
{
	struct fetch_request *r = ctx;
	struct http_sink m = http_membuf_sink(&r->body);
	return m.reset(m.ctx);
}

/* Submit r (PENDING, joined): submit() is the engine call. */
static int request_start(struct fetch_library *lib, struct fetch_request *r,
			 int (*submit)(struct fetch_library *lib, struct fetch_request *r,
				       enum http_priority prio, const void *arg),
			 const void *arg)
{
	assert(!lib_locked(lib));
	lib_lock(lib);
	int rc = request_submit(lib, r);
	enum http_priority prio = r->prio;
	if (rc < 0)
		request_end(lib, r, rc);
	lib_unlock(lib);
	if (rc < 0)
		return rc;
	rc = submit(lib, r, prio, arg);
	if (rc < 0) {
		/* The engine will not call back: end it here. */
		r->res = (struct http_result){ .err = rc, .size = -1 };
		snprintf(r->res.reason, sizeof(r->res.reason), "not submitted: %s",
			 strerror(-rc));
		lib_lock(lib);
		request_end(lib, r, rc);
		lib_unlock(lib);
	}
	return rc;
}

struct head_args {
	enum http_base base;
	const char *path;
	const struct http_cond *cond;
};

static int head_submit(struct fetch_library *lib, struct fetch_request *r, enum http_priority prio,
		       const void *arg)
{
	const struct head_args *h = arg;

	const struct http_sink sink = { .ctx = r, .wanted = request_wanted };

	if (h->cond)
		return http_submit_cond(lib->engine, h->base, h->path, h->cond, request_answered,
					r);
	return http_submit(lib->engine, h->base, h->path, HTTP_HEAD, prio, &sink,
			   request_answered, r);
}

int fetch_request_head(struct fetch_library *lib, struct fetch_request *r, enum http_base base,
		       const char *path, const struct http_cond *cond)
{
	const struct head_args h = { base, path, cond };
	return request_start(lib, r, head_submit, &h);
}

static int document_submit(struct fetch_library *lib, struct fetch_request *r,
			   enum http_priority prio, const void *arg)
{
	const struct head_args *h = arg;
	const struct http_sink sink = { doc_begin, doc_write, doc_reset, r, request_wanted };

	return http_submit_document(lib->engine, h->base, h->path, prio, &sink, request_answered,
				    r);
}

int fetch_request_document(struct fetch_library *lib, struct fetch_request *r,
			   enum http_base base, const char *path)
{
	const struct head_args h = { base, path, NULL };
	return request_start(lib, r, document_submit, &h);
}
