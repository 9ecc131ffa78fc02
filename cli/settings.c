/*
 * settings.c: the -o options shared by the mount and every subcommand, and
 * opening the cache, index and network stack they all use.
 */
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

void cli_settings_defaults(struct cli_settings *s)
{
	const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");

	memset(s, 0, sizeof(*s));
	snprintf(s->server, sizeof(s->server), "jp");
	s->lang = 3; /* zh-hans */
	if (xdg && xdg[0] == '/')
		snprintf(s->cache_dir, sizeof(s->cache_dir), "%s/l2dfs", xdg);
	else
		snprintf(s->cache_dir, sizeof(s->cache_dir), "%s/.cache/l2dfs",
			 home && home[0] ? home : ".");
	http_config_defaults(&s->fetch);
	snprintf(s->api_url, sizeof(s->api_url), "%s", s->fetch.api_url);
	snprintf(s->assets_url, sizeof(s->assets_url), "%s", s->fetch.assets_url);
	s->fetch.api_url = s->api_url;
	s->fetch.assets_url = s->assets_url;
	s->prefetch = 1;
	s->log_level = LOG_LVL_INFO;
	s->cache_timeout_s = 3600;
	s->max_threads = 64;
	s->catalogue_ttl_s = FETCH_CATALOGUE_TTL_S;
	snprintf(s->fsname, sizeof(s->fsname), "l2dfs");
	snprintf(s->subtype, sizeof(s->subtype), "l2dfs");
}

int cli_parse_size(const char *str, int64_t *out)
{
	char *end;
	errno = 0;
	double v = strtod(str, &end);
	int64_t mult = 1;

	if (end == str || errno || v < 0)
		return -EINVAL;
	switch (*end) {
	case 'k': case 'K': mult = 1LL << 10; end++; break;
	case 'm': case 'M': mult = 1LL << 20; end++; break;
	case 'g': case 'G': mult = 1LL << 30; end++; break;
	case 't': case 'T': mult = 1LL << 40; end++; break;
	}
	if (*end == 'i' || *end == 'B')
		end += (*end == 'i' && end[1] == 'B') ? 2 : 1;
	if (*end || v * (double)mult > 9e18)
		return -EINVAL;
	*out = (int64_t)(v * (double)mult);
	return 0;
}

int cli_parse_duration(const char *str, int64_t *out)
{
	char *end;
	errno = 0;
	long long v = strtoll(str, &end, 10);
	int64_t mult = 1;

	if (end == str || errno || v <= 0)
		return -EINVAL;
	switch (*end) {
	case 's': end++; break;
	case 'm': mult = 60; end++; break;
	case 'h': mult = 3600; end++; break;
	case 'd': mult = 86400; end++; break;
	}
	if (*end || v > INT64_MAX / 86400)
		return -EINVAL;
	*out = (int64_t)v * mult;
	return 0;
}

static int parse_long(const char *v, long min, long max, long *out)
{
	char *end;
	errno = 0;
	long n = strtol(v, &end, 10);
	if (!*v || *end || errno || n < min || n > max)
		return -EINVAL;
	*out = n;
	return 0;
}

static int is_url(const char *v)
{
	return strncmp(v, "http://", 7) == 0 || strncmp(v, "https://", 8) == 0;
}

/* Copy a base URL without its trailing slashes. */
static int set_url(char *dst, size_t len, const char *v)
{
	size_t n = strlen(v);
	if (!is_url(v) || n >= len)
		return -EINVAL;
	while (n > 8 && v[n - 1] == '/')
		n--;
	memcpy(dst, v, n);
	dst[n] = '\0';
	return 0;
}

static int add_mirror(struct cli_settings *s, const char *v)
{
	size_t used = 0;
	for (int i = 0; i < s->fetch.nmirrors; i++)
		used += strlen(s->fetch.mirrors[i]) + 1;
	if (s->fetch.nmirrors >= HTTP_MAX_MIRRORS || used + strlen(v) + 1 > sizeof(s->mirror_buf))
		return -EINVAL;
	if (set_url(s->mirror_buf + used, sizeof(s->mirror_buf) - used, v) < 0)
		return -EINVAL;
	s->fetch.mirrors[s->fetch.nmirrors++] = s->mirror_buf + used;
	return 0;
}

