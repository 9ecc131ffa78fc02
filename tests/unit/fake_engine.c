/* fake_engine.c: see fake_engine.h. Nothing goes to the network. */
#include "fake_engine.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct fake_req {
	struct http_sink sink;
	http_done_fn done;
	void *arg;
	int answered;
	enum http_priority prio;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;
static struct fake_req reqs[64];
static size_t nreqs, nheads;
static int heads_stalled;
/* HEADs held while heads_stalled: their done callbacks and arguments. */
static struct fake_head {
	http_done_fn done;
	void *arg;
	long status;
} held[64];
static size_t nheld;

struct http_engine {
	int unused;
};

void http_config_defaults(struct http_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
}

int http_engine_new(struct http_engine **out, const struct http_config *cfg)
{
	(void)cfg;
	*out = calloc(1, sizeof(**out));
	return *out ? 0 : -ENOMEM;
}

void http_engine_stop(struct http_engine *e)
{
	(void)e;
	fake_stall_heads(0);
	for (size_t i = 0; i < fake_submitted(); i++) {
		pthread_mutex_lock(&lock);
		int answered = reqs[i].answered;
		pthread_mutex_unlock(&lock);
		if (!answered)
			fake_answer(i, NULL, -ECANCELED, 0);
	}
}

void http_engine_free(struct http_engine *e)
{
	http_engine_stop(e);
	free(e);
}

/* Answer a HEAD as the engine would: size 100, or status 304 if cond. */
static void head_answer(http_done_fn done, void *arg, long status)
{
	struct http_result res = { .status = status, .size = status == 304 ? -1 : 100,
				   .attempts = 1 };
	done(arg, &res);
}

/* A HEAD: answered at once, or held while HEADs are stalled. */
static int head_submit(http_done_fn done, void *arg, long status)
{
	pthread_mutex_lock(&lock);
	nheads++;
	int hold = heads_stalled && nheld < sizeof(held) / sizeof(held[0]);
	if (hold)
		held[nheld++] = (struct fake_head){ done, arg, status };
	pthread_cond_broadcast(&changed);
	pthread_mutex_unlock(&lock);
	if (!hold)
		head_answer(done, arg, status);
	return 0;
}

int http_submit(struct http_engine *e, enum http_base base, const char *path,
		 enum http_method method, enum http_priority prio,
		 const struct http_sink *sink, http_done_fn done, void *arg)
{
	(void)e, (void)base, (void)path;
	if (method == HTTP_HEAD)
		return head_submit(done, arg, 200);
	pthread_mutex_lock(&lock);
	if (nreqs == sizeof(reqs) / sizeof(reqs[0])) {
		pthread_mutex_unlock(&lock);
		return -EAGAIN;
	}
	reqs[nreqs++] = (struct fake_req){ *sink, done, arg, 0, prio };
	pthread_cond_broadcast(&changed);
	pthread_mutex_unlock(&lock);
	return 0;
}

/* Documents are never on the fake origin. */
int http_submit_document(struct http_engine *e, enum http_base base, const char *path,
			  enum http_priority prio, const struct http_sink *sink, http_done_fn done,
			  void *arg)
{
	(void)e, (void)base, (void)path, (void)prio, (void)sink, (void)done, (void)arg;
	return -ENOENT;
}

/* Every file is as it was. */
int http_submit_cond(struct http_engine *e, enum http_base base, const char *path,
		      const struct http_cond *cond, http_done_fn done, void *arg)
{
	(void)e, (void)base, (void)path, (void)cond;
	return head_submit(done, arg, 304);
}

int http_promote(struct http_engine *e, http_done_fn done, void *arg,
		  enum http_priority prio)
{
	int raised = 0;

	(void)e;
	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < nreqs; i++) {
		struct fake_req *r = &reqs[i];
		if (r->done == done && r->arg == arg && !r->answered && r->prio > prio) {
			r->prio = prio;
			raised = 1;
		}
	}
	pthread_mutex_unlock(&lock);
	return raised;
}

int fake_begin(size_t i, int64_t content_length)
{
	pthread_mutex_lock(&lock);
	struct fake_req r = reqs[i];
	pthread_mutex_unlock(&lock);
	return r.sink.begin(r.sink.ctx, content_length);
}

int fake_write(size_t i, const char *bytes)
{
	pthread_mutex_lock(&lock);
	struct fake_req r = reqs[i];
	pthread_mutex_unlock(&lock);
	return r.sink.write(r.sink.ctx, bytes, strlen(bytes));
}

enum http_priority fake_prio(size_t i)
{
	pthread_mutex_lock(&lock);
	enum http_priority p = reqs[i].prio;
	pthread_mutex_unlock(&lock);
	return p;
}

size_t fake_submitted(void)
{
	pthread_mutex_lock(&lock);
	size_t n = nreqs;
	pthread_mutex_unlock(&lock);
	return n;
}

int fake_wait_submitted(size_t n)
{
	struct timespec end;
	int rc = 0;

	clock_gettime(CLOCK_REALTIME, &end);
	end.tv_sec += 5;
	pthread_mutex_lock(&lock);
	while (nreqs < n && rc == 0)
		rc = pthread_cond_timedwait(&changed, &lock, &end);
	pthread_mutex_unlock(&lock);
	return rc ? -ETIMEDOUT : 0;
}

int fake_answer(size_t i, const char *body, int err, long retry_after_s)
{
	struct http_result res = { .err = err, .status = err ? 503 : 200, .attempts = 1 };
	int rc = 0;

	pthread_mutex_lock(&lock);
	struct fake_req r = reqs[i];
	reqs[i].answered = 1;
	pthread_mutex_unlock(&lock);
	res.retry_after_s = retry_after_s;
	snprintf(res.url, sizeof(res.url), "http://fake/%zu", i);
	if (err)
		snprintf(res.reason, sizeof(res.reason), "HTTP 503 (1 attempts)");
	if (!err && body) {
		rc = r.sink.begin(r.sink.ctx, (int64_t)strlen(body));
		if (rc == 0)
			rc = r.sink.write(r.sink.ctx, body, strlen(body));
		if (rc < 0)
			res.err = rc;
	}
	res.size = body && !err ? (int64_t)strlen(body) : -1;
	r.done(r.arg, &res);
	return rc;
}

void fake_stall_heads(int on)
{
	struct fake_head h[sizeof(held) / sizeof(held[0])];
	size_t n = 0;

	pthread_mutex_lock(&lock);
	heads_stalled = on;
	if (!on) {
		n = nheld;
		memcpy(h, held, n * sizeof(h[0]));
		nheld = 0;
	}
	pthread_mutex_unlock(&lock);
	for (size_t i = 0; i < n; i++)
		head_answer(h[i].done, h[i].arg, h[i].status);
}

size_t fake_heads(void)
{
	pthread_mutex_lock(&lock);
	size_t n = nheads;
	pthread_mutex_unlock(&lock);
	return n;
}

void fake_reset(void)
{
	pthread_mutex_lock(&lock);
	nreqs = nheads = nheld = 0;
	heads_stalled = 0;
	pthread_mutex_unlock(&lock);
}
