/*
 * The HTTP engine against a loopback peer (tests/unit/http_peer.py), which
 * answers as each request's query string says and counts what it sees.
 */
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <cmocka.h>

#include "../../fetch/http/http.h"

#define PEER_SCRIPT "tests/unit/http_peer.py"

static pid_t peer_pid;
static int peer_port;
static char port_file[64];
static char api_url[64], assets_url[64];
static struct http_engine *ctl; /* asks the peer for its counters */

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void test_config(struct http_config *c)
{
	http_config_defaults(c);
	c->api_url = api_url;
	c->assets_url = assets_url;
	c->retry_base_ms = 20;
	c->connect_timeout_s = 2;
	c->timeout_s = 5;
}

static struct http_engine *engine(const struct http_config *c)
{
	struct http_engine *e = NULL;
	assert_int_equal(http_engine_new(&e, c), 0);
	return e;
}

static struct http_engine *default_engine(void)
{
	struct http_config c;
	test_config(&c);
	return engine(&c);
}

static int group_setup(void **state)
{
	(void)state;
	/* Loopback only, whatever proxy the environment names. */
	setenv("no_proxy", "127.0.0.1", 1);
	snprintf(port_file, sizeof(port_file), "/tmp/test_http_peer.%d", (int)getpid());
	unlink(port_file);
	peer_pid = fork();
	if (peer_pid < 0)
		return -1;
	if (peer_pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		execlp("python3", "python3", PEER_SCRIPT, "--port-file", port_file, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 500 && peer_port == 0; i++) {
		FILE *f = fopen(port_file, "r");
		if (f) {
			if (fscanf(f, "%d", &peer_port) != 1)
				peer_port = 0;
			fclose(f);
		}
		if (peer_port == 0)
			usleep(10000);
	}
	if (peer_port == 0)
		return -1;
	snprintf(api_url, sizeof(api_url), "http://127.0.0.1:%d/api", peer_port);
	snprintf(assets_url, sizeof(assets_url), "http://127.0.0.1:%d/assets", peer_port);
	ctl = default_engine();
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	http_engine_free(ctl);
	if (peer_pid > 0) {
		kill(peer_pid, SIGTERM);
		waitpid(peer_pid, NULL, 0);
	}
	unlink(port_file);
	return 0;
}

/* ---- a recording sink and a blocking call --------------------------- */

struct rec {
	unsigned char *buf;
	size_t len;
	int begins, writes, resets;
	int64_t clen;
};

static int rec_begin(void *ctx, int64_t content_length)
{
	struct rec *r = ctx;
	r->begins++;
	r->clen = content_length;
	return 0;
}

static int rec_write(void *ctx, const void *buf, size_t n)
{
	struct rec *r = ctx;
	unsigned char *p = realloc(r->buf, r->len + n);
	if (!p)
		return -ENOMEM;
	memcpy(p + r->len, buf, n);
	r->buf = p;
	r->len += n;
	r->writes++;
	return 0;
}

static int rec_reset(void *ctx)
{
	struct rec *r = ctx;
	r->len = 0;
	r->resets++;
	return 0;
}

struct call {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int done;
	struct http_result res;
};

static void call_done(void *arg, const struct http_result *res)
{
	struct call *c = arg;
	pthread_mutex_lock(&c->lock);
	c->res = *res;
	c->done = 1;
	pthread_cond_signal(&c->cond);
	pthread_mutex_unlock(&c->lock);
}

/* Submit and wait; rec NULL for HEAD. Returns res.err. */
static int run(struct http_engine *e, enum http_method m, const char *path, struct rec *rec,
	       struct http_result *res)
{
	struct call c = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, { 0 } };
	struct http_sink sink = { rec_begin, rec_write, rec_reset, rec, NULL };
	assert_int_equal(http_submit(e, HTTP_ASSETS, path, m, HTTP_FOREGROUND,
				      rec ? &sink : NULL, call_done, &c), 0);
	pthread_mutex_lock(&c.lock);
	while (!c.done)
		pthread_cond_wait(&c.cond, &c.lock);
	pthread_mutex_unlock(&c.lock);
	*res = c.res;
	return res->err;
}

/* A document's GET into memory (http_submit_document()), waited for: 0
 * with *body (NUL-terminated, the caller's) or the error, *body NULL. */