static int ignored_option(const char *key)
{
	static const char *const names[] = { "_netdev", "noauto", "auto", "nofail", "defaults",
					     "user", "users", "nouser", "dev", "nodev", "suid",
					     "nosuid", "exec", "noexec", "atime", "noatime",
					     "relatime", "ro", "rw", "async", "sync", NULL };
	/* key is the part before any "=": "comment=..." arrives as "comment" */
	if (strncmp(key, "x-", 2) == 0 || strcmp(key, "comment") == 0)
		return 1;
	for (int i = 0; names[i]; i++)
		if (strcmp(key, names[i]) == 0)
			return 1;
	return 0;
}

/* ---- the options ---- */

/* How a value is checked before the option's setter sees it. */
enum opt_type {
	OPT_FLAG,   /* no value */
	OPT_CHOICE, /* one of arg's "a|b|c": n is its position */
	OPT_INT,    /* a whole number in [min, max] */
	OPT_SIZE,   /* "512M", "2G"... at least min */
	OPT_URL,    /* http:// or https:// */
	OPT_DURATION, /* "30s", "10m", "24h", "2d" or seconds: n is in seconds */
	OPT_TEXT,   /* anything the setter takes */
};

/* A checked value: the text and, for OPT_CHOICE, OPT_INT and OPT_SIZE, a number. */
struct opt_value {
	const char *text;
	int64_t n;
};

struct opt_spec {
	const char *name;
	enum opt_type type;
	const char *arg;  /* OPT_CHOICE: the allowed values; else what --help calls the value */
	long min, max;    /* OPT_INT; OPT_SIZE: min */
	const char *def;  /* the default --help shows, or NULL */
	const char *help;
	/* Store a checked value: 0, or -EINVAL when it still does not fit. */
	int (*set)(struct cli_settings *s, const struct opt_value *v);
};

#define SETTER(fn, field)                                                 \
	static int fn(struct cli_settings *s, const struct opt_value *v)  \
	{                                                                 \
		s->field = v->n;                                          \
		return 0;                                                 \
	}
SETTER(set_timeout, fetch.timeout_s)
SETTER(set_connect_timeout, fetch.connect_timeout_s)
SETTER(set_retries, fetch.retries)
SETTER(set_retry_base_ms, fetch.retry_base_ms)
SETTER(set_max_connections, fetch.max_connections)
SETTER(set_max_transfers, fetch.max_transfers)
SETTER(set_max_rate, fetch.max_rate)
SETTER(set_rate_burst, fetch.rate_burst)
SETTER(set_max_file_size, fetch.max_file_size)
SETTER(set_cache_max, cache_max)
SETTER(set_cache_timeout, cache_timeout_s)
SETTER(set_max_threads, max_threads)
SETTER(set_catalogue_ttl, catalogue_ttl_s)
#undef SETTER

/* Copy text into the array dst: 0, or -EINVAL when it does not fit. */
#define COPY(dst, text) \
	(strlen(text) < sizeof(dst) ? (snprintf(dst, sizeof(dst), "%s", text), 0) : -EINVAL)

