/*
 * care.c: keeping the cache within a size and sound.
 *
 * Eviction goes by the index's last_access, least recently used first, and
 * asks cache/ to remove each file; cache/ refuses files held open (by this
 * process or a mount). Sizes come from the index, so a pass costs one scan
 * of the completed rows. A library with cache_max keeps a running total of
 * those bytes, counted at start and again by every pass, and runs a pass
 * when a finished download takes it over the limit.
 */
#include "library_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../log/log.h"

static const char *const servers[] = { "jp", "en", "tw", "cn", "kr" };
#define NSERVERS (sizeof(servers) / sizeof(servers[0]))

/* The least free space a download failing with ENOSPC is given. */
#define ROOM_MIN (1 << 20)

int fetch_asset_progress(const struct idx_asset *a)
{
	if (a->state == IDX_COMPLETED)
		return 100;
	if (a->size <= 0 || a->bytes_done <= 0)
		return 0;
	return a->bytes_done >= a->size ? 99 : (int)(a->bytes_done * 100 / a->size);
}

/* max * pct / 100 without overflow for any size. */
static int64_t share_of(int64_t max, int pct)
{
	return max / 100 * pct + max % 100 * pct / 100;
}

/* ---- the completed assets, least recently used first ---- */

struct lru_entry {
	int64_t id, size, last_access, updated_at;
};

struct lru {
	struct lru_entry *v;
	size_t n, cap;
	int64_t total;
	int in_flight;
};

