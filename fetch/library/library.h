/*
 * fetch/library: what a mount or a subcommand asks for ("the catalogue",
 * "this costume's files", "this asset on disk"), kept in index/ and cache/
 * and fetched through the engine, with one download per asset however many
 * readers wait (DESIGN §8-§10).
 *
 * Every function returns 0 or a negative errno unless it says otherwise.
 */
#ifndef L2DFS_FETCH_LIBRARY_H
#define L2DFS_FETCH_LIBRARY_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "../../cache/cache.h"
#include "../../index/index.h"
#include "../bestdori/bestdori.h"
#include "../care/care.h"
#include "../http/http.h"

#define FETCH_CATALOGUE_TTL_S (24 * 3600)

struct fetch_library_config {
	const char *server; /* jp|en|tw|cn|kr */
	int lang;           /* 0..4 */
	int prefetch;       /* queue a costume's files when one of them is opened */
	/* bytes; 0 = no limit. Above it, each finished download evicts least
	 * recently used files down to CARE_LOW_WATER % (care_gc),
	 * and a download failing with ENOSPC evicts and tries once more. */
	int64_t cache_max;
	int64_t catalogue_ttl_s; /* catalogue documents older than this are fetched
				  * again; 0: FETCH_CATALOGUE_TTL_S */
	/* Whole URLs of the roster, the asset index and the costume index, each
	 * one of the engine's configured URLs; NULL: the API base's path. They
	 * must outlive the library. */
	const char *roster_url, *assets_index_url, *costume_index_url;
};

struct fetch_library;

/* Tie the engine, the index and the cache together. All must outlive it. */
int fetch_library_new(struct fetch_library **out, const struct fetch_library_config *cfg,
		      struct http_engine *e, struct idx *idx, struct cache *cache);
/* Waits for background work it started to end (the engine cancels it). */
void fetch_library_free(struct fetch_library *lib);

/* Make sure the catalogue is in the index: fresh (younger than the TTL)
 * copies are used as they are; older or missing ones are fetched (the three
 * in parallel); if the origin fails, a stale copy serves. -EIO (logged) if
 * none can be had; -EINTR once this thread's cancel token fires (the
 * documents no one else waits for are abandoned). Cheap when called often
 * (the answer is kept a while). */
int fetch_catalogue_ensure(struct fetch_library *lib);

/* Fetch the three catalogue documents now (force), or only if one is older
 * than the TTL, and store the catalogue (which bumps its generation and
 * marks costumes' file lists for a new buildData). Returns 0, or a negative
 * errno (logged) when the origin did not give every document: the stored
 * copy then stays in use (in part, for the documents that did not come);
 * -EINTR as fetch_catalogue_ensure(). */
int fetch_catalogue_refresh(struct fetch_library *lib, int force);

/* The stored copy of a catalogue document by its path under the API base
 * ("/characters/all.2.json", "/explorer/<server>/assets/_info.json",
 * "/costumes/all.5.json"): the origin's bytes, *body malloc'd. -ENOENT for
 * another path or one never stored. */
int fetch_catalogue_document(struct fetch_library *lib, const char *path, char **body,
			     size_t *len);

/* A character's detail document (<api>/characters/<id>.json): the stored
 * copy while younger than the catalogue TTL, else the origin's (stored),
 * else, when the origin fails, the stale copy. *body malloc'd. -ENOENT if
 * the origin has no such character; -EIO if it failed and nothing is
 * stored. */
int fetch_character_document(struct fetch_library *lib, int64_t id, char **body, size_t *len);

/* Make sure the costume's file list (from its buildData.asset) is in the
 * index: fetched when the costume is not listed (new, or the catalogue was
 * stored since), the stored buildData serving when the origin fails.
 * -ENOENT if the costume has no buildData, -EIO otherwise. */
int fetch_costume_ensure(struct fetch_library *lib, int64_t costume_id);

/* The costume's buildData.asset as last stored (the copy its file list
 * was made from; fetch_costume_ensure() first). *body malloc'd. */
int fetch_costume_build_data(struct fetch_library *lib, int64_t costume_id, char **body,
			     size_t *len);

/* Ask the origin again about a costume a user knows changed: its buildData
 * is fetched now (the file list stored anew), and each cached file is asked
 * for with a conditional request; one the origin says changed (or no longer
 * has) is dropped from the cache, so that the next read downloads it as a
 * new version (DESIGN §7). *changed gets how many were dropped. */
