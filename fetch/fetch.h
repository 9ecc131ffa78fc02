/*
 * fetch: HTTP and the Bestdori catalogue.
 *
 * Three layers, one contract:
 *   1. The engine (http.c): one libcurl multi handle on one thread for the
 *      whole process. Connection reuse, HTTP/2 where offered, retries with
 *      back-off, origin/mirror fail-over, foreground before background.
 *   2. The parsers (catalogue.c, model_json.c): pure functions from
 *      untrusted JSON to vetted structs, and the model.json renderer.
 *   3. The library (library.c, assets.c): what a mount or a subcommand
 *      asks for ("the catalogue", "this costume's files", "this asset on
 *      disk"), kept in index/ and cache/, with one download per asset
 *      however many readers wait.
 *   4. Cache care (care.c): eviction of least recently used files and
 *      integrity checks, for `l2dfs gc|verify` and the mount's cache_max.
 *
 * Every function returns 0 or a negative errno unless it says otherwise.
 */
#ifndef L2DFS_FETCH_H
#define L2DFS_FETCH_H

#include <stddef.h>
#include <stdint.h>

#include "../cache/cache.h"
#include "../index/index.h"

/* ------------------------------------------------------------------ */
/* 1. The engine                                                       */
/* ------------------------------------------------------------------ */

#define FETCH_REASON_MAX 256
#define FETCH_URL_MAX 2048
#define FETCH_MAX_MIRRORS 8

struct fetch_config {
	const char *api_url;    /* "https://bestdori.com/api", no trailing '/' */
	const char *assets_url; /* "https://bestdori.com/assets" */
	/* Site roots tried after the origin, in order: "<mirror>/api/...",
	 * "<mirror>/assets/...". A base that fails (connection error, 5xx,
	 * timeout) is skipped for a back-off period. */
	const char *mirrors[FETCH_MAX_MIRRORS];
	int nmirrors;
	const char *proxy;     /* NULL: libcurl's environment (https_proxy, no_proxy) */
	int max_connections;   /* per host over HTTP/1.1; default 16 */
	int max_transfers;     /* in flight at once; default 128 */
	int h2c;               /* HTTP/2 with prior knowledge over cleartext */
	int insecure;          /* skip TLS peer verification */
	long connect_timeout_s;/* default 10 */
	long timeout_s;        /* no byte for this long: give up; default 30 */
	int retries;           /* extra attempts after the first; default 3 */
	long retry_base_ms;    /* first back-off; doubles, +-50% jitter; default 500 */
	int64_t max_file_size; /* larger bodies are refused with -EFBIG; default 512 MiB */
};

/* Fill *cfg with the defaults above (bases: bestdori.com). */
void fetch_config_defaults(struct fetch_config *cfg);

enum fetch_base { FETCH_API, FETCH_ASSETS };
enum fetch_method { FETCH_GET, FETCH_HEAD };
enum fetch_priority { FETCH_FOREGROUND, FETCH_BACKGROUND };

struct fetch_result {
	/* 0; -ENOENT for 404/410 or an HTML page where content was expected
	 * (Content-Type text/html or a body starting "<!doctype html"/"<html");
	 * -EFBIG over max_file_size; -EIO for everything else that failed after
	 * the retries; -ECANCELED when the engine stops; or the sink's error
	 * (e.g. -ENOSPC). */
	int err;
	long status;                   /* last HTTP status seen, 0 if none */
	int64_t size;                  /* GET: body bytes; HEAD: Content-Length or -1 */
	int attempts;                  /* requests made, retries included */
	char reason[FETCH_REASON_MAX]; /* "HTTP 503 (4 attempts)", "connection refused"... */
	char url[FETCH_URL_MAX];       /* the URL that answered last (which mirror) */
};

/*
 * Where a GET's body goes. Called on the engine thread, never concurrently
 * for one transfer. begin(content_length or -1) once per attempt before any
 * write; reset() before a retry re-sends the request; a negative return from
 * any of them ends the transfer with that error (no retry).
 */
struct fetch_sink {
	int (*begin)(void *ctx, int64_t content_length);
	int (*write)(void *ctx, const void *buf, size_t n);
	int (*reset)(void *ctx);
	void *ctx;
};

