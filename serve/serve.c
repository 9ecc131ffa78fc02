/*
 * serve.c: the daemon, the request's path (decoded and checked once, here),
 * dispatch, and the answers' HTTP semantics: conditional requests, Range,
 * gzip, Cache-Control, CORS.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/sha.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "../log/log.h"
#include "../util/util.h"
#include "serve_int.h"

int serve_addr_loopback(const char *addr)
{
	struct in_addr a4;
	struct in6_addr a6;

	if (inet_pton(AF_INET, addr, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	return inet_pton(AF_INET6, addr, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
}

/* ---- answers ---- */

static const struct {
	const char *ext, *type;
} types[] = {
	{ ".json", "application/json" },	{ ".png", "image/png" },
	{ ".jpg", "image/jpeg" },		{ ".jpeg", "image/jpeg" },
	{ ".txt", "text/plain; charset=utf-8" }, { ".html", "text/html; charset=utf-8" },
	{ ".js", "text/javascript; charset=utf-8" }, { ".css", "text/css; charset=utf-8" },
	{ ".mtn", "text/plain; charset=utf-8" }, { ".asset", "application/json" },
};

const char *serve_type_of(const char *name)
{
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (util_ends_with(name, types[i].ext, 1))
			return types[i].type;
	return "application/octet-stream";
}

static void add_common(struct serve_req *r, struct MHD_Response *resp)
{
	if (r->s->cfg.cors) {
		MHD_add_response_header(resp, "Access-Control-Allow-Origin", r->s->cfg.cors);
		MHD_add_response_header(resp, "Access-Control-Expose-Headers",
					"Content-Length, Content-Range, Accept-Ranges, ETag, "
					"Last-Modified, Content-Encoding");
		if (strcmp(r->s->cfg.cors, "*") != 0)
			MHD_add_response_header(resp, "Vary", "Origin");
	}
}

static enum MHD_Result queue(struct serve_req *r, unsigned status, struct MHD_Response *resp)
{
	if (!resp)
		return MHD_NO;
	add_common(r, resp);
	enum MHD_Result ok = MHD_queue_response(r->conn, status, resp);
	MHD_destroy_response(resp);
	return ok;
}

enum MHD_Result serve_json(struct serve_req *r, unsigned status, cJSON *j)
{
	char *text = j ? cJSON_PrintUnformatted(j) : NULL;
	cJSON_Delete(j);
	if (!text)
		return MHD_NO;
	struct MHD_Response *resp =
		MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
	if (resp) {
		MHD_add_response_header(resp, "Content-Type", "application/json");
		MHD_add_response_header(resp, "Cache-Control", "no-store");
	} else {
		free(text);
	}
	return queue(r, status, resp);
}

enum MHD_Result serve_error(struct serve_req *r, unsigned status, const char *msg)
{
	cJSON *j = cJSON_CreateObject();
	cJSON_AddStringToObject(j, "error", msg);
	return serve_json(r, status, j);
}

enum MHD_Result serve_errno(struct serve_req *r, int err, const char *what)
{
	char msg[512];
	unsigned status;

	switch (err) {
	case -ENOENT: status = MHD_HTTP_NOT_FOUND; break;
	case -ENOSPC: status = MHD_HTTP_INSUFFICIENT_STORAGE; break;
	case -ECANCELED: status = MHD_HTTP_SERVICE_UNAVAILABLE; break;
	case -ENOMEM: status = MHD_HTTP_INTERNAL_SERVER_ERROR; break;
	default: status = MHD_HTTP_BAD_GATEWAY; break; /* the origin failed */
	}
	snprintf(msg, sizeof(msg), "%s: %s", what, err == -ENOENT ? "not found" : strerror(-err));
	return serve_error(r, status, msg);
}

static const char *cache_control(enum serve_cache c)
{
	return c == SERVE_IMMUTABLE ? "public, max-age=31536000, immutable"
	       : c == SERVE_SHORT   ? "public, max-age=30"
				    : "no-store";
}

static int parse_http_date(const char *s, time_t *out)
{
	struct tm tm = { 0 };
	const char *end = s ? strptime(s, "%a, %d %b %Y %H:%M:%S GMT", &tm) : NULL;

	if (!end || *end)
		return -EINVAL;
	*out = timegm(&tm);
	return 0;
}

