/*
 * Shared inside fetch/library; not part of the contract.
 *
 * Files, each using only those below it:
 *   library.c  the catalogue and the costumes (buildData, probes)
 *   assets.c   asset downloads: single flight, commit workers, back-off
 *   budget.c   cache_max: eviction passes, pins
 *   request.c  requests to the engine: their states and the one wait
 *   wait.c     key lists, cancel tokens
 *
 * The lock story.
 *   One mutex, lib->lock, guards every mutable field of struct fetch_library
 *   and of its requests (each field says so). It is a leaf: while it is
 *   held nothing else is locked and nothing waits for the network, the disk
 *   or SQLite (no idx_*, cache_*, http_submit(), care_*() call).
 *   It may be taken with another lock held: libfuse's per-request lock
 *   (an interrupt fires a cancel token, fetch_cancel_fire()). The order is
 *   always that lock -> lib->lock; the engine runs sinks and done callbacks
 *   with none of its locks held.
 *   Each predicate has its own condition variable, all used with lib->lock:
 *     request->changed    that request's state moved on (or the library
 *                         stops)
 *     request->grew       its body grew, or it left BODY (request.c)
 *     lib->job_ready      the commit queue got a job, or the last request
 *                         ended while stopping
 *     lib->key_released   a busy key was given back
 *     lib->pass_over      an eviction pass ended
 *     lib->jobs_idle      the commit workers have nothing queued or under way
 *   A cancel token names the condition variable its thread sleeps on, so an
 *   interrupt wakes exactly that waiter (wait.c).
 *   Fields set before the workers start and never changed after (cfg,
 *   server, engine, idx, cache, backoff_ms, the test delays) are read
 *   without the lock; so are a request's atomics and the fields its
 *   comments give to one thread at a time (the engine thread while in
 *   flight, then its commit worker).
 */
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

/* Sleep once on cond (with lib->lock held) as this thread's cancel token
 * allows: -EINTR (without sleeping) once it fired, else 0. Callers loop on
 * their predicate as with pthread_cond_wait(). */
int fetch_wait(struct fetch_library *lib, pthread_cond_t *cond);

/* How many model.json renderings are kept, and for how long at most: a
 * file found missing is trusted for FETCH_MISSING_RECHECK_S only, and
 * that lapse writes nothing to the index. */
#define FETCH_MODEL_MEMOS 16
#define FETCH_MODEL_MEMO_S 60

struct fetch_request;  /* one request to the engine (below) */
struct fetch_job;      /* work for the commit workers (assets.c) */

struct fetch_library {
	struct fetch_library_config cfg;
	char server[8];
	struct http_engine *engine;
	struct idx *idx;
	struct cache *cache;
	int64_t backoff_ms; /* first back-off after a failed download */
#ifdef L2DFS_TEST_HOOKS
	int64_t commit_delay_ms; /* L2DFS_TEST_COMMIT_DELAY_MS (assets.c) */
	int64_t publish_delay_ms; /* L2DFS_TEST_PUBLISH_DELAY_MS (assets.c) */
#endif

	pthread_mutex_t lock;              /* see above */
#ifndef NDEBUG
	_Atomic pthread_t owner;           /* who holds lock, for lib_locked() */
	atomic_int owned;
#endif
	struct fetch_request *downloads;   /* lock: asset GETs under way, one per asset */
	struct fetch_keys busy;            /* lock: catalogue/costume work in progress */
	pthread_cond_t key_released;       /* with lock: busy lost a key */
	int64_t catalogue_checked_until;   /* lock: no catalogue check needed before */
	struct fetch_keys refused;         /* lock: costumes whose buildData lists more
					    * than BD_COSTUME_FILES_MAX files */

