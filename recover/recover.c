/*
 * recover.c: clean-up after a dead process and the rebuild of asset rows
 * from the cache folder (recover.h).
 */
#include "recover.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

struct found_ctx {
	struct idx *idx;
	struct cache *cache;
	const char *server;
	struct recover_report *r;
};

/* One file at an asset's path: recorded as found, or dropped. */
static int found_file(void *arg, const char *bundle, const char *file, const struct stat *st)
{
	struct found_ctx *f = arg;
	char hex[CACHE_SHA256_HEX];
	struct stat now;
	int64_t size;

	/* Another name for these bytes may be anyone's, to change at will. */
	if (st->st_nlink > 1 ||
	    cache_asset_sha256(f->cache, f->server, bundle, file, hex, &size) < 0 ||
	    cache_asset_stat(f->cache, f->server, bundle, file, &now) < 0 ||
	    now.st_ino != st->st_ino || now.st_nlink > 1 || now.st_size != size) {
		if (cache_asset_remove(f->cache, f->server, bundle, file) == 0)
			f->r->dropped++;
		return 0;
	}
	if (idx_asset_adopt(f->idx, f->server, bundle, file, size, hex, cache_stamp(&now)) == 0)
		f->r->found++;
	return 0;
}

int recover_start(struct idx *idx, struct cache *cache, int alone, int rebuilt,
		  const char *const *servers, int nservers, struct recover_report *r)
{
	int rc = 0;

	memset(r, 0, sizeof(*r));
	/* What a dead process left half done; a live one may still own it. */
	if (alone)
		rc = cache_clean_temps(cache, &r->temps_removed);
	if (alone && rc == 0)
		rc = idx_asset_reset_downloading(idx, &r->downloads_reset);
	for (int i = 0; rebuilt && rc == 0 && i < nservers; i++) {
		struct found_ctx f = { idx, cache, servers[i], r };
		rc = cache_walk(cache, servers[i], found_file, &f);
	}
	return rc;
}