static int set_server(struct cli_settings *s, const struct opt_value *v)
{
	return bd_server_is_valid(v->text) ? COPY(s->server, v->text) : -EINVAL;
}
static int set_lang(struct cli_settings *s, const struct opt_value *v)
{
	return bd_parse_lang(v->text, &s->lang);
}
static int set_log_level(struct cli_settings *s, const struct opt_value *v)
{
	return log_parse_level(v->text, &s->log_level);
}
static int set_prefetch(struct cli_settings *s, const struct opt_value *v)
{
	s->prefetch = v->n == 0; /* "costume" */
	return 0;
}
static int set_cache_dir(struct cli_settings *s, const struct opt_value *v)
{
	return *v->text ? COPY(s->cache_dir, v->text) : -EINVAL;
}
static int set_api_url(struct cli_settings *s, const struct opt_value *v)
{
	return set_url(s->api_url, sizeof(s->api_url), v->text);
}
static int set_assets_url(struct cli_settings *s, const struct opt_value *v)
{
	return set_url(s->assets_url, sizeof(s->assets_url), v->text);
}
/* A catalogue document's own URL: one the engine may ask for. */
static int set_doc_url(struct cli_settings *s, int which, const char *v)
{
	int rc = COPY(s->doc_url[which], v);
	if (rc == 0)
		s->fetch.urls[which] = s->doc_url[which];
	return rc;
}
#define DOC_URL_SETTER(fn, which)                                         \
	static int fn(struct cli_settings *s, const struct opt_value *v)  \
	{                                                                 \
		return set_doc_url(s, which, v->text);                    \
	}
DOC_URL_SETTER(set_roster_url, 0)
DOC_URL_SETTER(set_assets_index_url, 1)
DOC_URL_SETTER(set_costume_index_url, 2)
#undef DOC_URL_SETTER
/* "Name: value": a token, a colon, no control bytes but tab; none of the
 * headers the engine sets itself (an Accept-Encoding would change the
 * bytes of assets, a Range or If-* what is answered). */
static int set_header(struct cli_settings *s, const struct opt_value *v)
{
	static const char *const owned[] = { "accept-encoding", "range", "if-", "host",
					     "connection", "content-length", "transfer-encoding",
					     "te", "upgrade", NULL };
	const char *t = v->text;
	size_t name = strspn(t, "!#$%&'*+-.^_`|~0123456789"
				"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz");
	size_t used = 0;

	if (name == 0 || t[name] != ':' || s->fetch.nheaders >= HTTP_MAX_HEADERS)
		return -EINVAL;
	for (const char *p = t + name; *p; p++)
		if (((unsigned char)*p < 0x20 && *p != '\t') || *p == 0x7f)
			return -EINVAL;
	for (int i = 0; owned[i]; i++) {
		size_t n = strlen(owned[i]);
		if (strncasecmp(t, owned[i], n) == 0 && (owned[i][n - 1] == '-' || n == name))
			return -EINVAL;
	}
	for (int i = 0; i < s->fetch.nheaders; i++)
		used += strlen(s->fetch.headers[i]) + 1;
	if (used + strlen(t) + 1 > sizeof(s->header_buf))
		return -EINVAL;
	memcpy(s->header_buf + used, t, strlen(t) + 1);
	s->fetch.headers[s->fetch.nheaders++] = s->header_buf + used;
	return 0;
}
static int set_mirror(struct cli_settings *s, const struct opt_value *v)
{
	/* The command line's mirrors replace those of the environment. */
	if (s->mirrors_from_env) {
		s->fetch.nmirrors = 0;
		s->mirrors_from_env = 0;
	}
	return add_mirror(s, v->text);
}
static int set_proxy(struct cli_settings *s, const struct opt_value *v)
{
	s->fetch.proxy = s->proxy;
	return COPY(s->proxy, v->text);
}
static int set_user_agent(struct cli_settings *s, const struct opt_value *v)
{
	s->fetch.user_agent = s->user_agent;
	return COPY(s->user_agent, v->text);
}
static int set_h2c(struct cli_settings *s, const struct opt_value *v)
{
	(void)v;
	return s->fetch.h2c = 1, 0;
}
static int set_insecure(struct cli_settings *s, const struct opt_value *v)
{
	(void)v;
	return s->fetch.insecure = 1, 0;
}
/* libfuse's mount flags, handed over as they are. */
static int add_fuse_flag(struct cli_settings *s, const struct opt_value *v)
{
	size_t used = strlen(s->fuse_flags);
	if (used + 1 + strlen(v->text) >= sizeof(s->fuse_flags))
		return -EINVAL;
	snprintf(s->fuse_flags + used, sizeof(s->fuse_flags) - used, "%s%s", used ? "," : "",
		 v->text);
	return 0;
}
static int set_fsname(struct cli_settings *s, const struct opt_value *v)
{
	/* libfuse reads a backslash as an escape */
	return *v->text && !strchr(v->text, '\\') ? COPY(s->fsname, v->text) : -EINVAL;
}
static int set_subtype(struct cli_settings *s, const struct opt_value *v)
{
	return *v->text && !strpbrk(v->text, "/\\") ? COPY(s->subtype, v->text) : -EINVAL;
}

