/*
 * Unit tests of cache/: layout, name rules, atomic writes, symlink safety,
 * walks and materialization.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../cache/cache.h"

#define ABC_SHA256 "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

/* One scratch folder per test; the cache lives in <tmp>/root. */
struct fixture {
	char tmp[64];
	char root[80];
	struct cache *c;
	int tmpfd; /* tmp, open: where materialized files go */
	int fds; /* open descriptors before the test: none may leak */
};

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void rm_rf(const char *path)
{
	nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static int count_fds(void)
{
	struct dirent *e;
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)))
		n++;
	closedir(d);
	return n;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	strcpy(f->tmp, "/tmp/l2dfs-test-cache.XXXXXX");
	assert_non_null(mkdtemp(f->tmp));
	snprintf(f->root, sizeof(f->root), "%s/root", f->tmp);
	assert_int_equal(cache_open(&f->c, f->root), 0);
	f->tmpfd = open(f->tmp, O_RDONLY | O_DIRECTORY);
	assert_true(f->tmpfd >= 0);
	f->fds = count_fds();
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(count_fds(), f->fds);
	close(f->tmpfd);
	cache_close(f->c);
	rm_rf(f->tmp);
	free(f);
	return 0;
}

/* "<tmp>/<rel>" */
static const char *at(const struct fixture *f, const char *rel)
{
	static char buf[PATH_MAX];

	snprintf(buf, sizeof(buf), "%s/%s", f->tmp, rel);
	return buf;
}

/* prepare, publish and finish: a writer no one else commits. */
static int writer_commit(struct cache_writer *w, char hex[CACHE_SHA256_HEX], int64_t *size,
			 int64_t *stamp)
{
	int err = cache_writer_prepare(w, hex, size, stamp);

	if (!err)
		err = cache_writer_publish(w);
	if (err) {
		cache_writer_abort(w);
		return err;
	}
	return cache_writer_finish(w);
}

static void put_asset(struct cache *c, const char *server, const char *bundle,
		      const char *file, const char *data)
{
	struct cache_writer *w;

	assert_int_equal(cache_writer_begin(c, server, bundle, file, &w), 0);
	assert_int_equal(cache_writer_write(w, data, strlen(data)), 0);
	assert_int_equal(writer_commit(w, NULL, NULL, NULL), 0);
}

/* The whole content of path (small files), or "" if unreadable. */
static const char *slurp(const char *path)
{
	static char buf[4096];
	int fd = open(path, O_RDONLY | O_NOFOLLOW);
	ssize_t n = fd < 0 ? 0 : read(fd, buf, sizeof(buf) - 1);

	if (fd >= 0)
		close(fd);
	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

static int count_entries(const char *dir)
{
	char cmd[PATH_MAX + 64];
	FILE *p;
	int n = -1;

	snprintf(cmd, sizeof(cmd), "ls -A '%s' | wc -l", dir);
	p = popen(cmd, "r");
	assert_non_null(p);
	assert_int_equal(fscanf(p, "%d", &n), 1);
	pclose(p);
	return n;
}

static void spit(const char *path, const char *data)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, strlen(data)), (ssize_t)strlen(data));
	close(fd);
}