static void http_date(time_t t, char buf[64])
{
	struct tm tm;
	strftime(buf, 64, "%a, %d %b %Y %H:%M:%S GMT", gmtime_r(&t, &tm));
}

/* 1 if an If-None-Match list names etag (or is "*"). */
static int etag_listed(const char *list, const char *etag)
{
	size_t n = strlen(etag);

	for (const char *p = list; p && *p;) {
		while (*p == ' ' || *p == ',')
			p++;
		if (strncmp(p, "W/", 2) == 0)
			p += 2;
		if (*p == '*' || (strncmp(p, etag, n) == 0 && (p[n] == ',' || p[n] == ' ' ||
								 !p[n])))
			return 1;
		p = strchr(p, ',');
	}
	return 0;
}

/* "bytes=a-b" | "bytes=a-" | "bytes=-n" against size: 0 with [*off, *off +
 * *len); 1 to ignore it (several ranges, other units); -1 unsatisfiable. */
static int parse_range(const char *h, int64_t size, int64_t *off, int64_t *len)
{
	char *end;
	long long a = -1, b = -1;

	if (strncmp(h, "bytes=", 6) != 0 || strchr(h, ','))
		return 1;
	h += 6;
	if (*h == '-') {
		b = strtoll(h + 1, &end, 10);
		if (end == h + 1 || *end || b <= 0)
			return b == 0 && !*end ? -1 : 1;
		if (size == 0)
			return -1;
		*off = b >= size ? 0 : size - b;
		*len = size - *off;
		return 0;
	}
	if (!isdigit((unsigned char)*h))
		return 1;
	a = strtoll(h, &end, 10);
	if (*end != '-')
		return 1;
	if (end[1]) {
		char *e2;
		b = strtoll(end + 1, &e2, 10);
		if (*e2 || !isdigit((unsigned char)end[1]) || b < a)
			return 1;
	}
	if (a >= size)
		return -1;
	*off = a;
	*len = (b < 0 || b >= size ? size - 1 : b) - a + 1;
	return 0;
}

/* gzip of text; NULL if it does not pay or fails. */
static char *gzip(const char *text, size_t len, size_t *out_len)
{
	z_stream z = { 0 };
	size_t cap = compressBound(len) + 32;
	char *out = malloc(cap);

	if (!out || deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
		free(out);
		return NULL;
	}
	z.next_in = (unsigned char *)text, z.avail_in = (uInt)len;
	z.next_out = (unsigned char *)out, z.avail_out = (uInt)cap;
	int rc = deflate(&z, Z_FINISH);
	*out_len = z.total_out;
	deflateEnd(&z);
	if (rc != Z_STREAM_END || *out_len >= len) {
		free(out);
		return NULL;
	}
	return out;
}

static int accepts_gzip(struct serve_req *r)
{
	const char *ae = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
						     MHD_HTTP_HEADER_ACCEPT_ENCODING);
	return ae && strstr(ae, "gzip") && !strstr(ae, "gzip;q=0");
}

/* What an answer sends: text in memory or a file. */
struct body {
	char *text; /* malloc'd, or NULL */
	int fd;     /* when no text */
	int64_t size;
	char etag[80];   /* quoted */
	time_t mtime;    /* 0: no Last-Modified */
	const char *type;
	enum serve_cache cache;
	int vary_encoding;
	int gzipped;
};

static void set_headers(struct serve_req *r, struct MHD_Response *resp, const struct body *b)
{
	char date[64];

	MHD_add_response_header(resp, "ETag", b->etag);
	MHD_add_response_header(resp, "Cache-Control", cache_control(b->cache));
	if (b->mtime) {
		http_date(b->mtime, date);
		MHD_add_response_header(resp, "Last-Modified", date);
	}
	if (b->vary_encoding)
		MHD_add_response_header(resp, "Vary", "Accept-Encoding");
	(void)r;
}

static void body_free(struct body *b)
{
	free(b->text);
	if (!b->text && b->fd >= 0)
		close(b->fd);
}

/* 304's test: If-None-Match decides when given; else If-Modified-Since. */
static int not_modified(struct serve_req *r, const struct body *b)
{
	const char *inm = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
						      MHD_HTTP_HEADER_IF_NONE_MATCH);
	const char *ims = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
						      MHD_HTTP_HEADER_IF_MODIFIED_SINCE);
	time_t since;

	if (inm)
		return etag_listed(inm, b->etag);
	return ims && b->mtime && parse_http_date(ims, &since) == 0 && b->mtime <= since;
}

