/*
 * cache: the root, name rules, path resolution and reads of cached assets.
 */
#include "cache_int.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#define TEMP_PREFIX_LEN (sizeof(CACHE_TEMP_PREFIX) - 1)

int cache_mkdirs(const char *path, mode_t mode)
{
	char buf[PATH_MAX];
	size_t len = strlen(path);

	if (len == 0)
		return -EINVAL;
	if (len >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, len + 1);
	for (char *p = buf + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char end = *p;
		*p = '\0';
		if (mkdir(buf, mode) < 0 && errno != EEXIST) {
			/* An existing folder may still refuse mkdir (EACCES, EROFS). */
			int err = -errno;
			struct stat st;
			if (stat(buf, &st) < 0 || !S_ISDIR(st.st_mode))
				return err;
		}
		*p = end;
		if (end == '\0')
			return 0;
	}
}

/* Make root absolute (a daemon changes directory) and drop trailing '/'. */
static int absolute_root(const char *root, char **out)
{
	char cwd[PATH_MAX];
	int n;

	if (root[0] == '/') {
		*out = strdup(root);
		if (!*out)
			return -ENOMEM;
	} else {
		if (!getcwd(cwd, sizeof(cwd)))
			return -errno;
		n = asprintf(out, "%s%s%s", cwd, cwd[1] ? "/" : "", root);
		if (n < 0)
			return -ENOMEM;
	}
	for (size_t len = strlen(*out); len > 1 && (*out)[len - 1] == '/'; len--)
		(*out)[len - 1] = '\0';
	return 0;
}

/* A directory we can open may still refuse writes: try one. */
static int probe_writable(int dfd)
{
	char name[CACHE_TMP_NAME_MAX];
	int fd, err;

	err = cache_tmp_create(dfd, name, &fd);
	if (err)
		return err;
	close(fd);
	return unlinkat(dfd, name, 0) < 0 ? -errno : 0;
}