/* Called once on the engine thread when a request ends, whatever the outcome.
 * It must not block; it may call fetch_submit(). */
typedef void (*fetch_done_fn)(void *arg, const struct fetch_result *res);

struct fetch_engine;

/* Start the engine thread. cfg's strings must outlive the engine. */
int fetch_engine_new(struct fetch_engine **out, const struct fetch_config *cfg);

/* Fail everything queued or in flight with -ECANCELED (their done callbacks
 * run), stop the thread, free. */
void fetch_engine_free(struct fetch_engine *e);

/* The same cancelling without freeing: afterwards every request fails with
 * -ECANCELED at once and the engine stays valid until fetch_engine_free().
 * Call it from one thread (a watcher); fetch_engine_free() may follow. */
void fetch_engine_stop(struct fetch_engine *e);

/* Queue a request for "<base>/<path>" (path starts with '/'; only the
 * configured origins are ever contacted, redirects to other hosts are
 * refused). sink may be NULL for HEAD. Returns -ECANCELED after free began. */
int fetch_submit(struct fetch_engine *e, enum fetch_base base, const char *path,
		 enum fetch_method method, enum fetch_priority prio,
		 const struct fetch_sink *sink, fetch_done_fn done, void *arg);

/* Blocking GET into memory (NUL-terminated, at most max_bytes, else
 * -EFBIG). On success *body is the caller's to free(). res may be NULL. */
int fetch_get_memory(struct fetch_engine *e, enum fetch_base base, const char *path,
		     size_t max_bytes, char **body, size_t *len, struct fetch_result *res);

/* Blocking HEAD of n paths at once (all in flight together); res[i] for
 * each. Returns 0 when every request got an answer (see res[i].err). */
int fetch_head_batch(struct fetch_engine *e, enum fetch_base base, const char *const *paths,
		     size_t n, struct fetch_result *res);

/* ------------------------------------------------------------------ */
/* 2. The parsers: untrusted JSON in, vetted structs out               */
/* ------------------------------------------------------------------ */

#define FETCH_LANGS 5 /* ja, en, zh-hant, zh-hans, ko: characterName's slots */

/* "ja|en|zh-hant|zh-hans|ko" -> 0..4; "jp|en|tw|cn|kr" checked. */
int fetch_parse_lang(const char *s, int *lang);
int fetch_server_is_valid(const char *s); /* 1 if valid, else 0 */

/* Names rejected while parsing, each with a reason, for the caller to log. */
struct fetch_rejects {
	char **lines; /* "textures[3] \"../x\": path component '..'" */
	size_t n;
};
void fetch_rejects_free(struct fetch_rejects *r);

struct fetch_character {
	int64_t id;
	/* Display-safe names, NFC (a '/' is replaced by U+FF0F; control bytes,
	 * empty, "." and ".." or over 200 bytes make the slot NULL). */
	char *names[FETCH_LANGS];
};

struct fetch_costume {
	char *live2d_name;     /* a safe bundle name, not ending in "general" */
	/* The costume index's characterId, else the name's first all-digit
	 * '_' field ("036_..." -> 36, "bili_001_collabo_r" -> 1), else -1: in
	 * costumes/ only, under no character ("l2dres00001"). */
	int64_t character_id;
	int64_t costume_id;    /* from the costume index, -1 if absent */
	/* As sent (name.txt's bytes); NULL where absent or not text (control
	 * bytes, empty, "." and "..", over 1000 bytes). */
	char *desc[FETCH_LANGS];
};

struct fetch_catalogue {
	struct fetch_character *characters;
	size_t ncharacters;
	struct fetch_costume *costumes;
	size_t ncostumes;
};
void fetch_catalogue_free(struct fetch_catalogue *cat);

/*
 * Build the catalogue from the three documents: the roster
 * (characters/all.2.json), the asset index (explorer/<server>/assets/_info.json,
 * whose live2d.chara maps bundle -> file count) and the costume index
 * (costumes/all.5.json). Costumes come from the asset index (every bundle
 * not ending in "general"); the costume index adds ids, descriptions and
 * characters. Character names are NFC; descriptions are kept as sent. -EBADMSG if a document is not the JSON it
 * should be (a wrong type in a field only drops that entry, with a reject).
 */