static const struct opt_spec options[] = {
	{ "server", OPT_CHOICE, "jp|en|tw|cn|kr", 0, 0, "jp", "game server", set_server },
	{ "lang", OPT_CHOICE, "ja|en|zh-hant|zh-hans|ko", 0, 0, "zh-hans",
	  "names (Japanese where missing)", set_lang },
	{ "cache_dir", OPT_TEXT, "DIR", 0, 0, "$XDG_CACHE_HOME/l2dfs or ~/.cache/l2dfs",
	  "cache and index", set_cache_dir },
	{ "api_url", OPT_URL, "URL", 0, 0, "https://bestdori.com/api", "the catalogue's base",
	  set_api_url },
	{ "assets_url", OPT_URL, "URL", 0, 0, "https://bestdori.com/assets", "the files' base",
	  set_assets_url },
	{ "roster_url", OPT_URL, "URL", 0, 0, "<api_url>/characters/all.2.json",
	  "the character roster's own URL", set_roster_url },
	{ "assets_index_url", OPT_URL, "URL", 0, 0, "<api_url>/explorer/<server>/assets/_info.json",
	  "the asset index's own URL (for that server)", set_assets_index_url },
	{ "costume_index_url", OPT_URL, "URL", 0, 0, "<api_url>/costumes/all.5.json",
	  "the costume index's own URL", set_costume_index_url },
	{ "mirror", OPT_URL, "URL[,URL...]", 0, 0, NULL,
	  "up to 8 site roots serving /api and /assets, tried in order", set_mirror },
	{ "proxy", OPT_TEXT, "URL", 0, 0, "https_proxy/no_proxy env", "HTTP(S) proxy", set_proxy },
	{ "user_agent", OPT_TEXT, "TEXT", 0, 0, "l2dfs/<version>",
	  "the User-Agent sent (a polite crawler names itself)", set_user_agent },
	{ "header", OPT_TEXT, "NAME: VALUE", 0, 0, NULL,
	  "one more header on every request (repeatable, up to 16)", set_header },
	{ "prefetch", OPT_CHOICE, "costume|off", 0, 0, "costume",
	  "fetch a costume's files once one is read", set_prefetch },
	{ "cache_max", OPT_SIZE, "SIZE", 0, 0, "0: no limit",
	  "evict least recently used files above SIZE", set_cache_max },
	{ "max_file_size", OPT_SIZE, "SIZE", 1, 0, "512M", "refuse larger downloads",
	  set_max_file_size },
	{ "max_connections", OPT_INT, "N", 1, 1024, "16", "per host over HTTP/1.1",
	  set_max_connections },
	{ "max_transfers", OPT_INT, "N", 1, 4096, "128", "downloads in flight", set_max_transfers },
	{ "max_rate", OPT_INT, "N", 0, 100000, "20",
	  "listing, probe and prefetch requests a second (0: no limit)", set_max_rate },
	{ "rate_burst", OPT_INT, "N", 1, 100000, "200",
	  "of which at most N at once after a pause", set_rate_burst },
	{ "h2c", OPT_FLAG, NULL, 0, 0, NULL, "HTTP/2 without TLS (prior knowledge), for mirrors",
	  set_h2c },
	{ "timeout", OPT_INT, "S", 1, 86400, "30", "give up when no byte arrives for S s",
	  set_timeout },
	{ "connect_timeout", OPT_INT, "S", 1, 3600, "10", "seconds to connect",
	  set_connect_timeout },
	{ "retries", OPT_INT, "N", 0, 20, "3", "extra attempts on 5xx/429/network errors",
	  set_retries },
	{ "retry_base_ms", OPT_INT, "N", 1, 600000, "500", "first back-off", set_retry_base_ms },
	{ "insecure", OPT_FLAG, NULL, 0, 0, NULL, "do not verify TLS certificates", set_insecure },
	{ "log_level", OPT_CHOICE, "error|warn|info|debug", 0, 0, "info",
	  "what to log (stderr with -f, else syslog)", set_log_level },
	{ "cache_timeout", OPT_INT, "S", 0, 86400 * 365, "3600",
	  "kernel cache of names and sizes", set_cache_timeout },
	{ "catalogue_ttl", OPT_DURATION, "DURATION", 0, 0, "24h",
	  "fetch the catalogue again after this", set_catalogue_ttl },
	{ "max_threads", OPT_INT, "N", 2, 1024, "64", "FUSE worker threads", set_max_threads },
	{ "allow_other", OPT_FLAG, NULL, 0, 0, NULL, "let other users see the mount",
	  add_fuse_flag },
	{ "allow_root", OPT_FLAG, NULL, 0, 0, NULL, "let root see the mount too", add_fuse_flag },
	{ "default_permissions", OPT_FLAG, NULL, 0, 0, NULL,
	  "the kernel checks file modes", add_fuse_flag },
	{ "auto_unmount", OPT_FLAG, NULL, 0, 0, NULL, "unmount when l2dfs dies",
	  add_fuse_flag },
	{ "fsname", OPT_TEXT, "NAME", 0, 0, "l2dfs", "the mount's source in mountinfo",
	  set_fsname },
	{ "subtype", OPT_TEXT, "NAME", 0, 0, "l2dfs", "the mount's type is fuse.NAME",
	  set_subtype },
};

