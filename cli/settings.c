/*
 * settings.c: the -o options shared by the mount and every subcommand, and
 * opening the cache, index and network stack they all use.
 */
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
	fetch_config_defaults(&s->fetch);
	snprintf(s->api_url, sizeof(s->api_url), "%s", s->fetch.api_url);
	snprintf(s->assets_url, sizeof(s->assets_url), "%s", s->fetch.assets_url);
	s->fetch.api_url = s->api_url;
	s->fetch.assets_url = s->assets_url;
	s->prefetch = 1;
	s->log_level = LOG_LVL_INFO;
	s->cache_timeout_s = 3600;
	s->max_threads = 64;
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
	if (s->fetch.nmirrors >= FETCH_MAX_MIRRORS || used + strlen(v) + 1 > sizeof(s->mirror_buf))
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

#define BAD(...) (snprintf(why, whylen, __VA_ARGS__), -EINVAL)

/* One key[=value]. */
static int apply_one(struct cli_settings *s, char *kv, char *why, size_t whylen)
{
	char *v = strchr(kv, '=');
	long n;

	if (v)
		*v++ = '\0';
	const char *key = kv;
	if (!v) {
		if (strcmp(key, "h2c") == 0)
			return s->fetch.h2c = 1, 0;
		if (strcmp(key, "insecure") == 0)
			return s->fetch.insecure = 1, 0;
		if (strcmp(key, "allow_other") == 0)
			return s->allow_other = 1, 0;
		if (ignored_option(key))
			return 0;
		return BAD("unknown option '%s' (see l2dfs --help)", key);
	}
	if (strcmp(key, "server") == 0) {
		if (!fetch_server_is_valid(v))
			return BAD("bad value for option 'server': '%s' (allowed: jp|en|tw|cn|kr)", v);
		snprintf(s->server, sizeof(s->server), "%s", v);
	} else if (strcmp(key, "lang") == 0) {
		if (fetch_parse_lang(v, &s->lang) < 0)
			return BAD("bad value for option 'lang': '%s' (allowed: "
				   "ja|en|zh-hant|zh-hans|ko)", v);
	} else if (strcmp(key, "cache_dir") == 0) {
		if (!*v || strlen(v) >= sizeof(s->cache_dir))
			return BAD("bad value for option 'cache_dir': '%s' (a directory path)", v);
		snprintf(s->cache_dir, sizeof(s->cache_dir), "%s", v);
	} else if (strcmp(key, "api_url") == 0) {
		if (set_url(s->api_url, sizeof(s->api_url), v) < 0)
			return BAD("bad value for option 'api_url': '%s' (an http:// or https:// URL)", v);
	} else if (strcmp(key, "assets_url") == 0) {
		if (set_url(s->assets_url, sizeof(s->assets_url), v) < 0)
			return BAD("bad value for option 'assets_url': '%s' (an http:// or https:// URL)", v);
	} else if (strcmp(key, "mirror") == 0) {
		if (add_mirror(s, v) < 0)
			return BAD("bad value for option 'mirror': '%s' (up to %d http(s) URLs)", v,
				   FETCH_MAX_MIRRORS);
	} else if (strcmp(key, "proxy") == 0) {
		if (strlen(v) >= sizeof(s->proxy))
			return BAD("bad value for option 'proxy': too long");
		snprintf(s->proxy, sizeof(s->proxy), "%s", v);
		s->fetch.proxy = s->proxy;
	} else if (strcmp(key, "log_level") == 0) {
		if (log_parse_level(v, &s->log_level) < 0)
			return BAD("bad value for option 'log_level': '%s' (allowed: "
				   "error|warn|info|debug)", v);
	} else if (strcmp(key, "prefetch") == 0) {
		if (strcmp(v, "costume") && strcmp(v, "off"))
			return BAD("bad value for option 'prefetch': '%s' (allowed: costume|off)", v);
		s->prefetch = strcmp(v, "costume") == 0;
	} else if (strcmp(key, "timeout") == 0) {
		if (parse_long(v, 1, 86400, &n) < 0)
			return BAD("bad value for option 'timeout': '%s' (seconds, 1-86400)", v);
		s->fetch.timeout_s = n;
	} else if (strcmp(key, "connect_timeout") == 0) {
		if (parse_long(v, 1, 3600, &n) < 0)
			return BAD("bad value for option 'connect_timeout': '%s' (seconds, 1-3600)", v);
		s->fetch.connect_timeout_s = n;
	} else if (strcmp(key, "retries") == 0) {
		if (parse_long(v, 0, 20, &n) < 0)
			return BAD("bad value for option 'retries': '%s' (0-20)", v);
		s->fetch.retries = (int)n;
	} else if (strcmp(key, "retry_base_ms") == 0) {
		if (parse_long(v, 1, 600000, &n) < 0)
			return BAD("bad value for option 'retry_base_ms': '%s' (1-600000)", v);
		s->fetch.retry_base_ms = n;
	} else if (strcmp(key, "max_connections") == 0) {
		if (parse_long(v, 1, 1024, &n) < 0)
			return BAD("bad value for option 'max_connections': '%s' (1-1024)", v);
		s->fetch.max_connections = (int)n;
	} else if (strcmp(key, "max_transfers") == 0) {
		if (parse_long(v, 1, 4096, &n) < 0)
			return BAD("bad value for option 'max_transfers': '%s' (1-4096)", v);
		s->fetch.max_transfers = (int)n;
	} else if (strcmp(key, "max_rate") == 0) {
		if (parse_long(v, 0, 100000, &n) < 0)
			return BAD("bad value for option 'max_rate': '%s' (requests a second, 0-100000)", v);
		s->fetch.max_rate = (int)n;
	} else if (strcmp(key, "rate_burst") == 0) {
		if (parse_long(v, 1, 100000, &n) < 0)
			return BAD("bad value for option 'rate_burst': '%s' (1-100000)", v);
		s->fetch.rate_burst = (int)n;
	} else if (strcmp(key, "max_file_size") == 0) {
		if (cli_parse_size(v, &s->fetch.max_file_size) < 0 || s->fetch.max_file_size <= 0)
			return BAD("bad value for option 'max_file_size': '%s' (a size: 512M, 2G...)", v);
	} else if (strcmp(key, "cache_max") == 0) {
		if (cli_parse_size(v, &s->cache_max) < 0)
			return BAD("bad value for option 'cache_max': '%s' (a size: 500M, 10G...; 0 = no limit)", v);
	} else if (strcmp(key, "cache_timeout") == 0) {
		if (parse_long(v, 0, 86400 * 365, &n) < 0)
			return BAD("bad value for option 'cache_timeout': '%s' (seconds)", v);
		s->cache_timeout_s = (double)n;
	} else if (strcmp(key, "max_threads") == 0) {
		if (parse_long(v, 2, 1024, &n) < 0)
			return BAD("bad value for option 'max_threads': '%s' (2-1024)", v);
		s->max_threads = (int)n;
	} else if (ignored_option(kv)) {
		return 0;
	} else {
		return BAD("unknown option '%s' (see l2dfs --help)", key);
	}
	return 0;
}

