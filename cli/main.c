/*
 * main.c: `l2dfs [-f] [-d] [-o OPTIONS] MOUNTPOINT` and the subcommands.
 */
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../fs/fs.h"

#ifndef L2DFS_VERSION
#define L2DFS_VERSION "dev"
#endif

static const char usage_text[] =
	"usage: l2dfs [-f] [-d] [-o OPTIONS] MOUNTPOINT\n"
	"       l2dfs pull|search|costumes|status|retry|gc|verify [-o OPTIONS] ... (--help each)\n"
	"\n"
	"Mounts the Bestdori Live2D catalogue read-only at MOUNTPOINT:\n"
	"  characters/<name>/<costume>/model.json, costumes/<costume>/...\n"
	"Files are downloaded into the cache when first read. Unmount with\n"
	"`fusermount3 -u MOUNTPOINT`.\n"
	"\n"
	"  -f                      stay in the foreground (log to stderr)\n"
	"  -d                      FUSE debug output (implies -f)\n"
	"  -h, --help              this text\n"
	"  -V, --version           the version\n"
	"\n"
	"Options (-o a=1,b=2; also in /etc/fstab):\n"
	"  server=jp|en|tw|cn|kr        game server (default jp)\n"
	"  lang=ja|en|zh-hant|zh-hans|ko   names (default zh-hans; Japanese where missing)\n"
	"  cache_dir=DIR                cache (default $XDG_CACHE_HOME/l2dfs or ~/.cache/l2dfs)\n"
	"  api_url=URL                  default https://bestdori.com/api\n"
	"  assets_url=URL               default https://bestdori.com/assets\n"
	"  mirror=URL[,URL...]          site roots serving /api and /assets, tried in order\n"
	"  proxy=URL                    HTTP(S) proxy (default: https_proxy/no_proxy env)\n"
	"  prefetch=costume|off         fetch a costume's files once one is opened (costume)\n"
	"  cache_max=SIZE               evict least recently used files above SIZE (0: none)\n"
	"  max_file_size=SIZE           refuse larger downloads (default 512M)\n"
	"  max_connections=N            per host over HTTP/1.1 (default 16)\n"
	"  max_transfers=N              downloads in flight (default 128)\n"
	"  max_rate=N                   listing, probe and prefetch requests a second (20; 0: no limit)\n"
	"  rate_burst=N                 of which at most N at once after a pause (default 200)\n"
	"  h2c                          HTTP/2 without TLS (prior knowledge), for mirrors\n"
	"  timeout=S                    give up when no byte arrives for S s (default 30)\n"
	"  connect_timeout=S            (default 10)\n"
	"  retries=N                    extra attempts on 5xx/429/network errors (default 3)\n"
	"  retry_base_ms=N              first back-off (default 500)\n"
	"  insecure                     do not verify TLS certificates\n"
	"  log_level=error|warn|info|debug   (default info; syslog when in the background)\n"
	"  cache_timeout=S              kernel cache of names and sizes (default 3600)\n"
	"  max_threads=N                FUSE worker threads (default 64)\n"
	"  allow_other                  let other users see the mount\n";

static int usage(FILE *to, int status)
{
	fputs(usage_text, to);
	return status;
}

static int check_mountpoint(const char *path)
{
	struct stat st;

	if (stat(path, &st) < 0) {
		fprintf(stderr, "l2dfs: mount point %s: %s\n", path, strerror(errno));
		return CLI_MOUNTPOINT;
	}
	if (!S_ISDIR(st.st_mode)) {
		fprintf(stderr, "l2dfs: mount point %s is not a directory\n", path);
		return CLI_MOUNTPOINT;
	}
	return CLI_OK;
}

