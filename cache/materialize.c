/*
 * cache: putting files at ordinary paths outside the cache, atomically.
 */
#include "cache_int.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A file on its way to a path outside the cache. */
struct dest {
	int dfd;                      /* the folder it goes into */
	const char *base;             /* its name there (points into the path) */
	char tmp[CACHE_TMP_NAME_MAX]; /* the temporary beside it */
};

/* Open (creating it 0755 if missing) the folder name below dfd, never
 * through a symlink; takes dfd over. */
static int dest_step(int dfd, const char *name, int create)
{
	int fd;

	if (create && mkdirat(dfd, name, 0755) < 0 && errno != EEXIST)
		fd = -errno;
	else if ((fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		fd = -errno;
	close(dfd);
	return fd;
}

/* The folder holding rel below dest_dir (created if create), each component
 * vetted and reached with O_NOFOLLOW; *base points at rel's last part. */
static int dest_parent(int dest_dir, const char *rel, int create, int *dfd, const char **base)
{
	char part[NAME_MAX + 1];
	const char *s = rel, *slash;
	int fd = fcntl(dest_dir, F_DUPFD_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	while ((slash = strchr(s, '/'))) {
		size_t n = (size_t)(slash - s);
		if (n == 0 || n > NAME_MAX) {
			close(fd);
			return n ? -ENAMETOOLONG : -EINVAL;
		}
		memcpy(part, s, n);
		part[n] = '\0';
		if (strcmp(part, ".") == 0 || strcmp(part, "..") == 0) {
			close(fd);
			return -EINVAL;
		}
		if ((fd = dest_step(fd, part, create)) < 0)
			return fd;
		s = slash + 1;
	}
	if (!*s || strcmp(s, ".") == 0 || strcmp(s, "..") == 0) {
		close(fd);
		return -EINVAL;
	}
	*dfd = fd;
	*base = s;
	return 0;
}

/* Create rel's folders below dest_dir, open the last one, and tell whether
 * something is at rel already. */
static int dest_open(int dest_dir, const char *rel, struct dest *d, int *exists)
{
	struct stat st;
	int err;

	d->tmp[0] = '\0';
	err = dest_parent(dest_dir, rel, 1, &d->dfd, &d->base);
	if (err)
		return err;
	if (fstatat(d->dfd, d->base, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		*exists = 1;
	} else if (errno == ENOENT) {
		*exists = 0;
	} else {
		err = -errno;
		close(d->dfd);
		return err;
	}
	return 0;
}

int cache_dest_stat(int dest_dir, const char *rel, struct stat *st)
{
	const char *base;
	int dfd, err = dest_parent(dest_dir, rel, 0, &dfd, &base);

	if (err)
		return err;
	if (fstatat(dfd, base, st, AT_SYMLINK_NOFOLLOW) < 0)
		err = -errno;
	close(dfd);
	return err;
}

/* Close the temporary written through fd (-1: a link, nothing to close) and,
 * if err is 0, move it over the destination. Without overwrite an existing
 * destination wins: returns 1. */
static int dest_commit(struct dest *d, int fd, int err, int overwrite)
{
	if (fd >= 0) {
		if (!err && fsync(fd) < 0)
			err = -errno;
		if (close(fd) < 0 && !err)
			err = -errno;
	}
	if (!err && overwrite) {
		if (renameat(d->dfd, d->tmp, d->dfd, d->base) < 0)
			err = -errno;
	} else if (!err) {
		int r = renameat2(d->dfd, d->tmp, d->dfd, d->base, RENAME_NOREPLACE);
		/* No RENAME_NOREPLACE there: dest_open() saw no file a moment ago. */
		if (r < 0 && errno == EINVAL)
			r = renameat(d->dfd, d->tmp, d->dfd, d->base);
		if (r < 0)
			err = errno == EEXIST ? 1 : -errno;
	}
	/* The temporary must go in every case, also after a rename between two
	 * links of one file, which does nothing. */
	unlinkat(d->dfd, d->tmp, 0);
	return err;
}

/* Hardlink the cached file (name in folder sdfd) at the destination. */
static int link_to(int sdfd, const char *name, struct dest *d, int overwrite)
{
	int err = cache_tmp_name(d->tmp);

	if (err)
		return err;
	/* flags 0: a symlink source would be linked itself, never followed. */
	if (linkat(sdfd, name, d->dfd, d->tmp, 0) < 0)
		return -errno;
	return dest_commit(d, -1, 0, overwrite);
}

/* Copy all of in to out from their current offsets. */
static int copy_fd(int in, int out)
{
	char buf[65536];

	for (;;) {
		ssize_t k = copy_file_range(in, NULL, out, NULL, SSIZE_MAX, 0);
		if (k == 0)
			return 0;
		if (k > 0 || errno == EINTR)
			continue;
		if (errno != EXDEV && errno != ENOSYS && errno != EOPNOTSUPP && errno != EINVAL)
			return -errno;
		break;
	}
	/* Not between these two files: go on by hand from where it stopped. */
	for (;;) {
		ssize_t k = read(in, buf, sizeof(buf));
		if (k == 0)
			return 0;
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -errno;
		int err = cache_write_all(out, buf, (size_t)k);
		if (err)
			return err;
	}
}

static int copy_to(const struct cache *c, const char *server, const char *bundle,
		   const char *file, int64_t size, int64_t stamp, struct dest *d, int overwrite)
{
	int in, out, err;

	err = cache_asset_open(c, server, bundle, file, size, stamp, &in);
	if (err)
		return err;
	err = cache_tmp_create(d->dfd, d->tmp, &out);
	if (!err)
		err = dest_commit(d, out, copy_fd(in, out), overwrite);
	close(in);
	return err;
}

/* Link errors that mean "this filesystem or file will not take a link". */
static int link_refused(int err)
{
	return err == -EXDEV || err == -EPERM || err == -EMLINK || err == -EOPNOTSUPP;
}

int cache_materialize(const struct cache *c, const char *server, const char *bundle,
		      const char *file, int64_t expect_size, int64_t expect_stamp, int dest_dir,
		      const char *rel, enum cache_link_mode mode, int overwrite,
		      enum cache_outcome *outcome)
{
	enum cache_outcome got = CACHE_SKIPPED;
	struct dest d;
	struct stat st;
	int sdfd, exists, err;

	err = cache_asset_dir(c, server, bundle, file, 0, &sdfd);
	if (err)
		return err;
	if (fstatat(sdfd, file, &st, AT_SYMLINK_NOFOLLOW) < 0)
		err = -errno;
	else if (!S_ISREG(st.st_mode))
		err = -EINVAL;
	else if ((expect_size >= 0 && st.st_size != expect_size) ||
		 (expect_stamp > 0 && cache_stamp(&st) != expect_stamp))
		err = -ESTALE;
	else
		err = dest_open(dest_dir, rel, &d, &exists);
	if (err) {
		close(sdfd);
		return err;
	}
	if (exists && !overwrite) {
		err = 1;
	} else {
		if (mode != CACHE_LINK_COPY) {
			err = link_to(sdfd, file, &d, overwrite);
			got = CACHE_LINKED;
		}
		if (mode == CACHE_LINK_COPY || (mode == CACHE_LINK_AUTO && link_refused(err))) {
			err = copy_to(c, server, bundle, file, expect_size, expect_stamp, &d,
				      overwrite);
			got = CACHE_COPIED;
		}
	}
	close(d.dfd);
	close(sdfd);
	if (err < 0)
		return err;
	if (outcome)
		*outcome = err == 1 ? CACHE_SKIPPED : got;
	return 0;
}

int cache_write_file_atomic(int dest_dir, const char *rel, const void *data, size_t n,
			    int overwrite, int *skipped)
{
	struct dest d;
	int exists, fd, err;

	err = dest_open(dest_dir, rel, &d, &exists);
	if (err)
		return err;
	if (exists && !overwrite)
		err = 1;
	else if (!(err = cache_tmp_create(d.dfd, d.tmp, &fd)))
		err = dest_commit(&d, fd, cache_write_all(fd, data, n), overwrite);
	close(d.dfd);
	if (err < 0)
		return err;
	if (skipped)
		*skipped = err == 1;
	return 0;
}