int fetch_parse_catalogue(const char *roster, size_t roster_len, const char *asset_index,
			  size_t asset_index_len, const char *costume_index,
			  size_t costume_index_len, struct fetch_catalogue *out,
			  struct fetch_rejects *rejects);

enum fetch_file_kind {
	FETCH_KIND_MODEL,
	FETCH_KIND_PHYSICS,
	FETCH_KIND_TEXTURE,
	FETCH_KIND_MOTION,
	FETCH_KIND_EXPRESSION,
};

struct fetch_file_spec {
	enum fetch_file_kind kind;
	char *rel_path; /* "x.moc", "textures/texture_00.png", "motions/idle01.mtn"... */
	char *bundle;   /* "live2d/chara/001_general" */
	char *file;     /* served name: ".bytes" removed */
	int optional;   /* physics */
};

struct fetch_costume_files {
	struct fetch_file_spec *files; /* buildData order: model, physics, textures, motions, expressions */
	size_t n;
};
void fetch_costume_files_free(struct fetch_costume_files *f);

/* buildData.asset -> the costume's files per DESIGN §3. Unsafe names and a
 * file listed again (same path, bundle and file) are left out and reported in
 * rejects; other entries on one rel_path are numbered ("texture_00-2.png",
 * never onto a name an entry has as its own). -EBADMSG if the JSON or
 * Base/model is unusable. */
int fetch_parse_build_data(const char *json, size_t len, struct fetch_costume_files *out,
			   struct fetch_rejects *rejects);

/* model.json for the files given (those that exist, buildData order), as
 * DESIGN §3. Returns malloc'd NUL-terminated text, or NULL on ENOMEM. */
char *fetch_render_model_json(const struct fetch_file_spec *files, size_t n);

/* Order of costumes within a character (DESIGN §4): qsort-style. */
int fetch_costume_cmp(const char *a, const char *b);

/* ------------------------------------------------------------------ */
/* 3. The library                                                      */
/* ------------------------------------------------------------------ */

#define FETCH_CATALOGUE_TTL_S (24 * 3600)

struct fetch_library_config {
	const char *server; /* jp|en|tw|cn|kr */
	int lang;           /* 0..4 */
	int prefetch;       /* queue a costume's files when one of them is opened */
	/* bytes; 0 = no limit. Above it, each finished download evicts least
	 * recently used files down to FETCH_CARE_LOW_WATER % (fetch_care_gc),
	 * and a download failing with ENOSPC evicts and tries once more. */
	int64_t cache_max;
};

struct fetch_library;

/* Tie the engine, the index and the cache together. All must outlive it. */
int fetch_library_new(struct fetch_library **out, const struct fetch_library_config *cfg,
		      struct fetch_engine *e, struct idx *idx, struct cache *cache);
/* Waits for background work it started to end (the engine cancels it). */
void fetch_library_free(struct fetch_library *lib);

/* Make sure the catalogue is in the index: fresh (< 24 h) copies are used as
 * they are; older or missing ones are fetched (the three in parallel); if
 * the origin fails, a stale copy serves. -EIO (logged) if none can be had. */
int fetch_catalogue_ensure(struct fetch_library *lib);

/* Make sure the costume's file list (from its buildData.asset) is in the
 * index. -ENOENT if the costume has no buildData, -EIO otherwise. */
int fetch_costume_ensure(struct fetch_library *lib, int64_t costume_id);

/* Make sure every file of the costume (only the optional ones: physics,
 * icon, if optional_only) has a known size or is known missing, probing the
 * unknown ones in one parallel batch (no bodies fetched). A file in flight
 * is waited for instead of probed. */
int fetch_costume_probe(struct fetch_library *lib, int64_t costume_id, int optional_only);

/* Make sure the asset is complete in the cache (downloading it if needed,
 * or waiting for the transfer already in flight). On success *fd is an open
 * read-only descriptor of the cache file, the caller's to close. -ENOENT if
 * the origin does not have it, -EIO/-EFBIG/-ENOSPC on failure (the reason
 * is in the index and the log). */