static int collect_completed(void *arg, const struct idx_asset *a)
{
	struct lru *l = arg;

	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 256;
		struct lru_entry *v = realloc(l->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = (struct lru_entry){ a->id, a->size > 0 ? a->size : 0, a->last_access,
					   a->updated_at };
	l->total += a->size > 0 ? a->size : 0;
	return 0;
}

static int count_in_flight(void *arg, const struct idx_asset *a)
{
	(void)a;
	((struct lru *)arg)->in_flight++;
	return 0;
}

/* last_access keeps minutes: within one, the older download goes first. */
static int lru_cmp(const void *x, const void *y)
{
	const struct lru_entry *a = x, *b = y;
	if (a->last_access != b->last_access)
		return a->last_access < b->last_access ? -1 : 1;
	if (a->updated_at != b->updated_at)
		return a->updated_at < b->updated_at ? -1 : 1;
	return a->id < b->id ? -1 : a->id > b->id;
}

/* Every server's completed assets in LRU order; *l is the caller's to free. */
static int lru_load(struct idx *idx, struct lru *l)
{
	int rc = 0;

	memset(l, 0, sizeof(*l));
	for (size_t i = 0; rc == 0 && i < NSERVERS; i++) {
		rc = idx_asset_list(idx, servers[i], IDX_COMPLETED, collect_completed, l);
		if (rc == 0)
			rc = idx_asset_list(idx, servers[i], IDX_DOWNLOADING, count_in_flight, l);
	}
	if (rc == 0 && l->n)
		qsort(l->v, l->n, sizeof(*l->v), lru_cmp);
	return rc;
}

/* ---- eviction ---- */

/* Evict until the completed bytes are at most target, sparing the assets
 * spare() (may be NULL) says 1 for. */
static int care_pass(struct idx *idx, struct cache *cache, int64_t target,
		     int (*spare)(void *arg, int64_t id), void *arg, struct fetch_care_report *r)
{
	struct lru l;
	struct idx_asset a;
	struct stat st;
	int rc = lru_load(idx, &l);

	memset(r, 0, sizeof(*r));
	r->total_before = r->total_after = l.total;
	r->in_flight = l.in_flight;
	for (size_t i = 0; rc == 0 && i < l.n && r->total_after > target; i++) {
		int64_t freed = 0;
		if ((spare && spare(arg, l.v[i].id)) || idx_asset_get(idx, l.v[i].id, &a) < 0)
			continue;
		if (a.state != IDX_COMPLETED) {
			/* Changed since the scan (by another process): not ours now. */
			r->total_after -= l.v[i].size;
			continue;
		}
		if (cache_asset_stat(cache, a.server, a.bundle, a.file, &st) == 0 &&
		    st.st_nlink > 1) {
			r->kept_linked++;
			r->kept_linked_bytes += l.v[i].size;
			continue;
		}
		int err = cache_asset_evict(cache, a.server, a.bundle, a.file, &freed);
		if (err == -EBUSY) {
			r->kept_open++;
			r->kept_open_bytes += l.v[i].size;
			continue;
		}
		if (err < 0 && err != -ENOENT) {
			log_warn("%s/%s: cannot evict: %s", a.bundle, a.file, strerror(-err));
			continue;
		}
		/* Gone either way: the next read downloads it again. */
		idx_asset_mark_pending(idx, a.id);
		r->total_after -= l.v[i].size;
		if (err == 0) {
			r->evicted++;
			r->freed += freed;
		}
	}
	free(l.v);
	return rc;
}

int fetch_care_gc(struct idx *idx, struct cache *cache, int64_t max_size, int low_pct,
		  struct fetch_care_report *r)
{
	if (max_size < 0 || low_pct < 0 || low_pct > 100)
		return -EINVAL;
	return care_pass(idx, cache, share_of(max_size, low_pct), NULL, NULL, r);
}

/* ---- the library's limit (cache_max) ---- */

void fetch_care_start(struct fetch_library *lib)
{
	struct lru l;

	if (lib->cfg.cache_max <= 0)
		return;
	if (lru_load(lib->idx, &l) == 0)
		lib->care_total = l.total;
	free(l.v);
	lib->care_trigger = lib->cfg.cache_max;
}

void fetch_care_pin(struct fetch_library *lib, int64_t asset_id, int add)
{
	if (lib->cfg.cache_max <= 0)
		return;
	pthread_mutex_lock(&lib->lock);
	if (add)
		fetch_keys_add(&lib->pins, asset_id);
	else
		fetch_keys_remove(&lib->pins, asset_id);
	pthread_mutex_unlock(&lib->lock);
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
	struct fetch_care_report r;
	int64_t max = lib->cfg.cache_max, margin = max - share_of(max, FETCH_CARE_LOW_WATER);

	pthread_mutex_lock(&lib->lock);
	while (wait && lib->care_running)
		pthread_cond_wait(&lib->changed, &lib->lock);
	if (lib->care_running) {
		pthread_mutex_unlock(&lib->lock);
		return 0;
	}
	lib->care_running = 1;
	int64_t counted = lib->care_total;
	pthread_mutex_unlock(&lib->lock);

	struct spare_ctx spare = { lib, exclude };
	int rc = care_pass(lib->idx, lib->cache, target, library_spares, &spare, &r);

	pthread_mutex_lock(&lib->lock);
	if (rc == 0) {
		/* Downloads finished during the pass are added on top. */
		lib->care_total = r.total_after + (lib->care_total - counted);
		/* Files kept (open, linked elsewhere) may hold the total above the
		 * limit: let it grow by the margin before scanning again rather
		 * than after every download. */
		lib->care_trigger = r.total_after + margin > max ? r.total_after + margin : max;
	}
	lib->care_running = 0;
	pthread_cond_broadcast(&lib->changed);
	pthread_mutex_unlock(&lib->lock);
	if (rc < 0)
		log_warn("cache eviction failed: %s", strerror(-rc));
	else if (r.evicted || r.kept_open || r.kept_linked)
		log_info("cache at %lld bytes (limit %lld): evicted %d files (%lld bytes freed),"
			 " kept %d open and %d hardlinked elsewhere; now %lld bytes",
			 (long long)r.total_before, (long long)max, r.evicted, (long long)r.freed,
			 r.kept_open, r.kept_linked, (long long)r.total_after);
	return rc < 0 ? 0 : r.freed;
}

void fetch_care_added(struct fetch_library *lib, int64_t asset_id, int64_t size)
{
	if (lib->cfg.cache_max <= 0)
		return;
	pthread_mutex_lock(&lib->lock);
	lib->care_total += size;
	int over = lib->care_total > lib->care_trigger && !lib->care_running;
	pthread_mutex_unlock(&lib->lock);
	if (over)
		library_pass(lib, share_of(lib->cfg.cache_max, FETCH_CARE_LOW_WATER), asset_id, 0);
}

int fetch_care_make_room(struct fetch_library *lib, int64_t need)
{
	int64_t target = share_of(lib->cfg.cache_max, FETCH_CARE_LOW_WATER);

	if (lib->cfg.cache_max <= 0)
		return 0;
	if (need < ROOM_MIN)
		need = ROOM_MIN;
	pthread_mutex_lock(&lib->lock);
	int64_t below = lib->care_total - 2 * need;
	pthread_mutex_unlock(&lib->lock);
	if (below < target)
		target = below > 0 ? below : 0;
	return library_pass(lib, target, 0, 1) > 0;
}

/* ---- integrity ---- */

int fetch_care_verify(struct idx *idx, struct cache *cache, int repair, fetch_verify_fn fn,
		      void *arg, struct fetch_verify_report *r)
{
	char hex[CACHE_SHA256_HEX];
	struct idx_asset a;
	struct lru l;
	int rc = lru_load(idx, &l);

	memset(r, 0, sizeof(*r));
	for (size_t i = 0; rc == 0 && i < l.n; i++) {
		int64_t size = -1;
		enum fetch_verify_problem problem;
		if (idx_asset_get(idx, l.v[i].id, &a) < 0 || a.state != IDX_COMPLETED)
			continue;
		r->checked++;
		int err = cache_asset_sha256(cache, a.server, a.bundle, a.file, hex, &size);
		if (err == -ENOENT) {
			problem = FETCH_VERIFY_MISSING;
		} else if (err < 0) {
			/* Unreadable or not a regular file: as bad as wrong bytes. */
			problem = FETCH_VERIFY_CORRUPTED;
		} else {
			r->bytes += size;
			if (size != a.size)
				problem = FETCH_VERIFY_TRUNCATED;
			else if (strcmp(hex, a.sha256) != 0)
				problem = FETCH_VERIFY_CORRUPTED;
			else
				continue;
		}
		r->missing += problem == FETCH_VERIFY_MISSING;
		r->truncated += problem == FETCH_VERIFY_TRUNCATED;
		r->corrupted += problem == FETCH_VERIFY_CORRUPTED;
		int repaired = 0;
		if (repair && cache_asset_remove(cache, a.server, a.bundle, a.file) == 0 &&
		    idx_asset_mark_pending(idx, a.id) == 0) {
			repaired = 1;
			r->repaired++;
		}
		if (fn)
			fn(arg, &a, problem, size, repaired);
	}
	free(l.v);
	return rc;
}