int cache_open(struct cache **out, const char *root)
{
	struct cache *c;
	int err;

	if (!root || !*root)
		return -EINVAL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->fd = -1;
	err = absolute_root(root, &c->root);
	if (!err)
		err = cache_mkdirs(c->root, 0700);
	if (!err) {
		c->fd = open(c->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (c->fd < 0)
			err = -errno;
	}
	if (!err)
		err = probe_writable(c->fd);
	if (err) {
		cache_close(c);
		return err;
	}
	*out = c;
	return 0;
}

void cache_close(struct cache *c)
{
	if (!c)
		return;
	if (c->fd >= 0)
		close(c->fd);
	free(c->root);
	free(c);
}

int cache_claim(struct cache *c, int *alone)
{
	*alone = flock(c->fd, LOCK_EX | LOCK_NB) == 0;
	/* Converting keeps the lock continuously held: no one slips in. */
	while (flock(c->fd, LOCK_SH) < 0)
		if (errno != EINTR)
			return -errno;
	return 0;
}

const char *cache_root(const struct cache *c)
{
	return c->root;
}

/* One path component of n bytes (not NUL-terminated). */
static int component_is_safe(const char *s, size_t n)
{
	if (n == 0 || n > NAME_MAX)
		return 0;
	if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
		return 0;
	/* A network name must never collide with one of our temporaries. */
	if (n >= TEMP_PREFIX_LEN && memcmp(s, CACHE_TEMP_PREFIX, TEMP_PREFIX_LEN) == 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char b = (unsigned char)s[i];
		if (b < 0x20 || b == 0x7f || b == '/' || b == '\\')
			return 0;
	}
	return 1;
}

int cache_name_is_safe(const char *name)
{
	return name && component_is_safe(name, strnlen(name, NAME_MAX + 1));
}

int cache_bundle_is_safe(const char *bundle)
{
	if (!bundle || !*bundle)
		return 0;
	for (const char *s = bundle;;) {
		const char *slash = strchr(s, '/');
		size_t n = slash ? (size_t)(slash - s) : strlen(s);
		if (!component_is_safe(s, n))
			return 0;
		if (!slash)
			return 1;
		s = slash + 1;
	}
}

int cache_asset_path(const struct cache *c, const char *server, const char *bundle,
		     const char *file, char *buf, size_t len)
{
	int n;

	if (!cache_name_is_safe(server) || !cache_bundle_is_safe(bundle) ||
	    !cache_name_is_safe(file))
		return -EINVAL;
	n = snprintf(buf, len, "%s/live2d/assets/%s/%s/%s", c->root, server, bundle, file);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* Open (and first create, if asked) one folder below dfd, never a symlink. */
static int dir_step(int dfd, const char *name, int create)
{
	int fd;

	if (create && mkdirat(dfd, name, 0700) < 0 && errno != EEXIST)
		return -errno;
	fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

/* 0 until openat2 is found missing (a kernel before 5.6, or a filter). */
static atomic_int no_openat2;

/*
 * Open rel (a relative path of safe names) below the root in one call, the
 * walk of dir_step done by the kernel: no symlink is followed on the way
 * or at the end (RESOLVE_NO_SYMLINKS), nothing above the root is reached.
 * Each step of a walk costs two system calls, which a read through the
 * mount pays for every cache file it opens. 1 when openat2 cannot be used
 * here (the caller walks), else 0 with *fd or a negative errno.
 */
static int open_beneath(const struct cache *c, const char *rel, int flags, int *fd)
{
	struct open_how how = { .flags = (uint64_t)(flags | O_NOFOLLOW | O_CLOEXEC),
				.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS };
	long f;

	if (atomic_load_explicit(&no_openat2, memory_order_relaxed))
		return 1;
#ifdef L2DFS_TEST_HOOKS
	/* Test builds only: the walk, as where openat2 is missing. */
	if (getenv("L2DFS_TEST_NO_OPENAT2"))
		return 1;
#endif
	f = syscall(SYS_openat2, c->fd, rel, &how, sizeof(how));
	if (f >= 0) {
		*fd = (int)f;
		return 0;
	}
	/* EAGAIN: a rename raced the lookup; the walk settles it. */
	if (errno == EAGAIN)
		return 1;
	if (errno == ENOSYS || errno == EPERM || errno == E2BIG) {
		atomic_store_explicit(&no_openat2, 1, memory_order_relaxed);
		return 1;
	}
	return -errno;
}

/* The folder's path below the root into rel. */
static int dir_rel(const char *server, const char *bundle, char *rel, size_t len)
{
	int n;

	if ((server && !cache_name_is_safe(server)) ||
	    (bundle && (!server || !cache_bundle_is_safe(bundle))))
		return -EINVAL;
	n = snprintf(rel, len, "live2d/assets%s%s%s%s", server ? "/" : "", server ? server : "",
		     bundle ? "/" : "", bundle ? bundle : "");
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int cache_dir(const struct cache *c, const char *server, const char *bundle, int create,
	      int *dfd)
{
	char rel[PATH_MAX];
	char *save, *part;
	int fd = c->fd, err = dir_rel(server, bundle, rel, sizeof(rel));

	if (err)
		return err;
	if (!create) {
		err = open_beneath(c, rel, O_RDONLY | O_DIRECTORY, dfd);
		if (err <= 0)
			return err;
	}
	for (part = strtok_r(rel, "/", &save); part; part = strtok_r(NULL, "/", &save)) {
		int next = dir_step(fd, part, create);
		if (fd != c->fd)
			close(fd);
		if (next < 0)
			return next;
		fd = next;
	}
	*dfd = fd;
	return 0;
}

int cache_asset_dir(const struct cache *c, const char *server, const char *bundle,
		    const char *file, int create, int *dfd)
{
	if (!server || !bundle || !cache_name_is_safe(file))
		return -EINVAL;
	return cache_dir(c, server, bundle, create, dfd);
}

/* flock() through EINTR. */
static int lock_file(int fd, int op)
{
	while (flock(fd, op) < 0) {
		if (errno != EINTR)
			return -errno;
	}
	return 0;
}

int64_t cache_stamp(const struct stat *st)
{
	int64_t ns = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
	return ns ? ns : 1;
}

/* Open an asset's file for reading, never through a symlink. O_NONBLOCK:
 * a FIFO planted there must not hang the open. */
static int asset_file_open(const struct cache *c, const char *server, const char *bundle,
			   const char *file, int *fd)
{
	char rel[PATH_MAX];
	size_t n;
	int dfd, err = cache_name_is_safe(file) ? dir_rel(server, bundle, rel, sizeof(rel))
						 : -EINVAL;

	if (!err && (!server || !bundle))
		err = -EINVAL;
	if (err)
		return err;
	n = strlen(rel);
	if (snprintf(rel + n, sizeof(rel) - n, "/%s", file) >= (int)(sizeof(rel) - n))
		return -ENAMETOOLONG;
	err = open_beneath(c, rel, O_RDONLY | O_NONBLOCK, fd);
	if (err <= 0)
		return err;
	err = cache_asset_dir(c, server, bundle, file, 0, &dfd);
	if (err)
		return err;
	*fd = openat(dfd, file, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	err = *fd < 0 ? -errno : 0;
	close(dfd);
	return err;
}

int cache_asset_open(const struct cache *c, const char *server, const char *bundle,
		     const char *file, int64_t expect_size, int64_t expect_stamp, int *fd)
{
	struct stat st;
	int f, err;

	err = asset_file_open(c, server, bundle, file, &f);
	if (err)
		return err;
	if (fstat(f, &st) < 0)
		err = -errno;
	else if (!S_ISREG(st.st_mode))
		err = S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
	else
		err = lock_file(f, LOCK_SH);
	/* The shared lock keeps eviction away; an eviction that held the
	 * exclusive one meanwhile has left a file with no name. */
	if (!err && fstat(f, &st) < 0)
		err = -errno;
	if (!err && st.st_nlink == 0)
		err = -ENOENT;
	if (!err && ((expect_size >= 0 && st.st_size != expect_size) ||
		     (expect_stamp > 0 && cache_stamp(&st) != expect_stamp)))
		err = -ESTALE;
	if (!err && fcntl(f, F_SETFL, 0) < 0)
		err = -errno;
	if (err) {
		close(f);
		return err;
	}
	*fd = f;
	return 0;
}

int cache_asset_stat(const struct cache *c, const char *server, const char *bundle,
		     const char *file, struct stat *st)
{
	int dfd, err;

	err = cache_asset_dir(c, server, bundle, file, 0, &dfd);
	if (err)
		return err;
	if (fstatat(dfd, file, st, AT_SYMLINK_NOFOLLOW) < 0)
		err = -errno;
	close(dfd);
	return err;
}

int cache_asset_evict(const struct cache *c, const char *server, const char *bundle,
		      const char *file, int64_t *freed, int (*before)(void *arg), void *arg)
{
	struct stat st, now;
	int dfd, f, err;

	err = cache_asset_dir(c, server, bundle, file, 0, &dfd);
	if (err)
		return err;
	f = openat(dfd, file, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (f < 0) {
		err = -errno;
		close(dfd);
		return err;
	}
	err = lock_file(f, LOCK_EX | LOCK_NB);
	if (err == -EWOULDBLOCK)
		err = -EBUSY;
	if (!err && fstat(f, &st) < 0)
		err = -errno;
	if (!err && !S_ISREG(st.st_mode))
		err = -EINVAL;
	/* A new download may have been renamed over the name since the open:
	 * that file is not the one locked, leave it. */
	if (!err && fstatat(dfd, file, &now, AT_SYMLINK_NOFOLLOW) < 0)
		err = -errno;
	if (!err && (now.st_ino != st.st_ino || now.st_dev != st.st_dev))
		err = -EBUSY;
	if (!err && before)
		err = before(arg);
	if (!err && unlinkat(dfd, file, 0) < 0)
		err = -errno;
	if (!err && freed)
		*freed = st.st_nlink > 1 ? 0 : (int64_t)st.st_size;
	close(f);
	close(dfd);
	return err;
}

int cache_asset_remove(const struct cache *c, const char *server, const char *bundle,
		       const char *file)
{
	int dfd, err;

	err = cache_asset_dir(c, server, bundle, file, 0, &dfd);
	if (err)
		return err == -ENOENT ? 0 : err;
	err = cache_remove_any(dfd, file);
	close(dfd);
	return err;
}

int cache_sha256_hex(EVP_MD_CTX *md, char hex[CACHE_SHA256_HEX])
{
	static const char digits[] = "0123456789abcdef";
	unsigned char sum[EVP_MAX_MD_SIZE];
	unsigned int n;

	if (EVP_DigestFinal_ex(md, sum, &n) != 1 || n != 32)
		return -EIO;
	for (unsigned int i = 0; i < n; i++) {
		hex[2 * i] = digits[sum[i] >> 4];
		hex[2 * i + 1] = digits[sum[i] & 15];
	}
	hex[2 * n] = '\0';
	return 0;
}

int cache_asset_sha256(const struct cache *c, const char *server, const char *bundle,
		       const char *file, char hex[CACHE_SHA256_HEX], int64_t *size)
{
	char buf[65536];
	EVP_MD_CTX *md;
	int64_t total = 0;
	int fd, err;

	err = cache_asset_open(c, server, bundle, file, -1, 0, &fd);
	if (err)
		return err;
	md = EVP_MD_CTX_new();
	if (!md)
		err = -ENOMEM;
	else if (EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
		err = -EIO;
	while (!err) {
		ssize_t k = read(fd, buf, sizeof(buf));
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			err = k < 0 ? -errno : cache_sha256_hex(md, hex);
			break;
		}
		if (EVP_DigestUpdate(md, buf, (size_t)k) != 1)
			err = -EIO;
		total += k;
	}
	EVP_MD_CTX_free(md);
	close(fd);
	if (!err && size)
		*size = total;
	return err;
}

int cache_tmp_name(char name[CACHE_TMP_NAME_MAX])
{
	unsigned char rnd[8];
	ssize_t n;

	do
		n = getrandom(rnd, sizeof(rnd), 0);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if (n != (ssize_t)sizeof(rnd))
		return -EIO;
	snprintf(name, CACHE_TMP_NAME_MAX, CACHE_TEMP_PREFIX "%02x%02x%02x%02x%02x%02x%02x%02x",
		 rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
	return 0;
}

int cache_tmp_create(int dfd, char name[CACHE_TMP_NAME_MAX], int *fd)
{
	int err = cache_tmp_name(name);

	if (!err) {
		/* 64 random bits: a clash means something else owns the name. */
		*fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
		if (*fd < 0)
			err = -errno;
	}
	if (err)
		name[0] = '\0';
	return err;
}

int cache_write_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;

	while (n > 0) {
		ssize_t k = write(fd, p, n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -errno;
		if (k == 0)
			return -EIO;
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

int cache_fs_space(const struct cache *c, uint64_t *total, uint64_t *avail)
{
	struct statvfs sv;

	if (fstatvfs(c->fd, &sv) < 0)
		return -errno;
	*total = (uint64_t)sv.f_blocks * sv.f_frsize;
	*avail = (uint64_t)sv.f_bavail * sv.f_frsize;
	return 0;
}

int cache_parse_link_mode(const char *s, enum cache_link_mode *out)
{
	static const char *const names[] = { "auto", "hardlink", "copy" };

	for (int i = 0; i < 3; i++) {
		if (s && strcmp(s, names[i]) == 0) {
			*out = (enum cache_link_mode)i;
			return 0;
		}
	}
	return -EINVAL;
}