static int get_memory(struct http_engine *e, enum http_base base, const char *path,
		      enum http_priority prio, size_t max, char **body, size_t *len,
		      struct http_result *res)
{
	struct call c = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, { 0 } };
	struct http_membuf m = { .max = max };
	struct http_sink sink = http_membuf_sink(&m);
	int rc = http_submit_document(e, base, path, prio, &sink, call_done, &c);

	*body = NULL;
	if (rc == 0) {
		pthread_mutex_lock(&c.lock);
		while (!c.done)
			pthread_cond_wait(&c.cond, &c.lock);
		pthread_mutex_unlock(&c.lock);
		rc = c.res.err;
	}
	if (res)
		*res = c.res;
	if (res && rc < 0)
		res->err = rc;
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

struct tally {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int ok, left;
};

static void tally_done(void *arg, const struct http_result *res)
{
	struct tally *t = arg;
	pthread_mutex_lock(&t->lock);
	t->ok += res->err == 0;
	if (--t->left == 0)
		pthread_cond_signal(&t->cond);
	pthread_mutex_unlock(&t->lock);
}

static int discard_write(void *ctx, const void *buf, size_t n)
{
	(void)ctx;
	(void)buf;
	(void)n;
	return 0;
}

static const struct http_sink discard_sink = { NULL, discard_write, NULL, NULL, NULL };

/* Wait until every request counted in t has ended. */
static void tally_wait(struct tally *t)
{
	pthread_mutex_lock(&t->lock);
	while (t->left > 0)
		pthread_cond_wait(&t->cond, &t->lock);
	pthread_mutex_unlock(&t->lock);
}

static int peer_number(const char *path)
{
	char *body;
	size_t len;
	int n;
	assert_int_equal(get_memory(ctl, HTTP_API, path, HTTP_FOREGROUND, 64, &body, &len,
				    NULL),
			 0);
	n = atoi(body);
	free(body);
	return n;
}

static int peer_count(const char *key)
{
	char path[128];
	snprintf(path, sizeof(path), "/count/%s", key);
	return peer_number(path);
}

/* The Accept-Encoding header of key's last request. */
static void peer_accept(const char *key, char *out, size_t n)
{
	char path[128], *body;
	size_t len;
	snprintf(path, sizeof(path), "/ae/%s", key);
	assert_int_equal(get_memory(ctl, HTTP_API, path, HTTP_FOREGROUND, 256, &body, &len,
				    NULL),
			 0);
	snprintf(out, n, "%s", body);
	free(body);
}

static int body_ok(const struct rec *r, size_t n)
{
	if (r->len != n)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (r->buf[i] != i % 251)
			return 0;
	return 1;
}

/* ---- tests ---------------------------------------------------------- */

static void test_defaults(void **state)
{
	struct http_config c;
	(void)state;
	http_config_defaults(&c);
	assert_string_equal(c.api_url, "https://bestdori.com/api");
	assert_string_equal(c.assets_url, "https://bestdori.com/assets");
	assert_int_equal(c.max_connections, 16);
	assert_int_equal(c.max_transfers, 128);
	assert_int_equal(c.retries, 3);
	assert_int_equal(c.timeout_s, 30);
	assert_int_equal(c.max_file_size, (int64_t)512 << 20);
	assert_int_equal(c.max_rate, 20);
	assert_int_equal(c.rate_burst, 200);
	assert_null(c.proxy);
}

static void test_get_body(void **state)
{
	struct http_engine *e = default_engine();
	struct rec rec = { 0 };
	struct http_result res;
	char want[256];
	(void)state;

	assert_int_equal(run(e, HTTP_GET, "/t/body1?size=300000", &rec, &res), 0);
	assert_true(body_ok(&rec, 300000));
	assert_int_equal(rec.begins, 1);
	assert_int_equal(rec.clen, 300000);
	assert_int_equal(res.size, 300000);
	assert_int_equal(res.status, 200);
	assert_int_equal(res.attempts, 1);
	snprintf(want, sizeof(want), "%s/t/body1?size=300000", assets_url);
	assert_string_equal(res.url, want);

	/* Bytes trickling in one at a time still pass the sniffing intact. */
	rec.len = 0;
	assert_int_equal(run(e, HTTP_GET, "/t/dribble1?size=1000&dribble=1", &rec, &res), 0);
	assert_true(body_ok(&rec, 1000));

	/* An empty body still begins (and ends) the sink. */
	rec.len = 0;
	rec.begins = 0;
	assert_int_equal(run(e, HTTP_GET, "/t/empty1?size=0", &rec, &res), 0);
	assert_int_equal(rec.begins, 1);
	assert_int_equal(rec.clen, 0);
	assert_int_equal(res.size, 0);
	free(rec.buf);
	http_engine_free(e);
}