#define NOPTIONS (sizeof(options) / sizeof(options[0]))

static const struct opt_spec *find_option(const char *name)
{
	for (size_t i = 0; i < NOPTIONS; i++)
		if (strcmp(options[i].name, name) == 0)
			return &options[i];
	return NULL;
}

/* Position of v in "a|b|c", or -1. */
static int choice_index(const char *choices, const char *v)
{
	size_t len = strlen(v);
	const char *p = choices;

	for (int i = 0; len; i++) {
		if (strncmp(p, v, len) == 0 && (p[len] == '|' || p[len] == '\0'))
			return i;
		p = strchr(p, '|');
		if (!p)
			break;
		p++;
	}
	return -1;
}

/* Check v as o's type says into *out: 0 or -EINVAL. */
static int check_value(const struct opt_spec *o, const char *v, struct opt_value *out)
{
	long n;

	out->text = v;
	out->n = 0;
	switch (o->type) {
	case OPT_CHOICE:
		out->n = choice_index(o->arg, v);
		return out->n < 0 ? -EINVAL : 0;
	case OPT_INT:
		if (parse_long(v, o->min, o->max, &n) < 0)
			return -EINVAL;
		out->n = n;
		return 0;
	case OPT_SIZE:
		return cli_parse_size(v, &out->n) < 0 || out->n < o->min ? -EINVAL : 0;
	case OPT_URL:
		return is_url(v) ? 0 : -EINVAL;
	case OPT_DURATION:
		return cli_parse_duration(v, &out->n);
	default:
		return 0;
	}
}

