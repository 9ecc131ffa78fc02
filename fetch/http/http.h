/*
 * fetch/http: the HTTP engine.
 *
 * One libcurl multi handle on one thread for the whole process: connection
 * reuse, HTTP/2 where offered, retries with back-off, origin/mirror
 * fail-over, foreground requests before background ones. It knows URLs and
 * bytes only: nothing of Bestdori, the index or the cache (DESIGN §6).
 *
 * Every function returns 0 or a negative errno unless it says otherwise.
 */
#ifndef L2DFS_FETCH_HTTP_H
#define L2DFS_FETCH_HTTP_H

#include <stddef.h>
#include <stdint.h>

#define HTTP_REASON_MAX 256
#define HTTP_URL_MAX 2048
#define HTTP_MAX_MIRRORS 8
#define HTTP_MAX_URLS 4
#define HTTP_MAX_HEADERS 16

struct http_config {
	const char *api_url;    /* "https://bestdori.com/api", no trailing '/' */
	const char *assets_url; /* "https://bestdori.com/assets" */
	/* Site roots tried after the origin, in order: "<mirror>/api/...",
	 * "<mirror>/assets/...". A base that fails (connection error, 5xx,
	 * timeout) is skipped for a back-off period. */
	const char *mirrors[HTTP_MAX_MIRRORS];
	int nmirrors;
	/* Whole URLs configured one by one (a document at its own address):
	 * HTTP_URL requests may ask for these, exactly as given, and nothing
	 * else. NULL slots are unused. No mirror stands in for them, and they
	 * do not count towards the origin's being marked down. */
	const char *urls[HTTP_MAX_URLS];
	const char *proxy;     /* NULL: libcurl's environment (https_proxy, no_proxy) */
	const char *user_agent; /* NULL: "l2dfs/<version>" */
	/* "Name: value" lines sent with every request (an app's own headers);
	 * the caller vets them (no CR/LF, none of the headers the engine
	 * sets itself). */
	const char *headers[HTTP_MAX_HEADERS];
	int nheaders;
	int max_connections;   /* per host over HTTP/1.1; default 16 */
	int max_transfers;     /* in flight at once; default 128 */
	int h2c;               /* HTTP/2 with prior knowledge over cleartext */
	int insecure;          /* skip TLS peer verification */
	long connect_timeout_s;/* default 10 */
	long timeout_s;        /* no byte for this long: give up; default 30 */
	int retries;           /* extra attempts after the first; default 3 */
	long retry_base_ms;    /* first back-off; doubles, +-50% jitter; default 500 */
	int64_t max_file_size; /* larger bodies are refused with -EFBIG; default 512 MiB */
	/* Budgeted requests (HTTP_PROBE, HTTP_BACKGROUND) start at most
	 * max_rate a second on average, up to rate_burst at once after a quiet
	 * spell (a token bucket for the origin and its mirrors together);
	 * 0 = no limit. Default 20 and 200: opening a costume (its probes, then
	 * its prefetch, about 2 x 90 requests) is not held back. */
	int max_rate;
	int rate_burst;
};

/* Fill *cfg with the defaults above (bases: bestdori.com). */
void http_config_defaults(struct http_config *cfg);

/* HTTP_URL: the path given is a whole URL, one of http_config.urls. */
enum http_base { HTTP_API, HTTP_ASSETS, HTTP_URL };
enum http_method { HTTP_GET, HTTP_HEAD };
/* Admission order. HTTP_FOREGROUND (a reader waits) is never held back;
 * HTTP_PROBE (listings: buildData, size HEADs) and then HTTP_BACKGROUND
 * (prefetch) wait for the request budget (max_rate). */
enum http_priority { HTTP_FOREGROUND, HTTP_PROBE, HTTP_BACKGROUND };

struct http_result {
	/* 0; -ENOENT for 404/410 or an HTML page where content was expected
	 * (Content-Type text/html or a body starting "<!doctype html"/"<html");
	 * -EFBIG over max_file_size; -EIO for everything else that failed after
	 * the retries; -ECANCELED when the engine stops; or the sink's error
	 * (e.g. -ENOSPC). */
	int err;
	long status;                   /* last HTTP status seen, 0 if none */
	int64_t size;                  /* GET: body bytes; HEAD: Content-Length or -1 */
	int attempts;                  /* requests made, retries included */
	long retry_after_s;            /* the last 429/503's Retry-After (capped), 0 if none */
	char reason[HTTP_REASON_MAX]; /* "HTTP 503 (4 attempts)", "connection refused"... */
	char url[HTTP_URL_MAX];       /* the URL that answered last (which mirror) */
};