static void test_not_found(void **state)
{
	struct http_engine *e = default_engine();
	struct rec rec = { 0 };
	struct http_result res;
	(void)state;

	assert_int_equal(run(e, HTTP_GET, "/t/nf1?fail=404", &rec, &res), -ENOENT);
	assert_int_equal(res.attempts, 1);
	assert_int_equal(res.status, 404);
	assert_int_equal(peer_count("nf1"), 1);
	assert_int_equal(run(e, HTTP_GET, "/t/gone1?fail=410", &rec, &res), -ENOENT);
	assert_int_equal(rec.begins + rec.writes, 0);
	/* Other 4xx: an error, not retried. */
	assert_int_equal(run(e, HTTP_GET, "/t/forbid1?fail=403", &rec, &res), -EIO);
	assert_int_equal(peer_count("forbid1"), 1);
	assert_non_null(strstr(res.reason, "403"));
	http_engine_free(e);
}

static void test_html_page(void **state)
{
	struct http_engine *e = default_engine();
	struct rec rec = { 0 };
	struct http_result res;
	(void)state;

	assert_int_equal(run(e, HTTP_GET, "/t/html1?html=1", &rec, &res), -ENOENT);
	assert_int_equal(res.status, 200);
	assert_int_equal(res.attempts, 1);
	assert_int_equal(run(e, HTTP_GET, "/t/html2?htmlbody=1", &rec, &res), -ENOENT);
	assert_int_equal(run(e, HTTP_GET, "/t/html3?htmlbody=1&dribble=1", &rec, &res), -ENOENT);
	assert_int_equal(rec.begins + rec.writes, 0);
	assert_int_equal(run(e, HTTP_HEAD, "/t/html4?html=1", NULL, &res), -ENOENT);
	http_engine_free(e);
}

static void test_retry_then_ok(void **state)
{
	struct http_engine *e = default_engine();
	struct rec rec = { 0 };
	struct http_result res;
	(void)state;

	assert_int_equal(run(e, HTTP_GET, "/t/r503a?fail=503&times=2&size=500", &rec, &res), 0);
	assert_int_equal(res.attempts, 3);
	assert_int_equal(peer_count("r503a"), 3);
	assert_true(body_ok(&rec, 500));
	free(rec.buf);
	http_engine_free(e);
}

static void test_retry_exhausted(void **state)
{
	struct http_engine *e = default_engine();
	struct rec rec = { 0 };
	struct http_result res;
	(void)state;

	assert_int_equal(run(e, HTTP_GET, "/t/r503b?fail=503", &rec, &res), -EIO);
	assert_int_equal(res.attempts, 4);
	assert_int_equal(peer_count("r503b"), 4);
	assert_int_equal(res.status, 503);
	assert_non_null(strstr(res.reason, "503"));
	assert_int_equal(rec.begins + rec.writes, 0);
	/* A server answering 503 is up: the next request still reaches it. */
	assert_int_equal(run(e, HTTP_GET, "/t/r503c?size=10", &rec, &res), 0);
	free(rec.buf);
	http_engine_free(e);
}

static void test_retry_after(void **state)
{
	struct http_engine *e = default_engine();
	struct rec rec = { 0 };
	struct http_result res;
	int64_t t0 = now_ms();
	(void)state;

	assert_int_equal(run(e, HTTP_GET, "/t/r429?fail=429&times=1&retry_after=1", &rec, &res), 0);
	assert_true(now_ms() - t0 >= 950);
	assert_int_equal(res.attempts, 2);
	assert_int_equal(peer_count("r429"), 2);
	free(rec.buf);
	http_engine_free(e);
}

static void test_short_body(void **state)
{
	struct http_engine *e = default_engine();
	struct rec rec = { 0 };
	struct http_result res;
	(void)state;

	assert_int_equal(run(e, HTTP_GET, "/t/short1?size=20000&short=1&times=1", &rec, &res), 0);
	assert_int_equal(res.attempts, 2);
	assert_int_equal(rec.resets, 1);
	assert_int_equal(rec.begins, 2);
	assert_true(body_ok(&rec, 20000));
	assert_int_equal(res.size, 20000);
	free(rec.buf);
	http_engine_free(e);
}

