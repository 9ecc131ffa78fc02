/*
 * cache: writing an asset through a temporary in its final folder.
 */
#include "cache_int.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

struct cache_writer {
	int dfd;            /* the asset's folder */
	int fd;             /* the temporary, -1 once closed */
	int err;            /* a failed write poisons the file until reset */
	int64_t size;
	EVP_MD_CTX *md;
	char tmp[CACHE_TMP_NAME_MAX]; /* "" once renamed or never created */
	char file[NAME_MAX + 1];
	int published;      /* renamed over file: the folder is fsynced at the end */
};

int cache_writer_begin(struct cache *c, const char *server, const char *bundle,
		       const char *file, struct cache_writer **out)
{
	struct cache_writer *w;
	int err;

	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->fd = -1;
	err = cache_asset_dir(c, server, bundle, file, 1, &w->dfd);
	if (err) {
		free(w);
		return err;
	}
	err = cache_tmp_create(w->dfd, w->tmp, &w->fd);
	if (!err && !(w->md = EVP_MD_CTX_new()))
		err = -ENOMEM;
	if (!err && EVP_DigestInit_ex(w->md, EVP_sha256(), NULL) != 1)
		err = -EIO;
	if (err) {
		cache_writer_abort(w);
		return err;
	}
	strcpy(w->file, file); /* vetted: at most NAME_MAX bytes */
	*out = w;
	return 0;
}

int cache_writer_write(struct cache_writer *w, const void *buf, size_t n)
{
	int err = w->err;

	if (!err)
		err = cache_write_all(w->fd, buf, n);
	if (!err && EVP_DigestUpdate(w->md, buf, n) != 1)
		err = -EIO;
	if (err)
		w->err = err;
	else
		w->size += (int64_t)n;
	return err;
}

int cache_writer_reset(struct cache_writer *w)
{
	if (ftruncate(w->fd, 0) < 0 || lseek(w->fd, 0, SEEK_SET) < 0)
		return -errno;
	if (EVP_DigestInit_ex(w->md, EVP_sha256(), NULL) != 1)
		return -EIO;
	w->size = 0;
	w->err = 0;
	return 0;
}

int64_t cache_writer_size(const struct cache_writer *w)
{
	return w->size;
}

int cache_writer_prepare(struct cache_writer *w, char hex[CACHE_SHA256_HEX], int64_t *size,
			 int64_t *stamp)
{
	struct stat st;
	int err = w->err;

	assert(w->fd >= 0 && w->tmp[0]); /* once, before the publish */
	/* Read-only: a pull's hardlink must not be a way to write into it. */
	if (!err && fchmod(w->fd, 0444) < 0)
		err = -errno;
	if (!err && fsync(w->fd) < 0)
		err = -errno;
	if (!err && fstat(w->fd, &st) < 0)
		err = -errno;
	if (!err) {
		int fd = w->fd;
		w->fd = -1;
		if (close(fd) < 0)
			err = -errno;
	}
	if (!err && hex)
		err = cache_sha256_hex(w->md, hex);
	if (!err && size)
		*size = w->size;
	if (!err && stamp)
		*stamp = cache_stamp(&st);
	return err;
}

int cache_writer_publish(struct cache_writer *w)
{
	int err = 0;

	assert(w->fd < 0 && w->tmp[0]); /* prepared, not published */
	if (renameat(w->dfd, w->tmp, w->dfd, w->file) < 0) {
		err = -errno;
		/* Only our files belong at an asset's path: a folder planted there
		 * goes, and the rename is tried once more. */
		if ((err == -EISDIR || err == -ENOTEMPTY || err == -EEXIST) &&
		    cache_remove_any(w->dfd, w->file) == 0)
			err = renameat(w->dfd, w->tmp, w->dfd, w->file) < 0 ? -errno : 0;
	}
	if (!err) {
		w->tmp[0] = '\0';
		w->published = 1;
	}
	return err;
}

int cache_writer_finish(struct cache_writer *w)
{
	/* Make the rename itself durable. */
	int err = w->published && fsync(w->dfd) < 0 ? -errno : 0;

	cache_writer_abort(w); /* frees; after a rename there is no temporary left */
	return err;
}

int cache_writer_reader(struct cache_writer *w, int *fd)
{
	int f = openat(w->dfd, w->tmp, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

	if (f < 0)
		return -errno;
	/* No one else knows the temporary: the lock is free. */
	if (flock(f, LOCK_SH | LOCK_NB) < 0) {
		int err = -errno;
		close(f);
		return err;
	}
	*fd = f;
	return 0;
}

void cache_writer_abort(struct cache_writer *w)
{
	if (!w)
		return;
	if (w->fd >= 0)
		close(w->fd);
	if (w->tmp[0])
		unlinkat(w->dfd, w->tmp, 0);
	close(w->dfd);
	EVP_MD_CTX_free(w->md);
	free(w);
}
