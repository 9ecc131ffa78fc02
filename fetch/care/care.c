/*
 * care.c: keeping the cache within a size and sound.
 *
 * Eviction goes by the index's last_access, least recently used first, and
 * asks cache/ to remove each file; cache/ refuses files held open (by this
 * process or a mount). Sizes come from the index, so a pass costs one scan
 * of the completed rows.
 */
#include "care.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../../log/log.h"
#include "../../util/util.h"

int64_t care_share(int64_t max, int pct)
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

	if (util_grow(&l->v, &l->cap, l->n + 1, sizeof(*l->v)) < 0)
		return -ENOMEM;
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
	memset(l, 0, sizeof(*l));
	int rc = idx_asset_list(idx, NULL, IDX_COMPLETED, collect_completed, l);
	if (rc == 0)
		rc = idx_asset_list(idx, NULL, IDX_DOWNLOADING, count_in_flight, l);
	if (rc == 0 && l->n)
		qsort(l->v, l->n, sizeof(*l->v), lru_cmp);
	return rc;
}

int care_completed_bytes(struct idx *idx, int64_t *total)
{
	struct lru l;
	int rc = lru_load(idx, &l);

	if (rc == 0)
		*total = l.total;
	free(l.v);
	return rc;
}

/* ---- eviction ---- */

struct evicting {
	struct idx *idx;
	int64_t id;
	int marked;
};

/* The row goes back to pending before the file's name goes: a check that
 * finds the file gone then finds the row no longer completed. On a full
 * disk the index may take no write until the file is gone: it goes anyway,
 * and the row is marked after. */
static int mark_evicted(void *arg)
{
	struct evicting *e = arg;
	e->marked = idx_asset_mark_pending(e->idx, e->id) == 0;
	return 0;
}

int care_evict(struct idx *idx, struct cache *cache, int64_t target,
		     int (*spare)(void *arg, int64_t id), void *arg, struct care_report *r)
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
		struct evicting e = { idx, a.id, 0 };
		int err = cache_asset_evict(cache, a.server, a.bundle, a.file, &freed,
					    mark_evicted, &e);
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
		if (!e.marked)
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

int care_gc(struct idx *idx, struct cache *cache, int64_t max_size, int low_pct,
		  struct care_report *r)
{
	if (max_size < 0 || low_pct < 0 || low_pct > 100)
		return -EINVAL;
	return care_evict(idx, cache, care_share(max_size, low_pct), NULL, NULL, r);
}

/* ---- integrity ---- */

static int count_found(void *arg, const struct idx_asset *a)
{
	((struct care_verify_report *)arg)->found += a->found >= 0;
	return 0;
}

/* 1 if a's row is no longer what it was when read. */
static int asset_changed(struct idx *idx, const struct idx_asset *a)
{
	struct idx_asset now;
	return idx_asset_get(idx, a->id, &now) < 0 || now.state != IDX_COMPLETED ||
	       now.updated_at != a->updated_at || now.stamp != a->stamp ||
	       strcmp(now.sha256, a->sha256) != 0;
}

int care_verify(struct idx *idx, struct cache *cache, int repair, care_verify_fn fn,
		      void *arg, struct care_verify_report *r)
{
	char hex[CACHE_SHA256_HEX];
	struct idx_asset a;
	struct lru l;
	int rc = lru_load(idx, &l);

	memset(r, 0, sizeof(*r));
	for (size_t i = 0; rc == 0 && i < l.n; i++) {
		int64_t size = -1;
		enum care_verify_problem problem;
		if (idx_asset_get(idx, l.v[i].id, &a) < 0 || a.state != IDX_COMPLETED)
			continue;
		int err = cache_asset_sha256(cache, a.server, a.bundle, a.file, hex, &size);
		/* Evicted (gc, cache_max) or replaced while we looked: the row
		 * changed first, and whatever it says now is not this check's. */
		if (err < 0 && asset_changed(idx, &a))
			continue;
		r->checked++;
		if (err == -ENOENT) {
			problem = CARE_VERIFY_MISSING;
		} else if (err == -EISDIR || err == -EINVAL || err == -ELOOP) {
			problem = CARE_VERIFY_NOT_FILE;
		} else if (err < 0) {
			/* Unreadable: as bad as wrong bytes. */
			problem = CARE_VERIFY_CORRUPTED;
		} else {
			r->bytes += size;
			if (size != a.size)
				problem = CARE_VERIFY_TRUNCATED;
			else if (strcmp(hex, a.sha256) != 0)
				problem = CARE_VERIFY_CORRUPTED;
			else
				continue;
		}
		r->missing += problem == CARE_VERIFY_MISSING;
		r->truncated += problem == CARE_VERIFY_TRUNCATED;
		r->corrupted += problem == CARE_VERIFY_CORRUPTED;
		r->not_file += problem == CARE_VERIFY_NOT_FILE;
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
	if (rc == 0)
		rc = idx_asset_list(idx, NULL, IDX_PENDING, count_found, r);
	return rc;
}