static void test_stall(void **state)
{
	struct http_config c;
	struct http_engine *e;
	struct rec rec = { 0 };
	struct http_result res;
	int64_t t0;
	(void)state;

	test_config(&c);
	c.timeout_s = 1;
	c.retries = 0;
	e = engine(&c);
	t0 = now_ms();
	assert_int_equal(run(e, HTTP_GET, "/t/stall1?stall=5", &rec, &res), -EIO);
	assert_true(now_ms() - t0 < 3500);
	assert_non_null(strstr(res.reason, "no data"));
	/* Accepted, never answered. */
	t0 = now_ms();
	assert_int_equal(run(e, HTTP_GET, "/t/mute1?mute=5", &rec, &res), -EIO);
	assert_true(now_ms() - t0 < 3500);
	free(rec.buf);
	http_engine_free(e);
}

static int unused_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	close(fd);
	return ntohs(a.sin_port);
}

struct chain {
	struct http_engine *e;
	struct tally *t;
};

static void submit_three(void *arg, const struct http_result *res)
{
	struct chain *c = arg;
	for (int i = 0; i < 3; i++)
		if (http_submit(c->e, HTTP_API, "/z", HTTP_GET, HTTP_FOREGROUND, &discard_sink,
				 tally_done, c->t) < 0)
			tally_done(c->t, res);
}

static void test_refused(void **state)
{
	struct tally t = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 3 };
	struct chain chain = { NULL, &t };
	struct http_config c;
	struct http_engine *e;
	struct rec rec = { 0 };
	struct http_result res;
	char url[64];
	int64_t t0;
	(void)state;

	test_config(&c);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/api", unused_port());
	c.api_url = c.assets_url = url;
	c.max_transfers = 1;
	e = engine(&c);
	chain.e = e;
	t0 = now_ms();
	assert_int_equal(run(e, HTTP_GET, "/x", &rec, &res), -EIO);
	assert_non_null(strstr(res.reason, "connection refused"));
	assert_int_equal(res.status, 0);
	/* Three failures in a row mark the base down; the request under way
	 * keeps to its own retries (all four attempts, test_config's short
	 * back-off) rather than wait for the down period. */
	assert_int_equal(res.attempts, 4);
	assert_true(now_ms() - t0 < 1500);
	/* A new request is not tried: it fails fast. */
	t0 = now_ms();
	assert_int_equal(run(e, HTTP_GET, "/y", &rec, &res), -EIO);
	assert_int_equal(res.attempts, 0);
	assert_true(now_ms() - t0 < 200);
	assert_non_null(strstr(res.reason, "unreachable"));
	/* Queued together (from a done callback), each request failing fast
	 * hands the one slot to the next at once. */
	t0 = now_ms();
	assert_int_equal(http_submit(e, HTTP_API, "/w", HTTP_GET, HTTP_FOREGROUND,
				      &discard_sink, submit_three, &chain),
			 0);
	tally_wait(&t);
	assert_int_equal(t.ok, 0);
	assert_true(now_ms() - t0 < 200);
	http_engine_free(e);
}

/* Connections that end without an answer (a flaky link) do not make the
 * origin count as down: other requests are still tried. */
static void test_resets_are_not_a_dead_origin(void **state)
{
	struct http_config c;
	struct http_engine *e;
	struct rec rec = { 0 };
	struct http_result res;
	(void)state;

	test_config(&c);
	e = engine(&c);
	assert_int_equal(run(e, HTTP_GET, "/t/muted1?mute=0", &rec, &res), -EIO);
	assert_int_equal(res.attempts, 4);
	assert_int_equal(run(e, HTTP_GET, "/t/muted2?mute=0", &rec, &res), -EIO);
	assert_int_equal(res.attempts, 4);
	free(rec.buf);
	memset(&rec, 0, sizeof(rec));
	assert_int_equal(run(e, HTTP_GET, "/t/after_mute?size=100", &rec, &res), 0);
	assert_true(body_ok(&rec, 100));
	free(rec.buf);
	http_engine_free(e);
}

