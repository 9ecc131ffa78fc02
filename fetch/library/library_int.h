/* Shared between library.c and assets.c; not part of the contract. */
#ifndef L2DFS_LIBRARY_INT_H
#define L2DFS_LIBRARY_INT_H

#include <pthread.h>

#include "library.h"

/* Largest catalogue document or buildData accepted (the real ones are < 2 MiB). */
#define FETCH_DOC_MAX (16u << 20)

/* A small multiset of keys (a few dozen at most): linear is fastest. */
struct fetch_keys {
	int64_t *v;
	size_t n, cap;
};
/* Add one (aborts without memory: a few bytes, nothing sensible to do). */
void fetch_keys_add(struct fetch_keys *k, int64_t key);
/* Remove one occurrence, if any. */
void fetch_keys_remove(struct fetch_keys *k, int64_t key);
/* 1 if key is there. */
int fetch_keys_has(const struct fetch_keys *k, int64_t key);

struct fetch_transfer; /* one asset download in flight (assets.c) */
struct fetch_job;      /* a finished transfer waiting to be committed */

struct fetch_library {
	struct fetch_library_config cfg;
	char server[8];
	struct fetch_engine *engine;
	struct idx *idx;
	struct cache *cache;

	pthread_mutex_t lock;   /* guards everything below */
	pthread_cond_t changed; /* a transfer ended, a key was released */
	struct fetch_transfer *transfers;
	struct fetch_keys busy; /* keys of catalogue/costume work in progress */
	int64_t catalogue_checked_until; /* no catalogue check needed before this time */

	/* Finished transfers are committed (fsync, rename, index) off the
	 * engine thread, by a few workers. */
	struct fetch_job *jobs, **jobs_tail;
	pthread_t workers[4];
	int nworkers;
	int stopping;
	int outstanding;        /* transfers not yet committed */

	/* The cache_max budget (budget.c). */
	int64_t care_total;     /* completed bytes: as last counted + added since */
	int64_t care_trigger;   /* a pass runs once care_total is above this */
	int care_running;       /* a pass is under way */
	struct fetch_keys pins; /* assets readers wait to open: never evicted */
};

/* Take a key (wait while another thread holds it) / give it back. */
void fetch_busy_acquire(struct fetch_library *lib, int64_t key);
void fetch_busy_release(struct fetch_library *lib, int64_t key);

/* "/<server>/<bundle>_rip/<file>" for the engine's FETCH_ASSETS base. */
int fetch_asset_url_path(const char *server, const char *bundle, const char *file, char *buf,
			 size_t len);

/* Start the commit workers / stop them after the queue drains. */
int fetch_assets_start(struct fetch_library *lib);
void fetch_assets_stop(struct fetch_library *lib);

/* If the asset is in flight, wait for that transfer to end and return 1
 * (its outcome is then in the index); else return 0 at once. */
int fetch_asset_wait_inflight(struct fetch_library *lib, int64_t asset_id);

/* cache_max (budget.c): count the cached bytes once, at start. */
void fetch_budget_start(struct fetch_library *lib);

/* cache_max: pin (add != 0) or unpin an asset a reader is opening, so that
 * eviction spares it; one pin per call. */
void fetch_budget_pin(struct fetch_library *lib, int64_t asset_id, int add);

/* cache_max: asset_id (size bytes) was just committed; evict least recently
 * used files (never that one) if the total went over the limit. */
void fetch_budget_added(struct fetch_library *lib, int64_t asset_id, int64_t size);

/* cache_max: a download of need bytes (-1: unknown) failed with ENOSPC.
 * Evict below the limit to make room; 1 if anything was freed, else 0. */
int fetch_budget_make_room(struct fetch_library *lib, int64_t need);

#endif
