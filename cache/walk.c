/*
 * cache: walking the asset tree (crash clean-up, index rebuild).
 */
#include "cache_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Called for each regular file: dfd is its folder, rel the folder's path
 * from where the walk started ("" there). Non-zero stops the walk. */
typedef int (*walk_cb)(void *arg, int dfd, const char *rel, const char *name,
		       const struct stat *st);

static int walk_dir(int dfd, char *rel, size_t len, walk_cb cb, void *arg);

/* Descend into the folder name below dfd, extending rel for the visit.
 * Folders that are not safe names were not made by us and are skipped. */
static int walk_sub(int dfd, char *rel, size_t len, const char *name, walk_cb cb, void *arg)
{
	size_t n = strlen(name);
	size_t sub_len = len ? len + 1 + n : n;
	int fd, err;

	if (!cache_name_is_safe(name))
		return 0;
	if (sub_len >= PATH_MAX)
		return -ENAMETOOLONG;
	fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		/* Gone or swapped for a non-folder since it was listed. */
		return errno == ENOENT || errno == ENOTDIR || errno == ELOOP ? 0 : -errno;
	if (len)
		rel[len] = '/';
	memcpy(rel + sub_len - n, name, n + 1);
	err = walk_dir(fd, rel, sub_len, cb, arg);
	rel[len] = '\0';
	return err;
}

/* Visit the regular files below dfd, depth first; takes dfd over. Symlinks
 * and other special files are skipped. */
static int walk_dir(int dfd, char *rel, size_t len, walk_cb cb, void *arg)
{
	struct dirent *e;
	struct stat st;
	DIR *d;
	int err = 0;

	d = fdopendir(dfd);
	if (!d) {
		err = -errno;
		close(dfd);
		return err;
	}
	while (!err) {
		errno = 0;
		e = readdir(d);
		if (!e) {
			err = -errno;
			break;
		}
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			err = errno == ENOENT ? 0 : -errno;
			continue;
		}
		if (S_ISREG(st.st_mode))
			err = cb(arg, dfd, rel, e->d_name, &st);
		else if (S_ISDIR(st.st_mode))
			err = walk_sub(dfd, rel, len, e->d_name, cb, arg);
	}
	closedir(d);
	return err;
}

int cache_remove_any(int dfd, const char *name)
{
	struct dirent *e;
	DIR *d;
	int fd, err = 0;

	if (unlinkat(dfd, name, 0) == 0 || errno == ENOENT)
		return 0;
	if (errno != EISDIR && errno != EPERM)
		return -errno;
	fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		err = -errno;
		close(fd);
		return err;
	}
	while (!err && (e = readdir(d)))
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			err = cache_remove_any(fd, e->d_name);
	closedir(d);
	if (!err && unlinkat(dfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
		err = -errno;
	return err;
}

static int walk_tree(int dfd, walk_cb cb, void *arg)
{
	char rel[PATH_MAX] = "";

	return walk_dir(dfd, rel, 0, cb, arg);
}

static int clean_one(void *arg, int dfd, const char *rel, const char *name,
		     const struct stat *st)
{
	int *removed = arg;

	(void)rel;
	(void)st;
	if (strncmp(name, CACHE_TEMP_PREFIX, sizeof(CACHE_TEMP_PREFIX) - 1) != 0)
		return 0;
	if (unlinkat(dfd, name, 0) < 0)
		return errno == ENOENT ? 0 : -errno;
	(*removed)++;
	return 0;
}

int cache_clean_temps(struct cache *c, int *removed)
{
	int n = 0, dfd, err;

	err = cache_dir(c, NULL, NULL, 0, &dfd);
	if (!err)
		err = walk_tree(dfd, clean_one, &n);
	else if (err == -ENOENT)
		err = 0;
	if (removed)
		*removed = n;
	return err;
}

struct walk_assets {
	cache_walk_fn fn;
	void *arg;
};

/* Only what cache_asset_path() could name: a bundle folder and a safe name. */
static int walk_one(void *arg, int dfd, const char *rel, const char *name,
		    const struct stat *st)
{
	struct walk_assets *wa = arg;

	(void)dfd;
	if (!*rel || !cache_name_is_safe(name))
		return 0;
	return wa->fn(wa->arg, rel, name, st);
}

int cache_walk(struct cache *c, const char *server, cache_walk_fn fn, void *arg)
{
	struct walk_assets wa = { fn, arg };
	int dfd, err;

	if (!server)
		return -EINVAL;
	err = cache_dir(c, server, NULL, 0, &dfd);
	if (err)
		return err == -ENOENT ? 0 : err;
	return walk_tree(dfd, walk_one, &wa);
}