static void test_too_big(void **state)
{
	struct http_config c;
	struct http_engine *e;
	struct rec rec = { 0 };
	struct http_result res;
	char *body;
	size_t len;
	(void)state;

	test_config(&c);
	c.max_file_size = 1000;
	e = engine(&c);
	assert_int_equal(run(e, HTTP_GET, "/t/big1?size=5000", &rec, &res), -EFBIG);
	assert_int_equal(rec.begins + rec.writes, 0);
	assert_int_equal(res.attempts, 1);
	assert_int_equal(run(e, HTTP_GET, "/t/big2?size=5000&nolen=1", &rec, &res), -EFBIG);
	assert_true(rec.len <= 1000);
	assert_int_equal(run(e, HTTP_GET, "/t/big3?size=1000", &rec, &res), 0);
	assert_int_equal(res.size, 1000);
	assert_int_equal(get_memory(e, HTTP_API, "/t/big4?size=101", HTTP_FOREGROUND, 100,
					  &body, &len, &res),
			 -EFBIG);
	assert_null(body);
	free(rec.buf);
	http_engine_free(e);
}

static void test_redirects(void **state)
{
	struct http_engine *e = default_engine();
	struct rec rec = { 0 };
	struct http_result res;
	char want[256];
	(void)state;

	assert_int_equal(run(e, HTTP_GET, "/t/rd1?redirect=http://other.invalid/x", &rec, &res),
			 -EIO);
	assert_non_null(strstr(res.reason, "other.invalid"));
	assert_non_null(strstr(res.reason, "refused"));
	/* A neighbour sharing the prefix's characters is another place. */
	snprintf(want, sizeof(want), "/t/rd2?redirect=http://127.0.0.1:%d/assetsX/t/x", peer_port);
	assert_int_equal(run(e, HTTP_GET, want, &rec, &res), -EIO);
	assert_non_null(strstr(res.reason, "refused"));

	assert_int_equal(run(e, HTTP_GET, "/t/rd3?redirect=/api/t/rd3target", &rec, &res), 0);
	snprintf(want, sizeof(want), "%s/t/rd3target", api_url);
	assert_string_equal(res.url, want);
	assert_int_equal(res.attempts, 2);
	assert_true(body_ok(&rec, 64));

	assert_int_equal(run(e, HTTP_GET, "/t/rd4?redirect=self", &rec, &res), -EIO);
	assert_non_null(strstr(res.reason, "too many redirects"));
	assert_int_equal(peer_count("rd4"), 6);
	free(rec.buf);
	http_engine_free(e);
}

static void test_mirror(void **state)
{
	struct http_config c;
	struct http_engine *e;
	struct rec rec = { 0 };
	struct http_result res;
	char origin_api[80], origin_assets[80], mirror[80], want[256];
	(void)state;

	test_config(&c);
	snprintf(origin_api, sizeof(origin_api), "http://127.0.0.1:%d/down/api", peer_port);
	snprintf(origin_assets, sizeof(origin_assets), "http://127.0.0.1:%d/down/assets", peer_port);
	snprintf(mirror, sizeof(mirror), "http://127.0.0.1:%d/m1/", peer_port);
	c.api_url = origin_api;
	c.assets_url = origin_assets;
	c.mirrors[0] = mirror;
	c.nmirrors = 1;
	e = engine(&c);
	assert_int_equal(run(e, HTTP_GET, "/t/mirror1?size=777", &rec, &res), 0);
	snprintf(want, sizeof(want), "http://127.0.0.1:%d/m1/assets/t/mirror1?size=777", peer_port);
	assert_string_equal(res.url, want);
	assert_int_equal(res.attempts, 2);
	assert_int_equal(peer_count("mirror1"), 2);
	assert_true(body_ok(&rec, 777));
	free(rec.buf);
	http_engine_free(e);
}

struct burst {
	struct http_engine *e;
	struct tally *t;
	int first;
};

static void *burst_thread(void *arg)
{
	struct burst *b = arg;
	char path[64];
	for (int i = 0; i < 16; i++) {
		snprintf(path, sizeof(path), "/t/par%d?size=300&delay=50", b->first + i);
		if (http_submit(b->e, HTTP_ASSETS, path, HTTP_GET, HTTP_BACKGROUND,
				 &discard_sink, tally_done, b->t) < 0)
			tally_done(b->t, &(struct http_result){ .err = -EIO });
	}
	return NULL;
}

static void test_parallel(void **state)
{
	struct http_config c;
	struct http_engine *e;
	struct tally t = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 64 };
	struct burst parts[4];
	pthread_t th[4];
	int64_t t0;
	int most;
	(void)state;

	test_config(&c);
	c.max_connections = 4;
	e = engine(&c);
	peer_number("/stats/reset");
	t0 = now_ms();
	/* Four submitting threads, one tally. */
	for (int i = 0; i < 4; i++) {
		parts[i] = (struct burst){ e, &t, i * 16 };
		assert_int_equal(pthread_create(&th[i], NULL, burst_thread, &parts[i]), 0);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	tally_wait(&t);
	assert_int_equal(t.ok, 64);
	most = peer_number("/stats/max");
	assert_true(most <= 4);
	assert_true(most >= 2);
	/* 64 x 50 ms one after another would take 3.2 s. */
	assert_true(now_ms() - t0 < 2500);
	http_engine_free(e);
}

