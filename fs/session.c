/*
 * session.c: mounting, daemonizing and the request loop.
 */
#include "fs_int.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "../log/log.h"

/* 1 if the comma-separated options opts hold name. */
static int has_option(const char *opts, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = opts; (p = strstr(p, name)) != NULL; p += n)
		if ((p == opts || p[-1] == ',') && (p[n] == ',' || p[n] == '\0'))
			return 1;
	return 0;
}

/* "l2dfs -ofsname=...,subtype=...,ro,default_permissions[,flags] [-d]" for
 * fuse_session_new(): the kernel checks modes (op_init asks no ACL support,
 * which would imply it). */
static int fuse_mount_args(struct fuse_args *args, const struct fs_config *cfg)
{
	char opts[512];
	int n = snprintf(opts, sizeof(opts), "-ofsname=%s,subtype=%s,ro,default_permissions%s%s", cfg->fsname,
			 cfg->subtype, cfg->fuse_flags[0] ? "," : "", cfg->fuse_flags);

	if (n < 0 || (size_t)n >= sizeof(opts))
		return -EINVAL;
	if (fuse_opt_add_arg(args, "l2dfs") < 0 || fuse_opt_add_arg(args, opts) < 0 ||
	    (cfg->debug && fuse_opt_add_arg(args, "-d") < 0))
		return -ENOMEM;
	return 0;
}

/* libfuse's own message for a missing or odd /dev/fuse is vague: check first. */
static int fuse_device_check(char *why, size_t whylen)
{
	struct stat st;
	int fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);

	if (fd < 0) {
		snprintf(why, whylen, "cannot use /dev/fuse: %s (is the fuse module loaded?)",
			 strerror(errno));
		return -ENODEV;
	}
	int is_fuse = fstat(fd, &st) == 0 && S_ISCHR(st.st_mode) && major(st.st_rdev) == 10 &&
		      minor(st.st_rdev) == 229;
	close(fd);
	if (!is_fuse) {
		snprintf(why, whylen, "cannot use /dev/fuse: it is not the FUSE device (10,229)");
		return -ENODEV;
	}
	return 0;
}

int fs_mount(struct fs **out, const struct fs_config *cfg, const char *mountpoint,
	     char *why, size_t whylen)
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct fs *fs;

	if (fuse_device_check(why, whylen) < 0)
		return -ENODEV;
	fs = calloc(1, sizeof(*fs));
	if (!fs)
		return -ENOMEM;
	fs->cfg = *cfg;
	snprintf(fs->server, sizeof(fs->server), "%s", cfg->server);
	fs->cfg.server = fs->server;
	fs->started = time(NULL);
	fs->uid = getuid();
	fs->gid = getgid();
	fs->need_opendir = has_option(cfg->fuse_flags, "auto_unmount");
#ifdef L2DFS_TEST_HOOKS
	fs->need_open = getenv("L2DFS_TEST_DAEMON_OPEN") != NULL;
#endif
	pthread_mutex_init(&fs->lock, NULL);
	pthread_cond_init(&fs->follow_wake, NULL);
	fs->mountpoint = strdup(mountpoint);

	int rc = fuse_mount_args(&args, cfg);
	if (rc < 0) {
		snprintf(why, whylen, "cannot mount on %s: %s", mountpoint,
			 rc == -EINVAL ? "mount options too long" : strerror(-rc));
		fuse_opt_free_args(&args);
		fs_destroy(fs);
		return rc;
	}
	fs->se = fuse_session_new(&args, &fs_lowlevel_ops, sizeof(fs_lowlevel_ops), fs);
	fuse_opt_free_args(&args);
	if (!fs->se) {
		snprintf(why, whylen, "cannot create the FUSE session");
		fs_destroy(fs);
		return -EIO;
	}
	/* From here on a SIGINT, SIGTERM or SIGHUP ends the session: also one
	 * that comes before the loop runs (while the index opens). */
	if (fuse_set_signal_handlers(fs->se) != 0) {
		snprintf(why, whylen, "cannot set up signal handling");
		fs_destroy(fs);
		return -EIO;
	}
	fs->signals = 1;
	if (fuse_session_mount(fs->se, mountpoint) != 0) {
		snprintf(why, whylen, "cannot mount on %s (see the message above)", mountpoint);
		fs_destroy(fs);
		return -EIO;
	}
	fs->mounted = 1;
	*out = fs;
	return 0;
}

