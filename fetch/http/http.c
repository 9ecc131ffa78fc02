/*
 * The HTTP engine: one libcurl multi handle driven by one thread.
 *
 * Requests wait in two queues (foreground drained first) until one of
 * max_transfers slots is free; a slot owns a reusable easy handle, and the
 * multi handle's connection cache is shared by all of them. Everything
 * after admission (attempts, fail-over between bases, redirects, retry
 * timers, per-base back-off) happens on the engine thread, so only the
 * queues need a lock.
 *
 * A request walks "rounds": a round tries the bases in order (origin,
 * then each mirror) skipping those marked down, moving on after a network
 * error, 429 or 5xx. A round that ends without an answer spends one retry
 * and waits on a timer before the next round starts from the first base.
 */
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../../log/log.h"
#include "http_int.h"

#ifndef L2DFS_VERSION
#define L2DFS_VERSION "dev"
#endif

#define SNIFF_MAX 32              /* body bytes held back to spot an HTML page */
#define DISCARD_MAX (64 * 1024)   /* unwanted body read to keep the connection */
#define MAX_REDIRECTS 5
#define RETRY_AFTER_MAX_MS 60000
#define IDLE_POLL_MS 60000
#define XFER_BUFFER (64 * 1024L)
#define NPRIO 3

struct req {
	struct req *next; /* in a queue or the timer list */
	const struct http_engine *e;
	enum http_base kind;
	enum http_method method;
	enum http_priority prio;
	int decode;       /* Accept-Encoding sent, body decoded */
	struct curl_slist *headers; /* conditional request headers, or NULL */
	struct http_sink sink;
	http_done_fn done;
	void *arg;
	int64_t due_ms;   /* when the next round may start */
	int base;         /* index of the base being tried */
	int retries_used;
	int hops;
	/* Per attempt. */
	CURL *h;
	int checked;      /* status and headers looked at */
	int discard;      /* the body is not for the sink */
	int began;        /* sink->begin called */
	int err;          /* verdict reached in a callback */
	int64_t clen;
	size_t discarded;
	size_t sniff_len;
	unsigned char sniff[SNIFF_MAX];
	struct http_result res; /* res.url: the URL of the current attempt */
	char path[];
};

struct slot {
	CURL *h;
	struct req *r;
};

struct http_engine {
	struct http_config cfg;
	CURLM *multi;
	pthread_t thread;

	pthread_mutex_t lock; /* guards the fields up to the next comment */
	struct req *head[NPRIO], *tail[NPRIO];
	int stopping;
	int wake_pending;