	/* Finished downloads are committed (fsync, rename, index) and progress
	 * is written to the index off the engine thread, by a few workers. */
	struct fetch_job *jobs, **jobs_tail; /* lock */
	pthread_cond_t job_ready;            /* with lock: jobs got one, or stopping */
	pthread_t workers[4];                /* set before they run */
	int nworkers;
	int stopping;                        /* lock */
	int outstanding;                     /* lock: requests not yet ended */
	int working;                         /* lock: jobs taken by a worker, not done */
	pthread_cond_t jobs_idle;            /* with lock: no job queued or being worked */

	/* The cache_max budget (budget.c). */
	int64_t care_total;     /* lock: completed bytes, as last counted + added since */
	int64_t care_trigger;   /* lock: a pass runs once care_total is above this */
	int care_running;       /* lock: a pass is under way */
	pthread_cond_t pass_over; /* with lock: care_running went to 0 */
	struct fetch_keys pins; /* lock: assets readers wait to open: never evicted */

	/* model.json renderings, reused while the index stays the same
	 * (library.c). */
	struct fetch_model_memo {
		int64_t costume_id;
		uint64_t version; /* idx_version() before it was rendered */
		int64_t at;       /* idx_now() then */
		char *text;       /* NULL: a free slot */
		size_t len;
	} memo[FETCH_MODEL_MEMOS]; /* lock */
	unsigned memo_next;        /* lock: the slot the next rendering takes */
};

/*
 * A request: everything the library asks of the engine (an asset's GET, a
 * size probe's HEAD, a catalogue document, a buildData, the conditional
 * HEAD of a refresh) is one struct fetch_request, in one state at a time
 * (request.c, DESIGN §10). Beside each arrow, the one function that moves
 * it:
 *
 *   PENDING ──request_submit()──▶ QUEUED ──request_heard()──▶ BODY
 *                                   │                           │
 *                                   └────request_received()─────┤ (asset GETs)
 *                                                               ▼
 *                               COMMITTING ──request_serve()──▶ SERVED
 *
 *   PENDING, QUEUED, BODY, COMMITTING, SERVED ──request_end()──▶
 *                                           DONE | FAILED | ABANDONED
 *
 *   PENDING     made; an asset GET is linked in lib->downloads (single
 *               flight) while its launcher checks the index and opens the
 *               cache temporary
 *   QUEUED      handed to the engine: in its queue, waiting for the
 *               request budget, or asked and not answered yet
 *   BODY        the answer's headers came (content_length); the body
 *               streams into the cache temporary (assets) or memory
 *   COMMITTING  asset GETs: the engine is through; a commit worker checks
 *               the length, then fsyncs, renames and writes the index (or
 *               records the failure and its back-off)
 *   SERVED      the checked body is readable through body_fd before the
 *               commit ends (DESIGN §9)
 *   DONE        it succeeded (an asset: committed, or found complete
 *               before it was asked for); FAILED: err says why;
 *               ABANDONED: no one wanted it any more, and it stopped
 *
 * A HEAD and a document go from QUEUED or BODY to their end on the engine
 * thread (no COMMITTING). Waiters join a request, wait with
 * fetch_request_wait() (the one wait for the engine, cancellable) and
 * leave; the last to leave a request prefetch does not keep abandons it:
 * it is not submitted, the engine drops it when it leaves its queue, or
 * its sink refuses its next bytes. Raising a
 * request's priority (http_promote) is request_raise().
 */
enum fetch_request_state {
	FETCH_REQ_PENDING,
	FETCH_REQ_QUEUED,
	FETCH_REQ_BODY,
	FETCH_REQ_COMMITTING,
	FETCH_REQ_SERVED,
	FETCH_REQ_DONE, /* the three ends, in this order, after the others */
	FETCH_REQ_FAILED,
	FETCH_REQ_ABANDONED,
};

enum fetch_request_kind { FETCH_REQ_ASSET, FETCH_REQ_HEAD, FETCH_REQ_DOCUMENT };