/*
 * Where a GET's body goes. Called on the engine thread, never concurrently
 * for one transfer. begin(content_length or -1) once per attempt before any
 * write; reset() before a retry re-sends the request; a negative return from
 * any of them ends the transfer with that error (no retry). wanted() (NULL:
 * always; a HEAD's sink may have only it) is asked when the request leaves
 * its queue to be sent: 0 ends it with -ECANCELED, unsent.
 */
struct http_sink {
	int (*begin)(void *ctx, int64_t content_length);
	int (*write)(void *ctx, const void *buf, size_t n);
	int (*reset)(void *ctx);
	void *ctx;
	int (*wanted)(void *ctx);
};

/* Called once on the engine thread when a request ends, whatever the outcome.
 * It must not block; it may call http_submit(). */
typedef void (*http_done_fn)(void *arg, const struct http_result *res);

struct http_engine;

/* Start the engine thread. cfg's strings must outlive the engine. */
int http_engine_new(struct http_engine **out, const struct http_config *cfg);

/* Fail everything queued or in flight with -ECANCELED (their done callbacks
 * run), stop the thread, free. */
void http_engine_free(struct http_engine *e);

/* The same cancelling without freeing: afterwards every request fails with
 * -ECANCELED at once and the engine stays valid until http_engine_free().
 * Call it from one thread (a watcher); http_engine_free() may follow. */
void http_engine_stop(struct http_engine *e);

/* Queue a request for "<base>/<path>" (path starts with '/'), or for the
 * URL path with HTTP_URL (-EPERM unless it is one of cfg->urls); only the
 * configured origins and URLs are ever contacted, redirects elsewhere are
 * refused. No Accept-Encoding is sent: the sink gets the bytes as stored
 * on the origin. sink may be NULL for HEAD. Returns -ECANCELED after free
 * began. */
int http_submit(struct http_engine *e, enum http_base base, const char *path,
		 enum http_method method, enum http_priority prio,
		 const struct http_sink *sink, http_done_fn done, void *arg);

/* Raise a request still waiting in its queue, the one submitted with this
 * done and arg, to prio if that is ahead of its own: it goes before the
 * requests queued below prio, and as HTTP_FOREGROUND it no longer waits for
 * the request budget. Returns 1 if one was raised, 0 if none waits there
 * (started already, ended, waiting for a retry, or at prio or ahead). */
int http_promote(struct http_engine *e, http_done_fn done, void *arg,
		  enum http_priority prio);

/* A body gathered in memory: buf (malloc'd, the owner's to free) grows up
 * to max bytes; more fails the transfer with -EFBIG. */
struct http_membuf {
	char *buf;
	size_t len, cap, max;
};
/* A sink filling m, for http_submit() (m must outlive the request). */
struct http_sink http_membuf_sink(struct http_membuf *m);
/* Once the request succeeded: NUL-terminate m->buf (len unchanged). */
int http_membuf_finish(struct http_membuf *m);

/* http_submit() of a GET of a document: it is asked for compressed
 * (Accept-Encoding: what libcurl decodes) and the sink gets the decoded
 * bytes (its begin() gets -1 when the body came encoded). */
int http_submit_document(struct http_engine *e, enum http_base base, const char *path,
			  enum http_priority prio, const struct http_sink *sink, http_done_fn done,
			  void *arg);

/* What a conditional request sends: If-None-Match with etag quoted (NULL
 * or "": none), If-Modified-Since with modified_since (seconds since the
 * epoch; 0: none). */
struct http_cond {
	const char *etag;
	int64_t modified_since;
};

/* http_submit() of a conditional HEAD (as HTTP_PROBE): done gets status
 * 304 when the origin says the file did not change, a 2xx status when it
 * answered the file (changed, or the origin ignores conditions), else the
 * error as for any request. */
int http_submit_cond(struct http_engine *e, enum http_base base, const char *path,
		      const struct http_cond *cond, http_done_fn done, void *arg);

#endif