/* What an option accepts, for an error message. */
static void describe(const struct opt_spec *o, char *buf, size_t len)
{
	switch (o->type) {
	case OPT_CHOICE:
		snprintf(buf, len, "allowed: %s", o->arg);
		break;
	case OPT_INT:
		snprintf(buf, len, "a whole number, %ld-%ld", o->min, o->max);
		break;
	case OPT_SIZE:
		snprintf(buf, len, "a size: 512M, 2G...%s", o->min ? "" : "; 0 = no limit");
		break;
	case OPT_URL:
		snprintf(buf, len, "an http:// or https:// URL");
		break;
	case OPT_DURATION:
		snprintf(buf, len, "a duration: 30s, 10m, 24h...");
		break;
	default:
		snprintf(buf, len, "%s", o->arg ? o->arg : "no value");
	}
}

#define BAD(...) (snprintf(why, whylen, __VA_ARGS__), -EINVAL)

/* One key[=value]. */
static int apply_one(struct cli_settings *s, char *kv, char *why, size_t whylen)
{
	char *v = strchr(kv, '='), what[128];
	const struct opt_spec *o;
	struct opt_value val;

	if (v)
		*v++ = '\0';
	o = find_option(kv);
	if (!o)
		return ignored_option(kv) ? 0 : BAD("unknown option '%s' (see l2dfs --help)", kv);
	if (o->type == OPT_FLAG && v)
		return BAD("option '%s' takes no value", kv);
	if (o->type != OPT_FLAG && !v)
		return BAD("option '%s' needs a value: %s=%s", kv, kv, o->arg);
	describe(o, what, sizeof(what));
	if (check_value(o, v ? v : kv, &val) < 0 || o->set(s, &val) < 0)
		return BAD("bad value for option '%s': '%s' (%s)", kv, v, what);
	return 0;
}

/* The next comma-separated item of *p, unescaped in place ("\\," is a
 * comma, "\\\\" a backslash, as libfuse reads -o); NULL at the end. */
static char *next_item(char **p)
{
	char *item = *p, *in = *p, *out = *p;

	if (!item)
		return NULL;
	while (*in && *in != ',') {
		if (in[0] == '\\' && (in[1] == ',' || in[1] == '\\'))
			in++;
		*out++ = *in++;
	}
	*p = *in ? in + 1 : NULL;
	*out = '\0';
	return item;
}

int cli_settings_apply(struct cli_settings *s, const char *opts, char *why, size_t whylen)
{
	char *copy = strdup(opts), *rest = copy;
	int rc = 0;

	if (!copy)
		return -ENOMEM;
	int after_mirror = 0;
	for (char *kv = next_item(&rest); kv && rc == 0; kv = next_item(&rest)) {
		if (!*kv)
			continue;
		/* "mirror=A,B": a bare URL after a mirror is one more mirror. */
		if (after_mirror && is_url(kv)) {
			if (add_mirror(s, kv) < 0)
				rc = BAD("bad value for option 'mirror': '%s'", kv);
			continue;
		}
		after_mirror = strncmp(kv, "mirror=", 7) == 0;
		rc = apply_one(s, kv, why, whylen);
	}
	free(copy);
	return rc;
}

int cli_settings_from_env(struct cli_settings *s, char *why, size_t whylen)
{
	const char *env = getenv("L2DFS_OPTIONS");
	char inner[256];
	int rc;

	if (!env || !*env)
		return 0;
	rc = cli_settings_apply(s, env, inner, sizeof(inner));
	if (rc < 0)
		snprintf(why, whylen, "in L2DFS_OPTIONS: %s", inner);
	s->mirrors_from_env = s->fetch.nmirrors > 0;
	return rc;
}

void cli_options_usage(FILE *to)
{
	char left[64], extra[96];

	for (size_t i = 0; i < NOPTIONS; i++) {
		const struct opt_spec *o = &options[i];
		snprintf(left, sizeof(left), "%s%s%s", o->name, o->arg ? "=" : "",
			 o->arg ? o->arg : "");
		if (o->type == OPT_INT)
			snprintf(extra, sizeof(extra), " (%ld-%ld, default %s)", o->min, o->max,
				 o->def);
		else if (o->def)
			snprintf(extra, sizeof(extra), " (default %s)", o->def);
		else
			extra[0] = '\0';
		int width = strlen(left) < 28 ? 28 : (int)strlen(left) + 1;
		fprintf(to, "  %-*s %s%s\n", width, left, o->help, extra);
	}
}

