/*
 * assets.c: asset bytes from the origin into the cache, once.
 *
 * A transfer exists per asset while it is in flight; every reader of that
 * asset waits on it instead of starting another (single flight). The engine
 * thread streams the body into a cache writer (plain writes into the page
 * cache); everything that waits for the disk or SQLite (progress rows, the
 * commit: fsync, rename, index update) runs on the commit workers, so the
 * engine thread never waits for either.
 *
 * A failed download (5xx, 429, network, timeout) backs off: the asset is not
 * asked for before failures * 2 times the first back-off (jitter +-25 %, at
 * least the origin's Retry-After, at most FETCH_BACKOFF_MAX_S) has passed;
 * the failure count and that time are in the index, so remounts keep them.
 */
#include <assert.h>
#include "library_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../../log/log.h"

/* The index's bytes_done is refreshed at most this often per transfer. */
#define PROGRESS_STEP (1 << 20)

struct fetch_transfer {
	struct fetch_transfer *next; /* lock */
	struct fetch_library *lib;
	int64_t asset_id;
	char bundle[IDX_BUNDLE_MAX + 1];
	char file[IDX_NAME_MAX + 1];
	pthread_cond_t ended;        /* with lock: done became 1 */
	pthread_cond_t answered;     /* with lock: heard or done became 1 */
	pthread_cond_t readable;     /* with lock: body_fd was set, or done became 1 */
	/* The engine thread's while in flight, then the committing worker's. */
	struct cache_writer *writer;
	int64_t last_progress;
	int dropped;                 /* the sink stopped it (abandoned) */
	atomic_llong content_length; /* engine thread writes, progress jobs read */
	atomic_llong bytes;          /* the same */
	atomic_int abandoned;        /* lock to set: no one wants it, the sink stops it */
	int progress_queued;         /* lock: a progress job is queued */
	int keep;                    /* lock: prefetch wants it, whoever waits */
	enum http_priority prio;    /* lock: as asked for, or raised to */
	int submitted;               /* lock: handed to the engine (or about to be) */
	int heard;                   /* lock: the answer's headers came (content_length) */
	/* lock: a read-only descriptor of the complete, checked body (the
	 * temporary the commit then renames), from the check until the commit
	 * ended; else -1. Readers take copies of it. */
	int body_fd;
	int waiters;                 /* lock */
	int done;                    /* lock */
	int err;                     /* lock: outcome once done; 1: was complete already */
	int refs;                    /* lock: waiters + in flight + queued jobs */
};

enum job_kind { JOB_COMMIT, JOB_PROGRESS };

struct fetch_job {
	struct fetch_job *next; /* lock */
	enum job_kind kind;
	struct fetch_transfer *t;
	struct http_result res; /* JOB_COMMIT */
};

