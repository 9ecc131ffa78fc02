/*
 * cache: the bytes on disk.
 *
 * Layout under the cache root (mode 0700):
 *   index.db                                  the SQLite index (owned by index/)
 *   live2d/assets/<server>/<bundle>/<file>    asset bytes, immutable once there
 * <bundle> may hold '/' ("live2d/chara/001_general"); every component of
 * server, bundle and file is checked again here (no "", ".", "..", no '\\',
 * no control bytes, at most 255 bytes) and every path is walked with openat()
 * and O_NOFOLLOW from the root's directory fd, so a symlink planted in the
 * cache can never lead outside it.
 *
 * Writes go to a temporary file ".tmp.<random>" in the final folder, are
 * fsynced and renamed into place: a reader never sees half a file, and a
 * crash leaves only temporaries, which cache_clean_temps() removes.
 *
 * Every function returns 0 or a negative errno. Nothing here logs.
 * A struct cache is safe to share between threads.
 */
#ifndef L2DFS_CACHE_H
#define L2DFS_CACHE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#define CACHE_SHA256_HEX 65 /* 64 hex digits and a NUL */
#define CACHE_TEMP_PREFIX ".tmp."

struct cache;

/* Create the root (and parents) with mode 0700 if missing, check it is a
 * writable directory, open it. -ENOTDIR, -EACCES, -EROFS... on failure. */
int cache_open(struct cache **out, const char *root);
void cache_close(struct cache *c);

/*
 * Mark the cache as used by this process until cache_close() (a shared
 * flock on the root). *alone tells whether no other process had it claimed:
 * only then may work left by a dead process (temporaries, rows marked
 * downloading) be cleaned up, since a live one may still own it.
 */
int cache_claim(struct cache *c, int *alone);

/* The absolute root path, as given to cache_open(). */
const char *cache_root(const struct cache *c);

/* 1 if one component (server, a bundle part, or a file name) is safe to use
 * as a path component, else 0. Used by fetch/ to vet names from the network. */
int cache_name_is_safe(const char *name);

/* 1 if a bundle ("a/b/c") is a non-empty sequence of safe components. */
int cache_bundle_is_safe(const char *bundle);

/* Write "<root>/live2d/assets/<server>/<bundle>/<file>" into buf.
 * -EINVAL for an unsafe name, -ENAMETOOLONG if it does not fit. */
int cache_asset_path(const struct cache *c, const char *server, const char *bundle,
		     const char *file, char *buf, size_t len);

/*
 * A cached file's stamp: its modification time in nanoseconds, as the
 * commit left it (never 0). Cache files are read-only (0444) and nothing
 * here writes one after its commit, so a file whose stamp or size moved was
 * changed behind our back (through a pull's hardlink, say) and is damaged.
 * Not the ctime: every hardlink a pull makes, or removes, changes that.
 */
int64_t cache_stamp(const struct stat *st);

/* Open a cached asset read-only (O_NOFOLLOW all the way down).
 * expect_size >= 0 / expect_stamp > 0: the file must have exactly that size
 * and stamp, else -ESTALE (it was truncated or changed behind our back).
 * -ENOENT if absent (or evicted while this open waited); -EISDIR or -EINVAL
 * for something that is not a regular file. On success *fd is the caller's
 * and holds a shared flock(): cache_asset_evict() leaves the file alone
 * while it is open, in this process or another. */
int cache_asset_open(const struct cache *c, const char *server, const char *bundle,
		     const char *file, int64_t expect_size, int64_t expect_stamp, int *fd);

/*
 * Take an asset out of the cache unless someone has it open through
 * cache_asset_open() (-EBUSY then). *freed (may be NULL) gets the bytes
 * given back to the filesystem: 0 when other hardlinks (a pull's folder)
 * keep them on disk. A missing file is -ENOENT. before (may be NULL) runs
 * once the file is sure to go, before its name does, while opens of it
 * wait: a non-zero return keeps the file and is returned.
 */
int cache_asset_evict(const struct cache *c, const char *server, const char *bundle,
		      const char *file, int64_t *freed, int (*before)(void *arg), void *arg);

/* stat() of a cached asset without following symlinks. -ENOENT if absent. */
int cache_asset_stat(const struct cache *c, const char *server, const char *bundle,
		     const char *file, struct stat *st);

/* Remove a cached asset (missing is not an error); a folder or anything
 * else at its path goes too, with all it holds. */
int cache_asset_remove(const struct cache *c, const char *server, const char *bundle,
		       const char *file);