int fetch_costume_refresh(struct fetch_library *lib, int64_t costume_id, int *changed);

/* Make sure every file of the costume (only the optional ones: physics,
 * icon, if optional_only) has a known size or is known missing, probing the
 * unknown ones in one parallel batch (no bodies fetched). A file in flight
 * is not probed: its request is raised to HTTP_PROBE and its answer's
 * headers waited for (not its body). */
int fetch_costume_probe(struct fetch_library *lib, int64_t costume_id, int optional_only);

/* Make sure the asset is complete in the cache (downloading it if needed,
 * or waiting for the transfer already in flight). On success *fd is an open
 * read-only descriptor of the cache file, the caller's to close. -ENOENT if
 * the origin does not have it, -EIO/-EFBIG/-ENOSPC on failure (the reason
 * is in the index and the log). After a failed download the asset is not
 * asked for again before a back-off passes (a few seconds, doubling up to
 * FETCH_BACKOFF_MAX_S, or the origin's Retry-After): -EIO at once until then.
 * -EINTR if this thread's cancel token fired. */
int fetch_asset_open(struct fetch_library *lib, int64_t asset_id, int *fd);

/* fetch_asset_open() for a reader that only reads: a file it downloads (or
 * joins in flight) is handed over as soon as its body is complete and its
 * length checked, before the commit (fsync, rename, index) that follows on
 * the commit workers; *fd is then on the same inode the commit publishes.
 * A commit that fails after that fails later opens, not this one. */
int fetch_asset_read(struct fetch_library *lib, int64_t asset_id, int *fd);

/*
 * Follow an asset's bytes as they arrive (`l2dfs cat --asset`): the
 * download is started or joined as by fetch_asset_open() (and still
 * committed to the cache); fetch_follow_fd() reads the file being written
 * (pread() at offsets fetch_follow_wait() says are there); a cached file
 * is followed to its end at once. A download joined in flight without a
 * follower's descriptor is waited for whole.
 */
struct fetch_follow;
int fetch_follow_open(struct fetch_library *lib, int64_t asset_id, struct fetch_follow **out);
int fetch_follow_fd(const struct fetch_follow *fl);
/* Wait until the body holds more than offset bytes: how many it holds
 * then (a retry may start it again from 0: read again what it rewrites);
 * 0 once offset is its whole, checked length; the download's error (-EIO,
 * -ENOENT...) if it failed: the bytes read so far are not the file;
 * -EINTR as this thread's cancel token allows. */
int64_t fetch_follow_wait(struct fetch_follow *fl, int64_t offset);
void fetch_follow_close(struct fetch_follow *fl);

/* Wait for the commit of the asset's body if one was already served
 * (fetch_asset_read) and its row lags it: status read after a read then
 * shows what that reader got. A download still under way is not waited
 * for. 0, or -EINTR if this thread's cancel token fired. */
int fetch_asset_settle(struct fetch_library *lib, int64_t asset_id);

/* The index row of an asset of the costume, with its size known: from the
 * index; else from the response headers of its download in flight (raised
 * to HTTP_FOREGROUND, the body not waited for); else from a HEAD, sent
 * with those of the costume's other unknown files nobody fetches; else
 * (no Content-Length) from the body. -ENOENT if the origin lacks it;
 * -EINTR if this thread's cancel token fired. */
int fetch_asset_stat(struct fetch_library *lib, int64_t costume_id, int64_t asset_id,
		     struct idx_asset *a);

/* Longest back-off after failed downloads of one asset. */
#define FETCH_BACKOFF_MAX_S 600

/* Forget every asset's back-off (a catalogue refresh, `l2dfs retry`): the
 * next read asks the origin at once. */
int fetch_library_clear_backoff(struct fetch_library *lib);

/*
 * A waiter's cancel token. A thread that may be told to stop waiting (a
 * filesystem request the kernel interrupts) enters one: every wait of the
 * library on that thread (a download, a probe, buildData, another thread's
 * work on the same costume) then ends with -EINTR soon after
 * fetch_cancel_fire(), called from any thread. Only the waiting ends: a
 * download others wait for, or that prefetch asked for, goes on; one no one
 * wants any more stops at its next bytes.
 */
