/*
 * assets.c: asset bytes from the origin into the cache, once.
 *
 * A request (request.c) exists per asset while its download is under way;
 * every reader of that asset joins it instead of starting another (single
 * flight). The engine
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
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../../log/log.h"

/* The index's bytes_done is refreshed at most this often per transfer. */
#define PROGRESS_STEP (1 << 20)

enum job_kind { JOB_COMMIT, JOB_PROGRESS };

struct fetch_job {
	struct fetch_job *next; /* lock */
	enum job_kind kind;
	struct fetch_request *r;
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

static struct fetch_request *download_find(struct fetch_library *lib, int64_t asset_id)
{
	assert(lib_locked(lib));
	for (struct fetch_request *r = lib->downloads; r; r = r->next)
		if (r->asset_id == asset_id)
			return r;
	return NULL;
}

/* End r with err (lock not held): a served body's descriptor and the
 * followers' are closed after (readers hold their own copies). */
static void download_end(struct fetch_library *lib, struct fetch_request *r, int err)
{
	assert(!lib_locked(lib));
	lib_lock(lib);
	int body_fd = r->body_fd, follow_fd = r->follow_fd;
	r->body_fd = r->follow_fd = -1;
	request_end(lib, r, err);
	lib_unlock(lib);
	if (body_fd >= 0)
		close(body_fd);
	if (follow_fd >= 0)
		close(follow_fd);
}

/* Queue a job for the workers (it holds a reference on its request); the
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
static void progress_queue(struct fetch_request *r);

/* The answer's headers: a stat waiting for the size has it now, and the
 * index soon (a progress row carries it). */
static int sink_begin(void *ctx, int64_t content_length)
{
	struct fetch_request *r = ctx;
	struct fetch_library *lib = r->lib;

	if (!request_wanted(r))
		return -ECANCELED;
	atomic_store(&r->content_length, content_length);
	lib_lock(lib);
	request_heard(lib, r);
	lib_unlock(lib);
	if (content_length >= 0)
		progress_queue(r);
	return 0;
}

static void progress_queue(struct fetch_request *r)
{
	struct fetch_library *lib = r->lib;
	struct fetch_job *job = calloc(1, sizeof(*job));

	if (!job)
		return; /* progress is a hint: skip this one */
	job->kind = JOB_PROGRESS;
	job->r = r;
	lib_lock(lib);
	if (!r->progress_queued) {
		r->progress_queued = 1;
		r->refs++;
		job_push(lib, job);
		job = NULL;
	}
	lib_unlock(lib);
	free(job);
}

static int sink_write(void *ctx, const void *buf, size_t n)
{
	struct fetch_request *r = ctx;
	if (!request_wanted(r))
		return -ECANCELED;
	int rc = cache_writer_write(r->writer, buf, n);
	if (rc < 0)
		return rc;
	int64_t done = cache_writer_size(r->writer);
	request_grew(r, done);
	if (done - r->last_progress >= PROGRESS_STEP) {
		r->last_progress = done;
		progress_queue(r);
	}
	return 0;
}

static int sink_reset(void *ctx)
{
	struct fetch_request *r = ctx;
	r->last_progress = 0;
	int rc = cache_writer_reset(r->writer);
	request_grew(r, 0);
	return rc;
}

void fetch_asset_done(void *arg, const struct http_result *res)
{
	struct fetch_request *r = arg;
	struct fetch_library *lib = r->lib;
	struct fetch_job *job = calloc(1, sizeof(*job));

	r->res = *res;
	if (!job) {
		/* No memory for the hand-off: finish here, without the commit. */
		cache_writer_abort(r->writer);
		download_end(lib, r, -ENOMEM);
		return;
	}
	job->kind = JOB_COMMIT;
	job->r = r;
	lib_lock(lib);
	request_received(lib, r);
	job_push(lib, job); /* with the flight's reference */
	lib_unlock(lib);
}

/* ---- commit workers ---- */

/* The index row and the log for a download that ended with err. */
static void record_outcome(struct fetch_library *lib, struct fetch_request *r, int err,
			   const char *msg, int64_t size)
{
	assert(!lib_locked(lib)); /* SQL */
	if (err == -ECANCELED) {
		idx_asset_mark_pending(lib->idx, r->asset_id);
	} else if (err < 0) {
		idx_asset_mark_failed(lib->idx, r->asset_id, -err, msg, r->res.url);
		if (err == -ENOENT)
			log_info("%s/%s: not on the origin (%s)", r->bundle, r->file, msg);
		else if (err == -EIO || err == -EFBIG)
			backoff_record(lib, r->asset_id, r->bundle, r->file, msg,
				       r->res.retry_after_s);
		else
			log_error("%s/%s: download failed: %s", r->bundle, r->file, msg);
	} else {
		/* New files are the most recently used: eviction takes them last. */
		idx_asset_touch(lib->idx, r->asset_id);
		log_debug("%s/%s: cached, %lld bytes", r->bundle, r->file, (long long)size);
	}
}

/* The body is complete: if its length is right (what the Content-Length
 * said, when there was one), hand readers a descriptor of it now, before
 * the fsyncs and the index (DESIGN §9). 0, or -EIO (msg says why). */
static int serve_body(struct fetch_library *lib, struct fetch_request *r, char *msg, size_t len)
{
	int64_t want = atomic_load(&r->content_length), got = cache_writer_size(r->writer);
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
	if (idx_asset_get(lib->idx, r->asset_id, &a) < 0 || a.ver_sha256[0] ||
	    (a.ver_size >= 0 && a.ver_size != got))
		return 0;
	if (cache_writer_reader(r->writer, &fd) < 0)
		return 0; /* its readers wait for the commit instead */
	lib_lock(lib);
	request_serve(lib, r, fd);
	lib_unlock(lib);
#ifdef L2DFS_TEST_HOOKS
	/* L2DFS_TEST_COMMIT_DELAY_MS stretches the commit that follows, so
	 * that a test sees readers served before it. */
	if (lib->commit_delay_ms > 0)
		usleep((useconds_t)lib->commit_delay_ms * 1000);
#endif
	return 0;
}

/* The file at a completed row's cache path: 0 if it is the one the row
 * recorded (a regular file of its size and stamp), -ESTALE if it is
 * another (changed behind our back), -ENOENT if there is none. */
static int cached_check(struct fetch_library *lib, const struct idx_asset *a)
{
	assert(!lib_locked(lib)); /* the disk */
	struct stat st;

	if (cache_asset_stat(lib->cache, a->server, a->bundle, a->file, &st) < 0 ||
	    !S_ISREG(st.st_mode))
		return -ENOENT;
	/* As cache_asset_open() checks: a row of before the stamps has 0. */
	return st.st_size == a->size && (a->stamp <= 0 || cache_stamp(&st) == a->stamp) ? 0
												: -ESTALE;
}

/* A body fsynced and hashed, to be published with its row. */
struct publish {
	struct fetch_library *lib;
	struct fetch_request *r;
	const char *sha256;
	int64_t size, stamp;
	int dropped; /* out: these bytes were committed there already */
};

/*
 * In the index's write transaction: rename the body over the asset's name
 * and mark the row completed, one step for every other process. Two
 * processes downloading one asset would otherwise interleave (rename,
 * rename, mark, mark) and leave a row whose stamp is not its file's, which
 * a reader takes for a damaged copy and removes. The transaction holds
 * the index's write lock across one rename, which waits for no data (the
 * body was fsynced before); the folder's fsync comes after it.
 */
static int publish_txn(void *arg)
{
	struct publish *p = arg;
	struct fetch_library *lib = p->lib;
	struct idx_asset a;

	assert(!lib_locked(lib)); /* SQL and the disk */
	int rc = idx_asset_get(lib->idx, p->r->asset_id, &a);
	if (rc < 0)
		return rc;
	/* Another process committed these very bytes first: keep its file. A
	 * new inode for them would only make readers holding its row's stamp
	 * take it for damaged (other bytes are a new version, published). */
	if (a.state == IDX_COMPLETED && strcmp(a.sha256, p->sha256) == 0 &&
	    cached_check(lib, &a) == 0) {
		p->dropped = 1;
		return 0;
	}
	rc = cache_writer_publish(p->r->writer);
#ifdef L2DFS_TEST_HOOKS
	/* L2DFS_TEST_PUBLISH_DELAY_MS: a file renamed and its row not yet
	 * written, for as long as a test needs to look between the two. */
	if (rc == 0 && lib->publish_delay_ms > 0)
		usleep((useconds_t)lib->publish_delay_ms * 1000);
#endif
	if (rc == 0)
		rc = idx_asset_mark_completed(lib->idx, a.id, p->size, p->sha256, p->r->res.url,
					      p->stamp);
	return rc;
}

/* Commit a body: fsync and hash it (no lock held), then publish it with its
 * row (publish_txn()). 0, *size and *dropped (no new file: another process
 * had committed the same bytes), or the error. */
static int commit_body(struct fetch_library *lib, struct fetch_request *r, int64_t *size,
		       int *dropped)
{
	assert(!lib_locked(lib)); /* SQL and the disk */
	char hex[CACHE_SHA256_HEX];
	struct publish p = { lib, r, hex, 0, 0, 0 };
	int err = cache_writer_prepare(r->writer, hex, &p.size, &p.stamp);

	if (err == 0)
		err = idx_write(lib->idx, publish_txn, &p);
	/* The file and its row are there: a crash that loses the rename leaves
	 * a row whose file is gone or not the one stamped, downloaded again. */
	int synced = cache_writer_finish(r->writer);
	if (err == 0 && synced < 0)
		log_warn("%s/%s: syncing its folder: %s", r->bundle, r->file, strerror(-synced));
	*size = p.size;
	*dropped = p.dropped;
	return err;
}

static void commit(struct fetch_library *lib, struct fetch_request *r)
{
	char msg[IDX_TEXT_MAX + 1];
	int64_t size = 0, asset_id = r->asset_id;
	int err = r->res.err, dropped = 0;

	if (err == 0 && (err = serve_body(lib, r, msg, sizeof(msg))) < 0) {
		cache_writer_abort(r->writer);
	} else if (err == 0) {
		err = commit_body(lib, r, &size, &dropped);
		if (err < 0)
			snprintf(msg, sizeof(msg), "saving to the cache: %s", strerror(-err));
	} else {
		cache_writer_abort(r->writer);
		snprintf(msg, sizeof(msg), "%s",
			 r->res.reason[0] ? r->res.reason : strerror(-err));
	}
	r->writer = NULL;
	record_outcome(lib, r, err, msg, size);
	download_end(lib, r, err);
	if (err == 0 && !dropped)
		fetch_budget_added(lib, asset_id, size);
}

static void progress_write(struct fetch_library *lib, struct fetch_request *r)
{
	lib_lock(lib);
	r->progress_queued = 0;
	lib_unlock(lib);
	idx_asset_mark_progress(lib->idx, r->asset_id, atomic_load(&r->bytes),
				atomic_load(&r->content_length));
	lib_lock(lib);
	fetch_request_put(r);
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
			commit(lib, job->r);
		else
			progress_write(lib, job->r);
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
	/* download_start() checks this under the lock it links downloads with. */
	lib_lock(lib);
	lib->stopping = 1;
	pthread_cond_broadcast(&lib->job_ready);
	for (struct fetch_request *r = lib->downloads; r; r = r->next) {
		pthread_cond_broadcast(&r->changed);
		pthread_cond_broadcast(&r->grew);
	}
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

/* Open the cache temporary of r and mark the row downloading: 0, 1 when
 * the row is completed (nothing to download), or the error (recorded). */
static int download_prepare(struct fetch_library *lib, struct fetch_request *r, char *path)
{
	assert(!lib_locked(lib)); /* SQLite and the disk */
	char msg[IDX_TEXT_MAX + 1];
	int rc = fetch_asset_url_path(lib->server, r->bundle, r->file, path, HTTP_URL_MAX);

	if (rc == 0)
		rc = cache_writer_begin(lib->cache, lib->server, r->bundle, r->file, &r->writer);
	if (rc < 0) {
		/* The origin was not asked: the reason is ours to record. */
		snprintf(msg, sizeof(msg), "cannot write to the cache: %s", strerror(-rc));
		log_error("%s/%s: %s", r->bundle, r->file, msg);
		idx_asset_mark_failed(lib->idx, r->asset_id, rc == -ENOENT ? EIO : -rc, msg, NULL);
		return rc;
	}
	/* Another process may have completed it since the launcher read the
	 * row: its file stays, and no second copy is renamed over it. */
	if (idx_asset_mark_downloading(lib->idx, r->asset_id, path) == -ENOENT) {
		cache_writer_abort(r->writer);
		r->writer = NULL;
		return 1;
	}
	return 0;
}

/* A raise between the launcher's read of r->prio and its submit found
 * nothing queued: promote r to where it was raised since (submitted at
 * prio; the caller holds a reference). */
static void download_promote(struct fetch_library *lib, struct fetch_request *r,
			     enum http_priority prio)
{
	assert(!lib_locked(lib));
	lib_lock(lib);
	enum http_priority now = r->prio;
	lib_unlock(lib);
	if (now < prio)
		http_promote(lib->engine, fetch_asset_done, r, now);
}

/* Set up and submit a download just linked (PENDING), at its priority; on
 * any failure (or if the asset turns out complete) end it. follow: open
 * the followers' descriptor of the temporary. The caller holds a
 * reference. No lock held: this waits for SQLite and the disk. */
static void download_launch(struct fetch_library *lib, struct fetch_request *r, int follow)
{
	assert(!lib_locked(lib)); /* SQLite and the disk */
	struct idx_asset now;
	char path[HTTP_URL_MAX];

	/* Linked before this read: a download that ended earlier wrote its
	 * outcome to the index before it was unlinked. */
	if (idx_asset_get(lib->idx, r->asset_id, &now) == 0 && now.state == IDX_COMPLETED) {
		download_end(lib, r, 0);
		return;
	}
	int rc = download_prepare(lib, r, path), fd;
	if (rc != 0) {
		download_end(lib, r, rc < 0 ? rc : 0);
		return;
	}
	if (follow && cache_writer_reader(r->writer, &fd) == 0) {
		lib_lock(lib);
		r->follow_fd = fd;
		lib_unlock(lib);
	}
	const struct http_sink sink = { sink_begin, sink_write, sink_reset, r, request_wanted };
	lib_lock(lib);
	int abandoned = request_submit(lib, r) < 0;
	enum http_priority prio = r->prio; /* raised meanwhile? */
	lib_unlock(lib);
	rc = abandoned ? -ECANCELED
		       : http_submit(lib->engine, HTTP_ASSETS, path, HTTP_GET, prio, &sink,
				     fetch_asset_done, r);
	if (rc < 0) {
		/* Abandoned before it was asked, or the engine refused it. */
		cache_writer_abort(r->writer);
		idx_asset_mark_pending(lib->idx, r->asset_id);
	}
	if (rc < 0)
		download_end(lib, r, rc); /* the engine will not call back */
	if (rc == 0)
		download_promote(lib, r, prio);
}

static struct fetch_request *download_new(struct fetch_library *lib, const struct idx_asset *a,
					  enum http_priority prio)
{
	assert(lib_locked(lib));
	struct fetch_request *r = fetch_request_new(lib, FETCH_REQ_ASSET, prio);

	if (!r)
		return NULL;
	r->asset_id = a->id;
	snprintf(r->bundle, sizeof(r->bundle), "%s", a->bundle);
	snprintf(r->file, sizeof(r->file), "%s", a->file);
	r->next = lib->downloads;
	lib->downloads = r;
	return r;
}

/* How a download is started: prefetch keeps it (it goes on without
 * waiters); a follower reads its temporary as it grows. */
enum { DL_KEEP = 1, DL_FOLLOW = 2 };

/*
 * Join the download of the asset, starting one (as flags say) unless one is
 * under way. *out (may be NULL) gets the request, joined.
 */
static int download_start(struct fetch_library *lib, const struct idx_asset *a,
			  enum http_priority prio, int flags, struct fetch_request **out)
{
	assert(!lib_locked(lib));
	lib_lock(lib);
	struct fetch_request *r = download_find(lib, a->id);
	int created = !r && !lib->stopping;

	if (created)
		r = download_new(lib, a, prio);
	if (!r) {
		lib_unlock(lib);
		return lib->stopping ? -ECANCELED : -ENOMEM;
	}
	r->keep |= !!(flags & DL_KEEP);
	r->refs++; /* ours until the launch or the raise below is over */
	if (out) {
		fetch_request_join(lib, r);
		*out = r;
	}
	lib_unlock(lib);
	if (created)
		download_launch(lib, r, flags & DL_FOLLOW);
	else
		request_raise(lib, r, prio);
	lib_lock(lib);
	fetch_request_put(r);
	lib_unlock(lib);
	return 0;
}

int fetch_asset_inflight(struct fetch_library *lib, int64_t asset_id)
{
	lib_lock(lib);
	int found = download_find(lib, asset_id) != NULL;
	lib_unlock(lib);
	return found;
}

int fetch_asset_answered(struct fetch_library *lib, int64_t asset_id, enum http_priority prio,
			 int64_t *size)
{
	lib_lock(lib);
	struct fetch_request *r = download_find(lib, asset_id);
	if (r)
		fetch_request_join(lib, r);
	lib_unlock(lib);
	if (!r)
		return 0;
	request_raise(lib, r, prio);
	lib_lock(lib);
	int rc = fetch_request_wait(lib, r, FETCH_REQ_BODY);
	*size = rc == 0 && !fetch_request_ended(r) ? atomic_load(&r->content_length) : -1;
	fetch_request_leave(lib, r);
	lib_unlock(lib);
	return rc == -EINTR ? -EINTR : 1;
}

int fetch_asset_settle(struct fetch_library *lib, int64_t asset_id)
{
	int rc = 0;

	lib_lock(lib);
	struct fetch_request *r = download_find(lib, asset_id);
	if (r && r->state == FETCH_REQ_SERVED) {
		fetch_request_join(lib, r);
		rc = fetch_request_wait(lib, r, FETCH_REQ_DONE);
		fetch_request_leave(lib, r);
	}
	lib_unlock(lib);
	return rc == -EINTR ? -EINTR : 0;
}

/* A cached copy that did not open as its row said. */
struct recheck {
	struct fetch_library *lib;
	int64_t id;
	int found; /* out: -ESTALE or -ENOENT when found bad and forgotten */
};

/*
 * In the index's write transaction, where no commit can run: read the row
 * and look at the file again. The open may have raced a commit (the row
 * read before it, the file renamed after): only a file that still is not
 * the one the row records now is bad; it is removed and the row goes back
 * to pending. Otherwise the open is tried again with the row as it is.
 */
static int recheck_txn(void *arg)
{
	struct recheck *c = arg;
	struct fetch_library *lib = c->lib;
	struct idx_asset a;

	assert(!lib_locked(lib)); /* SQL and the disk */
	int rc = idx_asset_get(lib->idx, c->id, &a);
	if (rc < 0 || a.state != IDX_COMPLETED || (c->found = cached_check(lib, &a)) == 0)
		return rc;
	cache_asset_remove(lib->cache, a.server, a.bundle, a.file);
	return idx_asset_mark_pending(lib->idx, a.id);
}

/* The cached copy of a completed asset: 0 with *fd, or -EAGAIN once it was
 * found bad and forgotten, or the row changed (read it again). */
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
	struct recheck c = { lib, a->id, 0 };
	idx_write(lib->idx, recheck_txn, &c);
	if (c.found < 0)
		log_warn("%s/%s: cached copy %s, downloading it again", a->bundle, a->file,
			 c.found == -ESTALE ? "changed behind our back" : "is gone");
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

/* The body of a served request (SERVED): 0 with *fd a copy of its
 * descriptor (fcntl() does not wait for the disk). */
static int served_fd(struct fetch_request *r, int *fd)
{
	assert(lib_locked(r->lib));
	assert(r->state == FETCH_REQ_SERVED);
	*fd = fcntl(r->body_fd, F_DUPFD_CLOEXEC, 0);
	return *fd < 0 ? -errno : 0;
}

/* What an opener waits for: the commit, the body served before it, or
 * (following) the temporary's first bytes. */
enum open_mode { OPEN_COMMITTED, OPEN_SERVED, OPEN_FOLLOW };

/* Following r (joined): a copy of its temporary's descriptor, unless it
 * has none or ended; 1 then (r stays joined), else 0. */
static int follow_take(struct fetch_request *r, int *fd)
{
	assert(lib_locked(r->lib));
	if (r->follow_fd < 0 || fetch_request_ended(r) ||
	    (*fd = fcntl(r->follow_fd, F_DUPFD_CLOEXEC, 0)) < 0)
		return 0;
	atomic_fetch_add(&r->followers, 1);
	return 1;
}

/* Download the asset (or join its download) and wait for what mode says:
 * 0 with *fd (and *follow, joined, when following); 0 with *fd -1 when it
 * ended well (the index has it); -EAGAIN if it was abandoned (start
 * again); else the error. */
static int download_wait(struct fetch_library *lib, const struct idx_asset *a,
			 enum open_mode mode, int *fd, struct fetch_request **follow)
{
	struct fetch_request *r;
	int rc = download_start(lib, a, HTTP_FOREGROUND, mode == OPEN_FOLLOW ? DL_FOLLOW : 0, &r);

	*fd = -1;
	if (rc < 0)
		return rc;
	lib_lock(lib);
	if (mode == OPEN_FOLLOW && follow_take(r, fd)) {
		*follow = r;
		lib_unlock(lib);
		return 0;
	}
	rc = fetch_request_wait(lib, r, mode == OPEN_SERVED ? FETCH_REQ_SERVED : FETCH_REQ_DONE);
	if (rc == 0 && r->state == FETCH_REQ_SERVED)
		rc = served_fd(r, fd);
	else if (rc == 0)
		rc = r->state == FETCH_REQ_ABANDONED ? -EAGAIN : r->err;
	fetch_request_leave(lib, r);
	lib_unlock(lib);
	return rc;
}

/* Open the asset as mode says: 0 with *fd (and, following a download,
 * *follow), or the error. */
static int asset_open(struct fetch_library *lib, int64_t asset_id, enum open_mode mode, int *fd,
		      struct fetch_request **follow)
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
		rc = download_wait(lib, &a, mode, fd, follow);
		if (rc == 0 && *fd >= 0)
			return 0;
		if (rc == 0 || rc == -EAGAIN)
			continue; /* completed (meanwhile), or start again */
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
	int rc = asset_open(lib, asset_id, OPEN_COMMITTED, fd, NULL);
	fetch_budget_pin(lib, asset_id, 0);
	return rc;
}

int fetch_asset_read(struct fetch_library *lib, int64_t asset_id, int *fd)
{
	/* A body served before its commit is not evictable yet (its row is not
	 * completed) and its lock keeps eviction away after. */
	fetch_budget_pin(lib, asset_id, 1);
	int rc = asset_open(lib, asset_id, OPEN_SERVED, fd, NULL);
	fetch_budget_pin(lib, asset_id, 0);
	return rc;
}

struct fetch_follow {
	struct fetch_library *lib;
	struct fetch_request *r; /* joined while following its download; NULL: cached */
	int fd;
	int64_t size;            /* cached: its length */
};

int fetch_follow_open(struct fetch_library *lib, int64_t asset_id, struct fetch_follow **out)
{
	struct fetch_follow *fl = calloc(1, sizeof(*fl));
	struct stat st;

	if (!fl)
		return -ENOMEM;
	*fl = (struct fetch_follow){ .lib = lib, .fd = -1 };
	fetch_budget_pin(lib, asset_id, 1);
	int rc = asset_open(lib, asset_id, OPEN_FOLLOW, &fl->fd, &fl->r);
	fetch_budget_pin(lib, asset_id, 0);
	if (rc == 0 && !fl->r)
		rc = fstat(fl->fd, &st) < 0 ? -errno : 0;
	if (rc < 0) {
		fetch_follow_close(fl);
		return rc;
	}
	fl->size = fl->r ? -1 : st.st_size;
	*out = fl;
	return 0;
}

int fetch_follow_fd(const struct fetch_follow *fl)
{
	return fl->fd;
}

/* 1 once a follower at offset can go on: the body grew past it, or its
 * length was checked (or it ended). */
static int follow_ready(const struct fetch_request *r, int64_t offset)
{
	assert(lib_locked(r->lib));
	if (r->state <= FETCH_REQ_BODY)
		return atomic_load(&r->bytes) > offset;
	return r->state != FETCH_REQ_COMMITTING;
}

int64_t fetch_follow_wait(struct fetch_follow *fl, int64_t offset)
{
	struct fetch_library *lib = fl->lib;
	struct fetch_request *r = fl->r;
	int64_t rc = 0;

	if (!r)
		return fl->size > offset ? fl->size : 0;
	lib_lock(lib);
	while (rc == 0 && !follow_ready(r, offset) && !lib->stopping)
		rc = fetch_wait(lib, &r->grew);
	int64_t have = atomic_load(&r->bytes);
	if (rc == 0 && !follow_ready(r, offset))
		rc = -ECANCELED; /* the library stops */
	else if (rc == 0 && (r->state == FETCH_REQ_FAILED || r->state == FETCH_REQ_ABANDONED))
		rc = r->err < 0 && r->err != -ECANCELED ? r->err : -EIO;
	else if (rc == 0)
		rc = r->state <= FETCH_REQ_BODY || have > offset ? have : 0;
	lib_unlock(lib);
	return rc;
}

void fetch_follow_close(struct fetch_follow *fl)
{
	if (fl->r) {
		lib_lock(fl->lib);
		atomic_fetch_sub(&fl->r->followers, 1);
		fetch_request_leave(fl->lib, fl->r);
		lib_unlock(fl->lib);
	}
	if (fl->fd >= 0)
		close(fl->fd);
	free(fl);
}

void fetch_asset_queue(struct fetch_library *lib, int64_t asset_id, enum http_priority prio)
{
	struct idx_asset a;

	if (idx_asset_get(lib->idx, asset_id, &a) < 0 || a.state == IDX_COMPLETED ||
	    fetch_asset_missing(&a) || fetch_asset_backing_off(&a))
		return;
	download_start(lib, &a, prio, prio == HTTP_BACKGROUND ? DL_KEEP : 0, NULL);
}

int fetch_library_clear_backoff(struct fetch_library *lib)
{
	return idx_asset_clear_backoff(lib->idx);
}