	/* Engine thread only. */
	struct slot *slots;
	int *free_slots;
	int nfree;
	struct req *timers; /* by due_ms */
	struct http_bases bases;
	unsigned rng;
	int h2c_fresh; /* h2c: a new connection per transfer */
	double tokens;      /* the request budget's bucket */
	int64_t refill_ms;  /* when tokens was last topped up */
	long budget_wait_ms;/* -1, or when a budgeted request may start */
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc;

static void global_init(void)
{
	global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

void http_config_defaults(struct http_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->api_url = "https://bestdori.com/api";
	cfg->assets_url = "https://bestdori.com/assets";
	cfg->max_connections = 16;
	cfg->max_transfers = 128;
	cfg->connect_timeout_s = 10;
	cfg->timeout_s = 30;
	cfg->retries = 3;
	cfg->retry_base_ms = 500;
	cfg->max_file_size = (int64_t)512 << 20;
	cfg->max_rate = 20;
	cfg->rate_burst = 200;
}

/* ---- outcomes ------------------------------------------------------ */

static void set_reason(struct req *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_reason(struct req *r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->res.reason, sizeof(r->res.reason), fmt, ap);
	va_end(ap);
}

static void add_reason(struct req *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add_reason(struct req *r, const char *fmt, ...)
{
	size_t n = strlen(r->res.reason);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->res.reason + n, sizeof(r->res.reason) - n, fmt, ap);
	va_end(ap);
}

static void release_slot(struct http_engine *e, struct slot *s)
{
	s->r->h = NULL;
	s->r = NULL;
	e->free_slots[e->nfree++] = (int)(s - e->slots);
}

/* End a request: its done callback runs, then it is gone. */
static void finish(struct req *r, int err)
{
	r->res.err = err;
	if (err == 0)
		r->res.reason[0] = '\0';
	if (r->done)
		r->done(r->arg, &r->res);
	curl_slist_free_all(r->headers);
	free(r);
}

static void finish_slot(struct http_engine *e, struct slot *s, int err)
{
	struct req *r = s->r;
	release_slot(e, s);
	finish(r, err);
}

/* Out of attempts or of bases: -EIO with the last reason. */
static void give_up(struct http_engine *e, struct slot *s)
{
	struct req *r = s->r;
	if (r->res.attempts > 1)
		add_reason(r, " (%d attempts)", r->res.attempts);
	finish_slot(e, s, -EIO);
}

/* ---- attempts ------------------------------------------------------ */

static CURL *new_handle(const struct http_engine *e);
static size_t on_body(char *p, size_t size, size_t nmemb, void *ud);

static int launch(struct http_engine *e, struct slot *s)
{
	struct req *r = s->r;
	int plain = strncmp(r->res.url, "http://", 7) == 0;
	long version = e->cfg.h2c && plain ? CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE
					   : CURL_HTTP_VERSION_2TLS;

	r->h = s->h;
	r->checked = r->discard = r->began = r->err = 0;
	r->clen = -1;
	r->discarded = r->sniff_len = 0;
	r->res.size = r->method == HTTP_HEAD ? -1 : 0;
	r->res.attempts++;
	curl_easy_setopt(s->h, CURLOPT_URL, r->res.url);
	if (r->method == HTTP_HEAD)
		curl_easy_setopt(s->h, CURLOPT_NOBODY, 1L);
	else
		curl_easy_setopt(s->h, CURLOPT_HTTPGET, 1L);
	curl_easy_setopt(s->h, CURLOPT_HTTP_VERSION, version);
	/* Documents compress well; assets are stored byte for byte as served. */
	curl_easy_setopt(s->h, CURLOPT_ACCEPT_ENCODING, r->decode ? "" : NULL);
	curl_easy_setopt(s->h, CURLOPT_HTTPHEADER, r->headers); /* NULL: none */
	/* Waiting for a connection to learn whether it multiplexes only
	 * pays where HTTP/2 is possible. */
	curl_easy_setopt(s->h, CURLOPT_PIPEWAIT, (long)(!plain || (e->cfg.h2c && !e->h2c_fresh)));
	curl_easy_setopt(s->h, CURLOPT_FRESH_CONNECT, (long)(plain && e->h2c_fresh));
	curl_easy_setopt(s->h, CURLOPT_FORBID_REUSE, (long)(plain && e->h2c_fresh));
	curl_easy_setopt(s->h, CURLOPT_PRIVATE, s);
	curl_easy_setopt(s->h, CURLOPT_WRITEDATA, r);
	if (curl_multi_add_handle(e->multi, s->h) != CURLM_OK) {
		set_reason(r, "could not start the transfer");
		return -EIO;
	}
	return 0;
}

static void launch_or_fail(struct http_engine *e, struct slot *s)
{
	if (launch(e, s) < 0)
		finish_slot(e, s, -EIO);
}

static void timer_add(struct http_engine *e, struct req *r);
static long retry_budget_ms(const struct http_engine *e, const struct req *r);

/*
 * Start a round at the first base that is up. A retry of a request under
 * way that finds every base marked down waits for the base to be tried
 * again if its remaining retries (0.5 + 1 + 2 s by default) would have
 * waited as long, and otherwise tries anyway: an outage shorter than the
 * retries fails nothing, and a dead origin costs each request no more than
 * its retries. A fresh
 * request that finds the origin down waits for it, spending a retry, if its
 * retries would have waited as long; otherwise it fails now: a long outage
 * costs new requests nothing.
 */
static void start_round(struct http_engine *e, struct slot *s)
{
	struct req *r = s->r;
	/* A configured URL is not one of the bases: always tried. */
	int b = r->kind == HTTP_URL ? 0 : http_next_up(&e->bases, 0);
	if (b < 0 && r->res.attempts > 0) {
		int64_t left = http_down_left_ms(&e->bases);
		if (left <= retry_budget_ms(e, r)) {
			/* Its retry is spent already: it waits for the base to be
			 * tried again rather than try before then. */
			r->due_ms = http_now_ms() + left + 1;
			release_slot(e, s);
			timer_add(e, r);
			return;
		}
		b = 0;
	}
	if (b < 0) {
		int64_t left = http_down_left_ms(&e->bases);
		if (r->retries_used < e->cfg.retries && left <= retry_budget_ms(e, r)) {
			r->retries_used++;
			r->due_ms = http_now_ms() + left + 1;
			release_slot(e, s);
			timer_add(e, r);
			return;
		}
		set_reason(r, "origin unreachable, retrying after %ld s", http_down_left_s(&e->bases));
		give_up(e, s);
		return;
	}
	r->base = b;
	r->hops = 0;
	http_url(&e->bases, r->kind, r->base, r->path, r->res.url);
	launch_or_fail(e, s);
}

static void timer_add(struct http_engine *e, struct req *r)
{
	struct req **p = &e->timers;
	while (*p && (*p)->due_ms <= r->due_ms)
		p = &(*p)->next;
	r->next = *p;
	*p = r;
}

/* base_ms * 2^(n-1), capped: the n-th retry's nominal back-off. */
static long nominal_backoff_ms(const struct http_engine *e, int n)
{
	long d = e->cfg.retry_base_ms;
	for (int i = 1; i < n && d < RETRY_AFTER_MAX_MS; i++)
		d *= 2;
	return d > RETRY_AFTER_MAX_MS ? RETRY_AFTER_MAX_MS : d;
}

/* The nominal back-off, +-50%. */
static long backoff_ms(struct http_engine *e, int n)
{
	long d = nominal_backoff_ms(e, n);
	return d / 2 + (long)(rand_r(&e->rng) % (unsigned)(d + 1));
}

/* How long r's remaining retries would wait in all (nominal): 0.5 + 1 + 2 s
 * for a fresh request by default. */
static long retry_budget_ms(const struct http_engine *e, const struct req *r)
{
	long sum = 0;
	for (int n = r->retries_used + 1; n <= e->cfg.retries; n++)
		sum += nominal_backoff_ms(e, n);
	return sum;
}

/* The attempt failed in a way worth another try (reason already set):
 * the next base now, else a later round, else give up. */
static void try_again(struct http_engine *e, struct slot *s, long retry_after_s)
{
	struct req *r = s->r;
	int b;

	if (r->began && r->sink.reset) {
		int rc = r->sink.reset(r->sink.ctx);
		if (rc < 0) {
			set_reason(r, "could not reset the body: %s", strerror(-rc));
			finish_slot(e, s, rc);
			return;
		}
	}
	b = r->kind == HTTP_URL ? -1 : http_next_up(&e->bases, r->base + 1);
	if (b >= 0) {
		log_debug("%s: %s, trying the next base", r->res.url, r->res.reason);
		r->base = b;
		http_url(&e->bases, r->kind, r->base, r->path, r->res.url);
		launch_or_fail(e, s);
		return;
	}
	if (r->retries_used >= e->cfg.retries) {
		give_up(e, s);
		return;
	}
	r->retries_used++;
	long delay = retry_after_s > 0 ? retry_after_s * 1000 : backoff_ms(e, r->retries_used);
	if (delay > RETRY_AFTER_MAX_MS)
		delay = RETRY_AFTER_MAX_MS;
	log_debug("%s: %s, retry in %ld ms", r->res.url, r->res.reason, delay);
	r->due_ms = http_now_ms() + delay;
	release_slot(e, s);
	timer_add(e, r);
}

/* Describe a transport error; returns 0 if it is not worth retrying, 2 if
 * the base could not be reached at all (no connection: it may be down),
 * 1 for other failures worth retrying (a connection reset or cut short: a
 * flaky link, not a dead origin). */
static int network_reason(const struct http_engine *e, struct req *r, CURLcode rc)
{
	long oserr = 0;
	curl_off_t connect_us = 0;
	curl_easy_getinfo(r->h, CURLINFO_OS_ERRNO, &oserr);
	switch (rc) {
	case CURLE_COULDNT_CONNECT:
		if (oserr == ECONNREFUSED)
			set_reason(r, "connection refused");
		else
			set_reason(r, "could not connect: %s", strerror((int)oserr));
		return 2;
	case CURLE_OPERATION_TIMEDOUT:
		/* A reused connection has no connect time: ask whether the
		 * transfer ever started instead. */
		curl_easy_getinfo(r->h, CURLINFO_PRETRANSFER_TIME_T, &connect_us);
		if (connect_us == 0) {
			set_reason(r, "connect timed out after %ld s", e->cfg.connect_timeout_s);
			return 2;
		}
		set_reason(r, "no data for %ld s", e->cfg.timeout_s);
		return 1;
	case CURLE_PARTIAL_FILE:
		set_reason(r, "body shorter than its Content-Length");
		return 1;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		set_reason(r, "%s", curl_easy_strerror(rc));
		return 2;
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
	case CURLE_SSL_CONNECT_ERROR:
		if (oserr == ECONNRESET)
			set_reason(r, "connection reset");
		else
			set_reason(r, "%s", curl_easy_strerror(rc));
		return 1;
	default:
		set_reason(r, "%s", curl_easy_strerror(rc));
		return 0;
	}
}

/* ---- bodies -------------------------------------------------------- */

/* Look at the status and headers before the first body byte. */
static int check_headers(const struct http_engine *e, struct req *r)
{
	long status = 0;
	char *ct = NULL;
	curl_off_t clen = -1;

	r->checked = 1;
	curl_easy_getinfo(r->h, CURLINFO_RESPONSE_CODE, &status);
	if (status < 200 || status > 299) {
		r->discard = 1;
		return 0;
	}
	curl_easy_getinfo(r->h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &clen);
	curl_easy_getinfo(r->h, CURLINFO_CONTENT_TYPE, &ct);
	r->clen = clen;
	/* An encoded length says nothing of the decoded size the sink gets. */
	struct curl_header *ce;
	if (r->decode &&
	    curl_easy_header(r->h, "Content-Encoding", 0, CURLH_HEADER, -1, &ce) == CURLHE_OK)
		r->clen = -1;
	if (clen > e->cfg.max_file_size) {
		set_reason(r, "%lld bytes, over the %lld byte limit", (long long)clen,
			   (long long)e->cfg.max_file_size);
		r->err = -EFBIG;
		return -1;
	}
	if (http_is_html_type(ct)) {
		set_reason(r, "an HTML page instead of the file");
		r->err = -ENOENT;
		r->discard = 1;
	}
	return 0;
}

static int deliver(const struct http_engine *e, struct req *r, const void *p, size_t n)
{
	int rc;
	if (n == 0)
		return 0;
	if (r->res.size + (int64_t)n > e->cfg.max_file_size) {
		set_reason(r, "body over the %lld byte limit", (long long)e->cfg.max_file_size);
		r->err = -EFBIG;
		return -1;
	}
	rc = r->sink.write(r->sink.ctx, p, n);
	if (rc < 0) {
		set_reason(r, "could not store the body: %s", strerror(-rc));
		r->err = rc;
		return -1;
	}
	r->res.size += (int64_t)n;
	return 0;
}

/* The sniffed bytes decided: refuse an HTML page, else begin the sink and
 * pass them on. */
static int begin_body(const struct http_engine *e, struct req *r, int html)
{
	int rc;
	if (html) {
		set_reason(r, "an HTML page instead of the file");
		r->err = -ENOENT;
		r->discard = 1;
		return 0;
	}
	r->began = 1;
	rc = r->sink.begin ? r->sink.begin(r->sink.ctx, r->clen) : 0;
	if (rc < 0) {
		set_reason(r, "could not store the body: %s", strerror(-rc));
		r->err = rc;
		return -1;
	}
	return deliver(e, r, r->sniff, r->sniff_len);
}

static size_t skip(struct req *r, size_t n, size_t all)
{
	r->discarded += n;
	return r->discarded > DISCARD_MAX ? 0 : all;
}

/* Body bytes pass through the sniff buffer until it tells an HTML page from
 * content; from then on they go straight to the sink. */
static size_t on_body(char *p, size_t size, size_t nmemb, void *ud)
{
	struct req *r = ud;
	size_t n = size * nmemb, take = 0;

	if (!r->checked && check_headers(r->e, r) < 0)
		return 0;
	if (r->discard)
		return skip(r, n, n);
	if (!r->began) {
		take = SNIFF_MAX - r->sniff_len < n ? SNIFF_MAX - r->sniff_len : n;
		memcpy(r->sniff + r->sniff_len, p, take);
		r->sniff_len += take;
		int html = http_sniff_html(r->sniff, r->sniff_len, r->sniff_len == SNIFF_MAX);
		if (html < 0)
			return n;
		if (begin_body(r->e, r, html) < 0)
			return 0;
		if (r->discard)
			return skip(r, n - take, n);
	}
	return deliver(r->e, r, p + take, n - take) < 0 ? 0 : n;
}

/* A 2xx answer. */
static void complete(struct http_engine *e, struct slot *s)
{
	struct req *r = s->r;

	if (r->method == HTTP_HEAD) {
		char *ct = NULL;
		curl_off_t clen = -1;
		curl_easy_getinfo(s->h, CURLINFO_CONTENT_TYPE, &ct);
		curl_easy_getinfo(s->h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &clen);
		if (http_is_html_type(ct)) {
			set_reason(r, "an HTML page instead of the file");
			finish_slot(e, s, -ENOENT);
			return;
		}
		r->res.size = clen;
		finish_slot(e, s, 0);
		return;
	}
	/* An empty or tiny body never filled the sniff buffer. */
	if (!r->checked)
		check_headers(e, r);
	if (!r->err && !r->began)
		begin_body(e, r, http_sniff_html(r->sniff, r->sniff_len, 1));
	finish_slot(e, s, r->err);
}

static void follow_redirect(struct http_engine *e, struct slot *s)
{
	struct req *r = s->r;
	char *loc = NULL;
	int b;

	curl_easy_getinfo(s->h, CURLINFO_REDIRECT_URL, &loc);
	if (!loc || strlen(loc) >= sizeof(r->res.url)) {
		add_reason(r, " without a usable Location");
		finish_slot(e, s, -EIO);
		return;
	}
	b = http_redirect_base(&e->bases, loc);
	if (b < 0) {
		const char *host = strstr(loc, "://");
		host = host ? host + 3 : loc;
		set_reason(r, "redirect to %.*s refused", (int)strcspn(host, "/?#"), host);
		finish_slot(e, s, -EIO);
		return;
	}
	if (++r->hops > MAX_REDIRECTS) {
		set_reason(r, "too many redirects");
		finish_slot(e, s, -EIO);
		return;
	}
	strcpy(r->res.url, loc);
	r->base = b;
	launch_or_fail(e, s);
}

/* The server answered with a status. */
static void http_answer(struct http_engine *e, struct slot *s, long status)
{
	struct req *r = s->r;
	curl_off_t after = 0;

	if (status >= 200 && status <= 299) {
		complete(e, s);
		return;
	}
	set_reason(r, "HTTP %ld%s", status, http_status_text(status));
	switch (status) {
	case 304: /* only a conditional request gets it: res.status tells */
		r->res.reason[0] = '\0';
		finish_slot(e, s, 0);
		break;
	case 301: case 302: case 303: case 307: case 308:
		follow_redirect(e, s);
		break;
	case 404: case 410:
		finish_slot(e, s, -ENOENT);
		break;
	default:
		if (status != 429 && status < 500) {
			finish_slot(e, s, -EIO);
			break;
		}
		if (status == 429 || status == 503)
			curl_easy_getinfo(s->h, CURLINFO_RETRY_AFTER, &after);
		if (after > RETRY_AFTER_MAX_MS / 1000)
			after = RETRY_AFTER_MAX_MS / 1000;
		s->r->res.retry_after_s = (long)after;
		try_again(e, s, (long)after);
	}
}

static void attempt_done(struct http_engine *e, struct slot *s, CURLcode rc)
{
	struct req *r = s->r;
	long status = 0;

	curl_multi_remove_handle(e->multi, s->h);
	curl_easy_getinfo(s->h, CURLINFO_RESPONSE_CODE, &status);
	if (status)
		r->res.status = status;
	if (r->err) {
		finish_slot(e, s, r->err);
		return;
	}
	/* An unwanted body cut short still leaves its status to act on. */
	if (rc != CURLE_OK && !(rc == CURLE_WRITE_ERROR && r->discard)) {
		int how = network_reason(e, r, rc);
		if (!how) {
			finish_slot(e, s, -EIO);
			return;
		}
		/* Only a base that cannot be reached may be down: a connection
		 * reset, cut short or stalled is a flaky link, whose requests
		 * are retried one by one instead of all failing fast. */
		if (how == 2 && r->kind != HTTP_URL)
			http_base_failed(&e->bases, r->base);
		try_again(e, s, 0);
		return;
	}
	if (r->kind != HTTP_URL)
		http_base_ok(&e->bases, r->base);
	http_answer(e, s, status);
}

/* ---- the engine thread --------------------------------------------- */

static CURL *new_handle(const struct http_engine *e)
{
	const struct http_config *c = &e->cfg;
	CURL *h = curl_easy_init();
	if (!h)
		return NULL;
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_USERAGENT, c->user_agent ? c->user_agent : "l2dfs/" L2DFS_VERSION);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, c->connect_timeout_s);
	/* A stall, not a slow transfer, is what ends an attempt. */
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, c->timeout_s);
	curl_easy_setopt(h, CURLOPT_BUFFERSIZE, XFER_BUFFER);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	if (c->insecure) {
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	if (c->proxy)
		curl_easy_setopt(h, CURLOPT_PROXY, c->proxy);
	return h;
}

