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

#define FETCH_REASON_MAX 256
#define FETCH_URL_MAX 2048
#define FETCH_MAX_MIRRORS 8

struct fetch_config {
	const char *api_url;    /* "https://bestdori.com/api", no trailing '/' */
	const char *assets_url; /* "https://bestdori.com/assets" */
	/* Site roots tried after the origin, in order: "<mirror>/api/...",
	 * "<mirror>/assets/...". A base that fails (connection error, 5xx,
	 * timeout) is skipped for a back-off period. */
	const char *mirrors[FETCH_MAX_MIRRORS];
	int nmirrors;
	const char *proxy;     /* NULL: libcurl's environment (https_proxy, no_proxy) */
	int max_connections;   /* per host over HTTP/1.1; default 16 */
	int max_transfers;     /* in flight at once; default 128 */
	int h2c;               /* HTTP/2 with prior knowledge over cleartext */
	int insecure;          /* skip TLS peer verification */
	long connect_timeout_s;/* default 10 */
	long timeout_s;        /* no byte for this long: give up; default 30 */
	int retries;           /* extra attempts after the first; default 3 */
	long retry_base_ms;    /* first back-off; doubles, +-50% jitter; default 500 */
	int64_t max_file_size; /* larger bodies are refused with -EFBIG; default 512 MiB */
	/* Budgeted requests (FETCH_PROBE, FETCH_BACKGROUND) start at most
	 * max_rate a second on average, up to rate_burst at once after a quiet
	 * spell (a token bucket for the origin and its mirrors together);
	 * 0 = no limit. Default 20 and 200: opening a costume (its probes, then
	 * its prefetch, about 2 x 90 requests) is not held back. */
	int max_rate;
	int rate_burst;
};

/* Fill *cfg with the defaults above (bases: bestdori.com). */
void fetch_config_defaults(struct fetch_config *cfg);

enum fetch_base { FETCH_API, FETCH_ASSETS };
enum fetch_method { FETCH_GET, FETCH_HEAD };
/* Admission order. FETCH_FOREGROUND (a reader waits) is never held back;
 * FETCH_PROBE (listings: buildData, size HEADs) and then FETCH_BACKGROUND
 * (prefetch) wait for the request budget (max_rate). */
enum fetch_priority { FETCH_FOREGROUND, FETCH_PROBE, FETCH_BACKGROUND };

struct fetch_result {
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
	char reason[FETCH_REASON_MAX]; /* "HTTP 503 (4 attempts)", "connection refused"... */
	char url[FETCH_URL_MAX];       /* the URL that answered last (which mirror) */
};

/*
 * Where a GET's body goes. Called on the engine thread, never concurrently
 * for one transfer. begin(content_length or -1) once per attempt before any
 * write; reset() before a retry re-sends the request; a negative return from
 * any of them ends the transfer with that error (no retry).
 */
struct fetch_sink {
	int (*begin)(void *ctx, int64_t content_length);
	int (*write)(void *ctx, const void *buf, size_t n);
	int (*reset)(void *ctx);
	void *ctx;
};

/* Called once on the engine thread when a request ends, whatever the outcome.
 * It must not block; it may call fetch_submit(). */
typedef void (*fetch_done_fn)(void *arg, const struct fetch_result *res);

struct fetch_engine;

/* Start the engine thread. cfg's strings must outlive the engine. */
int fetch_engine_new(struct fetch_engine **out, const struct fetch_config *cfg);

/* Fail everything queued or in flight with -ECANCELED (their done callbacks
 * run), stop the thread, free. */
void fetch_engine_free(struct fetch_engine *e);

/* The same cancelling without freeing: afterwards every request fails with
 * -ECANCELED at once and the engine stays valid until fetch_engine_free().
 * Call it from one thread (a watcher); fetch_engine_free() may follow. */
void fetch_engine_stop(struct fetch_engine *e);

/* Queue a request for "<base>/<path>" (path starts with '/'; only the
 * configured origins are ever contacted, redirects to other hosts are
 * refused). No Accept-Encoding is sent: the sink gets the bytes as stored
 * on the origin. sink may be NULL for HEAD. Returns -ECANCELED after free
 * began. */
int fetch_submit(struct fetch_engine *e, enum fetch_base base, const char *path,
		 enum fetch_method method, enum fetch_priority prio,
		 const struct fetch_sink *sink, fetch_done_fn done, void *arg);

/* Raise a request still waiting in its queue, the one submitted with this
 * done and arg, to prio if that is ahead of its own: it goes before the
 * requests queued below prio, and as FETCH_FOREGROUND it no longer waits for
 * the request budget. Returns 1 if one was raised, 0 if none waits there
 * (started already, ended, waiting for a retry, or at prio or ahead). */
int fetch_promote(struct fetch_engine *e, fetch_done_fn done, void *arg,
		  enum fetch_priority prio);

/* A body gathered in memory: buf (malloc'd, the owner's to free) grows up
 * to max bytes; more fails the transfer with -EFBIG. */
struct fetch_membuf {
	char *buf;
	size_t len, cap, max;
};
/* A sink filling m, for fetch_submit() (m must outlive the request). */
struct fetch_sink fetch_membuf_sink(struct fetch_membuf *m);
/* Once the request succeeded: NUL-terminate m->buf (len unchanged). */
int fetch_membuf_finish(struct fetch_membuf *m);

/* fetch_submit() of a GET of a document into m (through
 * fetch_membuf_sink()): it is asked for compressed (Accept-Encoding: what
 * libcurl decodes) and m gets the decoded bytes, at most m->max of them. */
int fetch_submit_document(struct fetch_engine *e, enum fetch_base base, const char *path,
			  enum fetch_priority prio, struct fetch_membuf *m, fetch_done_fn done,
			  void *arg);

/* Blocking fetch_submit_document() into memory, NUL-terminated: at most
 * max_bytes decoded, else -EFBIG. On success *body is the caller's to
 * free(). res may be NULL. */
int fetch_get_memory(struct fetch_engine *e, enum fetch_base base, const char *path,
		     enum fetch_priority prio, size_t max_bytes, char **body, size_t *len,
		     struct fetch_result *res);

/* Blocking HEAD of n paths at once (all in flight together, as FETCH_PROBE:
 * within the request budget); res[i] for each. Returns 0 when every request
 * got an answer (see res[i].err). */
int fetch_head_batch(struct fetch_engine *e, enum fetch_base base, const char *const *paths,
		     size_t n, struct fetch_result *res);

#endif
