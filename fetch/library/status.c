/*
 * The one place that says what state a file or a costume is in, from the
 * index alone (no network): for the mount's attributes and listings,
 * `l2dfs status`, `pull`, the HTTP server and the library's own decisions.
 */
#include <errno.h>
#include <time.h>

#include "library_int.h"

/* Milliseconds on the index's clock (idx_now(): the wall clock, shifted by
 * L2DFS_TIME_OFFSET in a test build). */
int64_t fetch_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (idx_now() - (int64_t)ts.tv_sec) * 1000 + (int64_t)ts.tv_sec * 1000 +
	       ts.tv_nsec / 1000000;
}

int fetch_asset_backing_off(const struct idx_asset *a)
{
	return a->state == IDX_FAILED && a->retry_at > fetch_now_ms();
}

int fetch_asset_missing(const struct idx_asset *a)
{
	return a->state == IDX_FAILED && a->err == ENOENT &&
	       idx_now() - a->updated_at < FETCH_MISSING_RECHECK_S;
}

int fetch_asset_absent(int optional, const struct idx_asset *a)
{
	return optional && a->state == IDX_FAILED && a->err == ENOENT;
}

int fetch_asset_progress(const struct idx_asset *a)
{
	if (a->state == IDX_COMPLETED)
		return 100;
	if (a->size <= 0 || a->bytes_done <= 0)
		return 0;
	return a->bytes_done >= a->size ? 99 : (int)(a->bytes_done * 100 / a->size);
}

void fetch_asset_status(const struct idx_asset *a, int optional, struct fetch_asset_status *out)
{
	out->state = idx_state_name(a->state);
	out->progress = fetch_asset_progress(a);
	out->missing = fetch_asset_missing(a);
	out->absent = fetch_asset_absent(optional, a);
	out->backing_off = fetch_asset_backing_off(a);
}

struct absent_count {
	struct idx *idx;
	int n;
};

static int count_absent(void *arg, const struct idx_file *f)
{
	struct absent_count *c = arg;
	struct idx_asset a;

	if (f->optional && f->asset_id && idx_asset_get(c->idx, f->asset_id, &a) == 0 &&
	    fetch_asset_absent(f->optional, &a))
		c->n++;
	return 0;
}

int fetch_costume_status(struct idx *idx, int64_t costume_id, struct fetch_costume_status *out)
{
	struct idx_costume_status *st = &out->st;
	struct absent_count c = { idx, 0 };
	int rc = idx_costume_status(idx, costume_id, st);

	if (rc == 0)
		rc = idx_file_list(idx, costume_id, -1, count_absent, &c);
	if (rc < 0)
		return rc;
	/* Absent files are neither done nor failed: only the total counts them. */
	st->files_total -= c.n;
	out->files_absent = c.n;
	if (st->files_failed)
		out->state = "failed";
	else if (st->files_total && st->files_done == st->files_total)
		out->state = "completed";
	else
		out->state = st->files_done ? "partial" : "pending";
	return 0;
}

int fetch_costume_complete(struct idx *idx, int64_t costume_id)
{
	struct idx_costume_status st;

	return idx_costume_status(idx, costume_id, &st) == 0 && st.files_done == st.files_total;
}