int fetch_asset_open(struct fetch_library *lib, int64_t asset_id, int *fd);

/* Seconds a "not on the origin" answer (404, the HTML page) is trusted. */
#define FETCH_MISSING_RECHECK_S 600

/* 1 if the origin said it lacks the asset less than FETCH_MISSING_RECHECK_S
 * ago: the file is left out of listings and model.json and not asked for;
 * after that it is asked again (a probe or a read). */
int fetch_asset_missing(const struct idx_asset *a);

/* Start downloading the asset without waiting, unless it is cached or in
 * flight: FETCH_BACKGROUND for prefetch, FETCH_FOREGROUND for a file a
 * reader is about to wait for (it goes ahead of queued prefetch work). */
void fetch_asset_queue(struct fetch_library *lib, int64_t asset_id, enum fetch_priority prio);

/* Queue every file of the costume in the background (prefetch=costume). */
void fetch_costume_prefetch(struct fetch_library *lib, int64_t costume_id);

/* Wait until every file of the costume is cached or has failed; downloads
 * at most `parallel` at once (0: the engine's bound). Calls progress (may be
 * NULL) after each file. Stops early with -EINTR when *cancel becomes
 * non-zero. Returns 0 if every required file is complete. */
typedef void (*fetch_progress_fn)(void *arg, int64_t asset_id, int err);
int fetch_costume_download(struct fetch_library *lib, int64_t costume_id, int parallel,
			   const volatile int *cancel, fetch_progress_fn progress, void *arg);

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

/* ------------------------------------------------------------------ */
/* 4. Cache care                                                       */
/* ------------------------------------------------------------------ */

/* The share of cache_max (or of gc's --max-size) an eviction goes down to. */
#define FETCH_CARE_LOW_WATER 90

/* How far an asset's download got, 0..100 (100 once completed). */
int fetch_asset_progress(const struct idx_asset *a);

struct fetch_care_report {
	int64_t total_before;      /* bytes of completed assets (every server) */
	int64_t total_after;
	int64_t freed;             /* bytes given back to the filesystem */
	int evicted;               /* files taken out of the cache */
	int kept_open;             /* held open (a reader of a mount) */
	int64_t kept_open_bytes;
	int kept_linked;           /* hardlinked outside the cache: evicting frees nothing */
	int64_t kept_linked_bytes;
	int in_flight;             /* downloads in progress, never touched */
};

/*
 * Evict least recently used completed assets of every server until their
 * total is at most low_pct % of max_size (nothing happens below that).
 * Files held open (cache_asset_evict() says -EBUSY) and files hardlinked
 * outside the cache are kept and counted; downloads in flight are never
 * touched. Evicted rows go back to pending, so the next read downloads
 * again. Works beside a mount of the same cache, in another process.
 */
int fetch_care_gc(struct idx *idx, struct cache *cache, int64_t max_size, int low_pct,
		  struct fetch_care_report *r);

enum fetch_verify_problem {
	FETCH_VERIFY_MISSING,   /* the index says completed, the file is gone */
	FETCH_VERIFY_TRUNCATED, /* its size differs from the index */
	FETCH_VERIFY_CORRUPTED, /* same size, another SHA-256 */
};

struct fetch_verify_report {
	int checked;  /* completed assets looked at */
	int missing, truncated, corrupted;
	int repaired; /* removed and marked pending */
	int64_t bytes;/* bytes hashed */
};

/* Told about each unsound asset; found_size is -1 for a missing file. */
typedef void (*fetch_verify_fn)(void *arg, const struct idx_asset *a,
				enum fetch_verify_problem problem, int64_t found_size,
				int repaired);

/*
 * Hash every completed asset's cache file (every server) and compare it
 * with the index. With repair, an unsound file is removed and its row
 * marked pending so the next read downloads it again. fn may be NULL.
 */
int fetch_care_verify(struct idx *idx, struct cache *cache, int repair, fetch_verify_fn fn,
		      void *arg, struct fetch_verify_report *r);

#endif