int fs_daemonize(struct fs *fs, int foreground)
{
	(void)fs;
	return fuse_daemonize(foreground) == 0 ? 0 : -EIO;
}

/* How often the watcher looks whether the session has ended. */
#define WATCH_MS 100

struct watcher {
	struct fs *fs;
	struct http_engine *engine;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	int done; /* the loop has returned */
};

/*
 * The loop returns only once every worker has: a worker waiting for a
 * download would hold up a signal or an aborted connection until the
 * transfer ends. Once the session has ended, stop the library so that
 * those readers return at once.
 */
static void *watch_session(void *arg)
{
	struct watcher *w = arg;
	struct timespec until;

	pthread_mutex_lock(&w->lock);
	while (!w->done && !fuse_session_exited(w->fs->se)) {
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += WATCH_MS * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&w->wake, &w->lock, &until);
	}
	pthread_mutex_unlock(&w->lock);
	fetch_library_stop(w->fs->lib);
	/* Lookups wait on probes and documents too: cancel those as well. */
	http_engine_stop(w->engine);
	return NULL;
}

int fs_serve(struct fs *fs, struct http_engine *engine, struct fetch_library *lib,
	     struct idx *idx, struct cache *cache)
{
	struct watcher w = { fs, engine, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0 };
	struct fuse_loop_config *loop;
	pthread_t watcher;
	int rc, watching;

	fs->lib = lib;
	fs->idx = idx;
	fs->cache = cache;
	loop = fuse_loop_cfg_create();
	if (!loop)
		return -ENOMEM;
	/* Readers block while their file downloads: keep enough threads that
	 * one slow file never holds up the rest. */
	fuse_loop_cfg_set_max_threads(loop, (unsigned)fs->cfg.max_threads);
	fuse_loop_cfg_set_idle_threads(loop, 8);
	watching = pthread_create(&watcher, NULL, watch_session, &w) == 0;
	if (fs_follow_start(fs) < 0)
		log_warn("catalogue changes will show only after a remount");
	rc = fuse_session_loop_mt(fs->se, loop);
	fs_follow_stop(fs);
	if (watching) {
		pthread_mutex_lock(&w.lock);
		w.done = 1;
		pthread_cond_signal(&w.wake);
		pthread_mutex_unlock(&w.lock);
		pthread_join(watcher, NULL);
	}
	fuse_loop_cfg_destroy(loop);
	return rc < 0 ? rc : 0;
}

void fs_destroy(struct fs *fs)
{
	if (!fs)
		return;
	/* libfuse's handlers point at the session, and its removal puts back
	 * the default action, death: a burst of signals (fifty SIGHUPs) would
	 * kill the unmount half done. The unmount under way is the answer to
	 * every later one. */
	if (fs->signals) {
		/* Ignored first: no instant with the default action. */
		for (int pass = 0; pass < 2; pass++) {
			signal(SIGHUP, SIG_IGN);
			signal(SIGINT, SIG_IGN);
			signal(SIGTERM, SIG_IGN);
			if (!pass)
				fuse_remove_signal_handlers(fs->se);
		}
	}
	if (fs->se) {
		if (fs->mounted)
			fuse_session_unmount(fs->se);
		fuse_session_destroy(fs->se);
	}
	fs_handles_free(fs);
	pthread_mutex_destroy(&fs->lock);
	pthread_cond_destroy(&fs->follow_wake);
	free(fs->prefetched);
	free(fs->mountpoint);
	free(fs);
}
