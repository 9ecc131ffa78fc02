/*
 * cli: the l2dfs command. `l2dfs MOUNTPOINT` mounts; `l2dfs <subcommand>`
 * works on the same cache and index without a mount. Every command takes
 * the mount's settings the same way: -o key=value[,key=value...], over
 * the same syntax in the environment variable L2DFS_OPTIONS.
 */
#ifndef L2DFS_CLI_H
#define L2DFS_CLI_H

#include <stdint.h>
#include <stdio.h>

#include "../cache/cache.h"
#include "../fetch/care/care.h"
#include "../fetch/library/library.h"
#include "../index/index.h"
#include "../log/log.h"
#include "../recover/recover.h"
#include "../util/util.h"

/* Exit statuses (also in the man page). */
enum cli_exit {
	CLI_OK = 0,
	CLI_USAGE = 1,      /* bad command line or option value */
	CLI_MOUNTPOINT = 2, /* mount point missing or not a directory */
	CLI_CACHE = 3,      /* cache dir not creatable/writable */
	CLI_FUSE = 4,       /* /dev/fuse unusable or the mount failed */
	CLI_FAILED = 5,     /* a subcommand's work failed (download, verify...) */
	CLI_INDEX = 6,      /* index.db cannot be opened for writing (read-only, full
			     * disk, path too long...): left as it is */
	CLI_INTERRUPTED = 130,
};

#define CLI_PATH_MAX 4096

struct cli_settings {
	char server[8];
	int lang;
	char cache_dir[CLI_PATH_MAX];
	char api_url[HTTP_URL_MAX];
	char assets_url[HTTP_URL_MAX];
	char proxy[HTTP_URL_MAX];
	char user_agent[256];
	char mirror_buf[HTTP_URL_MAX * 2]; /* the mirrors' strings, NUL-separated */
	/* roster_url=, assets_index_url=, costume_index_url= ("": not given);
	 * each given one is also in fetch.urls. */
	char doc_url[3][HTTP_URL_MAX];
	char header_buf[4096]; /* header= lines, NUL-separated (fetch.headers) */
	struct http_config fetch;          /* points into the buffers above */
	int prefetch;
	int64_t cache_max;
	enum log_level log_level;
	double cache_timeout_s;
	int max_threads;
	int64_t catalogue_ttl_s;
	char fuse_flags[256];  /* libfuse mount flags given: "allow_other,auto_unmount" */
	char fsname[64];       /* the mount's source ("l2dfs") */
	char subtype[64];      /* its type is fuse.<subtype> ("l2dfs") */
	int mirrors_from_env;  /* the mirrors came from L2DFS_OPTIONS: -o's replace them */
};

/* Defaults: server jp, lang zh-hans, cache $XDG_CACHE_HOME/l2dfs or
 * ~/.cache/l2dfs, bestdori.com bases, prefetch=costume, log_level=info. */
void cli_settings_defaults(struct cli_settings *s);

/*
 * Apply one -o argument ("a=1,b=2"). Unknown options and bad values give
 * -EINVAL with a message naming the option and what it accepts in why.
 * Mount-helper options that mean nothing here (_netdev, noauto, nofail,
 * defaults, user, users, x-systemd.*, dev, suid, exec...) are accepted and
 * ignored.
 */
int cli_settings_apply(struct cli_settings *s, const char *opts, char *why, size_t whylen);

/*
 * Apply the environment variable L2DFS_OPTIONS (the -o syntax), if set:
 * every command does so before its -o arguments, which override it.
 * -EINVAL with why naming L2DFS_OPTIONS and the option.
 */
int cli_settings_from_env(struct cli_settings *s, char *why, size_t whylen);

/* The -o options, one line each ("  name=VALUES  help (default ...)"),
 * for --help; the man page and README document the same list. */
void cli_options_usage(FILE *to);

/* Parse "123", "10K", "512M", "4G" (powers of 1024). */
int cli_parse_size(const char *s, int64_t *out);

/* Parse seconds: "90", "30s", "10m", "24h", "7d" (a whole number > 0). */
int cli_parse_duration(const char *s, int64_t *out);

/* Everything a command needs, opened in order and closed in reverse. */
struct cli_env {
	struct cache *cache;
	struct idx *idx;
	struct http_engine *engine;
	struct fetch_library *lib;
};

/*
 * Open the cache and the index (moving a corrupt index aside), run the
 * start-up recovery (recover.h), then, if with_network, the engine and the
 * library. Returns a cli_exit status, having printed why on failure.
 */
int cli_env_open(struct cli_env *env, const struct cli_settings *s, int with_network);
void cli_env_close(struct cli_env *env);

/* Subcommands: argv[0] is the subcommand's name. Each returns a cli_exit. */
int cli_cmd_pull(int argc, char **argv);
int cli_cmd_search(int argc, char **argv);
int cli_cmd_costumes(int argc, char **argv);
int cli_cmd_characters(int argc, char **argv);
int cli_cmd_cat(int argc, char **argv);
int cli_cmd_status(int argc, char **argv);
int cli_cmd_retry(int argc, char **argv);
int cli_cmd_gc(int argc, char **argv);
int cli_cmd_verify(int argc, char **argv);
int cli_cmd_refresh(int argc, char **argv);
int cli_cmd_serve(int argc, char **argv);

#endif
