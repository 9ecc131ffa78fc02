/*
 * fs: the FUSE low-level operations that present the catalogue as a
 * read-only tree, and the session around them. No HTTP or SQL here: names
 * and sizes come from index/, bytes from cache/ through fetch/'s library.
 *
 *   /characters/<display name>/<live2d_name>/...   (DESIGN §1, §4)
 *   /costumes/<live2d_name>/...
 *   <costume>/model.json name.txt icon.png <x>.moc <x>.physics.json
 *             textures/ motions/ expressions/
 *
 * Inode numbers are derived from index row ids (stable across mounts, never
 * given to another object): the top bits say what a node is, the low bits
 * which row. A running mount follows catalogue changes made by any process
 * on the cache (notify.c).
 */
#ifndef L2DFS_FS_H
#define L2DFS_FS_H

#include <stdint.h>

#include "../cache/cache.h"
#include "../fetch/library/library.h"
#include "../index/index.h"

struct fs_config {
	const char *server;
	int lang;
	int prefetch;          /* queue a costume's files when one of them is opened */
	double cache_timeout_s;/* entry/attribute/negative timeouts for immutable nodes */
	int max_threads;       /* FUSE worker threads */
	int debug;             /* libfuse's -d */
	int64_t catalogue_ttl_s;/* the catalogue is fetched again after this */
	const char *fsname;     /* the source mountinfo shows */
	const char *subtype;    /* the type is fuse.<subtype> */
	const char *fuse_flags; /* more libfuse mount options ("allow_other,auto_unmount"), or "" */
};

struct fs;

/*
 * Create the session and mount it. Errors: -ENODEV when /dev/fuse cannot be
 * used (*why says how), -EIO for other mount failures.
 */
int fs_mount(struct fs **out, const struct fs_config *cfg, const char *mountpoint,
	     char *why, size_t whylen);

/* Detach from the terminal unless foreground (call before any thread starts). */
int fs_daemonize(struct fs *fs, int foreground);

/* Serve requests until unmounted or signalled (SIGINT, SIGTERM, SIGHUP,
 * heard from fs_mount() on; after fs_destroy() they are ignored, so that a
 * burst of them is one unmount).
 * When the session ends, the library and the engine are stopped so that
 * readers waiting on the network return at once. engine, lib, idx and
 * cache must outlive the call. Returns 0 or a negative errno. */
int fs_serve(struct fs *fs, struct http_engine *engine, struct fetch_library *lib,
	     struct idx *idx, struct cache *cache);

/* Unmount (if still mounted) and free. */
void fs_destroy(struct fs *fs);

#endif