struct order {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	char seen[8];
	int n;
};

static void order_done(void *arg, const struct http_result *res)
{
	struct order *o = *(struct order **)arg;
	const char *tag = (const char *)arg + sizeof(struct order *);
	pthread_mutex_lock(&o->lock);
	if (res->err == 0)
		o->seen[o->n] = *tag;
	o->n++;
	pthread_cond_signal(&o->cond);
	pthread_mutex_unlock(&o->lock);
}

static void test_priority(void **state)
{
	struct http_config c;
	struct http_engine *e;
	struct order o = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, { 0 }, 0 };
	struct {
		struct order *o;
		char tag;
	} args[5];
	static const char tags[] = "XbbFF";
	static const char *const paths[] = { "/t/prio0?delay=200", "/t/prio1", "/t/prio2",
					     "/t/prio3", "/t/prio4" };
	(void)state;

	test_config(&c);
	c.max_transfers = 1;
	e = engine(&c);
	for (int i = 0; i < 5; i++) {
		args[i].o = &o;
		args[i].tag = tags[i];
		assert_int_equal(http_submit(e, HTTP_ASSETS, paths[i], HTTP_GET,
					      tags[i] == 'F' ? HTTP_FOREGROUND : HTTP_BACKGROUND,
					      &discard_sink, order_done, &args[i]),
				 0);
	}
	pthread_mutex_lock(&o.lock);
	while (o.n < 5)
		pthread_cond_wait(&o.cond, &o.lock);
	pthread_mutex_unlock(&o.lock);
	/* Both F jumped the queued b's (X may have had the slot already). */
	assert_int_equal(strlen(o.seen), 5);
	assert_true(strrchr(o.seen, 'F') < strchr(o.seen, 'b'));
	http_engine_free(e);
}

static void test_head(void **state)
{
	struct http_engine *e = default_engine();
	struct http_result res, batch[4];
	static const char *const paths[] = { "/t/hb1?size=10", "/t/hb2?fail=404", "/t/hb3?html=1",
					     "/t/hb4?size=99999" };
	(void)state;

	assert_int_equal(run(e, HTTP_HEAD, "/t/head1?size=1234", NULL, &res), 0);
	assert_int_equal(res.size, 1234);
	for (int i = 0; i < 4; i++)
		run(e, HTTP_HEAD, paths[i], NULL, &batch[i]);
	assert_int_equal(batch[0].err, 0);
	assert_int_equal(batch[0].size, 10);
	assert_int_equal(batch[1].err, -ENOENT);
	assert_int_equal(batch[2].err, -ENOENT);
	assert_int_equal(batch[3].err, 0);
	assert_int_equal(batch[3].size, 99999);
	http_engine_free(e);
}

static int unwanted(void *ctx)
{
	(void)ctx;
	return 0;
}

/* A request no one wants by the time it leaves its queue is not sent. */
static void test_unwanted_is_not_sent(void **state)
{
	struct http_engine *e = default_engine();
	struct call c = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, { 0 } };
	const struct http_sink sink = { .wanted = unwanted };
	(void)state;

	assert_int_equal(http_submit(e, HTTP_ASSETS, "/t/unwanted1?size=10", HTTP_HEAD,
				     HTTP_PROBE, &sink, call_done, &c),
			 0);
	pthread_mutex_lock(&c.lock);
	while (!c.done)
		pthread_cond_wait(&c.cond, &c.lock);
	pthread_mutex_unlock(&c.lock);
	assert_int_equal(c.res.err, -ECANCELED);
	assert_int_equal(peer_count("unwanted1"), 0);
	http_engine_free(e);
}

