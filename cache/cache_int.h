/*
 * Private to cache/: the state and helpers its .c files share.
 */
#ifndef L2DFS_CACHE_INT_H
#define L2DFS_CACHE_INT_H

#include "cache.h"

#include <openssl/evp.h>
#include <sys/types.h>

/* Immutable after cache_open(), hence safe to share between threads. */
struct cache {
	char *root; /* absolute path, no trailing '/' */
	int fd;     /* the root, O_DIRECTORY */
};

/* ".tmp." + 16 hex digits + NUL, rounded up. */
#define CACHE_TMP_NAME_MAX 32

/* mkdir -p: create every missing folder of path with mode. */
int cache_mkdirs(const char *path, mode_t mode);

/* Open live2d/assets[/<server>[/<bundle>]] below the root, one component at
 * a time with O_NOFOLLOW; create missing folders (0700) if create. server
 * and bundle may be NULL (bundle needs server); both are vetted here. */
int cache_dir(const struct cache *c, const char *server, const char *bundle, int create,
	      int *dfd);

/* cache_dir() for an asset's folder, also vetting the file name. */
int cache_asset_dir(const struct cache *c, const char *server, const char *bundle,
		    const char *file, int create, int *dfd);

/* Fill name with a fresh random CACHE_TEMP_PREFIX name. */
int cache_tmp_name(char name[CACHE_TMP_NAME_MAX]);

/* Create a new temporary (mode 0644, write-only) in folder dfd. name gets
 * its name, and stays "" on failure. */
int cache_tmp_create(int dfd, char name[CACHE_TMP_NAME_MAX], int *fd);

/* Remove name below dfd whatever it is, a folder with all it holds, never
 * following a symlink. Missing is not an error. */
int cache_remove_any(int dfd, const char *name);

/* write() all n bytes, through short writes and EINTR. */
int cache_write_all(int fd, const void *buf, size_t n);

/* Finish a SHA-256 digest into 64 lowercase hex digits. */
int cache_sha256_hex(EVP_MD_CTX *md, char hex[CACHE_SHA256_HEX]);

#endif