static void enqueue(struct http_engine *e, struct req *r)
{
	r->next = NULL;
	if (e->tail[r->prio])
		e->tail[r->prio]->next = r;
	else
		e->head[r->prio] = r;
	e->tail[r->prio] = r;
}

static struct req *pop(struct http_engine *e, int p)
{
	struct req *r = e->head[p];
	if (r) {
		e->head[p] = r->next;
		if (!r->next)
			e->tail[p] = NULL;
		r->next = NULL;
	}
	return r;
}

/* Top the bucket up for the time gone by, at most to rate_burst. */
static void budget_refill(struct http_engine *e)
{
	int64_t now = http_now_ms();
	e->tokens += (double)(now - e->refill_ms) * e->cfg.max_rate / 1000.0;
	if (e->tokens > e->cfg.rate_burst)
		e->tokens = e->cfg.rate_burst;
	e->refill_ms = now;
	e->budget_wait_ms = -1;
}

/* Foreground first, whatever the budget; then probes and prefetch while
 * the budget lasts (budget_wait_ms says when the next one may go). */
static struct req *dequeue(struct http_engine *e)
{
	struct req *r = pop(e, HTTP_FOREGROUND);
	if (r)
		return r;
	for (int p = HTTP_PROBE; p < NPRIO; p++) {
		if (!e->head[p])
			continue;
		if (e->cfg.max_rate == 0)
			return pop(e, p);
		if (e->tokens < 1.0) {
			e->budget_wait_ms = 1 + (long)((1.0 - e->tokens) * 1000.0 / e->cfg.max_rate);
			return NULL;
		}
		e->tokens -= 1.0;
		return pop(e, p);
	}
	return NULL;
}