static void test_get_memory(void **state)
{
	struct http_engine *e = default_engine();
	struct http_result res;
	char *body;
	size_t len;
	(void)state;

	assert_int_equal(get_memory(e, HTTP_API, "/t/mem1?size=1000", HTTP_FOREGROUND, 1000,
					  &body, &len, &res),
			 0);
	assert_int_equal(len, 1000);
	assert_int_equal(body[len], '\0');
	for (size_t i = 0; i < len; i++)
		assert_int_equal((unsigned char)body[i], i % 251);
	free(body);
	assert_int_equal(get_memory(e, HTTP_API, "/t/mem2?fail=404", HTTP_FOREGROUND, 10,
					  &body, &len, NULL),
			 -ENOENT);
	assert_int_equal(get_memory(e, HTTP_API, "no-slash", HTTP_FOREGROUND, 10, &body,
					  &len, &res),
			 -EINVAL);
	assert_int_equal(res.err, -EINVAL);
	http_engine_free(e);
}

/* Documents are asked for compressed and decoded, within the limit as
 * decoded; assets and HEADs ask for no encoding and get the bytes as is. */
static void test_encoding(void **state)
{
	struct http_engine *e = default_engine();
	struct http_result res;
	struct rec rec = { 0 };
	char ae[256], *body;
	size_t len;
	(void)state;

	assert_int_equal(get_memory(e, HTTP_API, "/t/gz1?size=50000&gzip=1", HTTP_PROBE,
					  50000, &body, &len, &res),
			 0);
	peer_accept("gz1", ae, sizeof(ae));
	assert_non_null(strstr(ae, "gzip"));
	assert_int_equal(len, 50000);
	assert_int_equal(res.size, 50000);
	for (size_t i = 0; i < len; i++)
		assert_int_equal((unsigned char)body[i], i % 251);
	free(body);
	/* Small on the wire, too big decoded. */
	assert_int_equal(get_memory(e, HTTP_API, "/t/gz2?size=50000&gzip=1",
					  HTTP_FOREGROUND, 49999, &body, &len, &res),
			 -EFBIG);
	assert_int_equal(run(e, HTTP_GET, "/t/gz3?size=50000&gzip=1", &rec, &res), 0);
	peer_accept("gz3", ae, sizeof(ae));
	assert_string_equal(ae, "");
	assert_true(body_ok(&rec, 50000));
	assert_int_equal(run(e, HTTP_HEAD, "/t/gz4?size=50000&gzip=1", NULL, &res), 0);
	peer_accept("gz4", ae, sizeof(ae));
	assert_string_equal(ae, "");
	assert_int_equal(res.size, 50000);
	free(rec.buf);
	http_engine_free(e);
}

struct stamp {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int left;
	int64_t last_budgeted, foreground;
};