/* A generated text the client accepts gzipped is sent gzipped (not ranges:
 * a range is of the identity bytes). */
static void gzip_if_asked(struct serve_req *r, struct body *b, const char *range)
{
	size_t zlen;
	char *z;

	if (!b->text || !b->vary_encoding || range || !accepts_gzip(r))
		return;
	z = gzip(b->text, (size_t)b->size, &zlen);
	if (z) {
		free(b->text);
		b->text = z, b->size = (int64_t)zlen, b->gzipped = 1;
	}
}

static enum MHD_Result answer(struct serve_req *r, struct body *b)
{
	const char *range = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
							MHD_HTTP_HEADER_RANGE);
	const char *if_range = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
							   MHD_HTTP_HEADER_IF_RANGE);
	struct MHD_Response *resp;
	unsigned status = MHD_HTTP_OK;
	int64_t off = 0, len;
	char cr[96];

	if (not_modified(r, b)) {
		body_free(b);
		resp = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
		if (resp)
			set_headers(r, resp, b);
		return queue(r, MHD_HTTP_NOT_MODIFIED, resp);
	}
	gzip_if_asked(r, b, range);
	len = b->size;
	if (range && (!if_range || strcmp(if_range, b->etag) == 0)) {
		int rc = parse_range(range, b->size, &off, &len);
		if (rc < 0) {
			snprintf(cr, sizeof(cr), "bytes */%lld", (long long)b->size);
			body_free(b);
			resp = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
			if (resp)
				MHD_add_response_header(resp, "Content-Range", cr);
			return queue(r, MHD_HTTP_RANGE_NOT_SATISFIABLE, resp);
		}
		if (rc == 0) {
			status = MHD_HTTP_PARTIAL_CONTENT;
			snprintf(cr, sizeof(cr), "bytes %lld-%lld/%lld", (long long)off,
				 (long long)(off + len - 1), (long long)b->size);
		} else {
			off = 0, len = b->size;
		}
	}
	if (b->text) {
		resp = MHD_create_response_from_buffer((size_t)len, b->text + off,
						       MHD_RESPMEM_MUST_COPY);
		free(b->text);
	} else {
		resp = MHD_create_response_from_fd_at_offset64((uint64_t)len, b->fd, (uint64_t)off);
		if (!resp)
			close(b->fd);
	}
	if (!resp)
		return MHD_NO;
	set_headers(r, resp, b);
	MHD_add_response_header(resp, "Content-Type", b->type);
	MHD_add_response_header(resp, "Accept-Ranges", "bytes");
	if (b->gzipped)
		MHD_add_response_header(resp, "Content-Encoding", "gzip");
	if (status == MHD_HTTP_PARTIAL_CONTENT)
		MHD_add_response_header(resp, "Content-Range", cr);
	return queue(r, status, resp);
}

static void sha256_hex(const void *data, size_t len, char hex[65])
{
	unsigned char md[SHA256_DIGEST_LENGTH];

	SHA256(data, len, md);
	for (int i = 0; i < SHA256_DIGEST_LENGTH; i++)
		sprintf(hex + 2 * i, "%02x", md[i]);
}

enum MHD_Result serve_text(struct serve_req *r, char *text, size_t len, const char *type,
			   enum serve_cache cache)
{
	struct body b = { .text = text, .fd = -1, .size = (int64_t)len, .type = type,
			  .cache = cache };
	char hex[65];

	sha256_hex(text, len, hex);
	snprintf(b.etag, sizeof(b.etag), "\"%s\"", hex);
	b.vary_encoding = strncmp(type, "application/json", 16) == 0;
	return answer(r, &b);
}

enum MHD_Result serve_file(struct serve_req *r, int fd, const char *sha256, const char *type,
			   enum serve_cache cache)
{
	struct body b = { .fd = fd, .type = type, .cache = cache };
	struct stat st;

	if (fstat(fd, &st) < 0) {
		close(fd);
		return serve_errno(r, -errno, "cache file");
	}
	b.size = st.st_size, b.mtime = st.st_mtime;
	snprintf(b.etag, sizeof(b.etag), "\"%s\"", sha256);
	return answer(r, &b);
}