/* Stream the file through SHA-256. hex gets 64 lowercase digits. */
int cache_asset_sha256(const struct cache *c, const char *server, const char *bundle,
		       const char *file, char hex[CACHE_SHA256_HEX], int64_t *size);

/*
 * An asset being written. Not thread-safe itself: one writer per transfer.
 * begin creates the folders and the temporary; write appends and hashes;
 * reset truncates (a retry starts over). prepare makes the file read-only,
 * fsyncs it and reports size, SHA-256 and stamp (each may be NULL): the
 * slow part, done before anything is decided. publish renames it over the
 * final name (a folder found there goes); it waits for no data on the
 * disk, so it may run inside the index's write transaction, which makes
 * the file and its row one step for other processes. finish fsyncs the
 * folder of a published file (the rename made durable) and frees the
 * writer; one not published (its bytes were there already) is dropped as
 * abort does. abort unlinks the temporary and frees the writer.
 */
struct cache_writer;
int cache_writer_begin(struct cache *c, const char *server, const char *bundle,
		       const char *file, struct cache_writer **out);
int cache_writer_write(struct cache_writer *w, const void *buf, size_t n);
int cache_writer_reset(struct cache_writer *w);
int64_t cache_writer_size(const struct cache_writer *w);
int cache_writer_prepare(struct cache_writer *w, char hex[CACHE_SHA256_HEX], int64_t *size,
			 int64_t *stamp);
int cache_writer_publish(struct cache_writer *w);
int cache_writer_finish(struct cache_writer *w);
/* A new read-only descriptor of the temporary (the caller's to close), with
 * the shared lock cache_asset_open() takes: the inode commit then publishes,
 * so it reads the bytes written so far before the commit and after it. */
int cache_writer_reader(struct cache_writer *w, int *fd);
void cache_writer_abort(struct cache_writer *w);

/* Remove every CACHE_TEMP_PREFIX file under live2d/assets (left by a crash).
 * *removed (may be NULL) gets the count. */
int cache_clean_temps(struct cache *c, int *removed);

/* Call fn for every regular file under live2d/assets/<server>/ that is not
 * a temporary: bundle and file as cache_asset_path() takes them. Used to
 * rebuild the index from the folder. fn returning non-zero stops the walk
 * and is returned. */
typedef int (*cache_walk_fn)(void *arg, const char *bundle, const char *file,
			     const struct stat *st);
int cache_walk(struct cache *c, const char *server, cache_walk_fn fn, void *arg);

/* Total bytes and free bytes of the filesystem holding the cache. */
int cache_fs_space(const struct cache *c, uint64_t *total, uint64_t *avail);

enum cache_link_mode { CACHE_LINK_AUTO, CACHE_LINK_HARDLINK, CACHE_LINK_COPY };
enum cache_outcome { CACHE_LINKED, CACHE_COPIED, CACHE_SKIPPED };

/* Parse "auto|hardlink|copy". */
int cache_parse_link_mode(const char *s, enum cache_link_mode *out);

/*
 * Put a cached asset at rel below the folder dest_dir (an ordinary folder
 * outside the cache; rel's folders are created). Every component of rel is
 * reached with O_NOFOLLOW: a symlink inside the destination is refused
 * (-ELOOP or -ENOTDIR), never followed. The cached file must still have
 * expect_size and expect_stamp (as cache_asset_open() checks; -ESTALE).
 * AUTO: hardlink, falling back to a copy when the link fails with
 * EXDEV/EPERM/EMLINK; HARDLINK: link or fail (-EXDEV...); COPY: always copy.
 * A copy is written to a temporary beside the destination and renamed. An
 * existing destination is kept (CACHE_SKIPPED) unless overwrite.
 */
int cache_materialize(const struct cache *c, const char *server, const char *bundle,
		      const char *file, int64_t expect_size, int64_t expect_stamp, int dest_dir,
		      const char *rel, enum cache_link_mode mode, int overwrite,
		      enum cache_outcome *outcome);

/* Write data at rel below dest_dir through a temporary and a rename
 * (folders created, symlinks refused as above). An existing file is kept
 * (*skipped = 1) unless overwrite. */
int cache_write_file_atomic(int dest_dir, const char *rel, const void *data, size_t n,
			    int overwrite, int *skipped);

/* lstat() of rel below dest_dir, its folders reached without following a
 * symlink: -ENOENT if nothing is there, -ELOOP/-ENOTDIR through a symlink. */
int cache_dest_stat(int dest_dir, const char *rel, struct stat *st);

#endif