struct fetch_request {
	struct fetch_request *next;     /* lock: in lib->downloads (asset GETs) */
	struct fetch_library *lib;
	enum fetch_request_kind kind;
	enum fetch_request_state state; /* lock */
	int err;                        /* lock: FAILED: the negative errno; else 0 */
	pthread_cond_t changed;         /* with lock: state moved on (or the library stops) */
	pthread_cond_t grew;            /* with lock: bytes grew, or state left BODY */
	enum http_priority prio;        /* lock: as asked for, or raised to */
	int waiters;                    /* lock: threads joined */
	atomic_int followers;           /* lock to change: waiters following the body */
	int keep;                       /* lock: prefetch wants it, whoever waits */
	int refs;                       /* lock: waiters + the flight + queued jobs */
	atomic_int abandoned;           /* lock to set: the sink refuses more bytes */
	atomic_llong content_length;    /* the engine thread writes it, before BODY */
	atomic_llong bytes;             /* body bytes so far (the engine thread writes) */
	/* The engine's answer: written on the engine thread before the request
	 * leaves QUEUED or BODY, read by waiters once it did. */
	struct http_result res;
	/* Found abandoned (by its sink or wanted() on the engine thread, or
	 * its submitter) before it ends: it ends ABANDONED. */
	int dropped;

	/* An asset's GET (assets.c). */
	int64_t asset_id;
	char bundle[IDX_BUNDLE_MAX + 1];
	char file[IDX_NAME_MAX + 1];
	/* The engine thread's while in flight, then the committing worker's. */
	struct cache_writer *writer;
	int64_t last_progress;
	int progress_queued;            /* lock: a progress job is queued */
	/* lock: SERVED: a read-only descriptor of the checked body (the
	 * temporary the commit renames); else -1. Readers take copies. */
	int body_fd;
	/* lock: for followers, a read-only descriptor of the temporary from
	 * before QUEUED until the end (-1: none was asked for). */
	int follow_fd;

	/* A document or buildData: the body, decoded, in memory. */
	struct http_membuf body;
};

/* A request of kind with one reference (the flight's, dropped when it
 * ends); NULL without memory. */
struct fetch_request *fetch_request_new(struct fetch_library *lib, enum fetch_request_kind kind,
					enum http_priority prio);
/* fetch_request_new() and fetch_request_join(), lock not held. */
struct fetch_request *fetch_request_joined(struct fetch_library *lib,
					   enum fetch_request_kind kind, enum http_priority prio);
/* Drop a reference (lock held); the last frees the request. */
void fetch_request_put(struct fetch_request *r);
/* 1 once r is in one of its three ends. */
int fetch_request_ended(const struct fetch_request *r);

/* The transitions (lock held; each asserts its from-states). */
int request_submit(struct fetch_library *lib, struct fetch_request *r);
void request_heard(struct fetch_library *lib, struct fetch_request *r);
void request_received(struct fetch_library *lib, struct fetch_request *r);
void request_serve(struct fetch_library *lib, struct fetch_request *r, int fd);
void request_end(struct fetch_library *lib, struct fetch_request *r, int err);

/* The engine thread's sink side, no lock held: the body has bytes bytes
 * now (a retry starts again from 0); followers wake. */
void request_grew(struct fetch_request *r, int64_t bytes);

/* The sinks' wanted() (engine thread): 0 once r was abandoned (and it
 * is marked dropped: it ends ABANDONED), else 1. */
int request_wanted(void *ctx);

/* Join / leave r as a waiter (lock held). Leaving last abandons it unless
 * it ended or prefetch keeps it. */
void fetch_request_join(struct fetch_library *lib, struct fetch_request *r);
void fetch_request_leave(struct fetch_library *lib, struct fetch_request *r);

/*
 * The one wait for the engine (lock held, r joined): until r's state is at
 * or past until (any end is past every other state). 0 then (r->state and
 * r->err tell the rest); -EINTR once this thread's cancel token fired;
 * -ECANCELED once the library stops. The waiter stays joined: it leaves
 * with fetch_request_leave() whatever this returned.
 */