static void test_open_creates_root(void **state)
{
	struct fixture *f = *state;
	struct cache *c;
	struct stat st;
	char cwd[PATH_MAX], want[PATH_MAX];

	assert_int_equal(stat(f->root, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0700);
	assert_string_equal(cache_root(f->c), f->root);

	/* Missing parents, a trailing slash, then the same root again. */
	assert_int_equal(cache_open(&c, at(f, "a/b/c/")), 0);
	snprintf(want, sizeof(want), "%s/a/b/c", f->tmp);
	assert_string_equal(cache_root(c), want);
	cache_close(c);
	assert_int_equal(stat(at(f, "a/b"), &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
	assert_int_equal(cache_open(&c, at(f, "a/b/c")), 0);
	cache_close(c);

	/* A relative root is made absolute. */
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(chdir(f->tmp), 0);
	assert_int_equal(cache_open(&c, "rel"), 0);
	assert_int_equal(chdir(cwd), 0);
	snprintf(want, sizeof(want), "%s/rel", f->tmp);
	assert_string_equal(cache_root(c), want);
	cache_close(c);
}

static void test_open_fails(void **state)
{
	struct fixture *f = *state;
	struct cache *c = NULL;
	char path[PATH_MAX];

	spit(at(f, "file"), "x");
	snprintf(path, sizeof(path), "%s/file/cache", f->tmp);
	assert_int_equal(cache_open(&c, path), -ENOTDIR);
	assert_int_equal(cache_open(&c, at(f, "file")), -ENOTDIR);
	assert_int_equal(cache_open(&c, ""), -EINVAL);
	assert_int_equal(cache_open(&c, NULL), -EINVAL);
	assert_null(c);
}

static void test_name_rules(void **state)
{
	char longest[257];

	(void)state;
	assert_true(cache_name_is_safe("model.moc"));
	assert_true(cache_name_is_safe("テクスチャ_00.png"));
	assert_true(cache_name_is_safe(".hidden"));
	assert_true(cache_name_is_safe("..."));
	assert_false(cache_name_is_safe(NULL));
	assert_false(cache_name_is_safe(""));
	assert_false(cache_name_is_safe("."));
	assert_false(cache_name_is_safe(".."));
	assert_false(cache_name_is_safe("a/b"));
	assert_false(cache_name_is_safe("/a"));
	assert_false(cache_name_is_safe("a\\b"));
	assert_false(cache_name_is_safe("a\nb"));
	assert_false(cache_name_is_safe("a\x1f"));
	assert_false(cache_name_is_safe("a\x7f"));
	assert_false(cache_name_is_safe(".tmp.0123"));
	assert_false(cache_name_is_safe(".tmp."));
	assert_true(cache_name_is_safe(".tmp"));
	memset(longest, 'a', 255);
	longest[255] = '\0';
	assert_true(cache_name_is_safe(longest));
	longest[255] = 'a';
	longest[256] = '\0';
	assert_false(cache_name_is_safe(longest));
}

static void test_bundle_rules(void **state)
{
	(void)state;
	assert_true(cache_bundle_is_safe("live2d/chara/001_general"));
	assert_true(cache_bundle_is_safe("one"));
	assert_false(cache_bundle_is_safe(NULL));
	assert_false(cache_bundle_is_safe(""));
	assert_false(cache_bundle_is_safe("/a"));
	assert_false(cache_bundle_is_safe("a/"));
	assert_false(cache_bundle_is_safe("a//b"));
	assert_false(cache_bundle_is_safe("a/../b"));
	assert_false(cache_bundle_is_safe("a/./b"));
	assert_false(cache_bundle_is_safe("a/.tmp.x"));
	assert_false(cache_bundle_is_safe("a\\b"));
	assert_false(cache_bundle_is_safe("a/b\x01"));
}

static void test_asset_path(void **state)
{
	struct fixture *f = *state;
	char buf[PATH_MAX], want[PATH_MAX];

	assert_int_equal(cache_asset_path(f->c, "jp", "live2d/chara/001", "a.moc", buf,
					  sizeof(buf)), 0);
	snprintf(want, sizeof(want), "%s/live2d/assets/jp/live2d/chara/001/a.moc", f->root);
	assert_string_equal(buf, want);
	assert_int_equal(cache_asset_path(f->c, "jp", "a/../b", "a", buf, sizeof(buf)), -EINVAL);
	assert_int_equal(cache_asset_path(f->c, "..", "a", "a", buf, sizeof(buf)), -EINVAL);
	assert_int_equal(cache_asset_path(f->c, "jp", "a", "x/y", buf, sizeof(buf)), -EINVAL);
	assert_int_equal(cache_asset_path(f->c, "jp", "a", "b", buf, 10), -ENAMETOOLONG);
}

static void test_writer_commit(void **state)
{
	struct fixture *f = *state;
	struct cache_writer *w;
	char hex[CACHE_SHA256_HEX], path[PATH_MAX], dir[PATH_MAX];
	struct stat st;
	int64_t size = -1;

	assert_int_equal(cache_writer_begin(f->c, "jp", "live2d/chara/001", "a.moc", &w), 0);
	assert_int_equal(cache_writer_write(w, "a", 1), 0);
	assert_int_equal(cache_writer_write(w, "bc", 2), 0);
	assert_int_equal(cache_writer_write(w, "", 0), 0);
	assert_int_equal(cache_writer_size(w), 3);
	/* Nothing under the final name before commit. */
	assert_int_equal(cache_asset_stat(f->c, "jp", "live2d/chara/001", "a.moc", &st),
			 -ENOENT);
	assert_int_equal(writer_commit(w, hex, &size, NULL), 0);
	assert_string_equal(hex, ABC_SHA256);
	assert_int_equal(size, 3);

	assert_int_equal(cache_asset_path(f->c, "jp", "live2d/chara/001", "a.moc", path,
					  sizeof(path)), 0);
	assert_string_equal(slurp(path), "abc");
	snprintf(dir, sizeof(dir), "%s/live2d/assets/jp/live2d/chara/001", f->root);
	assert_int_equal(count_entries(dir), 1);
	assert_int_equal(stat(dir, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);

	memset(hex, 0, sizeof(hex));
	assert_int_equal(cache_asset_sha256(f->c, "jp", "live2d/chara/001", "a.moc", hex,
					    &size), 0);
	assert_string_equal(hex, ABC_SHA256);
	assert_int_equal(size, 3);
	assert_int_equal(cache_asset_stat(f->c, "jp", "live2d/chara/001", "a.moc", &st), 0);
	assert_int_equal(st.st_size, 3);

	/* A second commit replaces the first. */
	put_asset(f->c, "jp", "live2d/chara/001", "a.moc", "xyz");
	assert_string_equal(slurp(path), "xyz");
	assert_int_equal(count_entries(dir), 1);
}

static void test_writer_reset(void **state)
{
	struct fixture *f = *state;
	struct cache_writer *w;
	char hex[CACHE_SHA256_HEX], path[PATH_MAX];
	int64_t size;

	assert_int_equal(cache_writer_begin(f->c, "jp", "b", "f", &w), 0);
	assert_int_equal(cache_writer_write(w, "garbage that is long", 20), 0);
	assert_int_equal(cache_writer_reset(w), 0);
	assert_int_equal(cache_writer_size(w), 0);
	assert_int_equal(cache_writer_write(w, "abc", 3), 0);
	assert_int_equal(writer_commit(w, hex, &size, NULL), 0);
	assert_string_equal(hex, ABC_SHA256);
	assert_int_equal(size, 3);
	assert_int_equal(cache_asset_path(f->c, "jp", "b", "f", path, sizeof(path)), 0);
	assert_string_equal(slurp(path), "abc");
}

static void test_writer_abort_and_temps(void **state)
{
	struct fixture *f = *state;
	struct cache_writer *w;
	char dir[128], path[PATH_MAX];
	int fd, removed = -1;

	assert_int_equal(cache_writer_begin(f->c, "jp", "b", "f", &w), 0);
	assert_int_equal(cache_writer_write(w, "abc", 3), 0);
	cache_writer_abort(w);
	snprintf(dir, sizeof(dir), "%s/live2d/assets/jp/b", f->root);
	assert_int_equal(count_entries(dir), 0);
	assert_int_equal(cache_asset_open(f->c, "jp", "b", "f", -1, 0, &fd), -ENOENT);

	/* What a crash leaves behind. */
	put_asset(f->c, "jp", "b", "keep", "abc");
	put_asset(f->c, "en", "x/y", "keep", "abc");
	snprintf(path, sizeof(path), "%s/.tmp.0123456789abcdef", dir);
	spit(path, "half");
	snprintf(path, sizeof(path), "%s/live2d/assets/en/x/y/.tmp.dead", f->root);
	spit(path, "half");
	assert_int_equal(cache_clean_temps(f->c, &removed), 0);
	assert_int_equal(removed, 2);
	assert_int_equal(count_entries(dir), 1);
	assert_int_equal(cache_asset_open(f->c, "jp", "b", "keep", 3, 0, &fd), 0);
	close(fd);
	assert_int_equal(cache_asset_open(f->c, "en", "x/y", "keep", 3, 0, &fd), 0);
	close(fd);
	assert_int_equal(cache_clean_temps(f->c, NULL), 0);
}

static void test_clean_temps_empty(void **state)
{
	struct fixture *f = *state;
	int removed = -1;

	assert_int_equal(cache_clean_temps(f->c, &removed), 0);
	assert_int_equal(removed, 0);
}

static void test_asset_open_size(void **state)
{
	struct fixture *f = *state;
	char buf[8];
	int fd = -1;

	put_asset(f->c, "jp", "b", "f", "abc");
	assert_int_equal(cache_asset_open(f->c, "jp", "b", "f", 3, 0, &fd), 0);
	assert_int_equal(read(fd, buf, sizeof(buf)), 3);
	assert_int_equal(fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
	close(fd);
	assert_int_equal(cache_asset_open(f->c, "jp", "b", "f", -1, 0, &fd), 0);
	close(fd);
	fd = -1;
	assert_int_equal(cache_asset_open(f->c, "jp", "b", "f", 4, 0, &fd), -ESTALE);
	assert_int_equal(cache_asset_open(f->c, "jp", "b", "f", 2, 0, &fd), -ESTALE);
	assert_int_equal(fd, -1);
	assert_int_equal(cache_asset_open(f->c, "jp", "b", "g", -1, 0, &fd), -ENOENT);
	assert_int_equal(cache_asset_open(f->c, "jp", "nob", "f", -1, 0, &fd), -ENOENT);
	assert_int_equal(cache_asset_open(f->c, "jp", "..", "f", -1, 0, &fd), -EINVAL);
	assert_int_equal(cache_asset_open(f->c, "jp", "b", "..", -1, 0, &fd), -EINVAL);
	/* A folder where a file should be. */
	put_asset(f->c, "jp", "b/sub", "f", "abc");
	assert_int_equal(cache_asset_open(f->c, "jp", "b", "sub", -1, 0, &fd), -EISDIR);
}

static void test_asset_remove(void **state)
{
	struct fixture *f = *state;
	struct stat st;

	put_asset(f->c, "jp", "b", "f", "abc");
	assert_int_equal(cache_asset_remove(f->c, "jp", "b", "f"), 0);
	assert_int_equal(cache_asset_stat(f->c, "jp", "b", "f", &st), -ENOENT);
	assert_int_equal(cache_asset_remove(f->c, "jp", "b", "f"), 0);
	assert_int_equal(cache_asset_remove(f->c, "jp", "none/at/all", "f"), 0);
	assert_int_equal(cache_asset_remove(f->c, "jp", "b", "a/b"), -EINVAL);
}

static int is_refusal(int err)
{
	return err == -ELOOP || err == -ENOTDIR;
}

static void test_symlink_folder_not_followed(void **state)
{
	struct fixture *f = *state;
	struct cache_writer *w = NULL;
	struct stat st;
	char link[PATH_MAX];
	int fd;

	assert_int_equal(mkdir(at(f, "outside"), 0755), 0);
	spit(at(f, "outside/f"), "secret");
	put_asset(f->c, "jp", "real", "x", "abc");
	snprintf(link, sizeof(link), "%s/live2d/assets/jp/evil", f->root);
	assert_int_equal(symlink(at(f, "outside"), link), 0);

	assert_true(is_refusal(cache_asset_open(f->c, "jp", "evil", "f", -1, 0, &fd)));
	assert_true(is_refusal(cache_asset_stat(f->c, "jp", "evil", "f", &st)));
	assert_true(is_refusal(cache_writer_begin(f->c, "jp", "evil", "f", &w)));
	assert_null(w);
	assert_true(is_refusal(cache_writer_begin(f->c, "jp", "evil/deeper", "f", &w)));
	assert_true(is_refusal(cache_asset_remove(f->c, "jp", "evil", "f")));
	assert_true(is_refusal(cache_materialize(f->c, "jp", "evil", "f", -1, 0, f->tmpfd, "out/f",
						 CACHE_LINK_AUTO, 0, NULL)));

	/* The same for the server folder. */
	snprintf(link, sizeof(link), "%s/live2d/assets/cn", f->root);
	assert_int_equal(symlink(at(f, "outside"), link), 0);
	assert_true(is_refusal(cache_writer_begin(f->c, "cn", "b", "f", &w)));

	assert_int_equal(count_entries(at(f, "outside")), 1);
	assert_string_equal(slurp(at(f, "outside/f")), "secret");
}

/* The same refusals where openat2 is missing: the folder walk. */
static void test_symlink_folder_not_followed_walking(void **state)
{
	assert_int_equal(setenv("L2DFS_TEST_NO_OPENAT2", "1", 1), 0);
	test_symlink_folder_not_followed(state);
	unsetenv("L2DFS_TEST_NO_OPENAT2");
}

static void test_symlink_file_not_followed(void **state)
{
	struct fixture *f = *state;
	char link[PATH_MAX], hex[CACHE_SHA256_HEX];
	enum cache_outcome out;
	struct stat st;
	int fd;

	spit(at(f, "secret"), "secret");
	put_asset(f->c, "jp", "b", "x", "abc");
	snprintf(link, sizeof(link), "%s/live2d/assets/jp/b/f", f->root);
	assert_int_equal(symlink(at(f, "secret"), link), 0);

	assert_int_equal(cache_asset_open(f->c, "jp", "b", "f", -1, 0, &fd), -ELOOP);
	assert_int_equal(cache_asset_sha256(f->c, "jp", "b", "f", hex, NULL), -ELOOP);
	assert_int_equal(cache_asset_stat(f->c, "jp", "b", "f", &st), 0);
	assert_true(S_ISLNK(st.st_mode));
	assert_int_equal(cache_materialize(f->c, "jp", "b", "f", -1, 0, f->tmpfd, "out/f",
					   CACHE_LINK_AUTO, 0, &out), -EINVAL);

	/* A commit replaces the link itself, never writes through it. */
	put_asset(f->c, "jp", "b", "f", "abc");
	assert_int_equal(lstat(link, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_string_equal(slurp(at(f, "secret")), "secret");

	/* And a removal removes the link, not its target. */
	assert_int_equal(unlink(link), 0);
	assert_int_equal(symlink(at(f, "secret"), link), 0);
	assert_int_equal(cache_asset_remove(f->c, "jp", "b", "f"), 0);
	assert_int_equal(lstat(link, &st), -1);
	assert_string_equal(slurp(at(f, "secret")), "secret");
}

static void test_symlink_file_not_followed_walking(void **state)
{
	assert_int_equal(setenv("L2DFS_TEST_NO_OPENAT2", "1", 1), 0);
	test_symlink_file_not_followed(state);
	unsetenv("L2DFS_TEST_NO_OPENAT2");
}

/* Put jp/b/f at <tmp>/<rel>; stat the cached file and the result. */
static enum cache_outcome materialize(struct fixture *f, const char *rel,
				      enum cache_link_mode mode, int overwrite, struct stat *src,
				      struct stat *dst)
{
	enum cache_outcome out = -1;

	assert_int_equal(cache_materialize(f->c, "jp", "b", "f", -1, 0, f->tmpfd, rel, mode, overwrite,
					   &out), 0);
	assert_int_equal(cache_asset_stat(f->c, "jp", "b", "f", src), 0);
	assert_int_equal(stat(at(f, rel), dst), 0);
	return out;
}

static void test_materialize_link(void **state)
{
	struct fixture *f = *state;
	struct stat a, b;

	put_asset(f->c, "jp", "b", "f", "abc");
	assert_int_equal(materialize(f, "out/x/y/f.moc", CACHE_LINK_AUTO, 0, &a, &b),
			 CACHE_LINKED);
	assert_int_equal(a.st_ino, b.st_ino);
	assert_int_equal(a.st_dev, b.st_dev);
	assert_int_equal(b.st_nlink, 2);
	assert_int_equal(stat(at(f, "out/x"), &b), 0);
	assert_int_equal(b.st_mode & 0700, 0700);

	/* Again: kept; again with overwrite: same file, no temporary left. */
	assert_int_equal(materialize(f, "out/x/y/f.moc", CACHE_LINK_HARDLINK, 0, &a, &b),
			 CACHE_SKIPPED);
	assert_int_equal(materialize(f, "out/x/y/f.moc", CACHE_LINK_HARDLINK, 1, &a, &b),
			 CACHE_LINKED);
	assert_int_equal(a.st_ino, b.st_ino);
	assert_int_equal(a.st_nlink, 2);
	assert_int_equal(count_entries(at(f, "out/x/y")), 1);
}

static void test_materialize_copy(void **state)
{
	struct fixture *f = *state;
	struct stat a, b;

	put_asset(f->c, "jp", "b", "f", "abc");
	assert_int_equal(materialize(f, "out/f", CACHE_LINK_COPY, 0, &a, &b), CACHE_COPIED);
	assert_int_not_equal(a.st_ino, b.st_ino);
	assert_int_equal(a.st_nlink, 1);
	assert_string_equal(slurp(at(f, "out/f")), "abc");
	assert_int_equal(count_entries(at(f, "out")), 1);
}

static void test_materialize_existing(void **state)
{
	struct fixture *f = *state;
	enum cache_outcome out = -1;
	struct stat a, b;

	put_asset(f->c, "jp", "b", "f", "abc");
	assert_int_equal(mkdir(at(f, "out"), 0755), 0);
	spit(at(f, "out/f"), "old");
	for (int mode = CACHE_LINK_AUTO; mode <= CACHE_LINK_COPY; mode++) {
		assert_int_equal(materialize(f, "out/f", (enum cache_link_mode)mode, 0, &a, &b),
				 CACHE_SKIPPED);
		assert_string_equal(slurp(at(f, "out/f")), "old");
	}
	assert_int_equal(materialize(f, "out/f", CACHE_LINK_COPY, 1, &a, &b), CACHE_COPIED);
	assert_string_equal(slurp(at(f, "out/f")), "abc");
	spit(at(f, "out/f"), "old");
	assert_int_equal(materialize(f, "out/f", CACHE_LINK_AUTO, 1, &a, &b), CACHE_LINKED);
	assert_string_equal(slurp(at(f, "out/f")), "abc");
	assert_int_equal(count_entries(at(f, "out")), 1);

	/* A missing asset, a bad destination. */
	assert_int_equal(cache_materialize(f->c, "jp", "b", "g", -1, 0, f->tmpfd, "out/g", CACHE_LINK_AUTO,
					   0, &out), -ENOENT);
	assert_int_equal(cache_materialize(f->c, "jp", "b", "f", -1, 0, f->tmpfd, "out/", CACHE_LINK_AUTO,
					   0, &out), -EINVAL);
	assert_int_equal(cache_materialize(f->c, "jp", "b", "f", -1, 0, f->tmpfd, "out/f/g",
					   CACHE_LINK_AUTO, 0, &out), -ENOTDIR);
}

static void test_materialize_cross_fs(void **state)
{
	struct fixture *f = *state;
	char dir[64], dest[PATH_MAX];
	enum cache_outcome out = -1;
	struct stat a, b;

	if (stat("/dev/shm", &b) < 0)
		skip();
	assert_int_equal(stat(f->tmp, &a), 0);
	put_asset(f->c, "jp", "b", "f", "abc");
	snprintf(dir, sizeof(dir), "/dev/shm/l2dfs-test-cache.%d", (int)getpid());
	snprintf(dest, sizeof(dest), "%s/sub/f", dir);
	assert_int_equal(mkdir(dir, 0755), 0);
	int dfd = open(dir, O_RDONLY | O_DIRECTORY);
	assert_true(dfd >= 0);
	if (a.st_dev != b.st_dev)
		assert_int_equal(cache_materialize(f->c, "jp", "b", "f", -1, 0, dfd, "sub/f",
						   CACHE_LINK_HARDLINK, 0, &out), -EXDEV);
	assert_int_equal(cache_materialize(f->c, "jp", "b", "f", -1, 0, dfd, "sub/f",
					   CACHE_LINK_AUTO, 0, &out), 0);
	close(dfd);
	assert_int_equal(out, a.st_dev != b.st_dev ? CACHE_COPIED : CACHE_LINKED);
	assert_string_equal(slurp(dest), "abc");
	rm_rf(dir);
}

struct seen {
	char items[8][PATH_MAX + NAME_MAX + 2];
	int n;
	int stop_after;
};

static int collect(void *arg, const char *bundle, const char *file, const struct stat *st)
{
	struct seen *s = arg;

	assert_true(S_ISREG(st->st_mode));
	assert_true(s->n < 8);
	snprintf(s->items[s->n++], sizeof(s->items[0]), "%s|%s", bundle, file);
	return s->n == s->stop_after ? 42 : 0;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(a, b);
}

static void test_walk(void **state)
{
	struct fixture *f = *state;
	struct seen s = { .n = 0 };
	char path[PATH_MAX];

	put_asset(f->c, "jp", "live2d/chara/001_general", "a.mtn", "abc");
	put_asset(f->c, "jp", "b", "c.png", "abcd");
	put_asset(f->c, "en", "b", "other", "abc");
	assert_int_equal(mkdir(at(f, "outside"), 0755), 0);
	spit(at(f, "outside/trap"), "x");
	snprintf(path, sizeof(path), "%s/live2d/assets/jp/b/.tmp.abc", f->root);
	spit(path, "half");
	snprintf(path, sizeof(path), "%s/live2d/assets/jp/b/link", f->root);
	assert_int_equal(symlink(at(f, "outside/trap"), path), 0);
	snprintf(path, sizeof(path), "%s/live2d/assets/jp/dirlink", f->root);
	assert_int_equal(symlink(at(f, "outside"), path), 0);
	snprintf(path, sizeof(path), "%s/live2d/assets/jp/toplevel", f->root);
	spit(path, "not in a bundle");

	assert_int_equal(cache_walk(f->c, "jp", collect, &s), 0);
	assert_int_equal(s.n, 2);
	qsort(s.items, (size_t)s.n, sizeof(s.items[0]), by_name);
	assert_string_equal(s.items[0], "b|c.png");
	assert_string_equal(s.items[1], "live2d/chara/001_general|a.mtn");

	s.n = 0;
	s.stop_after = 1;
	assert_int_equal(cache_walk(f->c, "jp", collect, &s), 42);
	assert_int_equal(s.n, 1);

	s.n = 0;
	assert_int_equal(cache_walk(f->c, "kr", collect, &s), 0);
	assert_int_equal(s.n, 0);
	assert_int_equal(cache_walk(f->c, "..", collect, &s), -EINVAL);
	assert_int_equal(cache_walk(f->c, NULL, collect, &s), -EINVAL);
}

static void test_write_file_atomic(void **state)
{
	struct fixture *f = *state;
	int skipped = -1;

	assert_int_equal(cache_write_file_atomic(f->tmpfd, "p/q/model.json", "{}", 2, 0, &skipped),
			 0);
	assert_int_equal(skipped, 0);
	assert_string_equal(slurp(at(f, "p/q/model.json")), "{}");
	assert_int_equal(cache_write_file_atomic(f->tmpfd, "p/q/model.json", "new", 3, 0, &skipped),
			 0);
	assert_int_equal(skipped, 1);
	assert_string_equal(slurp(at(f, "p/q/model.json")), "{}");
	assert_int_equal(cache_write_file_atomic(f->tmpfd, "p/q/model.json", "new", 3, 1, &skipped),
			 0);
	assert_int_equal(skipped, 0);
	assert_string_equal(slurp(at(f, "p/q/model.json")), "new");
	assert_int_equal(cache_write_file_atomic(f->tmpfd, "p/q/empty", "", 0, 0, NULL), 0);
	assert_string_equal(slurp(at(f, "p/q/empty")), "");
	assert_int_equal(count_entries(at(f, "p/q")), 2);
}

static void test_parse_and_space(void **state)
{
	struct fixture *f = *state;
	enum cache_link_mode m;
	uint64_t total = 0, avail = UINT64_MAX;

	assert_int_equal(cache_parse_link_mode("auto", &m), 0);
	assert_int_equal(m, CACHE_LINK_AUTO);
	assert_int_equal(cache_parse_link_mode("hardlink", &m), 0);
	assert_int_equal(m, CACHE_LINK_HARDLINK);
	assert_int_equal(cache_parse_link_mode("copy", &m), 0);
	assert_int_equal(m, CACHE_LINK_COPY);
	assert_int_equal(cache_parse_link_mode("Copy", &m), -EINVAL);
	assert_int_equal(cache_parse_link_mode("", &m), -EINVAL);

	assert_int_equal(cache_fs_space(f->c, &total, &avail), 0);
	assert_true(total > 0);
	assert_true(avail <= total);
}

struct writer_job {
	struct cache *c;
	int id;
};

static void *write_many(void *arg)
{
	struct writer_job *j = arg;
	char name[32];

	for (int i = 0; i < 20; i++) {
		snprintf(name, sizeof(name), "f%d.%d", j->id, i);
		put_asset(j->c, "jp", "shared/bundle", name, "abc");
	}
	return NULL;
}

static int count_one(void *arg, const char *bundle, const char *file, const struct stat *st)
{
	(void)bundle;
	(void)file;
	(void)st;
	(*(int *)arg)++;
	return 0;
}

/* Writers racing to create the same folders all succeed. */
static void test_concurrent_writers(void **state)
{
	struct fixture *f = *state;
	struct writer_job jobs[8];
	pthread_t th[8];
	int n = 0;

	for (int i = 0; i < 8; i++) {
		jobs[i] = (struct writer_job){ f->c, i };
		assert_int_equal(pthread_create(&th[i], NULL, write_many, &jobs[i]), 0);
	}
	for (int i = 0; i < 8; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(cache_walk(f->c, "jp", count_one, &n), 0);
	assert_int_equal(n, 160);
}

/* A committed file is read-only, and a change in place (through another
 * hardlink) moves its stamp: opens and links that expect it are refused. */
static void test_stamp(void **state)
{
	struct fixture *f = *state;
	struct cache_writer *w;
	char path[PATH_MAX];
	int64_t size = 0, stamp = 0;
	enum cache_outcome out;
	struct stat st;
	int fd;

	assert_int_equal(cache_writer_begin(f->c, "jp", "b", "f", &w), 0);
	assert_int_equal(cache_writer_write(w, "abc", 3), 0);
	assert_int_equal(writer_commit(w, NULL, &size, &stamp), 0);
	assert_int_equal(cache_asset_stat(f->c, "jp", "b", "f", &st), 0);
	assert_int_equal(st.st_mode & 0777, 0444);
	assert_true(stamp > 0);
	assert_true(stamp == cache_stamp(&st));
	assert_int_equal(cache_asset_open(f->c, "jp", "b", "f", 3, stamp, &fd), 0);
	close(fd);
	/* A link made (or removed) changes the ctime, not the stamp. */
	assert_int_equal(cache_materialize(f->c, "jp", "b", "f", 3, stamp, f->tmpfd, "out/f",
					   CACHE_LINK_HARDLINK, 0, &out), 0);
	assert_int_equal(cache_asset_open(f->c, "jp", "b", "f", 3, stamp, &fd), 0);
	close(fd);

	/* One byte written in place through the pulled name. */
	assert_int_equal(chmod(at(f, "out/f"), 0644), 0);
	fd = open(at(f, "out/f"), O_WRONLY);
	assert_true(fd >= 0);
	struct timespec pause = { 0, 2000000 };
	nanosleep(&pause, NULL);
	assert_int_equal(pwrite(fd, "X", 1, 1), 1);
	close(fd);
	assert_int_equal(cache_asset_open(f->c, "jp", "b", "f", 3, stamp, &fd), -ESTALE);
	assert_int_equal(cache_materialize(f->c, "jp", "b", "f", 3, stamp, f->tmpfd, "out2/f",
					   CACHE_LINK_AUTO, 0, &out), -ESTALE);
	snprintf(path, sizeof(path), "%s/out2", f->tmp);
	assert_int_equal(lstat(path, &st), -1);
}

/* A symlink inside the destination is never followed: not for its
 * folders, not with overwrite, not for generated files. */
static void test_dest_symlink_refused(void **state)
{
	struct fixture *f = *state;
	enum cache_outcome out;
	struct stat st;

	put_asset(f->c, "jp", "b", "f", "abc");
	assert_int_equal(mkdir(at(f, "elsewhere"), 0755), 0);
	assert_int_equal(mkdir(at(f, "out"), 0755), 0);
	char target[PATH_MAX];
	snprintf(target, sizeof(target), "%s", at(f, "elsewhere"));
	assert_int_equal(symlink(target, at(f, "out/textures")), 0);
	for (int overwrite = 0; overwrite < 2; overwrite++) {
		int rc = cache_materialize(f->c, "jp", "b", "f", -1, 0, f->tmpfd, "out/textures/f",
					   CACHE_LINK_AUTO, overwrite, &out);
		assert_true(rc == -ELOOP || rc == -ENOTDIR);
		rc = cache_write_file_atomic(f->tmpfd, "out/textures/model.json", "{}", 2,
					     overwrite, NULL);
		assert_true(rc == -ELOOP || rc == -ENOTDIR);
		rc = cache_dest_stat(f->tmpfd, "out/textures/f", &st);
		assert_true(rc == -ELOOP || rc == -ENOTDIR);
	}
	assert_int_equal(count_entries(at(f, "elsewhere")), 0);
	assert_int_equal(cache_write_file_atomic(f->tmpfd, "../escape", "x", 1, 0, NULL), -EINVAL);
	assert_int_equal(cache_write_file_atomic(f->tmpfd, "out/../escape", "x", 1, 0, NULL),
			 -EINVAL);
}

/* A folder planted at an asset's path is removed with what it holds, and
 * a commit over it succeeds. */
static void test_folder_at_asset_path(void **state)
{
	struct fixture *f = *state;
	char path[PATH_MAX];

	put_asset(f->c, "jp", "b", "x", "abc");
	snprintf(path, sizeof(path), "%s/live2d/assets/jp/b/f", f->root);
	assert_int_equal(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/live2d/assets/jp/b/f/inner", f->root);
	spit(path, "x");
	put_asset(f->c, "jp", "b", "f", "new");
	snprintf(path, sizeof(path), "%s/live2d/assets/jp/b/f", f->root);
	assert_string_equal(slurp(path), "new");

	assert_int_equal(remove(path), 0);
	assert_int_equal(mkdir(path, 0755), 0);
	assert_int_equal(cache_asset_remove(f->c, "jp", "b", "f"), 0);
	assert_int_equal(access(path, F_OK), -1);
}

/* A writer prepared and not published (another process committed the same
 * bytes first) leaves the file at the name alone and no temporary; one
 * published replaces it with its own inode. */
static void test_writer_publish_or_drop(void **state)
{
	struct fixture *f = *state;
	struct cache_writer *w;
	char hex[CACHE_SHA256_HEX], dir[PATH_MAX];
	int64_t size = 0, stamp = 0;
	struct stat first, now;

	put_asset(f->c, "jp", "b", "f", "abc");
	assert_int_equal(cache_asset_stat(f->c, "jp", "b", "f", &first), 0);
	snprintf(dir, sizeof(dir), "%s/live2d/assets/jp/b", f->root);

	assert_int_equal(cache_writer_begin(f->c, "jp", "b", "f", &w), 0);
	assert_int_equal(cache_writer_write(w, "abc", 3), 0);
	assert_int_equal(cache_writer_prepare(w, hex, &size, &stamp), 0);
	assert_string_equal(hex, ABC_SHA256);
	assert_int_equal(size, 3);
	assert_int_equal(count_entries(dir), 2); /* the file and the temporary */
	assert_int_equal(cache_writer_finish(w), 0);
	assert_int_equal(count_entries(dir), 1);
	assert_int_equal(cache_asset_stat(f->c, "jp", "b", "f", &now), 0);
	assert_true(now.st_ino == first.st_ino);

	assert_int_equal(cache_writer_begin(f->c, "jp", "b", "f", &w), 0);
	assert_int_equal(cache_writer_write(w, "abc", 3), 0);
	assert_int_equal(cache_writer_prepare(w, NULL, NULL, &stamp), 0);
	assert_int_equal(cache_writer_publish(w), 0);
	assert_int_equal(cache_writer_finish(w), 0);
	assert_int_equal(count_entries(dir), 1);
	assert_int_equal(cache_asset_stat(f->c, "jp", "b", "f", &now), 0);
	assert_true(now.st_ino != first.st_ino);
	assert_true(cache_stamp(&now) == stamp);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_open_creates_root),
		T(test_open_fails),
		T(test_name_rules),
		T(test_bundle_rules),
		T(test_asset_path),
		T(test_writer_commit),
		T(test_writer_reset),
		T(test_writer_publish_or_drop),
		T(test_writer_abort_and_temps),
		T(test_clean_temps_empty),
		T(test_asset_open_size),
		T(test_asset_remove),
		T(test_symlink_folder_not_followed),
		T(test_symlink_file_not_followed),
		T(test_symlink_file_not_followed_walking),
		T(test_symlink_folder_not_followed_walking),
		T(test_materialize_link),
		T(test_materialize_copy),
		T(test_materialize_existing),
		T(test_materialize_cross_fs),
		T(test_walk),
		T(test_write_file_atomic),
		T(test_parse_and_space),
		T(test_concurrent_writers),
		T(test_stamp),
		T(test_dest_symlink_refused),
		T(test_folder_at_asset_path),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