/* ---- the request's path ---- */

static int hexval(int c)
{
	return isdigit(c) ? c - '0' : isxdigit(c) ? (tolower(c) - 'a' + 10) : -1;
}

/*
 * Decode url into r->part[]: percent escapes decoded once, then split at
 * '/'. A bad escape, NUL, control bytes, a backslash, an empty, "." or ".."
 * component, or too many components: -EINVAL (400). Nothing decoded is
 * ever decoded again, so "%252e%252e" stays the name "%2e%2e".
 */
static int parse_path(struct serve_req *r, const char *url)
{
	size_t n = 0;

	if (url[0] != '/')
		return -EINVAL;
	for (const char *p = url + 1; *p; p++) {
		int c = (unsigned char)*p;
		if (c == '%') {
			int h = isxdigit((unsigned char)p[1]) ? hexval((unsigned char)p[1]) : -1;
			int l = h >= 0 && isxdigit((unsigned char)p[2]) ? hexval((unsigned char)p[2])
								       : -1;
			if (l < 0)
				return -EINVAL;
			c = h * 16 + l;
			p += 2;
		}
		if (c == 0 || c < 0x20 || c == 0x7f || c == '\\')
			return -EINVAL;
		r->path[n++] = (char)c;
	}
	r->path[n] = '\0';
	r->dir = n > 0 && r->path[n - 1] == '/';
	if (r->dir)
		r->path[--n] = '\0';
	r->nparts = 0;
	for (char *s = r->path, *slash; n && s; s = slash ? slash + 1 : NULL) {
		slash = strchr(s, '/');
		if (slash)
			*slash = '\0';
		if (!*s || strcmp(s, ".") == 0 || strcmp(s, "..") == 0 ||
		    strlen(s) > IDX_NAME_MAX || r->nparts == SERVE_PARTS_MAX)
			return -EINVAL;
		r->part[r->nparts++] = s;
	}
	return 0;
}

/* ---- dispatch ---- */

static enum MHD_Result preflight(struct serve_req *r)
{
	struct MHD_Response *resp = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);

	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, "Allow", "GET, HEAD, POST, OPTIONS");
	if (r->s->cfg.cors) {
		MHD_add_response_header(resp, "Access-Control-Allow-Methods",
					"GET, HEAD, POST, OPTIONS");
		MHD_add_response_header(resp, "Access-Control-Allow-Headers",
					"Range, If-None-Match, If-Modified-Since, If-Range, "
					"Content-Type, Accept-Encoding");
		MHD_add_response_header(resp, "Access-Control-Max-Age", "86400");
	}
	return queue(r, MHD_HTTP_NO_CONTENT, resp);
}

static enum MHD_Result dispatch(struct serve_req *r)
{
	int post = strcmp(r->method, "POST") == 0;
	const char *p0 = r->nparts ? r->part[0] : "";

	if (strcmp(r->method, "OPTIONS") == 0)
		return preflight(r);
	if (!post && !r->head && strcmp(r->method, "GET") != 0) {
		struct MHD_Response *resp =
			MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
		if (resp)
			MHD_add_response_header(resp, "Allow", "GET, HEAD, POST, OPTIONS");
		return queue(r, MHD_HTTP_METHOD_NOT_ALLOWED, resp);
	}
	if (strcmp(p0, "download") == 0 || strcmp(p0, "retry") == 0 ||
	    strcmp(p0, "status") == 0 || strcmp(p0, "gallery") == 0)
		return serve_api(r);
	if (post)
		return serve_error(r, MHD_HTTP_METHOD_NOT_ALLOWED, "POST is for /download and /retry");
	if (strcmp(p0, "characters") == 0 || strcmp(p0, "costumes") == 0)
		return serve_tree(r);
	if (strcmp(p0, "assets") == 0)
		return serve_assets(r);
	if (strcmp(p0, "api") == 0)
		return serve_api_docs(r);
	return serve_gallery(r);
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *conn, const char *url,
			       const char *method, const char *version, const char *upload,
			       size_t *upload_size, void **con_cls)
{
	static int started;
	struct serve_req *r;
	enum MHD_Result res;

	(void)version, (void)upload;
	if (!*con_cls) { /* the headers are in: the body (if any) follows */
		*con_cls = &started;
		return MHD_YES;
	}
	if (*upload_size) { /* request bodies carry nothing we use */
		*upload_size = 0;
		return MHD_YES;
	}
	if (!(r = calloc(1, sizeof(*r))))
		return MHD_NO;
	r->s = cls, r->conn = conn, r->method = method;
	r->head = strcmp(method, "HEAD") == 0;
	if (strlen(url) > SERVE_URL_MAX)
		res = serve_error(r, MHD_HTTP_URI_TOO_LONG, "request target too long");
	else if (parse_path(r, url) < 0)
		res = serve_error(r, MHD_HTTP_BAD_REQUEST, "bad path");
	else
		res = dispatch(r);
	free(r);
	return res;
}