/* When the foreground request (path .../budgetF) and the last other one ended. */
static void stamp_done(void *arg, const struct http_result *res)
{
	struct stamp *s = arg;
	pthread_mutex_lock(&s->lock);
	*(strstr(res->url, "budgetF") ? &s->foreground : &s->last_budgeted) = now_ms();
	s->left--;
	pthread_cond_signal(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

/* 2 at once, then 10 a second: 8 probes and prefetches take 0.6 s or more,
 * while a foreground GET queued behind them goes at once. */
static void test_budget(void **state)
{
	struct http_config c;
	struct http_engine *e;
	struct stamp s = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 9, 0, 0 };
	char path[64];
	(void)state;

	test_config(&c);
	c.max_rate = 10;
	c.rate_burst = 2;
	e = engine(&c);
	int64_t t0 = now_ms();
	for (int i = 0; i < 8; i++) {
		snprintf(path, sizeof(path), "/t/budget%d", i);
		assert_int_equal(http_submit(e, HTTP_ASSETS, path, i % 2 ? HTTP_HEAD : HTTP_GET,
					      i % 2 ? HTTP_PROBE : HTTP_BACKGROUND, &discard_sink,
					      stamp_done, &s),
				 0);
	}
	assert_int_equal(http_submit(e, HTTP_ASSETS, "/t/budgetF", HTTP_GET, HTTP_FOREGROUND,
				      &discard_sink, stamp_done, &s),
			 0);
	pthread_mutex_lock(&s.lock);
	while (s.left > 0)
		pthread_cond_wait(&s.cond, &s.lock);
	pthread_mutex_unlock(&s.lock);
	assert_true(s.last_budgeted - t0 >= 550);
	assert_true(s.foreground < s.last_budgeted);
	http_engine_free(e);
}

struct cancel {
	struct http_engine *e;
	int cancelled, resubmit;
};

static void cancel_done(void *arg, const struct http_result *res)
{
	struct cancel *c = arg;
	c->cancelled += res->err == -ECANCELED;
	c->resubmit = http_submit(c->e, HTTP_ASSETS, "/t/after", HTTP_GET, HTTP_FOREGROUND,
				   &discard_sink, cancel_done, c);
}

static void test_cancel(void **state)
{
	struct http_config c;
	struct cancel cc = { 0 };
	int64_t t0;
	(void)state;

	test_config(&c);
	c.max_transfers = 1;
	cc.e = engine(&c);
	assert_int_equal(http_submit(cc.e, HTTP_ASSETS, "/t/cancel1?stall=5", HTTP_GET,
				      HTTP_FOREGROUND, &discard_sink, cancel_done, &cc),
			 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(http_submit(cc.e, HTTP_ASSETS, "/t/cancel2", HTTP_GET,
					      HTTP_BACKGROUND, &discard_sink, cancel_done, &cc),
				 0);
	usleep(200000);
	t0 = now_ms();
	http_engine_free(cc.e);
	assert_true(now_ms() - t0 < 1000);
	assert_int_equal(cc.cancelled, 4);
	assert_int_equal(cc.resubmit, -ECANCELED);
}

static void test_invalid(void **state)
{
	struct http_engine *e = default_engine();
	struct http_config c;
	struct http_engine *bad = NULL;
	(void)state;

	assert_int_equal(http_submit(e, HTTP_API, "x", HTTP_HEAD, HTTP_FOREGROUND, NULL, NULL,
				      NULL),
			 -EINVAL);
	assert_int_equal(http_submit(e, HTTP_API, "/x", HTTP_GET, HTTP_FOREGROUND, NULL, NULL,
				      NULL),
			 -EINVAL);
	assert_int_equal(http_submit(e, HTTP_API, "/a\r\nb", HTTP_HEAD, HTTP_FOREGROUND, NULL,
				      NULL, NULL),
			 -EINVAL);
	test_config(&c);
	c.max_transfers = 0;
	assert_int_equal(http_engine_new(&bad, &c), -EINVAL);
	assert_null(bad);
	http_engine_free(e);
}

/* A configured whole URL is fetched as given; any other is refused before
 * a request is sent; and a dead one does not mark the origin down. */
static void test_configured_urls(void **state)
{
	struct http_config c;
	struct http_engine *e;
	char url[128], dead[128], other[128], *body = NULL;
	size_t len = 0;
	struct http_result res;
	struct rec rec = { 0 };
	(void)state;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/odd/place/roster?size=10", peer_port);
	snprintf(dead, sizeof(dead), "http://127.0.0.1:1/dead/doc");
	snprintf(other, sizeof(other), "http://127.0.0.1:%d/odd/place/other", peer_port);
	test_config(&c);
	c.retries = 0;
	c.urls[0] = url;
	c.urls[2] = dead;
	e = engine(&c);
	assert_int_equal(get_memory(e, HTTP_URL, url, HTTP_FOREGROUND, 64, &body, &len, &res),
			 0);
	assert_int_equal(len, 10);
	assert_string_equal(res.url, url);
	free(body);
	assert_int_equal(get_memory(e, HTTP_URL, other, HTTP_FOREGROUND, 64, &body, &len,
				    NULL),
			 -EPERM);
	assert_int_equal(peer_count("other"), 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(get_memory(e, HTTP_URL, dead, HTTP_FOREGROUND, 64, &body, &len,
						  NULL),
				 -EIO);
	/* The origin is still tried at once. */
	assert_int_equal(run(e, HTTP_GET, "/t/after_dead_url", &rec, &res), 0);
	free(rec.buf);
	http_engine_free(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_get_body),
		cmocka_unit_test(test_not_found),
		cmocka_unit_test(test_html_page),
		cmocka_unit_test(test_retry_then_ok),
		cmocka_unit_test(test_retry_exhausted),
		cmocka_unit_test(test_retry_after),
		cmocka_unit_test(test_short_body),
		cmocka_unit_test(test_stall),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_resets_are_not_a_dead_origin),
		cmocka_unit_test(test_too_big),
		cmocka_unit_test(test_redirects),
		cmocka_unit_test(test_mirror),
		cmocka_unit_test(test_configured_urls),
		cmocka_unit_test(test_parallel),
		cmocka_unit_test(test_priority),
		cmocka_unit_test(test_head),
		cmocka_unit_test(test_unwanted_is_not_sent),
		cmocka_unit_test(test_get_memory),
		cmocka_unit_test(test_encoding),
		cmocka_unit_test(test_budget),
		cmocka_unit_test(test_cancel),
		cmocka_unit_test(test_invalid),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