static int cmd_mount(int argc, char **argv)
{
	struct cli_settings s;
	struct fs_config fc;
	struct cli_env env;
	struct fs *fs = NULL;
	const char *mountpoint = NULL;
	char why[512] = "";
	int foreground = 0, debug = 0, rc, npos = 0;

	cli_settings_defaults(&s);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)
			return usage(stdout, CLI_OK);
		if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0) {
			printf("l2dfs %s\n", L2DFS_VERSION);
			return CLI_OK;
		}
		if (strcmp(a, "-f") == 0) {
			foreground = 1;
		} else if (strcmp(a, "-d") == 0) {
			debug = foreground = 1;
		} else if (strcmp(a, "-s") == 0) {
			/* single-threaded, as other FUSE programs accept: ignored */
		} else if (strncmp(a, "-o", 2) == 0) {
			const char *opts = a[2] ? a + 2 : (i + 1 < argc ? argv[++i] : NULL);
			if (!opts) {
				fprintf(stderr, "l2dfs: -o needs options\n");
				return CLI_USAGE;
			}
			if (cli_settings_apply(&s, opts, why, sizeof(why)) < 0) {
				fprintf(stderr, "l2dfs: %s\n", why);
				return CLI_USAGE;
			}
		} else if (a[0] == '-') {
			fprintf(stderr, "l2dfs: unknown flag %s\n", a);
			return usage(stderr, CLI_USAGE);
		} else if (npos < 2) {
			/* mount.fuse3 runs "l2dfs SOURCE MOUNTPOINT -o ...": the last wins. */
			mountpoint = a;
			npos++;
		} else {
			fprintf(stderr, "l2dfs: too many arguments: %s\n", a);
			return usage(stderr, CLI_USAGE);
		}
	}
	if (!mountpoint) {
		fprintf(stderr, "l2dfs: no mount point given\n");
		return usage(stderr, CLI_USAGE);
	}
	rc = check_mountpoint(mountpoint);
	if (rc)
		return rc;
	log_setup(s.log_level, 0);

	/* Check the cache and the index while errors still reach the terminal;
	 * they are opened again after the fork. */
	rc = cli_env_open(&env, &s, 0);
	if (rc)
		return rc;
	/* The daemon runs from /: keep the cache where it was meant to be. */
	snprintf(s.cache_dir, sizeof(s.cache_dir), "%s", cache_root(env.cache));
	cli_env_close(&env);

	fc = (struct fs_config){ s.server, s.lang, s.prefetch, s.cache_timeout_s, s.max_threads,
				 debug, s.allow_other };
	rc = fs_mount(&fs, &fc, mountpoint, why, sizeof(why));
	if (rc < 0) {
		fprintf(stderr, "l2dfs: %s\n", why);
		return CLI_FUSE;
	}
	if (fs_daemonize(fs, foreground) < 0) {
		fs_destroy(fs);
		return CLI_FUSE;
	}
	log_setup(s.log_level, !foreground);
	rc = cli_env_open(&env, &s, 1);
	if (rc) {
		log_error("cannot start on %s", mountpoint);
		fs_destroy(fs);
		return rc;
	}
	log_info("serving %s (server %s) from %s", mountpoint, s.server, s.cache_dir);
	rc = fs_serve(fs, env.engine, env.lib, env.idx, env.cache);
	fs_destroy(fs);
	cli_env_close(&env);
	log_info("unmounted %s", mountpoint);
	return rc < 0 ? CLI_FUSE : CLI_OK;
}

struct subcommand {
	const char *name;
	int (*run)(int argc, char **argv);
};

static const struct subcommand subcommands[] = {
	{ "pull", cli_cmd_pull },     { "search", cli_cmd_search }, { "costumes", cli_cmd_costumes },
	{ "status", cli_cmd_status }, { "retry", cli_cmd_retry },   { "gc", cli_cmd_gc },
	{ "verify", cli_cmd_verify }, { NULL, NULL },
};

int main(int argc, char **argv)
{
	if (argc > 1)
		for (const struct subcommand *c = subcommands; c->name; c++)
			if (strcmp(argv[1], c->name) == 0)
				return c->run(argc - 1, argv + 1);
	return cmd_mount(argc, argv);
}