/* Due retries go ahead of their queue (in due order). */
static void promote_timers(struct http_engine *e)
{
	struct req **ins[NPRIO] = { &e->head[0], &e->head[1], &e->head[2] }, *r;
	int64_t now = http_now_ms();

	while ((r = e->timers) && r->due_ms <= now) {
		e->timers = r->next;
		r->next = *ins[r->prio];
		*ins[r->prio] = r;
		if (!r->next)
			e->tail[r->prio] = r;
		ins[r->prio] = &r->next;
	}
}

/* Fill the free slots from the queues. A request that fails fast gives its
 * slot back at once, so go on until the slots or the queues run out.
 * Returns -1 once the engine is stopping. */
static int admit(struct http_engine *e)
{
	for (;;) {
		struct req *batch = NULL, **tail = &batch, *r;
		int room = e->nfree;

		pthread_mutex_lock(&e->lock);
		if (e->stopping) {
			pthread_mutex_unlock(&e->lock);
			return -1;
		}
		e->wake_pending = 0;
		promote_timers(e);
		budget_refill(e);
		while (room > 0 && (r = dequeue(e))) {
			*tail = r;
			tail = &r->next;
			room--;
		}
		pthread_mutex_unlock(&e->lock);
		if (!batch)
			return 0;

		while ((r = batch)) {
			batch = r->next;
			r->next = NULL;
			if (r->sink.wanted && !r->sink.wanted(r->sink.ctx)) {
				set_reason(r, "no longer wanted");
				finish(r, -ECANCELED);
				continue;
			}
			struct slot *s = &e->slots[e->free_slots[--e->nfree]];
			if (!s->h && !(s->h = new_handle(e))) {
				e->nfree++;
				set_reason(r, "out of memory");
				finish(r, -ENOMEM);
				continue;
			}
			s->r = r;
			start_round(e, s);
		}
	}
}

