/*
 * Internals of the HTTP engine shared by fetch/http*.c: the bases a request
 * may go to and their health, and how an answer is read.
 */
#ifndef L2DFS_FETCH_HTTP_INT_H
#define L2DFS_FETCH_HTTP_INT_H

#include <stddef.h>
#include <stdint.h>

#include "http.h"

#define HTTP_NBASES (1 + HTTP_MAX_MIRRORS)

/* The origin (base 0) and the mirrors (1..n). Engine thread only. */
struct http_bases {
	const struct http_config *cfg;
	int n;
	size_t prefix_max; /* longest URL prefix of any base */
	struct {
		int failures;       /* consecutive network failures */
		int64_t down_until; /* monotonic ms; skipped until then */
		long down_ms;       /* length of the next down period */
	} st[HTTP_NBASES];
};

int64_t http_now_ms(void);

/* cfg must outlive b. */
void http_bases_init(struct http_bases *b, const struct http_config *cfg);

/* url (HTTP_URL_MAX bytes) = base i's prefix for kind + path (HTTP_URL:
 * path itself); the caller made sure that it fits. */
void http_url(const struct http_bases *b, enum http_base kind, int i, const char *path,
	      char *url);

/* 1 if url is one of cfg->urls, else 0. */
int http_url_configured(const struct http_config *cfg, const char *url);

/* The base a redirect target lies under (0 also for a configured URL), or
 * -1 if it is none of them. */
int http_redirect_base(const struct http_bases *b, const char *url);

/* The first base at or after from that is not down, or -1. */
int http_next_up(const struct http_bases *b, int from);

/* Base i answered: it is up. */
void http_base_ok(struct http_bases *b, int i);

/* Base i could not be reached (no connection); enough in a row mark it
 * down for a while. */
void http_base_failed(struct http_bases *b, int i);

/* Milliseconds (seconds, rounded up) until the first base that is down may
 * be tried again. */
int64_t http_down_left_ms(const struct http_bases *b);
long http_down_left_s(const struct http_bases *b);

/* Content-Type text/html, whatever its parameters. */
int http_is_html_type(const char *content_type);

/* 1 if a body starting with p[0..n) is an HTML page, 0 if not, -1 if more
 * bytes are needed to tell (final: no more will come). */
int http_sniff_html(const unsigned char *p, size_t n, int final);

/* http_submit(), and with decode set the request carries Accept-Encoding
 * (every encoding libcurl can decode) and the sink gets decoded bytes; its
 * begin() then gets -1 when the body came encoded. cond (may be NULL) makes
 * it a conditional request. */
int http_submit_enc(struct http_engine *e, enum http_base base, const char *path,
		enum http_method method, enum http_priority prio, int decode,
		const struct http_cond *cond, const struct http_sink *sink, http_done_fn done,
		void *arg);

/* The reason phrase with a leading space (" Not Found"), "" if unknown. */
const char *http_status_text(long status);

#endif
