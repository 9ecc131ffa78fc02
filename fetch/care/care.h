/*
 * fetch/care: keeping the cache within a size and sound, over the index
 * and the cache alone (no network): least-recently-used eviction for
 * `l2dfs gc` and the library's cache_max, and integrity checks for
 * `l2dfs verify`.
 *
 * Every function returns 0 or a negative errno unless it says otherwise.
 */
#ifndef L2DFS_CARE_H
#define L2DFS_CARE_H

#include <stdint.h>

#include "../../cache/cache.h"
#include "../../index/index.h"

/* The share of cache_max (or of gc's --max-size) an eviction goes down to. */
#define CARE_LOW_WATER 90

struct care_report {
	int64_t total_before;      /* bytes of completed assets (every server) */
	int64_t total_after;
	int64_t freed;             /* bytes given back to the filesystem */
	int evicted;               /* files taken out of the cache */
	int kept_open;             /* held open (a reader of a mount) */
	int64_t kept_open_bytes;
	int kept_linked;           /* hardlinked outside the cache: evicting frees nothing */
	int64_t kept_linked_bytes;
	int in_flight;             /* downloads in progress, never touched */
};

/* max * pct / 100 without overflow for any size. */
int64_t care_share(int64_t max, int pct);

/* Bytes of every completed asset (every server), as the index says. */
int care_completed_bytes(struct idx *idx, int64_t *total);

/*
 * Evict least recently used completed assets until their total is at most
 * target, sparing those spare() (may be NULL) says 1 for; the rest as
 * care_gc(), which is this with target = low_pct % of max_size.
 */
int care_evict(struct idx *idx, struct cache *cache, int64_t target,
		     int (*spare)(void *arg, int64_t id), void *arg, struct care_report *r);

/*
 * Evict least recently used completed assets of every server until their
 * total is at most low_pct % of max_size (nothing happens below that).
 * Files held open (cache_asset_evict() says -EBUSY) and files hardlinked
 * outside the cache are kept and counted; downloads in flight are never
 * touched. Evicted rows go back to pending, so the next read downloads
 * again. Works beside a mount of the same cache, in another process.
 */
int care_gc(struct idx *idx, struct cache *cache, int64_t max_size, int low_pct,
		  struct care_report *r);

enum care_verify_problem {
	CARE_VERIFY_MISSING,   /* the index says completed, the file is gone */
	CARE_VERIFY_TRUNCATED, /* its size differs from the index */
	CARE_VERIFY_CORRUPTED, /* same size, another SHA-256, or unreadable */
	CARE_VERIFY_NOT_FILE,  /* a folder, symlink or other odd thing at its path */
};

struct care_verify_report {
	int checked;  /* completed assets looked at */
	int missing, truncated, corrupted, not_file;
	int repaired; /* removed and marked pending */
	int found;    /* files an index rebuild found, not served until the origin's
		       * size agrees (not a problem: counted only) */
	int64_t bytes;/* bytes hashed */
};

/* Told about each unsound asset; found_size is -1 for a missing file. */
typedef void (*care_verify_fn)(void *arg, const struct idx_asset *a,
				enum care_verify_problem problem, int64_t found_size,
				int repaired);

/*
 * Hash every completed asset's cache file (every server) and compare it
 * with the index. With repair, an unsound file (or whatever else is at its
 * path, a folder with all it holds) is removed and its row marked pending
 * so the next read downloads it again. A file evicted or replaced while
 * the check runs (its row changed) is no problem. Files an index rebuild
 * found and the origin has not vouched for yet are counted. fn may be NULL.
 */
int care_verify(struct idx *idx, struct cache *cache, int repair, care_verify_fn fn,
		      void *arg, struct care_verify_report *r);

#endif