static void cancel_all(struct http_engine *e)
{
	struct req *queued = NULL, **tail = &queued, *r;

	for (int i = 0; i < e->cfg.max_transfers; i++) {
		struct slot *s = &e->slots[i];
		if (!s->r)
			continue;
		curl_multi_remove_handle(e->multi, s->h);
		set_reason(s->r, "cancelled");
		finish_slot(e, s, -ECANCELED);
	}
	pthread_mutex_lock(&e->lock);
	for (int p = 0; p < NPRIO; p++)
		while ((r = pop(e, p))) {
			*tail = r;
			tail = &r->next;
		}
	pthread_mutex_unlock(&e->lock);
	*tail = e->timers;
	e->timers = NULL;
	while ((r = queued)) {
		queued = r->next;
		set_reason(r, "cancelled");
		finish(r, -ECANCELED);
	}
}

static void *engine_main(void *arg)
{
	struct http_engine *e = arg;

	while (admit(e) == 0) {
		long timeout = IDLE_POLL_MS;
		int running, left;
		CURLMsg *m;

		if (e->timers) {
			int64_t d = e->timers->due_ms - http_now_ms();
			timeout = d < 0 ? 0 : d < timeout ? (long)d : timeout;
		}
		if (e->budget_wait_ms >= 0 && e->budget_wait_ms < timeout)
			timeout = e->budget_wait_ms;
		curl_multi_poll(e->multi, NULL, 0, (int)timeout, NULL);
		curl_multi_perform(e->multi, &running);
		while ((m = curl_multi_info_read(e->multi, &left))) {
			struct slot *s = NULL;
			CURLcode rc = m->data.result;
			if (m->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&s);
			attempt_done(e, s, rc);
		}
	}
	cancel_all(e);
	return NULL;
}

