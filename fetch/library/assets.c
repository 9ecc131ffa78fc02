/*
 * assets.c: asset bytes from the origin into the cache, once.
 *
 * A transfer exists per asset while it is in flight; every reader of that
 * asset waits on it instead of starting another (single-flight). The engine
 * thread streams the body into a cache writer; when the transfer ends, the
 * commit (fsync, rename, index update) runs on a worker so the engine thread
 * never waits for the disk.
 */
#include "library_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../log/log.h"

/* The index's bytes_done is refreshed at most this often per transfer. */
#define PROGRESS_STEP (1 << 20)

struct fetch_transfer {
	struct fetch_transfer *next;
	struct fetch_library *lib;
	int64_t asset_id;
	char bundle[IDX_BUNDLE_MAX + 1];
	char file[IDX_NAME_MAX + 1];
	struct cache_writer *writer;
	int64_t content_length;
	int64_t last_progress;
	int done;
	int err;
	int refs; /* waiters + the transfer itself */
};

struct fetch_job {
	struct fetch_job *next;
	struct fetch_transfer *t;
	struct fetch_result res;
};

int fetch_asset_url_path(const char *server, const char *bundle, const char *file, char *buf,
			 size_t len)
{
	int n = snprintf(buf, len, "/%s/%s_rip/%s", server, bundle, file);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static struct fetch_transfer *transfer_find(struct fetch_library *lib, int64_t asset_id)
{
	for (struct fetch_transfer *t = lib->transfers; t; t = t->next)
		if (t->asset_id == asset_id)
			return t;
	return NULL;
}

static void transfer_unlink(struct fetch_library *lib, struct fetch_transfer *t)
{
	for (struct fetch_transfer **p = &lib->transfers; *p; p = &(*p)->next) {
		if (*p == t) {
			*p = t->next;
			return;
		}
	}
}

/* Drop one reference; the caller holds lib->lock. */
static void transfer_put(struct fetch_transfer *t)
{
	if (--t->refs == 0)
		free(t);
}

/* ---- the sink: engine thread ---- */

static int sink_begin(void *ctx, int64_t content_length)
{
	struct fetch_transfer *t = ctx;
	t->content_length = content_length;
	return 0;
}

static int sink_write(void *ctx, const void *buf, size_t n)
{
	struct fetch_transfer *t = ctx;
	int rc = cache_writer_write(t->writer, buf, n);
	if (rc < 0)
		return rc;
	int64_t done = cache_writer_size(t->writer);
	if (done - t->last_progress >= PROGRESS_STEP) {
		t->last_progress = done;
		idx_asset_mark_progress(t->lib->idx, t->asset_id, done, t->content_length);
	}
	return 0;
}

static int sink_reset(void *ctx)
{
	struct fetch_transfer *t = ctx;
	t->last_progress = 0;
	return cache_writer_reset(t->writer);
}

static void transfer_done(void *arg, const struct fetch_result *res)
{
	struct fetch_transfer *t = arg;
	struct fetch_library *lib = t->lib;
	struct fetch_job *job = calloc(1, sizeof(*job));

	pthread_mutex_lock(&lib->lock);
	if (!job) {
		/* No memory for the hand-off: finish here, without the commit. */
		cache_writer_abort(t->writer);
		t->err = -ENOMEM;
		t->done = 1;
		transfer_unlink(lib, t);
		lib->outstanding--;
		pthread_cond_broadcast(&lib->changed);
		transfer_put(t);
	} else {
		job->t = t;
		job->res = *res;
		*lib->jobs_tail = job;
		lib->jobs_tail = &job->next;
		pthread_cond_broadcast(&lib->changed);
	}
	pthread_mutex_unlock(&lib->lock);
}

/* ---- commit workers ---- */

static void commit(struct fetch_library *lib, struct fetch_transfer *t,
		   const struct fetch_result *res)
{
	char hex[CACHE_SHA256_HEX], msg[IDX_TEXT_MAX + 1];
	int64_t size = 0, asset_id = t->asset_id;
	int err = res->err;

	if (err == 0) {
		err = cache_writer_commit(t->writer, hex, &size);
		if (err == 0)
			err = idx_asset_mark_completed(lib->idx, t->asset_id, size, hex, res->url);
		if (err < 0)
			snprintf(msg, sizeof(msg), "saving to the cache: %s", strerror(-err));
	} else {
		cache_writer_abort(t->writer);
		snprintf(msg, sizeof(msg), "%s", res->reason[0] ? res->reason : strerror(-err));
	}
	t->writer = NULL;
	if (err < 0 && err != -ECANCELED) {
		idx_asset_mark_failed(lib->idx, t->asset_id, -err, msg, res->url);
		if (err == -ENOENT)
			log_info("%s/%s: not on the origin (%s)", t->bundle, t->file, msg);
		else
			log_error("%s/%s: download failed: %s", t->bundle, t->file, msg);
	} else if (err == -ECANCELED) {
		idx_asset_mark_pending(lib->idx, t->asset_id);
	} else {
		/* New files are the most recently used: eviction takes them last. */
		idx_asset_touch(lib->idx, t->asset_id);
		log_debug("%s/%s: cached, %lld bytes", t->bundle, t->file, (long long)size);
	}
	pthread_mutex_lock(&lib->lock);
	t->err = err;
	t->done = 1;
	transfer_unlink(lib, t);
	lib->outstanding--;
	pthread_cond_broadcast(&lib->changed);
	transfer_put(t);
	pthread_mutex_unlock(&lib->lock);
	if (err == 0)
		fetch_budget_added(lib, asset_id, size);
}

static void *commit_worker(void *arg)
{
	struct fetch_library *lib = arg;

	pthread_mutex_lock(&lib->lock);
	for (;;) {
		while (!lib->jobs && !(lib->stopping && lib->outstanding == 0))
			pthread_cond_wait(&lib->changed, &lib->lock);
		if (!lib->jobs)
			break;
		struct fetch_job *job = lib->jobs;
		lib->jobs = job->next;
		if (!lib->jobs)
			lib->jobs_tail = &lib->jobs;
		pthread_mutex_unlock(&lib->lock);
		commit(lib, job->t, &job->res);
		free(job);
		pthread_mutex_lock(&lib->lock);
	}
	pthread_mutex_unlock(&lib->lock);
	return NULL;
}

int fetch_assets_start(struct fetch_library *lib)
{
	lib->jobs_tail = &lib->jobs;
	for (int i = 0; i < (int)(sizeof(lib->workers) / sizeof(lib->workers[0])); i++) {
		if (pthread_create(&lib->workers[i], NULL, commit_worker, lib) != 0)
			break;
		lib->nworkers++;
	}
	return lib->nworkers ? 0 : -EAGAIN;
}

void fetch_library_stop(struct fetch_library *lib)
{
	/* transfer_start() checks this under the lock it submits with. */
	pthread_mutex_lock(&lib->lock);
	lib->stopping = 1;
	pthread_cond_broadcast(&lib->changed);
	pthread_mutex_unlock(&lib->lock);
}

void fetch_assets_stop(struct fetch_library *lib)
{
	fetch_library_stop(lib);
	for (int i = 0; i < lib->nworkers; i++)
		pthread_join(lib->workers[i], NULL);
	lib->nworkers = 0;
}

/* ---- starting and waiting ---- */

/*
 * Start a transfer for the asset unless one is in flight; the caller holds
 * lib->lock. *out (may be NULL) gets the transfer with a reference taken.
 * Returns 1 (and no transfer) if the asset turns out complete: a transfer
 * that ended after the caller read the row is only unlinked once the index
 * says completed, so under lib->lock the row is the truth.
 */
static int transfer_start(struct fetch_library *lib, const struct idx_asset *a,
			  enum fetch_priority prio, struct fetch_transfer **out)
{
	struct fetch_transfer *t = transfer_find(lib, a->id);
	struct idx_asset now;
	char path[FETCH_URL_MAX];
	int rc;

	if (!t) {
		if (lib->stopping)
			return -ECANCELED;
		if (idx_asset_get(lib->idx, a->id, &now) == 0 && now.state == IDX_COMPLETED)
			return 1;
		rc = fetch_asset_url_path(lib->server, a->bundle, a->file, path, sizeof(path));
		if (rc < 0)
			return rc;
		t = calloc(1, sizeof(*t));
		if (!t)
			return -ENOMEM;
		t->lib = lib;
		t->asset_id = a->id;
		t->content_length = -1;
		snprintf(t->bundle, sizeof(t->bundle), "%s", a->bundle);
		snprintf(t->file, sizeof(t->file), "%s", a->file);
		rc = cache_writer_begin(lib->cache, lib->server, a->bundle, a->file, &t->writer);
		if (rc < 0) {
			/* The origin was not asked: the reason is ours to record. */
			char msg[IDX_TEXT_MAX + 1];
			snprintf(msg, sizeof(msg), "cannot write to the cache: %s", strerror(-rc));
			log_error("%s/%s: %s", a->bundle, a->file, msg);
			idx_asset_mark_failed(lib->idx, a->id, rc == -ENOENT ? EIO : -rc, msg, NULL);
			free(t);
			return rc;
		}
		idx_asset_mark_downloading(lib->idx, a->id, path);
		t->refs = 1;
		t->next = lib->transfers;
		lib->transfers = t;
		lib->outstanding++;
		const struct fetch_sink sink = { sink_begin, sink_write, sink_reset, t };
		rc = fetch_submit(lib->engine, FETCH_ASSETS, path, FETCH_GET, prio, &sink,
				  transfer_done, t);
		if (rc < 0) {
			/* The engine will not call back: undo here. */
			cache_writer_abort(t->writer);
			transfer_unlink(lib, t);
			lib->outstanding--;
			idx_asset_mark_pending(lib->idx, a->id);
			free(t);
			return rc;
		}
	}
	if (out) {
		t->refs++;
		*out = t;
	}
	return 0;
}

/* Wait for t to end, or for the library to stop (-ECANCELED; the transfer
 * goes on without this waiter); drops the reference. Caller holds lib->lock. */
static int transfer_wait(struct fetch_library *lib, struct fetch_transfer *t)
{
	while (!t->done && !lib->stopping)
		pthread_cond_wait(&lib->changed, &lib->lock);
	int err = t->done ? t->err : -ECANCELED;
	transfer_put(t);
	return err;
}

int fetch_asset_wait_inflight(struct fetch_library *lib, int64_t asset_id)
{
	pthread_mutex_lock(&lib->lock);
	struct fetch_transfer *t = transfer_find(lib, asset_id);
	if (t) {
		t->refs++;
		transfer_wait(lib, t);
	}
	pthread_mutex_unlock(&lib->lock);
	return t != NULL;
}

int fetch_asset_missing(const struct idx_asset *a)
{
	return a->state == IDX_FAILED && a->err == ENOENT &&
	       idx_now() - a->updated_at < FETCH_MISSING_RECHECK_S;
}

static int asset_open(struct fetch_library *lib, int64_t asset_id, int *fd)
{
	struct idx_asset a;
	struct fetch_transfer *t;
	int rc, made_room = 0;

	/* Two rounds: a cached file found bad is downloaded once more, or a
	 * download that ran out of space once room was made. */
	for (int round = 0; round < 3; round++) {
		rc = idx_asset_get(lib->idx, asset_id, &a);
		if (rc < 0)
			return rc;
		if (a.state == IDX_COMPLETED) {
			rc = cache_asset_open(lib->cache, a.server, a.bundle, a.file, a.size, fd);
			if (rc == 0) {
				/* The index keeps minutes: skip the query within one. */
				if (idx_now() - a.last_access >= 60)
					idx_asset_touch(lib->idx, asset_id);
				return 0;
			}
			log_warn("%s/%s: cached copy %s, downloading it again", a.bundle, a.file,
				 rc == -ESTALE ? "changed size behind our back" : "is gone");
			cache_asset_remove(lib->cache, a.server, a.bundle, a.file);
			idx_asset_mark_pending(lib->idx, asset_id);
			continue;
		}
		if (fetch_asset_missing(&a))
			return -ENOENT;
		if (round == 2)
			break;
		pthread_mutex_lock(&lib->lock);
		rc = transfer_start(lib, &a, FETCH_FOREGROUND, &t);
		if (rc == 0)
			rc = transfer_wait(lib, t);
		pthread_mutex_unlock(&lib->lock);
		if (rc == 1)
			continue; /* completed meanwhile */
		if (rc == -ENOSPC && !made_room && fetch_budget_make_room(lib, a.size)) {
			made_room = 1;
			continue;
		}
		if (rc < 0)
			return rc == -ENOENT || rc == -EFBIG || rc == -ENOSPC || rc == -ECANCELED
				       ? rc
				       : -EIO;
	}
	return -EIO;
}

int fetch_asset_open(struct fetch_library *lib, int64_t asset_id, int *fd)
{
	/* Pinned, a file downloaded for this reader is not evicted before the
	 * reader has it open (and its lock). */
	fetch_budget_pin(lib, asset_id, 1);
	int rc = asset_open(lib, asset_id, fd);
	fetch_budget_pin(lib, asset_id, 0);
	return rc;
}

void fetch_asset_queue(struct fetch_library *lib, int64_t asset_id, enum fetch_priority prio)
{
	struct idx_asset a;

	if (idx_asset_get(lib->idx, asset_id, &a) < 0 || a.state == IDX_COMPLETED ||
	    fetch_asset_missing(&a))
		return;
	pthread_mutex_lock(&lib->lock);
	transfer_start(lib, &a, prio, NULL);
	pthread_mutex_unlock(&lib->lock);
}
