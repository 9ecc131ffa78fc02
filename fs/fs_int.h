/* Shared between the fs files; not part of the contract. */
#ifndef L2DFS_FS_INT_H
#define L2DFS_FS_INT_H

#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <time.h>

#include "fs.h"

/* One entry of a catalogue folder as the kernel was told it (ino 0: not
 * found). */
struct fs_name {
	fuse_ino_t parent, ino;
	char *name;
};

struct fs_names {
	struct fs_name *v;
	size_t n, cap;
	int err; /* -ENOMEM: the list is lost (then every name may be stale) */
};

struct fs {
	struct fs_config cfg;
	char server[8];
	struct fuse_session *se;
	char *mountpoint;
	int mounted;
	int signals; /* libfuse's signal handlers are set (fs_mount to fs_destroy) */
	time_t started;
	uid_t uid;            /* every node's owner: the mounting user (asked once, */
	gid_t gid;            /* not twice a listed entry) */
	/* With auto_unmount, fusermount3 takes a mount for dead only when
	 * opening its root fails (ENOTCONN): folders must be opened here. */
	int need_opendir;     /* set by fs_mount */
	int no_opendir;       /* set by init, before any request: the kernel opens folders */
	int need_open;        /* test builds: L2DFS_TEST_DAEMON_OPEN, as on kernels
			       * without no-open support (tests of that path) */
	int no_open;          /* set by init, before any request: the kernel opens files */
	struct fetch_library *lib;
	struct idx *idx;
	struct cache *cache;

	pthread_mutex_t lock; /* guards what follows */
	int64_t *prefetched;  /* costumes already queued this mount */
	size_t nprefetched, capprefetched;
	struct fs_handle **slots; /* open handles by slot (handles.c) */
	uint32_t *gens;           /* each slot's generation, part of the id */
	uint32_t *free_slots;
	size_t nslots, capslots, nfree;
	struct fs_names served;   /* catalogue names the kernel may cache */
	fuse_ino_t *stale;        /* file inodes whose bytes moved on (notify.c) */
	size_t nstale, capstale;
	struct fs_listing *listings; /* FS_LISTINGS folders being read (handles.c) */
	unsigned next_listing;       /* the slot the next new listing takes */
	int follow_stop;          /* the catalogue follower is to end */
	pthread_cond_t follow_wake;

	pthread_t follower;       /* notify.c; started and joined by fs_serve */
	int following;
};

/* How many folder listings are kept between the pieces of one readdir. */
#define FS_LISTINGS 16

/*
 * An open file (a cache file's descriptor, or generated text in memory;
 * fi->fh holds its id; or, read without an open, for one read), or a
 * folder's listing (fs_listing_get). Requests take a reference for as long
 * as they use it.
 */
struct fs_handle {
	fuse_ino_t ino;
	int fd;     /* -1 when data is used */
	char *data;
	size_t len;
	int refs;
};

/* Register h (refs set to 1, owned by the table); *id goes in fi->fh. */
int fs_handle_add(struct fs *fs, struct fs_handle *h, uint64_t *id);
/* The handle with a reference taken, or NULL if it was released. */
struct fs_handle *fs_handle_get(struct fs *fs, uint64_t id);
void fs_handle_put(struct fs *fs, struct fs_handle *h);
/* Release: drop the table's reference (the last one closes and frees). */
void fs_handle_remove(struct fs *fs, uint64_t id);
/* The length of the text an open generated file ino reads (the most
 * recently opened handle). Returns 0, or -ENOENT when none is open. */
int fs_handle_text_len(struct fs *fs, fuse_ino_t ino, size_t *len);
/* Free what is left at unmount. */
void fs_handles_free(struct fs *fs);

/*
 * Listings: folders are read without opendir, so without a handle (the
 * kernel caches what it read). The first piece of a listing (offset 0)
 * builds it and stores it here; later pieces read the stored bytes, so
 * one listing is built once however many pieces it takes.
 */
struct fs_listing {
	fuse_ino_t ino;
	int plus;             /* entries with attributes (readdirplus) */
	struct fs_handle *h;  /* NULL: a free slot */
};
/* The listing of ino (plus or not) with a reference taken, or NULL. */
struct fs_handle *fs_listing_get(struct fs *fs, fuse_ino_t ino, int plus);
/* Store h (h->ino) as the newest listing, replacing an older one of the
 * same folder or the oldest; takes a reference for the store. */
void fs_listing_put(struct fs *fs, int plus, struct fs_handle *h);

/* ---- inode numbers ----
 * 1 root, 2 characters/, 3 costumes/; otherwise
 * kind << 56 | view << 55 | version << 40 | id.
 * view 1 marks nodes reached through characters/ so that one costume seen in
 * both trees is two directories, not one with two parents. A file's version
 * (its asset's, modulo 2^15; 0 for everything else) makes other bytes behind
 * one name another inode: the kernel's pages of the old one are never
 * mixed with the new bytes (DESIGN §7). */
enum fs_kind { FS_SPECIAL = 0, FS_CHARACTER = 1, FS_COSTUME = 2, FS_SUBDIR = 3, FS_FILE = 4 };

#define FS_INO_ROOT 1
#define FS_INO_CHARACTERS 2
#define FS_INO_COSTUMES 3

static inline fuse_ino_t fs_ino(enum fs_kind kind, int view, int64_t id)
{
	return ((fuse_ino_t)kind << 56) | ((fuse_ino_t)(view & 1) << 55) | (fuse_ino_t)id;
}
static inline enum fs_kind fs_ino_kind(fuse_ino_t ino) { return (enum fs_kind)(ino >> 56); }
static inline int fs_ino_view(fuse_ino_t ino) { return (int)((ino >> 55) & 1); }
static inline int64_t fs_ino_id(fuse_ino_t ino) { return (int64_t)(ino & ((1ull << 40) - 1)); }

#define FS_VERSION_MASK 0x7fff
static inline unsigned fs_ino_version(fuse_ino_t ino) { return (unsigned)(ino >> 40) & FS_VERSION_MASK; }
/* A file (costume_files row id) whose asset is at version. */
static inline fuse_ino_t fs_file_ino(int view, int64_t id, int64_t version)
{
	return fs_ino(FS_FILE, view, id) | (fuse_ino_t)(version & FS_VERSION_MASK) << 40;
}

/* Sub-folders: costume row id * 4 + folder (enum idx_dir, never ROOT). */
static inline fuse_ino_t fs_subdir_ino(int view, int64_t costume, int dir)
{
	return fs_ino(FS_SUBDIR, view, costume * 4 + dir);
}

extern const struct fuse_lowlevel_ops fs_lowlevel_ops;

/* Start following the catalogue (notify.c): once fs->lib and fs->idx are
 * set and the session is mounted. */
int fs_follow_start(struct fs *fs);
/* Record that the kernel was told name in the catalogue folder parent
 * leads to ino (0: not found), before the reply. */
void fs_follow_served(struct fs *fs, fuse_ino_t parent, const char *name, fuse_ino_t ino);
/* The file inode ino names bytes that are no longer there (its asset's
 * version moved on): the follower tells the kernel to forget it and the
 * names that lead to it, outside any request. */
void fs_follow_stale(struct fs *fs, fuse_ino_t ino);
/* Stop following and wait for the thread (no-op if it did not start). */
void fs_follow_stop(struct fs *fs);

#endif