int fetch_asset_url_path(const char *server, const char *bundle, const char *file, char *buf,
			 size_t len)
{
	int n = snprintf(buf, len, "/%s/%s_rip/%s", server, bundle, file);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* The back-off after the failures-th failure in a row, in ms. */
static int64_t backoff_ms(const struct fetch_library *lib, int failures, long retry_after_s)
{
	int64_t d = lib->backoff_ms, max = (int64_t)FETCH_BACKOFF_MAX_S * 1000;
	for (int i = 1; i < failures && d < max; i++)
		d *= 2;
	d += d / 4 - (int64_t)(random() % (d / 2 + 1)); /* +-25 % */
	if (d < retry_after_s * 1000)
		d = retry_after_s * 1000;
	return d > max ? max : d;
}

/* Record a failed download's back-off; logs the reason with it. */
static void backoff_record(struct fetch_library *lib, int64_t asset_id, const char *bundle,
			   const char *file, const char *why, long retry_after_s)
{
	assert(!lib_locked(lib)); /* SQL */
	struct idx_asset a;
	int failures = idx_asset_get(lib->idx, asset_id, &a) == 0 ? a.failures + 1 : 1;
	int64_t d = backoff_ms(lib, failures, retry_after_s);

	idx_asset_set_backoff(lib->idx, asset_id, failures, fetch_now_ms() + d);
	log_error("%s/%s: download failed: %s; not asked again for %lld s (failure %d)", bundle,
		  file, why, (long long)((d + 999) / 1000), failures);
}

static struct fetch_transfer *transfer_find(struct fetch_library *lib, int64_t asset_id)
{
	assert(lib_locked(lib));
	for (struct fetch_transfer *t = lib->transfers; t; t = t->next)
		if (t->asset_id == asset_id)
			return t;
	return NULL;
}

static void transfer_unlink(struct fetch_library *lib, struct fetch_transfer *t)
{
	assert(lib_locked(lib));
	for (struct fetch_transfer **p = &lib->transfers; *p; p = &(*p)->next) {
		if (*p == t) {
			*p = t->next;
			return;
		}
	}
}

static void transfer_free(struct fetch_transfer *t)
{
	pthread_cond_destroy(&t->ended);
	pthread_cond_destroy(&t->answered);
	pthread_cond_destroy(&t->readable);
	free(t);
}

/* Drop one reference; the caller holds lib->lock. */
static void transfer_put(struct fetch_transfer *t)
{
	assert(lib_locked(t->lib));
	assert(t->refs > 0);
	if (--t->refs == 0)
		transfer_free(t);
}

/* The transfer ended with err: wake its waiters, drop the flight's
 * reference. Takes lib->lock. */
static void transfer_end(struct fetch_library *lib, struct fetch_transfer *t, int err)
{
	assert(!lib_locked(lib));
	lib_lock(lib);
	int body_fd = t->body_fd;
	t->body_fd = -1;
	t->err = err;
	t->done = 1;
	transfer_unlink(lib, t);
	if (--lib->outstanding == 0 && lib->stopping)
		pthread_cond_broadcast(&lib->job_ready);
	pthread_cond_broadcast(&t->ended);
	pthread_cond_broadcast(&t->answered);
	pthread_cond_broadcast(&t->readable);
	transfer_put(t);
	lib_unlock(lib);
	if (body_fd >= 0)
		close(body_fd); /* readers hold their own copies */
}

/* Queue a job for the workers (it holds a reference on its transfer); the
 * caller holds lib->lock. */
static void job_push(struct fetch_library *lib, struct fetch_job *job)
{
	assert(lib_locked(lib));
	*lib->jobs_tail = job;
	lib->jobs_tail = &job->next;
	pthread_cond_signal(&lib->job_ready);
}

/* ---- the sink: engine thread ---- */

/* Hand a progress row to the workers, unless one is queued already. */
static void progress_queue(struct fetch_transfer *t);

/* The answer's headers: a stat waiting for the size has it now, and the
 * index soon (a progress row carries it). */
static int sink_begin(void *ctx, int64_t content_length)
{
	struct fetch_transfer *t = ctx;
	struct fetch_library *lib = t->lib;

	atomic_store(&t->content_length, content_length);
	lib_lock(lib);
	t->heard = 1;
	pthread_cond_broadcast(&t->answered);
	lib_unlock(lib);
	if (content_length >= 0)
		progress_queue(t);
	return 0;
}

static void progress_queue(struct fetch_transfer *t)
{
	struct fetch_library *lib = t->lib;
	struct fetch_job *job = calloc(1, sizeof(*job));

	if (!job)
		return; /* progress is a hint: skip this one */
	job->kind = JOB_PROGRESS;
	job->t = t;
	lib_lock(lib);
	if (!t->progress_queued) {
		t->progress_queued = 1;
		t->refs++;
		job_push(lib, job);
		job = NULL;
	}
	lib_unlock(lib);
	free(job);
}

static int sink_write(void *ctx, const void *buf, size_t n)
{
	struct fetch_transfer *t = ctx;
	if (atomic_load(&t->abandoned)) {
		t->dropped = 1;
		return -ECANCELED;
	}
	int rc = cache_writer_write(t->writer, buf, n);
	if (rc < 0)
		return rc;
	int64_t done = cache_writer_size(t->writer);
	atomic_store(&t->bytes, done);
	if (done - t->last_progress >= PROGRESS_STEP) {
		t->last_progress = done;
		progress_queue(t);
	}
	return 0;
}

static int sink_reset(void *ctx)
{
	struct fetch_transfer *t = ctx;
	t->last_progress = 0;
	atomic_store(&t->bytes, 0);
	return cache_writer_reset(t->writer);
}

static void transfer_done(void *arg, const struct http_result *res)
{
	struct fetch_transfer *t = arg;
	struct fetch_library *lib = t->lib;
	struct fetch_job *job = calloc(1, sizeof(*job));

	if (!job) {
		/* No memory for the hand-off: finish here, without the commit. */
		cache_writer_abort(t->writer);
		transfer_end(lib, t, -ENOMEM);
		return;
	}
	job->kind = JOB_COMMIT;
	job->t = t;
	job->res = *res;
	lib_lock(lib);
	job_push(lib, job); /* with the flight's reference */
	lib_unlock(lib);
}

/* ---- commit workers ---- */

/* The index row and the log for a transfer that ended with err. */
static void record_outcome(struct fetch_library *lib, struct fetch_transfer *t, int err,
			   const char *msg, const struct http_result *res, int64_t size)
{
	assert(!lib_locked(lib)); /* SQL */
	if (err == -ECANCELED) {
		idx_asset_mark_pending(lib->idx, t->asset_id);
	} else if (err < 0) {
		idx_asset_mark_failed(lib->idx, t->asset_id, -err, msg, res->url);
		if (err == -ENOENT)
			log_info("%s/%s: not on the origin (%s)", t->bundle, t->file, msg);
		else if (err == -EIO || err == -EFBIG)
			backoff_record(lib, t->asset_id, t->bundle, t->file, msg,
				       res->retry_after_s);
		else
			log_error("%s/%s: download failed: %s", t->bundle, t->file, msg);
	} else {
		/* New files are the most recently used: eviction takes them last. */
		idx_asset_touch(lib->idx, t->asset_id);
		log_debug("%s/%s: cached, %lld bytes", t->bundle, t->file, (long long)size);
	}
}

/* The body is complete: if its length is right (what the Content-Length
 * said, when there was one), hand readers a descriptor of it now, before
 * the fsyncs and the index (DESIGN §9). 0, or -EIO (msg says why). */
static int serve_body(struct fetch_library *lib, struct fetch_transfer *t, char *msg,
		      size_t len)
{
	int64_t want = atomic_load(&t->content_length), got = cache_writer_size(t->writer);
	int fd;

	if (want >= 0 && got != want) {
		snprintf(msg, len, "%lld bytes instead of the %lld the origin announced",
			 (long long)got, (long long)want);
		return -EIO;
	}
	/* Bytes that may be another version than the one the kernel was
	 * told of (its size differs, or a hash was known) wait for the commit,
	 * which settles the version (DESIGN §7): readers then see which. */
	struct idx_asset a;
	if (idx_asset_get(lib->idx, t->asset_id, &a) < 0 || a.ver_sha256[0] ||
	    (a.ver_size >= 0 && a.ver_size != got))
		return 0;
	if (cache_writer_reader(t->writer, &fd) < 0)
		return 0; /* its readers wait for the commit instead */
	lib_lock(lib);
	t->body_fd = fd;
	pthread_cond_broadcast(&t->readable);
	lib_unlock(lib);
#ifdef L2DFS_TEST_HOOKS
	/* L2DFS_TEST_COMMIT_DELAY_MS stretches the commit that follows, so
	 * that a test sees readers served before it. */
	if (lib->commit_delay_ms > 0)
		usleep((useconds_t)lib->commit_delay_ms * 1000);
#endif
	return 0;
}

static void commit(struct fetch_library *lib, struct fetch_transfer *t,
		   const struct http_result *res)
{
	char hex[CACHE_SHA256_HEX], msg[IDX_TEXT_MAX + 1];
	int64_t size = 0, stamp = 0, asset_id = t->asset_id;
	int err = res->err;

	if (err == 0 && (err = serve_body(lib, t, msg, sizeof(msg))) < 0) {
		cache_writer_abort(t->writer);
	} else if (err == 0) {
		err = cache_writer_commit(t->writer, hex, &size, &stamp);
		if (err == 0)
			err = idx_asset_mark_completed(lib->idx, t->asset_id, size, hex, res->url,
						       stamp);
		if (err < 0)
			snprintf(msg, sizeof(msg), "saving to the cache: %s", strerror(-err));
	} else {
		cache_writer_abort(t->writer);
		snprintf(msg, sizeof(msg), "%s", res->reason[0] ? res->reason : strerror(-err));
	}
	t->writer = NULL;
	record_outcome(lib, t, err, msg, res, size);
	/* Stopped because no one wanted it: a newcomer starts it again. */
	if (err == -ECANCELED && t->dropped)
		err = -EAGAIN;
	transfer_end(lib, t, err);
	if (err == 0)
		fetch_budget_added(lib, asset_id, size);
}

static void progress_write(struct fetch_library *lib, struct fetch_transfer *t)
{
	lib_lock(lib);
	t->progress_queued = 0;
	lib_unlock(lib);
	idx_asset_mark_progress(lib->idx, t->asset_id, atomic_load(&t->bytes),
				atomic_load(&t->content_length));
	lib_lock(lib);
	transfer_put(t);
	lib_unlock(lib);
}

static void *commit_worker(void *arg)
{
	struct fetch_library *lib = arg;

	lib_lock(lib);
	for (;;) {
		while (!lib->jobs && !(lib->stopping && lib->outstanding == 0))
			lib_cond_wait(lib, &lib->job_ready);
		if (!lib->jobs)
			break;
		struct fetch_job *job = lib->jobs;
		lib->jobs = job->next;
		if (!lib->jobs)
			lib->jobs_tail = &lib->jobs;
		lib->working++;
		lib_unlock(lib);
		if (job->kind == JOB_COMMIT)
			commit(lib, job->t, &job->res);
		else
			progress_write(lib, job->t);
		free(job);
		lib_lock(lib);
		if (--lib->working == 0 && !lib->jobs)
			pthread_cond_broadcast(&lib->jobs_idle);
	}
	/* The others may be waiting for the same condition. */
	pthread_cond_broadcast(&lib->job_ready);
	lib_unlock(lib);
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
	/* transfer_start() checks this under the lock it links transfers with. */
	lib_lock(lib);
	lib->stopping = 1;
	pthread_cond_broadcast(&lib->job_ready);
	for (struct fetch_transfer *t = lib->transfers; t; t = t->next)
		pthread_cond_broadcast(&t->ended);
	lib_unlock(lib);
}

void fetch_assets_stop(struct fetch_library *lib)
{
	fetch_library_stop(lib);
	for (int i = 0; i < lib->nworkers; i++)
		pthread_join(lib->workers[i], NULL);
	lib->nworkers = 0;
}

/* ---- starting and waiting ---- */

/* Set up and submit a transfer just linked, at its priority; on any
 * failure (or if the asset turns out complete: err 1) end it. No lock held: this waits for
 * SQLite and the disk. */
static void transfer_launch(struct fetch_library *lib, struct fetch_transfer *t)
{
	assert(!lib_locked(lib)); /* SQLite and the disk */
	enum http_priority prio;
	struct idx_asset now;
	char path[HTTP_URL_MAX], msg[IDX_TEXT_MAX + 1];
	int rc;

	/* Linked before this read: a transfer that ended earlier wrote its
	 * outcome to the index before it was unlinked. */
	if (idx_asset_get(lib->idx, t->asset_id, &now) == 0 && now.state == IDX_COMPLETED) {
		transfer_end(lib, t, 1);
		return;
	}
	rc = fetch_asset_url_path(lib->server, t->bundle, t->file, path, sizeof(path));
	if (rc == 0)
		rc = cache_writer_begin(lib->cache, lib->server, t->bundle, t->file, &t->writer);
	if (rc < 0) {
		/* The origin was not asked: the reason is ours to record. */
		snprintf(msg, sizeof(msg), "cannot write to the cache: %s", strerror(-rc));
		log_error("%s/%s: %s", t->bundle, t->file, msg);
		idx_asset_mark_failed(lib->idx, t->asset_id, rc == -ENOENT ? EIO : -rc, msg, NULL);
		transfer_end(lib, t, rc);
		return;
	}
	idx_asset_mark_downloading(lib->idx, t->asset_id, path);
	const struct http_sink sink = { sink_begin, sink_write, sink_reset, t };
	lib_lock(lib);
	prio = t->prio; /* raised meanwhile? */
	t->submitted = 1;
	t->refs++; /* it may end before the check below */
	lib_unlock(lib);
	rc = http_submit(lib->engine, HTTP_ASSETS, path, HTTP_GET, prio, &sink, transfer_done,
			  t);
	if (rc < 0) {
		/* The engine will not call back: undo here. */
		cache_writer_abort(t->writer);
		idx_asset_mark_pending(lib->idx, t->asset_id);
		transfer_end(lib, t, rc);
	} else {
		/* A raise between the read above and the submit found nothing
		 * queued: do it now. */
		lib_lock(lib);
		enum http_priority now = t->prio;
		lib_unlock(lib);
		if (now < prio)
			http_promote(lib->engine, transfer_done, t, now);
	}
	lib_lock(lib);
	transfer_put(t);
	lib_unlock(lib);
}

/* Raise t's request to prio unless it is there or ahead; the caller holds
 * a reference on t, not the lock. */
static void transfer_raise(struct fetch_library *lib, struct fetch_transfer *t,
			   enum http_priority prio)
{
	assert(!lib_locked(lib));
	assert(t->refs > 0);
	lib_lock(lib);
	int raise = prio < t->prio && !t->done, submitted = t->submitted;
	if (raise)
		t->prio = prio;
	lib_unlock(lib);
	/* Not submitted yet: transfer_launch() submits it at the new one. */
	if (raise && submitted)
		http_promote(lib->engine, transfer_done, t, prio);
}

/* A transfer never linked (no one else saw it). */
static void transfer_free_unused(struct fetch_transfer *t)
{
	if (t)
		transfer_free(t);
}

static struct fetch_transfer *transfer_new(struct fetch_library *lib, const struct idx_asset *a)
{
	struct fetch_transfer *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->lib = lib;
	t->asset_id = a->id;
	atomic_init(&t->content_length, -1);
	snprintf(t->bundle, sizeof(t->bundle), "%s", a->bundle);
	snprintf(t->file, sizeof(t->file), "%s", a->file);
	pthread_cond_init(&t->ended, NULL);
	pthread_cond_init(&t->answered, NULL);
	pthread_cond_init(&t->readable, NULL);
	t->body_fd = -1;
	t->refs = 1;
	return t;
}

/*
 * Join the transfer of the asset, starting one unless one is in flight.
 * keep: prefetch wants it (it goes on without waiters). *out (may be NULL)
 * gets the transfer with a waiter's reference taken.
 */
static int transfer_start(struct fetch_library *lib, const struct idx_asset *a,
			  enum http_priority prio, int keep, struct fetch_transfer **out)
{
	assert(!lib_locked(lib));
	struct fetch_transfer *t, *fresh = transfer_new(lib, a);
	int created = 0, stopping;

	lib_lock(lib);
	t = transfer_find(lib, a->id);
	stopping = lib->stopping;
	if (!t && (stopping || !fresh)) {
		lib_unlock(lib);
		transfer_free_unused(fresh);
		return stopping ? -ECANCELED : -ENOMEM;
	}
	if (!t) {
		t = fresh, created = 1;
		t->prio = prio;
		t->next = lib->transfers;
		lib->transfers = t;
		lib->outstanding++;
	}
	t->keep |= keep;
	t->refs++; /* the waiter's, or ours until the raise below */
	if (out) {
		t->waiters++;
		atomic_store(&t->abandoned, 0);
		*out = t;
	}
	lib_unlock(lib);
	if (created) {
		transfer_launch(lib, t);
	} else {
		transfer_free_unused(fresh);
		transfer_raise(lib, t, prio);
	}
	if (!out) {
		lib_lock(lib);
		transfer_put(t);
		lib_unlock(lib);
	}
	return 0;
}

/* What a waiter waits for: the transfer's end (the commit included), its
 * answer's headers, or its body (complete, checked, not yet committed). */
enum until { UNTIL_ENDED, UNTIL_ANSWERED, UNTIL_READABLE };

/* 1 once what until names is there, short of the end. Caller holds lib->lock. */
static int reached(const struct fetch_transfer *t, enum until until)
{
	assert(lib_locked(t->lib));
	return until == UNTIL_ANSWERED ? t->heard : until == UNTIL_READABLE && t->body_fd >= 0;
}

/*
 * Wait (with lib->lock held) until t ends, or reaches until: then 2, with
 * *fd a copy of its body's descriptor (UNTIL_READABLE; fcntl() does not
 * wait for the disk). Else t's outcome, -ECANCELED once the library stops
 * or -EINTR once this thread's cancel token fires. Drops the waiter's
 * reference; a transfer left with no waiter and no prefetch interest is
 * abandoned.
 */
static int transfer_wait(struct fetch_library *lib, struct fetch_transfer *t, enum until until,
			 int *fd)
{
	assert(lib_locked(lib));
	assert(t->refs > 0);
	pthread_cond_t *cond = until == UNTIL_ANSWERED	? &t->answered
			       : until == UNTIL_READABLE ? &t->readable
							 : &t->ended;
	int rc = 0, err;

	while (!t->done && !reached(t, until) && !lib->stopping && rc == 0)
		rc = fetch_wait(lib, cond);
	if (!t->done && reached(t, until)) {
		err = 2;
		if (until == UNTIL_READABLE) {
			*fd = fcntl(t->body_fd, F_DUPFD_CLOEXEC, 0);
			err = *fd < 0 ? -errno : 2;
		}
	} else {
		err = t->done ? t->err : rc < 0 ? rc : -ECANCELED;
	}
	if (--t->waiters == 0 && !t->done && !t->keep)
		atomic_store(&t->abandoned, 1);
	transfer_put(t);
	return err;
}

int fetch_asset_inflight(struct fetch_library *lib, int64_t asset_id)
{
	lib_lock(lib);
	int found = transfer_find(lib, asset_id) != NULL;
	lib_unlock(lib);
	return found;
}

int fetch_asset_answered(struct fetch_library *lib, int64_t asset_id, enum http_priority prio,
			 int64_t *size)
{
	struct fetch_transfer *t;

	lib_lock(lib);
	t = transfer_find(lib, asset_id);
	if (t) {
		t->refs += 2; /* the waiter's, and one to read it after */
		t->waiters++;
	}
	lib_unlock(lib);
	if (!t)
		return 0;
	transfer_raise(lib, t, prio);
	lib_lock(lib);
	int rc = transfer_wait(lib, t, UNTIL_ANSWERED, NULL);
	*size = rc == 2 ? atomic_load(&t->content_length) : -1;
	transfer_put(t);
	lib_unlock(lib);
	return rc == -EINTR ? -EINTR : 1;
}

int fetch_asset_settle(struct fetch_library *lib, int64_t asset_id)
{
	int rc = 0;

	lib_lock(lib);
	struct fetch_transfer *t = transfer_find(lib, asset_id);
	if (t && t->body_fd >= 0 && !t->done) {
		t->refs++;
		t->waiters++;
		rc = transfer_wait(lib, t, UNTIL_ENDED, NULL);
	}
	lib_unlock(lib);
	return rc == -EINTR ? -EINTR : 0;
}

/* The cached copy of a completed asset: 0 with *fd, or -EAGAIN once it was
 * found bad and forgotten (download it again). */
static int cached_open(struct fetch_library *lib, const struct idx_asset *a, int *fd)
{
	assert(!lib_locked(lib)); /* the disk */
	int rc = cache_asset_open(lib->cache, a->server, a->bundle, a->file, a->size, a->stamp,
				  fd);
	if (rc == 0) {
		/* The index keeps minutes: skip the query within one. */
		if (idx_now() - a->last_access >= 60)
			idx_asset_touch(lib->idx, a->id);
		return 0;
	}
	log_warn("%s/%s: cached copy %s, downloading it again", a->bundle, a->file,
		 rc == -ESTALE ? "changed behind our back" : "is gone");
	cache_asset_remove(lib->cache, a->server, a->bundle, a->file);
	idx_asset_mark_pending(lib->idx, a->id);
	return -EAGAIN;
}

/* Wait until the commit workers are idle: 0, or -EINTR. */
static int commits_wait(struct fetch_library *lib)
{
	int rc = 0;

	lib_lock(lib);
	while (rc == 0 && (lib->jobs || lib->working))
		rc = fetch_wait(lib, &lib->jobs_idle);
	lib_unlock(lib);
	return rc;
}

/* Download the asset (or join its transfer) and wait: 0 when it ended
 * well, 1 if it was complete already, 2 with *fd if early and its body is
 * there before the commit, else the error. */
static int download_wait(struct fetch_library *lib, const struct idx_asset *a, int early,
			 int *fd)
{
	struct fetch_transfer *t;
	int rc = transfer_start(lib, a, HTTP_FOREGROUND, 0, &t);

	if (rc < 0)
		return rc;
	lib_lock(lib);
	rc = transfer_wait(lib, t, early ? UNTIL_READABLE : UNTIL_ENDED, fd);
	lib_unlock(lib);
	return rc;
}

static int asset_open(struct fetch_library *lib, int64_t asset_id, int early, int *fd)
{
	assert(!lib_locked(lib));
	struct idx_asset a;
	int rc, made_room = 0;

	/* A few rounds: a cached file found bad is downloaded once more, a
	 * download that ran out of space after room was made (twice at most),
	 * one abandoned by
	 * its readers is started again. */
	for (int round = 0; round < 4; round++) {
		rc = idx_asset_get(lib->idx, asset_id, &a);
		if (rc < 0)
			return rc;
		if (a.state == IDX_COMPLETED) {
			rc = cached_open(lib, &a, fd);
			if (rc == 0)
				return 0;
			continue;
		}
		if (fetch_asset_missing(&a))
			return -ENOENT;
		if (fetch_asset_backing_off(&a))
			return a.err == EFBIG ? -EFBIG : -EIO;
		if (round == 3)
			break;
		rc = download_wait(lib, &a, early, fd);
		if (rc == 2)
			return 0;
		if (rc == 1 || rc == -EAGAIN)
			continue; /* completed meanwhile, or start again */
		/* Bodies served before their commit become evictable once
		 * committed: let those commits end before making room. */
		if (rc == -ENOSPC && made_room < 2 && commits_wait(lib) == 0 &&
		    fetch_budget_make_room(lib, a.size)) {
			made_room++;
			continue;
		}
		if (rc < 0)
			return rc == -ENOENT || rc == -EFBIG || rc == -ENOSPC || rc == -ECANCELED ||
					       rc == -EINTR
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
	int rc = asset_open(lib, asset_id, 0, fd);
	fetch_budget_pin(lib, asset_id, 0);
	return rc;
}

int fetch_asset_read(struct fetch_library *lib, int64_t asset_id, int *fd)
{
	/* A body served before its commit is not evictable yet (its row is not
	 * completed) and its lock keeps eviction away after. */
	fetch_budget_pin(lib, asset_id, 1);
	int rc = asset_open(lib, asset_id, 1, fd);
	fetch_budget_pin(lib, asset_id, 0);
	return rc;
}

void fetch_asset_queue(struct fetch_library *lib, int64_t asset_id, enum http_priority prio)
{
	struct idx_asset a;

	if (idx_asset_get(lib->idx, asset_id, &a) < 0 || a.state == IDX_COMPLETED ||
	    fetch_asset_missing(&a) || fetch_asset_backing_off(&a))
		return;
	transfer_start(lib, &a, prio, prio == HTTP_BACKGROUND, NULL);
}

int fetch_library_clear_backoff(struct fetch_library *lib)
{
	return idx_asset_clear_backoff(lib->idx);
}