/* The path as sent: decoding is parse_path()'s job alone. */
static size_t no_unescape(void *cls, struct MHD_Connection *c, char *s)
{
	(void)cls, (void)c;
	return strlen(s);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char buf[512];

	(void)cls;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	buf[strcspn(buf, "\n")] = '\0';
	log_debug("http: %s", buf);
}

static int sock_addr(const char *addr, int port, struct sockaddr_storage *ss, int *v6)
{
	struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	*v6 = 0;
	if (inet_pton(AF_INET, addr, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)port);
		return 0;
	}
	if (inet_pton(AF_INET6, addr, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)port);
		*v6 = 1;
		return 0;
	}
	return -EINVAL;
}

/* An optional string copied into buf: buf, or NULL when unset or empty. */
static const char *copy_opt(char *buf, size_t len, const char *v)
{
	if (!v || !v[0])
		return NULL;
	snprintf(buf, len, "%s", v);
	return buf;
}

int serve_start(struct serve **out, const struct serve_config *cfg, struct fetch_library *lib,
		struct idx *idx)
{
	struct sockaddr_storage ss;
	struct serve *s;
	int v6;

	if (sock_addr(cfg->addr, cfg->port, &ss, &v6) < 0)
		return -EINVAL;
	if (!(s = calloc(1, sizeof(*s))))
		return -ENOMEM;
	s->cfg = *cfg;
	snprintf(s->addr, sizeof(s->addr), "%s", cfg->addr);
	snprintf(s->server, sizeof(s->server), "%s", cfg->server);
	s->cfg.addr = s->addr, s->cfg.server = s->server;
	s->cfg.cors = copy_opt(s->cors, sizeof(s->cors), cfg->cors);
	s->cfg.cubism_core_url = copy_opt(s->core_url, sizeof(s->core_url), cfg->cubism_core_url);
	s->cfg.pixi_url = copy_opt(s->pixi_url, sizeof(s->pixi_url), cfg->pixi_url);
	s->cfg.live2d_url = copy_opt(s->live2d_url, sizeof(s->live2d_url), cfg->live2d_url);
	s->lib = lib, s->idx = idx, s->started = time(NULL);
	unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
			 MHD_USE_ERROR_LOG | (v6 ? MHD_USE_IPv6 : 0);
	s->mhd = MHD_start_daemon(
		flags, (uint16_t)cfg->port, NULL, NULL, handler, s, MHD_OPTION_SOCK_ADDR, &ss,
		MHD_OPTION_CONNECTION_LIMIT,
		cfg->max_connections ? cfg->max_connections : SERVE_MAX_CONNECTIONS,
		MHD_OPTION_CONNECTION_TIMEOUT, cfg->timeout_s ? cfg->timeout_s : SERVE_TIMEOUT_S,
		/* Request line and headers must fit in this: longer ones get 414/431. */
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)32768, MHD_OPTION_UNESCAPE_CALLBACK,
		no_unescape, NULL, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
		MHD_OPTION_LISTENING_ADDRESS_REUSE, 1, MHD_OPTION_END);
	if (!s->mhd) {
		free(s);
		return -EADDRNOTAVAIL;
	}
	const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_BIND_PORT);
	s->port = di ? di->port : cfg->port;
	*out = s;
	return 0;
}

int serve_port(const struct serve *s)
{
	return s->port;
}

void serve_stop(struct serve *s)
{
	if (!s)
		return;
	MHD_stop_daemon(s->mhd);
	free(s);
}
