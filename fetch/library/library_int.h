/*
 * Shared inside fetch/library; not part of the contract.
 *
 * Files, each using only those below it:
 *   library.c  the catalogue and the costumes (buildData, probes)
 *   assets.c   asset transfers: single flight, commit workers, back-off
 *   budget.c   cache_max: eviction passes, pins
 *   wait.c     key lists, cancel tokens, cancellable waits
 *
 * The lock story.
 *   One mutex, lib->lock, guards every mutable field of struct fetch_library
 *   and of its transfers (each field says so). It is a leaf: while it is
 *   held nothing else is locked and nothing waits for the network, the disk
 *   or SQLite (no idx_*, cache_*, http_submit(), care_*() call).
 *   It may be taken with another lock held: libfuse's per-request lock
 *   (an interrupt fires a cancel token, fetch_cancel_fire()). The order is
 *   always that lock -> lib->lock; the engine runs sinks and done callbacks
 *   with none of its locks held.
 *   Each predicate has its own condition variable, all used with lib->lock:
 *     transfer->ended     that transfer ended (or the library stops)
 *     transfer->answered  its answer's headers came, or it ended (or the
 *                         library stops)
 *     transfer->readable  its body can be read (before the commit), or it
 *                         ended (or the library stops)
 *     lib->job_ready      the commit queue got a job (or the library stops)
 *     lib->key_released   a busy key was given back
 *     lib->pass_over      an eviction pass ended
 *     lib->docs_answered  a catalogue document's request ended
 *     lib->jobs_idle      the commit workers have nothing queued or under way
 *     offload->answered   an offloaded call returned (wait.c)
 *     lib->offload_over   the last offloaded call ended
 *   A cancel token names the condition variable its thread sleeps on, so an
 *   interrupt wakes exactly that waiter (wait.c).
 *   Fields set before the workers start and never changed after (cfg,
 *   server, engine, idx, cache, backoff_ms, commit_delay_ms) are read
 *   without the lock; so are a transfer's atomics and the fields its comments give to one thread
 *   at a time (the engine thread while in flight, then its commit worker).
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

/*
 * Run fn(arg), a call that blocks on the engine, on a thread of its own and
 * wait for it as this thread's cancel token allows: fn's return value (arg
 * stays the caller's), or -EINTR: the caller leaves, fn runs on and
 * free_arg(arg) runs after it. Without a token, fn runs on this thread.
 */
int fetch_offload(struct fetch_library *lib, int (*fn)(void *arg), void *arg,
		  void (*free_arg)(void *arg));
/* Wait for offloaded calls to end (before freeing the library). */
void fetch_offload_drain(struct fetch_library *lib);

/* How many model.json renderings are kept, and for how long at most: a
 * file found missing is trusted for FETCH_MISSING_RECHECK_S only, and
 * that lapse writes nothing to the index. */
#define FETCH_MODEL_MEMOS 16
#define FETCH_MODEL_MEMO_S 60

struct fetch_transfer; /* one asset download in flight (assets.c) */
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
#endif

	pthread_mutex_t lock;              /* see above */
#ifndef NDEBUG
	_Atomic pthread_t owner;           /* who holds lock, for lib_locked() */
	atomic_int owned;
#endif
	struct fetch_transfer *transfers;  /* lock: in flight, one per asset */
	struct fetch_keys busy;            /* lock: catalogue/costume work in progress */
	pthread_cond_t key_released;       /* with lock: busy lost a key */
	pthread_cond_t docs_answered;      /* with lock: a struct doc's pending went down */
	int64_t catalogue_checked_until;   /* lock: no catalogue check needed before */
	struct fetch_keys refused;         /* lock: costumes whose buildData lists more
					    * than BD_COSTUME_FILES_MAX files */

	/* Finished transfers are committed (fsync, rename, index) and progress
	 * is written to the index off the engine thread, by a few workers. */
	struct fetch_job *jobs, **jobs_tail; /* lock */
	pthread_cond_t job_ready;            /* with lock: jobs got one, or stopping */
	pthread_t workers[4];                /* set before they run */
	int nworkers;
	int stopping;                        /* lock */
	int outstanding;                     /* lock: transfers not yet committed */
	int working;                         /* lock: jobs taken by a worker, not done */
	pthread_cond_t jobs_idle;            /* with lock: no job queued or being worked */

	/* The cache_max budget (budget.c). */
	int64_t care_total;     /* lock: completed bytes, as last counted + added since */
	int64_t care_trigger;   /* lock: a pass runs once care_total is above this */
	int care_running;       /* lock: a pass is under way */
	pthread_cond_t pass_over; /* with lock: care_running went to 0 */
	struct fetch_keys pins; /* lock: assets readers wait to open: never evicted */

	int offloaded;             /* lock: fetch_offload() threads running */
	pthread_cond_t offload_over; /* with lock: offloaded went to 0 */

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

/* Take a key (wait while another thread holds it) / give it back. */
void fetch_busy_acquire(struct fetch_library *lib, int64_t key);
void fetch_busy_release(struct fetch_library *lib, int64_t key);

/* "/<server>/<bundle>_rip/<file>" for the engine's HTTP_ASSETS base. */
int fetch_asset_url_path(const char *server, const char *bundle, const char *file, char *buf,
			 size_t len);

/* Start the commit workers / stop them after the queue drains. */
int fetch_assets_start(struct fetch_library *lib);
void fetch_assets_stop(struct fetch_library *lib);

/* 1 if the asset is in flight, else 0. */
int fetch_asset_inflight(struct fetch_library *lib, int64_t asset_id);

/* If the asset is in flight: raise its request to prio (unless it is
 * there or ahead), wait for the answer's headers and return 1, *size the
 * Content-Length (-1 if there was none, or if the transfer ended first: its
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
