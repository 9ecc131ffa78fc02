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
	"       l2dfs pull|search|characters|costumes|cat|status|retry|gc|verify|refresh|serve [-o OPTIONS] ...\n"
	"             (--help each)\n"
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
	"Options (-o a=1,b=2; also in /etc/fstab and in $L2DFS_OPTIONS, which -o\n"
	"overrides):\n";

static int usage(FILE *to, int status)
{
	fputs(usage_text, to);
	cli_options_usage(to);
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

/* Undo mountinfo's octal escapes (\040 for a space) in place. */
static void unescape_mountinfo(char *p)
{
	char *out = p;

	for (; *p; p++) {
		if (p[0] == '\\' && p[1] >= '0' && p[1] <= '3' && p[2] >= '0' && p[2] <= '7' &&
		    p[3] >= '0' && p[3] <= '7') {
			*out++ = (char)((p[1] - '0') * 64 + (p[2] - '0') * 8 + (p[3] - '0'));
			p += 3;
		} else {
			*out++ = *p;
		}
	}
	*out = '\0';
}

/* 1 if an l2dfs mount (fuse.l2dfs, or fuse.<subtype>) is on path already. */
static int l2dfs_mounted_on(const char *path, const char *subtype)
{
	char real[CLI_PATH_MAX], line[CLI_PATH_MAX * 2], *save;
	FILE *f;
	int found = 0;

	if (!realpath(path, real) || !(f = fopen("/proc/self/mountinfo", "r")))
		return 0;
	while (!found && fgets(line, sizeof(line), f)) {
		/* id parent dev root MOUNTPOINT opts [tags...] - FSTYPE source superopts */
		char *field[5], *dash = strstr(line, " - "), *type;
		int n = 0;
		if (!dash)
			continue;
		*dash = '\0';
		for (char *t = strtok_r(line, " ", &save); t && n < 5; t = strtok_r(NULL, " ", &save))
			field[n++] = t;
		type = strtok_r(dash + 3, " ", &save);
		if (n < 5 || !type || strncmp(type, "fuse.", 5) != 0)
			continue;
		unescape_mountinfo(field[4]);
		found = strcmp(field[4], real) == 0 &&
			(strcmp(type + 5, "l2dfs") == 0 || strcmp(type + 5, subtype) == 0);
	}
	fclose(f);
	return found;
}

struct mount_args {
	const char *mountpoint;
	int foreground, debug;
};

/*
 * The mount's command line into *s and *m: -1 to go on, else the exit
 * status. mount.fuse3 runs "l2dfs SOURCE MOUNTPOINT -o ...": a first
 * positional that is not a directory is that source and is ignored.
 */
static int parse_mount_args(int argc, char **argv, struct cli_settings *s, struct mount_args *m)
{
	const char *pos[2];
	char why[512] = "", env_why[512] = "";
	int npos = 0, env_rc;
	struct stat st;

	cli_settings_defaults(s);
	env_rc = cli_settings_from_env(s, env_why, sizeof(env_why));
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)
			return usage(stdout, CLI_OK);
		if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0) {
			printf("l2dfs %s\n", L2DFS_VERSION);
			return CLI_OK;
		}
		if (strcmp(a, "-f") == 0) {
			m->foreground = 1;
		} else if (strcmp(a, "-d") == 0) {
			m->debug = m->foreground = 1;
		} else if (strcmp(a, "-s") == 0) {
			/* single-threaded, as other FUSE programs accept: ignored */
		} else if (strncmp(a, "-o", 2) == 0) {
			const char *opts = a[2] ? a + 2 : (i + 1 < argc ? argv[++i] : NULL);
			if (!opts) {
				fprintf(stderr, "l2dfs: -o needs options\n");
				return CLI_USAGE;
			}
			if (env_rc == 0 && cli_settings_apply(s, opts, why, sizeof(why)) < 0) {
				fprintf(stderr, "l2dfs: %s\n", why);
				return CLI_USAGE;
			}
		} else if (a[0] == '-') {
			fprintf(stderr, "l2dfs: unknown flag %s\n", a);
			return usage(stderr, CLI_USAGE);
		} else if (npos < 2 && (npos == 0 || stat(pos[0], &st) < 0 || !S_ISDIR(st.st_mode))) {
			pos[npos++] = a;
		} else {
			fprintf(stderr, "l2dfs: too many arguments: %s (one mount point)\n", a);
			return usage(stderr, CLI_USAGE);
		}
	}
	if (env_rc < 0) {
		fprintf(stderr, "l2dfs: %s\n", env_why);
		return CLI_USAGE;
	}
	if (!npos) {
		fprintf(stderr, "l2dfs: no mount point given\n");
		return usage(stderr, CLI_USAGE);
	}
	m->mountpoint = pos[npos - 1];
	return -1;
}

