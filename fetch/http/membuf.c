/*
 * membuf.c: a sink that gathers a body in memory (http_membuf_sink()). No
 * engine here: it is the one part of fetch/http a fake engine shares.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

static int membuf_reserve(struct http_membuf *m, size_t need)
{
	size_t cap = m->cap ? m->cap : 4096;
	char *p;
	if (need <= m->cap)
		return 0;
	while (cap < need)
		cap *= 2;
	if (cap > m->max + 1)
		cap = m->max + 1 > need ? m->max + 1 : need;
	p = realloc(m->buf, cap);
	if (!p)
		return -ENOMEM;
	m->buf = p;
	m->cap = cap;
	return 0;
}

static int membuf_begin(void *ctx, int64_t content_length)
{
	struct http_membuf *m = ctx;
	if (content_length > (int64_t)m->max)
		return -EFBIG;
	return content_length > 0 ? membuf_reserve(m, (size_t)content_length + 1) : 0;
}

static int membuf_write(void *ctx, const void *buf, size_t n)
{
	struct http_membuf *m = ctx;
	if (n > m->max - m->len)
		return -EFBIG;
	if (membuf_reserve(m, m->len + n + 1) < 0)
		return -ENOMEM;
	memcpy(m->buf + m->len, buf, n);
	m->len += n;
	return 0;
}

static int membuf_reset(void *ctx)
{
	((struct http_membuf *)ctx)->len = 0;
	return 0;
}

struct http_sink http_membuf_sink(struct http_membuf *m)
{
	return (struct http_sink){ membuf_begin, membuf_write, membuf_reset, m, NULL };
}

int http_membuf_finish(struct http_membuf *m)
{
	if (membuf_reserve(m, m->len + 1) < 0)
		return -ENOMEM;
	m->buf[m->len] = '\0';
	return 0;
}