static void engine_destroy(struct http_engine *e)
{
	if (e->multi)
		curl_multi_cleanup(e->multi);
	for (int i = 0; e->slots && i < e->cfg.max_transfers; i++)
		if (e->slots[i].h)
			curl_easy_cleanup(e->slots[i].h);
	pthread_mutex_destroy(&e->lock);
	free(e->slots);
	free(e->free_slots);
	free(e);
}

static int config_valid(const struct http_config *c)
{
	if (!c->api_url || !c->assets_url || c->nmirrors < 0 || c->nmirrors > HTTP_MAX_MIRRORS ||
	    c->max_connections < 1 || c->max_transfers < 1 || c->connect_timeout_s < 1 ||
	    c->timeout_s < 1 || c->retries < 0 || c->retry_base_ms < 1 || c->max_file_size < 0 ||
	    c->max_rate < 0 || (c->max_rate > 0 && c->rate_burst < 1))
		return 0;
	for (int i = 0; i < c->nmirrors; i++)
		if (!c->mirrors[i])
			return 0;
	if (c->nheaders < 0 || c->nheaders > HTTP_MAX_HEADERS)
		return 0;
	for (int i = 0; i < c->nheaders; i++)
		if (!c->headers[i] || strpbrk(c->headers[i], "\r\n"))
			return 0;
	return 1;
}