/* ---- the environment ---- */

/* Why the index cannot be opened, for its owner to act on. */
static const char *index_trouble(int rc)
{
	switch (rc) {
	case -EROFS:
	case -EACCES:
	case -EPERM:
		return "cannot be opened for writing (check its mode, owner and filesystem);"
		       " it was left as it is";
	case -ENOSPC:
	case -EDQUOT:
		return "the disk is full; it was left as it is: make room and run again";
	case -ENAMETOOLONG:
		return "path too long: SQLite takes at most 511 bytes; choose a shorter"
		       " -o cache_dir=";
	case -EBUSY:
		return "locked by another process for too long";
	default:
		return strerror(-rc);
	}
}

static void log_recovery(const struct recover_report *r, int recreated, const char *path)
{
	if (recreated)
		log_warn("index %s was unusable: moved aside, starting a new one", path);
	if (r->found || r->dropped)
		log_warn("index rebuilt: %d cached files found, served once the origin's size"
			 " agrees; %d hardlinked or unreadable files dropped",
			 r->found, r->dropped);
	if (r->temps_removed)
		log_info("removed %d partial downloads left by an earlier run", r->temps_removed);
	if (r->downloads_reset)
		log_info("%d downloads interrupted earlier will start again when needed",
			 r->downloads_reset);
}

int cli_env_open(struct cli_env *env, const struct cli_settings *s, int with_network)
{
	char path[CLI_PATH_MAX + 16];
	struct recover_report r;
	int rc, recreated = 0, alone = 0;

	memset(env, 0, sizeof(*env));
	rc = cache_open(&env->cache, s->cache_dir);
	if (rc == 0)
		rc = cache_claim(env->cache, &alone);
	if (rc < 0) {
		fprintf(stderr, "l2dfs: cache dir %s: %s\n", s->cache_dir, strerror(-rc));
		cli_env_close(env);
		return CLI_CACHE;
	}
	snprintf(path, sizeof(path), "%s/index.db", cache_root(env->cache));
	/* A deleted index is rebuilt like a broken one: the files stay ours. */
	int existed = access(path, F_OK) == 0;
	rc = idx_open(&env->idx, path, &recreated);
	if (rc < 0) {
		fprintf(stderr, "l2dfs: index %s: %s\n", path, index_trouble(rc));
		cli_env_close(env);
		return CLI_INDEX;
	}
	rc = recover_start(env->idx, env->cache, alone, recreated || !existed,
			   bd_server_names, BD_NSERVERS, &r);
	log_recovery(&r, recreated, path);
	if (rc < 0)
		log_warn("recovery at start-up: %s", strerror(-rc));
	if (!with_network)
		return CLI_OK;
	rc = http_engine_new(&env->engine, &s->fetch);
	if (rc == 0) {
		struct fetch_library_config lc = { s->server, s->lang, s->prefetch, s->cache_max,
						   s->catalogue_ttl_s, s->fetch.urls[0],
						   s->fetch.urls[1], s->fetch.urls[2] };
		rc = fetch_library_new(&env->lib, &lc, env->engine, env->idx, env->cache);
	}
	if (rc < 0) {
		fprintf(stderr, "l2dfs: cannot start: %s\n", strerror(-rc));
		cli_env_close(env);
		return CLI_FAILED;
	}
	return CLI_OK;
}

void cli_env_close(struct cli_env *env)
{
	/* The engine first: it cancels transfers the library still waits on. */
	if (env->engine)
		http_engine_free(env->engine);
	if (env->lib)
		fetch_library_free(env->lib);
	if (env->idx)
		idx_close(env->idx);
	if (env->cache)
		cache_close(env->cache);
	memset(env, 0, sizeof(*env));
}