struct fetch_cancel {
	struct fetch_library *lib;
	atomic_int fired;
	pthread_cond_t *cond; /* lib->lock: what the owner sleeps on, or NULL */
};
/* Before use; lib is the library the thread will wait on. */
void fetch_cancel_init(struct fetch_cancel *c, struct fetch_library *lib);
/* The calling thread's waits answer to c from now on (NULL: to none). c
 * must outlive that; fetch_cancel_enter(NULL) before it goes away. */
void fetch_cancel_enter(struct fetch_cancel *c);
/* Wake the thread waiting under c, now and for its later waits. Takes
 * lib->lock: the caller must not hold it. */
void fetch_cancel_fire(struct fetch_cancel *c);
/* 1 if the calling thread's token fired. */
int fetch_cancelled(void);

/* Seconds a "not on the origin" answer (404, the HTML page) is trusted. */
#define FETCH_MISSING_RECHECK_S 600

/* ---- what state a file or a costume is in (status.c; the index alone) ---- */

/* 1 if the origin said it lacks the asset less than FETCH_MISSING_RECHECK_S
 * ago: the file is left out of listings and model.json and not asked for;
 * after that it is asked again (a probe or a read). */
int fetch_asset_missing(const struct idx_asset *a);
/* 1 if its download failed and its back-off (DESIGN §10) has not passed:
 * nothing is sent for it (no probe, GET or prefetch), reads fail at once. */
int fetch_asset_backing_off(const struct idx_asset *a);
/* 1 if an optional file (physics, icon) is one the origin lacks (it
 * answered 404 or its HTML page): absent, neither failed nor pending. */
int fetch_asset_absent(int optional, const struct idx_asset *a);
/* How far its download got, 0..100 (100 once completed). */
int fetch_asset_progress(const struct idx_asset *a);

struct fetch_asset_status {
	const char *state; /* pending | downloading | completed | failed */
	int progress;      /* 0..100 */
	int missing, absent, backing_off; /* the predicates above */
};
void fetch_asset_status(const struct idx_asset *a, int optional, struct fetch_asset_status *out);

/* A costume's status, as its folder's user.l2dfs.* attributes, `l2dfs
 * status` and the HTTP server give it. */
struct fetch_costume_status {
	struct idx_costume_status st; /* absent files left out of files_total */
	int files_absent;
	/* "completed": every file the origin has is cached; "failed": some
	 * download failed; "partial": some cached; "pending": none yet. */
	const char *state;
};
int fetch_costume_status(struct idx *idx, int64_t costume_id, struct fetch_costume_status *out);
/* 1 if every file of the costume is cached (one query). */
int fetch_costume_complete(struct idx *idx, int64_t costume_id);

/* Start downloading the asset without waiting, unless it is cached or in
 * flight: HTTP_BACKGROUND for prefetch, HTTP_FOREGROUND for a file a
 * reader is about to wait for (it goes ahead of queued prefetch work). */
void fetch_asset_queue(struct fetch_library *lib, int64_t asset_id, enum http_priority prio);

/* Queue every file of the costume in the background (prefetch=costume). */
void fetch_costume_prefetch(struct fetch_library *lib, int64_t costume_id);

/* model.json of a costume as it stands (files known missing left out;
 * unknown ones probed first). *text is malloc'd. */
int fetch_costume_model_json(struct fetch_library *lib, int64_t costume_id, char **text,
			     size_t *len);

/* name.txt of a costume, byte for byte what the Python downloader writes
 * (DESIGN §3): its description in lang, else the first one in ja, en,
 * zh-hant, zh-hans, ko order followed by "（日服）"; no newline. *text is
 * malloc'd. -ENOENT if the costume has no description. */
int fetch_costume_name_txt(struct fetch_library *lib, int64_t costume_id, char **text,
			   size_t *len);

/*
 * Start no more asset transfers: fetch_asset_open() and fetch_asset_queue()
 * then fail with -ECANCELED instead of downloading (cached files still open);
 * transfers in flight go on, but fetch_asset_open() calls waiting for one
 * return -ECANCELED at once (a mount going away lets its readers go). After
 * it, those two functions never touch the engine again, so the engine may be
 * freed (cancelling what is in flight) while other threads still call them.
 * Other functions of the library still use the engine: do not call them once
 * it is freed.
 */
void fetch_library_stop(struct fetch_library *lib);

#endif
