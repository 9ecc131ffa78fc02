/*
 * budget.c: the library's cache_max. A running total of the completed
 * bytes, counted at start and again by every eviction pass; a finished
 * download that takes it over the limit runs a pass (fetch/care), sparing
 * the file just written and the files readers are opening (pins).
 */
#include <assert.h>
#include "library_int.h"

#include <stdlib.h>
#include <string.h>

#include "../../log/log.h"

/* The least free space a download failing with ENOSPC is given. */
#define ROOM_MIN (1 << 20)

void fetch_budget_start(struct fetch_library *lib)
{
	if (lib->cfg.cache_max <= 0)
		return;
	care_completed_bytes(lib->idx, &lib->care_total);
	lib->care_trigger = lib->cfg.cache_max;
}

void fetch_budget_pin(struct fetch_library *lib, int64_t asset_id, int add)
{
	assert(!lib_locked(lib));
	if (lib->cfg.cache_max <= 0)
		return;
	lib_lock(lib);
	if (add)
		fetch_keys_add(&lib->pins, asset_id);
	else
		fetch_keys_remove(&lib->pins, asset_id);
	lib_unlock(lib);
}

struct spare_ctx {
	struct fetch_library *lib;
	int64_t exclude;
};

/* The asset just committed, and those readers are opening. */
static int library_spares(void *arg, int64_t id)
{
	struct spare_ctx *s = arg;
	int found = id == s->exclude;

	pthread_mutex_lock(&s->lib->lock);
	found = found || fetch_keys_has(&s->lib->pins, id);
	pthread_mutex_unlock(&s->lib->lock);
	return found;
}

/*
 * One pass down to target for the library, one at a time: with wait, after
 * the one running; without, not at all if one runs. Returns bytes freed.
 */
static int64_t library_pass(struct fetch_library *lib, int64_t target, int64_t exclude,
			    int wait)
{
	assert(!lib_locked(lib)); /* SQL and the disk */
	struct care_report r;
	int64_t max = lib->cfg.cache_max, margin = max - care_share(max, CARE_LOW_WATER);

	lib_lock(lib);
	while (wait && lib->care_running)
		lib_cond_wait(lib, &lib->pass_over);
	if (lib->care_running) {
		lib_unlock(lib);
		return 0;
	}
	lib->care_running = 1;
	int64_t counted = lib->care_total;
	lib_unlock(lib);

	struct spare_ctx spare = { lib, exclude };
	int rc = care_evict(lib->idx, lib->cache, target, library_spares, &spare, &r);

	lib_lock(lib);
	if (rc == 0) {
		/* Downloads finished during the pass are added on top. */
		lib->care_total = r.total_after + (lib->care_total - counted);
		/* Files kept (open, linked elsewhere) may hold the total above the
		 * limit: let it grow by the margin before scanning again rather
		 * than after every download. */
		lib->care_trigger = r.total_after + margin > max ? r.total_after + margin : max;
	}
	lib->care_running = 0;
	pthread_cond_broadcast(&lib->pass_over);
	lib_unlock(lib);
	if (rc < 0)
		log_warn("cache eviction failed: %s", strerror(-rc));
	else if (r.evicted || r.kept_open || r.kept_linked)
		log_info("cache at %lld bytes (limit %lld): evicted %d files (%lld bytes freed),"
			 " kept %d open and %d hardlinked elsewhere; now %lld bytes",
			 (long long)r.total_before, (long long)max, r.evicted, (long long)r.freed,
			 r.kept_open, r.kept_linked, (long long)r.total_after);
	return rc < 0 ? 0 : r.freed;
}

void fetch_budget_added(struct fetch_library *lib, int64_t asset_id, int64_t size)
{
	if (lib->cfg.cache_max <= 0)
		return;
	lib_lock(lib);
	lib->care_total += size;
	int over = lib->care_total > lib->care_trigger && !lib->care_running;
	lib_unlock(lib);
	if (over)
		library_pass(lib, care_share(lib->cfg.cache_max, CARE_LOW_WATER), asset_id, 0);
}

int fetch_budget_make_room(struct fetch_library *lib, int64_t need)
{
	int64_t target = care_share(lib->cfg.cache_max, CARE_LOW_WATER);

	if (lib->cfg.cache_max <= 0)
		return 0;
	if (need < ROOM_MIN)
		need = ROOM_MIN;
	lib_lock(lib);
	int64_t below = lib->care_total - 2 * need;
	lib_unlock(lib);
	if (below < target)
		target = below > 0 ? below : 0;
	/* The index's log shares the disk and keeps its largest size. */
	int shrunk = idx_log_truncate(lib->idx) == 0;
	return library_pass(lib, target, 0, 1) > 0 || shrunk;
}