int cli_settings_apply(struct cli_settings *s, const char *opts, char *why, size_t whylen)
{
	char *copy = strdup(opts), *save;
	int rc = 0;

	if (!copy)
		return -ENOMEM;
	int after_mirror = 0;
	for (char *kv = strtok_r(copy, ",", &save); kv && rc == 0; kv = strtok_r(NULL, ",", &save)) {
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

/* ---- the environment ---- */

struct adopt_ctx {
	struct cli_env *env;
	const char *server;
	int n;
};

static int adopt_file(void *arg, const char *bundle, const char *file, const struct stat *st)
{
	struct adopt_ctx *a = arg;
	char hex[CACHE_SHA256_HEX];
	int64_t size;

	(void)st;
	if (cache_asset_sha256(a->env->cache, a->server, bundle, file, hex, &size) == 0 &&
	    idx_asset_adopt(a->env->idx, a->server, bundle, file, size, hex) == 0)
		a->n++;
	return 0;
}

/* A fresh index over an existing cache: take the files back by hashing them. */
static void rebuild_assets(struct cli_env *env)
{
	static const char *const servers[] = { "jp", "en", "tw", "cn", "kr" };
	for (int i = 0; i < 5; i++) {
		struct adopt_ctx a = { env, servers[i], 0 };
		cache_walk(env->cache, servers[i], adopt_file, &a);
		if (a.n)
			log_warn("index rebuilt: %d cached %s files taken back", a.n, servers[i]);
	}
}

int cli_env_open(struct cli_env *env, const struct cli_settings *s, int with_network)
{
	char path[CLI_PATH_MAX + 16];
	int rc, recreated = 0, n = 0, alone = 0;

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
		fprintf(stderr, "l2dfs: index %s: %s\n", path, strerror(-rc));
		cli_env_close(env);
		return CLI_CACHE;
	}
	if (recreated)
		log_warn("index %s was unusable: moved aside, starting a new one", path);
	if (recreated || !existed)
		rebuild_assets(env);
	/* What a dead process left half done; a live one may still own it. */
	if (alone) {
		if (cache_clean_temps(env->cache, &n) == 0 && n)
			log_info("removed %d partial downloads left by an earlier run", n);
		if (idx_asset_reset_downloading(env->idx, &n) == 0 && n)
			log_info("%d downloads interrupted earlier will start again when needed", n);
	}
	if (!with_network)
		return CLI_OK;
	rc = fetch_engine_new(&env->engine, &s->fetch);
	if (rc == 0) {
		struct fetch_library_config lc = { s->server, s->lang, s->prefetch, s->cache_max };
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
		fetch_engine_free(env->engine);
	if (env->lib)
		fetch_library_free(env->lib);
	if (env->idx)
		idx_close(env->idx);
	if (env->cache)
		cache_close(env->cache);
	memset(env, 0, sizeof(*env));
}
