/*
 * recover: start-up work over the cache and the index before anything is
 * served: what a dead process left half done, and an index rebuilt over a
 * cache folder that still holds files.
 *
 * Nothing found on disk is trusted because it is there. A file at an
 * asset's path with no row behind it (the index was lost or unusable) is
 * recorded as found (size, SHA-256, stamp) on a pending row and served only
 * once the origin's size agrees (a size probe; idx_asset_mark_probed());
 * a file with other hardlinks (a name that may belong to anyone) is dropped
 * from the cache at once. Anything else is downloaded again when read.
 *
 * Every function returns 0 or a negative errno. Nothing here logs: the
 * report says what was done.
 */
#ifndef L2DFS_RECOVER_H
#define L2DFS_RECOVER_H

#include "../cache/cache.h"
#include "../index/index.h"

struct recover_report {
	int temps_removed;   /* partial downloads of a dead process */
	int downloads_reset; /* rows left downloading, back to pending */
	int found;           /* files recorded as found, waiting for the origin's word */
	int dropped;         /* hardlinked or unreadable files taken out of the cache */
};

/*
 * Run at start-up. alone: no other process uses the cache (cache_claim()),
 * so temporaries and rows marked downloading are a dead process's and are
 * cleaned. rebuilt: the index is new over an existing cache: the files of
 * every server in servers[0..nservers) are recorded as found.
 */
int recover_start(struct idx *idx, struct cache *cache, int alone, int rebuilt,
		  const char *const *servers, int nservers, struct recover_report *r);

#endif
