/*
 * Where the engine's requests go: the origin and its mirrors, which of
 * them may be tried now, which redirects stay among them; and the few
 * facts read from an answer (an HTML page, a status phrase).
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "../../log/log.h"
#include "http_int.h"

#define DOWN_AFTER 3 /* failures to connect in a row */
#define DOWN_FIRST_MS 2000
#define DOWN_MAX_MS 60000

int64_t http_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Length of s without trailing slashes. */
static size_t trimmed_len(const char *s)
{
	size_t n = strlen(s);
	while (n > 0 && s[n - 1] == '/')
		n--;
	return n;
}

/* Base i's URL prefix for kind: root[0..*root_len) + suffix. */
static const char *prefix(const struct http_bases *b, enum http_base kind, int i,
			  size_t *root_len, const char **suffix)
{
	const char *root;
	if (i == 0) {
		root = kind == HTTP_API ? b->cfg->api_url : b->cfg->assets_url;
		*suffix = "";
	} else {
		root = b->cfg->mirrors[i - 1];
		*suffix = kind == HTTP_API ? "/api" : "/assets";
	}
	*root_len = trimmed_len(root);
	return root;
}

void http_bases_init(struct http_bases *b, const struct http_config *cfg)
{
	memset(b, 0, sizeof(*b));
	b->cfg = cfg;
	b->n = 1 + cfg->nmirrors;
	for (int i = 0; i < b->n; i++) {
		for (int k = HTTP_API; k <= HTTP_ASSETS; k++) {
			const char *suffix;
			size_t n;
			prefix(b, (enum http_base)k, i, &n, &suffix);
			if (n + strlen(suffix) > b->prefix_max)
				b->prefix_max = n + strlen(suffix);
		}
	}
}

void http_url(const struct http_bases *b, enum http_base kind, int i, const char *path,
	      char *url)
{
	const char *suffix;
	size_t n;

	if (kind == HTTP_URL) {
		snprintf(url, HTTP_URL_MAX, "%s", path);
		return;
	}
	const char *root = prefix(b, kind, i, &n, &suffix);
	snprintf(url, HTTP_URL_MAX, "%.*s%s%s", (int)n, root, suffix, path);
}

int http_url_configured(const struct http_config *cfg, const char *url)
{
	for (int i = 0; i < HTTP_MAX_URLS; i++)
		if (cfg->urls[i] && strcmp(cfg->urls[i], url) == 0)
			return 1;
	return 0;
}

/* Does url lie under root (whole path components only)? */
static int url_under(const char *url, const char *root)
{
	size_t n = trimmed_len(root);
	return strncmp(url, root, n) == 0 &&
	       (url[n] == '\0' || url[n] == '/' || url[n] == '?' || url[n] == '#');
}

int http_redirect_base(const struct http_bases *b, const char *url)
{
	if (url_under(url, b->cfg->api_url) || url_under(url, b->cfg->assets_url) ||
	    http_url_configured(b->cfg, url))
		return 0;
	for (int i = 0; i < b->cfg->nmirrors; i++)
		if (url_under(url, b->cfg->mirrors[i]))
			return i + 1;
	return -1;
}

int http_next_up(const struct http_bases *b, int from)
{
	int64_t now = http_now_ms();
	for (int i = from; i < b->n; i++)
		if (b->st[i].down_until <= now)
			return i;
	return -1;
}

void http_base_ok(struct http_bases *b, int i)
{
	memset(&b->st[i], 0, sizeof(b->st[i]));
}

void http_base_failed(struct http_bases *b, int i)
{
	int64_t now = http_now_ms();
	const char *root, *suffix;
	size_t n;

	/* Failures of transfers started before the base went down do not
	 * lengthen the period; the first one after it does. */
	if (++b->st[i].failures < DOWN_AFTER || b->st[i].down_until > now)
		return;
	if (b->st[i].down_ms == 0)
		b->st[i].down_ms = DOWN_FIRST_MS;
	b->st[i].down_until = now + b->st[i].down_ms;
	root = prefix(b, HTTP_API, i, &n, &suffix);
	log_warn("%.*s%s: %d failures to connect in a row, not contacted for %ld s", (int)n, root,
		 suffix, b->st[i].failures, b->st[i].down_ms / 1000);
	b->st[i].down_ms = b->st[i].down_ms * 2 > DOWN_MAX_MS ? DOWN_MAX_MS : b->st[i].down_ms * 2;
}

int64_t http_down_left_ms(const struct http_bases *b)
{
	int64_t now = http_now_ms(), first = INT64_MAX;
	for (int i = 0; i < b->n; i++)
		if (b->st[i].down_until < first)
			first = b->st[i].down_until;
	return first > now ? first - now : 0;
}

long http_down_left_s(const struct http_bases *b)
{
	return (long)((http_down_left_ms(b) + 999) / 1000);
}

int http_is_html_type(const char *ct)
{
	if (!ct)
		return 0;
	while (*ct == ' ')
		ct++;
	return strncasecmp(ct, "text/html", 9) == 0 &&
	       (ct[9] == '\0' || ct[9] == ';' || ct[9] == ' ');
}

int http_sniff_html(const unsigned char *p, size_t n, int final)
{
	static const char *const tags[] = { "<!doctype html", "<html" };
	int maybe = 0;
	size_t i = 0;

	while (i < n && isspace(p[i]))
		i++;
	for (size_t t = 0; t < sizeof(tags) / sizeof(tags[0]); t++) {
		size_t len = strlen(tags[t]), m = n - i < len ? n - i : len;
		if (strncasecmp((const char *)p + i, tags[t], m) == 0) {
			if (m == len)
				return 1;
			maybe = 1;
		}
	}
	return maybe && !final ? -1 : 0;
}

const char *http_status_text(long status)
{
	switch (status) {
	case 400: return " Bad Request";
	case 401: return " Unauthorized";
	case 403: return " Forbidden";
	case 404: return " Not Found";
	case 405: return " Method Not Allowed";
	case 408: return " Request Timeout";
	case 410: return " Gone";
	case 429: return " Too Many Requests";
	case 500: return " Internal Server Error";
	case 502: return " Bad Gateway";
	case 503: return " Service Unavailable";
	case 504: return " Gateway Timeout";
	default: return "";
	}
}