static int cmd_mount(int argc, char **argv)
{
	struct cli_settings s;
	struct mount_args m = { NULL, 0, 0 };
	struct fs_config fc;
	struct cli_env env;
	struct fs *fs = NULL;
	char why[512] = "";
	int rc = parse_mount_args(argc, argv, &s, &m);

	if (rc >= 0)
		return rc;
	rc = check_mountpoint(m.mountpoint);
	if (rc)
		return rc;
	if (l2dfs_mounted_on(m.mountpoint, s.subtype)) {
		fprintf(stderr, "l2dfs: %s already has an l2dfs mount (unmount it first: "
				"fusermount3 -u %s)\n", m.mountpoint, m.mountpoint);
		return CLI_MOUNTPOINT;
	}
	log_setup(s.log_level, 0);

	/* Check the cache and the index while errors still reach the terminal;
	 * they are opened again after the fork. */
	rc = cli_env_open(&env, &s, 0);
	if (rc)
		return rc;
	/* The daemon runs from /: keep the cache where it was meant to be. */
	snprintf(s.cache_dir, sizeof(s.cache_dir), "%s", cache_root(env.cache));
	cli_env_close(&env);

	fc = (struct fs_config){ .server = s.server, .lang = s.lang, .prefetch = s.prefetch,
				 .cache_timeout_s = s.cache_timeout_s, .max_threads = s.max_threads,
				 .debug = m.debug, .catalogue_ttl_s = s.catalogue_ttl_s,
				 .fsname = s.fsname, .subtype = s.subtype, .fuse_flags = s.fuse_flags };
	rc = fs_mount(&fs, &fc, m.mountpoint, why, sizeof(why));
	if (rc < 0) {
		fprintf(stderr, "l2dfs: %s\n", why);
		return CLI_FUSE;
	}
	if (fs_daemonize(fs, m.foreground) < 0) {
		fs_destroy(fs);
		return CLI_FUSE;
	}
	log_setup(s.log_level, !m.foreground);
	rc = cli_env_open(&env, &s, 1);
	if (rc) {
		log_error("cannot start on %s", m.mountpoint);
		fs_destroy(fs);
		return rc;
	}
	log_info("serving %s (server %s) from %s", m.mountpoint, s.server, s.cache_dir);
	rc = fs_serve(fs, env.engine, env.lib, env.idx, env.cache);
	fs_destroy(fs);
	cli_env_close(&env);
	log_info("unmounted %s", m.mountpoint);
	return rc < 0 ? CLI_FUSE : CLI_OK;
}

struct subcommand {
	const char *name;
	int (*run)(int argc, char **argv);
};

static const struct subcommand subcommands[] = {
	{ "pull", cli_cmd_pull },     { "search", cli_cmd_search }, { "costumes", cli_cmd_costumes },
	{ "status", cli_cmd_status }, { "retry", cli_cmd_retry },   { "gc", cli_cmd_gc },
	{ "verify", cli_cmd_verify }, { "characters", cli_cmd_characters },
	{ "cat", cli_cmd_cat },       { "refresh", cli_cmd_refresh }, { "serve", cli_cmd_serve },
	{ NULL, NULL },
};

int main(int argc, char **argv)
{
	if (argc > 1)
		for (const struct subcommand *c = subcommands; c->name; c++)
			if (strcmp(argv[1], c->name) == 0)
				return c->run(argc - 1, argv + 1);
	return cmd_mount(argc, argv);
}