int http_engine_new(struct http_engine **out, const struct http_config *cfg)
{
	struct http_engine *e;
	int rc;

	*out = NULL;
	if (!config_valid(cfg))
		return -EINVAL;
	pthread_once(&global_once, global_init);
	if (global_rc != CURLE_OK)
		return -EIO;
	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	pthread_mutex_init(&e->lock, NULL);
	e->cfg = *cfg;
	http_bases_init(&e->bases, &e->cfg);
	/* libcurl before 8.0.0 breaks a prior-knowledge HTTP/2 connection
	 * that a second transfer reuses ("Error in the HTTP2 framing layer"). */
	e->h2c_fresh = cfg->h2c && curl_version_info(CURLVERSION_NOW)->version_num < 0x080000;
	e->rng = (unsigned)time(NULL) ^ (unsigned)getpid() ^ (unsigned)(uintptr_t)e;
	e->tokens = cfg->rate_burst;
	e->refill_ms = http_now_ms();
	e->budget_wait_ms = -1;
	e->slots = calloc((size_t)cfg->max_transfers, sizeof(*e->slots));
	e->free_slots = calloc((size_t)cfg->max_transfers, sizeof(*e->free_slots));
	e->multi = curl_multi_init();
	if (!e->slots || !e->free_slots || !e->multi) {
		engine_destroy(e);
		return -ENOMEM;
	}
	for (int i = 0; i < cfg->max_transfers; i++)
		e->free_slots[e->nfree++] = cfg->max_transfers - 1 - i;
	/* HTTP/2 streams share one connection; the per-host cap is for HTTP/1.1.
	 * Under the h2c workaround every transfer has its own connection (one
	 * stream each, not one request at a time): the transfer bound applies. */
	curl_multi_setopt(e->multi, CURLMOPT_MAX_HOST_CONNECTIONS,
			  (long)(e->h2c_fresh ? cfg->max_transfers : cfg->max_connections));
	curl_multi_setopt(e->multi, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
	rc = pthread_create(&e->thread, NULL, engine_main, e);
	if (rc) {
		engine_destroy(e);
		return -rc;
	}
	*out = e;
	return 0;
}

void http_engine_stop(struct http_engine *e)
{
	pthread_mutex_lock(&e->lock);
	int first = !e->stopping;
	e->stopping = 1;
	if (first)
		curl_multi_wakeup(e->multi);
	pthread_mutex_unlock(&e->lock);
	/* One joiner; later callers find the thread gone already. */
	if (first)
		pthread_join(e->thread, NULL);
}

void http_engine_free(struct http_engine *e)
{
	if (!e)
		return;
	http_engine_stop(e);
	engine_destroy(e);
}

int http_submit(struct http_engine *e, enum http_base base, const char *path,
		 enum http_method method, enum http_priority prio,
		 const struct http_sink *sink, http_done_fn done, void *arg)
{
	return http_submit_enc(e, base, path, method, prio, 0, NULL, sink, done, arg);
}

/* Unlink the queued request of done and arg from queue p; the caller holds
 * e->lock. */
static struct req *unqueue(struct http_engine *e, int p, http_done_fn done, void *arg)
{
	struct req *prev = NULL;

	for (struct req *r = e->head[p]; r; prev = r, r = r->next) {
		if (r->done != done || r->arg != arg)
			continue;
		*(prev ? &prev->next : &e->head[p]) = r->next;
		if (e->tail[p] == r)
			e->tail[p] = prev;
		r->next = NULL;
		return r;
	}
	return NULL;
}

int http_promote(struct http_engine *e, http_done_fn done, void *arg,
		  enum http_priority prio)
{
	struct req *r = NULL;

	if (prio < HTTP_FOREGROUND || prio >= NPRIO)
		return -EINVAL;
	pthread_mutex_lock(&e->lock);
	for (int p = prio + 1; !r && p < NPRIO; p++)
		r = unqueue(e, p, done, arg);
	if (r) {
		r->prio = prio;
		enqueue(e, r);
		/* Foreground work starts at once, whatever the budget says. */
		if (!e->stopping && !e->wake_pending) {
			e->wake_pending = 1;
			curl_multi_wakeup(e->multi);
		}
	}
	pthread_mutex_unlock(&e->lock);
	return r != NULL;
}

/* A request's own headers into *out (NULL for none): the configured ones,
 * then those of a conditional request. */
static int request_headers(const struct http_config *cfg, const struct http_cond *c,
			   struct curl_slist **out)
{
	char line[160];
	struct curl_slist *l = NULL, *n;

	*out = NULL;
	for (int i = 0; i < cfg->nheaders; i++) {
		if (!(n = curl_slist_append(l, cfg->headers[i])))
			goto oom;
		l = n;
	}
	if (c && c->etag && c->etag[0]) {
		snprintf(line, sizeof(line), "If-None-Match: \"%.128s\"", c->etag);
		if (!(n = curl_slist_append(l, line)))
			goto oom;
		l = n;
	}
	if (c && c->modified_since > 0) {
		time_t t = (time_t)c->modified_since;
		struct tm tm;
		gmtime_r(&t, &tm);
		strftime(line, sizeof(line), "If-Modified-Since: %a, %d %b %Y %H:%M:%S GMT", &tm);
		if (!(n = curl_slist_append(l, line)))
			goto oom;
		l = n;
	}
	*out = l;
	return 0;
oom:
	curl_slist_free_all(l);
	return -ENOMEM;
}

int http_submit_enc(struct http_engine *e, enum http_base base, const char *path,
		enum http_method method, enum http_priority prio, int decode,
		const struct http_cond *cond, const struct http_sink *sink, http_done_fn done,
		void *arg)
{
	struct req *r;
	size_t len;

	if (!path || (base != HTTP_URL && path[0] != '/') ||
	    (method == HTTP_GET && (!sink || !sink->write)) ||
	    (base != HTTP_API && base != HTTP_ASSETS && base != HTTP_URL) ||
	    (prio != HTTP_FOREGROUND && prio != HTTP_PROBE && prio != HTTP_BACKGROUND))
		return -EINVAL;
	for (len = 0; path[len]; len++)
		if ((unsigned char)path[len] < 0x20 || path[len] == 0x7f)
			return -EINVAL;
	if (base == HTTP_URL && !http_url_configured(&e->cfg, path))
		return -EPERM;
	if ((base == HTTP_URL ? 0 : e->bases.prefix_max) + len >= HTTP_URL_MAX)
		return -ENAMETOOLONG;
	r = calloc(1, sizeof(*r) + len + 1);
	if (!r)
		return -ENOMEM;
	r->e = e;
	r->kind = base;
	r->method = method;
	r->prio = prio;
	r->decode = decode;
	if (request_headers(&e->cfg, cond, &r->headers) < 0) {
		free(r);
		return -ENOMEM;
	}
	if (sink)
		r->sink = *sink;
	r->done = done;
	r->arg = arg;
	r->res.size = -1;
	memcpy(r->path, path, len + 1);

	pthread_mutex_lock(&e->lock);
	if (e->stopping) {
		pthread_mutex_unlock(&e->lock);
		curl_slist_free_all(r->headers);
		free(r);
		return -ECANCELED;
	}
	enqueue(e, r);
	/* Under the lock, so http_engine_free cannot tear the multi down
	 * in between. One wake-up covers a burst of submissions. */
	if (!e->wake_pending) {
		e->wake_pending = 1;
		curl_multi_wakeup(e->multi);
	}
	pthread_mutex_unlock(&e->lock);
	return 0;
}

int http_submit_document(struct http_engine *e, enum http_base base, const char *path,
			  enum http_priority prio, const struct http_sink *sink, http_done_fn done,
			  void *arg)
{
	return http_submit_enc(e, base, path, HTTP_GET, prio, 1, NULL, sink, done, arg);
}

int http_submit_cond(struct http_engine *e, enum http_base base, const char *path,
		      const struct http_cond *cond, http_done_fn done, void *arg)
{
	return http_submit_enc(e, base, path, HTTP_HEAD, HTTP_PROBE, 0, cond, NULL, done, arg);
}