int fetch_request_wait(struct fetch_library *lib, struct fetch_request *r,
		       enum fetch_request_state until);

/* Raise r to prio unless it is there or ahead (no lock held, a reference
 * held): a request in the engine's queue moves ahead (http_promote()). */
void request_raise(struct fetch_library *lib, struct fetch_request *r, enum http_priority prio);

/* What the engine calls when r ends: assets.c's commit hand-off, or
 * request.c's own end for HEADs and documents. */
void fetch_asset_done(void *arg, const struct http_result *res);

/* Submit a HEAD (cond: conditional, else a size probe) or a document
 * (GET into memory, at most FETCH_DOC_MAX bytes) as r, joined by the
 * caller: 0, or the submission's error (r then FAILED). No lock held. */
int fetch_request_head(struct fetch_library *lib, struct fetch_request *r, enum http_base base,
		       const char *path, const struct http_cond *cond);
int fetch_request_document(struct fetch_library *lib, struct fetch_request *r,
			   enum http_base base, const char *path);
/* fetch_request_wait() until r ended, no lock held: 0 or r's error (a
 * document's body NUL-terminated in r->body), -EINTR or -ECANCELED. The
 * caller stays joined. */
int fetch_request_outcome(struct fetch_library *lib, struct fetch_request *r);
/* fetch_request_leave() without the lock held (r NULL: nothing). */
void fetch_request_release(struct fetch_library *lib, struct fetch_request *r);

/* Give back a key taken (library.c) while another thread waited for it. */
void fetch_busy_release(struct fetch_library *lib, int64_t key);

/* "/<server>/<bundle>_rip/<file>" for the engine's HTTP_ASSETS base. */
int fetch_asset_url_path(const char *server, const char *bundle, const char *file, char *buf,
			 size_t len);

/* Start the commit workers / stop them after the queue drains. */
int fetch_assets_start(struct fetch_library *lib);
void fetch_assets_stop(struct fetch_library *lib);

/* 1 if the asset's download is under way, else 0. */
int fetch_asset_inflight(struct fetch_library *lib, int64_t asset_id);

/* If the asset is in flight: raise its request to prio (unless it is
 * there or ahead), wait for the answer's headers and return 1, *size the
 * Content-Length (-1 if there was none, or if the download ended first: its
 * outcome is then in the index). 0 at once if it is not in flight; -EINTR
 * if this thread's cancel token fired. */
int fetch_asset_answered(struct fetch_library *lib, int64_t asset_id, enum http_priority prio,
			 int64_t *size);

/* 1 if a failed download of the asset is backing off (not to be asked
 * before its retry time). */
int64_t fetch_now_ms(void); /* status.c: ms on the index's clock */

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

/* lib->lock. With asserts on (test builds, make asan), its holder is
 * remembered so that functions can assert(lib_locked(lib)) at entry. */
static inline void lib_lock(struct fetch_library *lib)
{
	pthread_mutex_lock(&lib->lock);
#ifndef NDEBUG
	lib->owner = pthread_self();
	lib->owned = 1;
#endif
}

static inline void lib_unlock(struct fetch_library *lib)
{
#ifndef NDEBUG
	lib->owned = 0;
#endif
	pthread_mutex_unlock(&lib->lock);
}

static inline void lib_cond_wait(struct fetch_library *lib, pthread_cond_t *cond)
{
#ifndef NDEBUG
	lib->owned = 0;
#endif
	pthread_cond_wait(cond, &lib->lock);
#ifndef NDEBUG
	lib->owner = pthread_self();
	lib->owned = 1;
#endif
}

#ifndef NDEBUG
/* 1 if this thread holds lib->lock (only meaningful in an assert). */
static inline int lib_locked(const struct fetch_library *lib)
{
	return lib->owned && pthread_equal(lib->owner, pthread_self());
}
#endif

#endif
