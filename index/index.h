/*
 * index: the SQLite database in the cache root (WAL), every query of the
 * project. Nothing outside this folder speaks SQL.
 *
 * What it holds:
 *   documents      JSON responses by key, with their fetch time
 *   characters     the roster (names in the five languages)
 *   costumes       per server: live2d name, character, descriptions, order
 *   costume_files  a costume's tree: folder, name, kind, the asset behind it
 *   assets         one row per (server, bundle, file) with the download state
 *                  the Electron resource cache tracks
 * Row ids never change for a row that stays and are never given again to
 * another row (AUTOINCREMENT), so fs/ uses them as inode numbers.
 *
 * One struct idx is shared by all threads (calls are serialized inside);
 * several processes may open the same file (busy timeout). Functions return
 * 0 or a negative errno: -ENOENT for "no such row", -EIO for a database error.
 */
#ifndef L2DFS_INDEX_H
#define L2DFS_INDEX_H

#include <stddef.h>
#include <stdint.h>

#define IDX_NAME_MAX 255
#define IDX_BUNDLE_MAX 511
#define IDX_TEXT_MAX 1023
#define IDX_LANGS 5

struct idx;

/*
 * Open or create the database at path. A file that is not a usable database
 * (garbage, failed integrity check, newer schema) is moved aside to
 * "<path>.corrupt-<time>" and a fresh one is created: *recreated (may be
 * NULL) tells the caller to say so and rebuild. Any other failure leaves the
 * file as it is: -EROFS or -EACCES when it cannot be written, -ENOSPC for a
 * full disk, -ENAMETOOLONG for a path longer than SQLite takes (512 bytes),
 * -EBUSY for a lock held too long.
 */
int idx_open(struct idx **out, const char *path, int *recreated);
void idx_close(struct idx *idx);

/* Give the write-ahead log's space back to the filesystem (a checkpoint
 * that truncates it), for a disk that is full. -EBUSY while another
 * process reads from an old snapshot. */
int idx_log_truncate(struct idx *idx);

/*
 * Run fn(arg) inside one write transaction (BEGIN IMMEDIATE): every other
 * writer, in this process or another, waits until it ends, and no one sees
 * its writes before. fn returns 0 (commit) or a negative errno (roll back,
 * returned). fn may call the functions here that make no transaction of
 * their own (the row reads and marks), and do work outside the index that
 * must be one step with them (a cache file renamed with its row); it must
 * be short: every writer of the cache waits for it.
 */
int idx_write(struct idx *idx, int (*fn)(void *arg), void *arg);

/* Seconds since the epoch (a test build shifts it by L2DFS_TIME_OFFSET). */
int64_t idx_now(void);

/* ---- documents: the JSON response cache ---- */

/* *body is malloc'd (NUL-terminated); -ENOENT if never stored. */
int idx_doc_get(struct idx *idx, const char *key, char **body, size_t *len,
		int64_t *fetched_at);
int idx_doc_put(struct idx *idx, const char *key, const char *body, size_t len,
		int64_t fetched_at);
/* Only the fetch time (no body read); -ENOENT if never stored. */
int idx_doc_fetched_at(struct idx *idx, const char *key, int64_t *fetched_at);

/* ---- the catalogue ---- */

struct idx_character_in {
	int64_t id;
	const char *names[IDX_LANGS]; /* NULL where absent */
};

struct idx_costume_in {
	const char *live2d_name;
	int64_t character_id;
	int64_t costume_id; /* -1 if unknown */
	const char *desc[IDX_LANGS];
	int64_t rank;       /* order within the character (DESIGN §4) */
};

/* Replace the roster and the server's costumes in one transaction. Costumes
 * that stay keep their row id; gone ones are deleted. Every costume of the
 * server is marked unlisted (its buildData is read again when next needed,
 * file rows kept until then), and the catalogue generation goes up. */
int idx_catalogue_store(struct idx *idx, const char *server,
			const struct idx_character_in *chars, size_t nchars,
			const struct idx_costume_in *costumes, size_t ncostumes);

/* A number that goes up with every idx_catalogue_store() by any process on
 * this database (0 before the first): cheap enough to poll every second. */
int idx_catalogue_generation(struct idx *idx, int64_t *generation);

/* A number that changes whenever the database does: a row written through
 * this handle, or a commit by any other connection. What was read from the
 * index is still true while it stays the same. */
int idx_version(struct idx *idx, uint64_t *version);

/* 1 if the server has any costume stored, else 0. */
int idx_catalogue_present(struct idx *idx, const char *server);

/* Display name in lang (0..4), Japanese where that is NULL, the id where both
 * are; names made unique as idx_names_unique() does. Only characters with at
 * least one costume on the server are listed, by id; fn runs with the index
 * free to use. */
typedef int (*idx_character_fn)(void *arg, int64_t id, const char *display);
int idx_character_list(struct idx *idx, const char *server, int lang, idx_character_fn fn,
		       void *arg);
int idx_character_find(struct idx *idx, const char *server, int lang, const char *display,
		       int64_t *id);
struct idx_named {
	int64_t id;
	char *name; /* malloc'd */
};
/*
 * Make v's names distinct (DESIGN §4): every name equal to another gets
 * " (<id>)"; a name so made that equals another's own name gets " (<id>)"
 * again until it does not ("X"(3), "X"(4), "X (3)"(5) -> "X (3) (3)",
 * "X (4)", "X (3)"). v ends sorted by id. -ENOMEM (names may be half done).
 */
int idx_names_unique(struct idx_named *v, size_t n);
void idx_named_free(struct idx_named *v, size_t n);

/* All five names (NULL-able, malloc'd into names[]) for search. */
int idx_character_names(struct idx *idx, int64_t id, char *names[IDX_LANGS]);

struct idx_costume {
	int64_t id; /* row id */
	char server[8];
	char live2d_name[IDX_NAME_MAX + 1];
	int64_t character_id;
	int64_t costume_id;
	/* desc[lang]; else the first of desc[0..4] followed by "（日服）"; "" if none */
	char display[IDX_TEXT_MAX + 1];
	int files_listed; /* 1 once its buildData is stored (0 again after a catalogue store) */
};

/* Costumes of a character in rank order, or of the whole server
 * (character_id < 0) by name. fn returning non-zero stops and is returned. */
typedef int (*idx_costume_fn)(void *arg, const struct idx_costume *c);
int idx_costume_list(struct idx *idx, const char *server, int lang, int64_t character_id,
		     idx_costume_fn fn, void *arg);
/* character_id < 0: any character. */
int idx_costume_find(struct idx *idx, const char *server, int lang, int64_t character_id,
		     const char *live2d_name, struct idx_costume *out);
int idx_costume_get(struct idx *idx, int64_t id, int lang, struct idx_costume *out);

/* ---- a costume's files ---- */

enum idx_dir { IDX_DIR_ROOT, IDX_DIR_TEXTURES, IDX_DIR_MOTIONS, IDX_DIR_EXPRESSIONS };
#define IDX_NDIRS 4

/* A costume's folders by name: "" (the root), "textures", "motions", "expressions". */
extern const char *const idx_dir_names[IDX_NDIRS];

enum idx_file_kind {
	IDX_KIND_MODEL,
	IDX_KIND_PHYSICS,
	IDX_KIND_TEXTURE,
	IDX_KIND_MOTION,
	IDX_KIND_EXPRESSION,
	IDX_KIND_ICON,
	IDX_KIND_MODEL_JSON, /* generated, no asset */
	IDX_KIND_NAME_TXT,   /* generated, no asset */
};

struct idx_file_in {
	enum idx_dir dir;
	const char *name;
	enum idx_file_kind kind;
	const char *bundle; /* NULL for generated files */
	const char *file;
	int optional;
};

/* Replace the costume's file list (order kept), creating asset rows
 * (state pending) for assets not seen before; marks it listed. */
int idx_costume_files_store(struct idx *idx, int64_t costume_id,
			    const struct idx_file_in *files, size_t n);

struct idx_file {
	int64_t id; /* row id */
	int64_t costume_id;
	enum idx_dir dir;
	char name[IDX_NAME_MAX + 1];
	enum idx_file_kind kind;
	int64_t asset_id; /* 0 for generated files */
	int optional;
};

typedef int (*idx_file_fn)(void *arg, const struct idx_file *f);
/* dir < 0: every folder. Order: as stored. */
int idx_file_list(struct idx *idx, int64_t costume_id, int dir, idx_file_fn fn, void *arg);
int idx_file_find(struct idx *idx, int64_t costume_id, enum idx_dir dir, const char *name,
		  struct idx_file *out);
int idx_file_get(struct idx *idx, int64_t id, struct idx_file *out);

/* ---- assets ---- */

enum idx_state { IDX_PENDING, IDX_DOWNLOADING, IDX_COMPLETED, IDX_FAILED };
const char *idx_state_name(enum idx_state s);

struct idx_asset {
	int64_t id;
	char server[8];
	char bundle[IDX_BUNDLE_MAX + 1];
	char file[IDX_NAME_MAX + 1];
	enum idx_state state;
	int64_t size;       /* -1 while unknown (known from a probe or a download) */
	int64_t bytes_done;
	char sha256[65];    /* "" until completed */
	int err;            /* positive errno of the last failure (ENOENT: not on the origin) */
	char error[IDX_TEXT_MAX + 1];
	char url[IDX_TEXT_MAX + 1]; /* the URL that last served or failed */
	int64_t created_at, updated_at, last_access;
	int failures;       /* failed downloads in a row (back-off) */
	int64_t retry_at;   /* ms (idx_now() clock): not asked before, 0 if none */
	/* Which bytes the file has: the version goes up when a download or a
	 * probe finds bytes other than the version's (its size or SHA-256 as
	 * last known, kept while the file is evicted; -1 and "" when unknown).
	 * Never goes down. */
	int64_t version;
	int64_t ver_size;
	char ver_sha256[65];
	int64_t stamp;      /* the cache file's stamp (cache_stamp()) as committed; 0 unknown */
	int64_t found;      /* pending: size of a file an index rebuild found at its path,
			     * taken back once the origin's size agrees; else -1 */
};

int idx_asset_get(struct idx *idx, int64_t id, struct idx_asset *out);
int idx_asset_find(struct idx *idx, const char *server, const char *bundle, const char *file,
		   struct idx_asset *out);

/* State changes. Each stamps updated_at. */
/* -ENOENT for a completed row, left alone: a download started from an older
 * read of it (another process completed it since) has nothing to do. */
int idx_asset_mark_downloading(struct idx *idx, int64_t id, const char *url);
int idx_asset_mark_progress(struct idx *idx, int64_t id, int64_t bytes_done, int64_t size);
/* completed also stamps last_access (a download is a use); stamp is the
 * cache file's, as committed. */
int idx_asset_mark_completed(struct idx *idx, int64_t id, int64_t size, const char *sha256,
			     const char *url, int64_t stamp);
int idx_asset_mark_failed(struct idx *idx, int64_t id, int err, const char *error,
			  const char *url);
/* After a failed download: failures in a row and when to ask again (ms). */
int idx_asset_set_backoff(struct idx *idx, int64_t id, int failures, int64_t retry_at_ms);
/* Forget every asset's back-off: failed ones may be asked for at once. */
int idx_asset_clear_backoff(struct idx *idx);
/* Back to pending with size, hash and back-off forgotten (file gone,
 * evicted, repaired, retried); the version and its size and hash stay. */
int idx_asset_mark_pending(struct idx *idx, int64_t id);
/* Back to pending as a new version whose bytes are not known yet: the
 * origin said the file changed. */
int idx_asset_mark_changed(struct idx *idx, int64_t id);
/* A probe's answer: size >= 0 present; err > 0 failed with that errno.
 * A pending row with a found file of that very size becomes completed. */
int idx_asset_mark_probed(struct idx *idx, int64_t id, int64_t size, int err,
			  const char *error);
/* Record a read (LRU for eviction): kept in memory, no SQL, so a reader
 * never waits on a write; idx_asset_touch_flush() writes it. */
int idx_asset_touch(struct idx *idx, int64_t id);
/* Write the reads recorded since the last call as last_access (minutes:
 * a row read within the last minute is left alone), in one transaction.
 * Run every few seconds by a mount, and by idx_close(). On failure the
 * reads are dropped (eviction order is a hint) and the error returned;
 * else the number of reads written (repeats included). */
int idx_asset_touch_flush(struct idx *idx);
/* A file found at an asset's cache path with no row behind it (an index
 * rebuilt): recorded as found (size, SHA-256, stamp) on a pending row. It
 * is trusted only once the origin's size agrees (idx_asset_mark_probed());
 * a download replaces it otherwise. */
int idx_asset_adopt(struct idx *idx, const char *server, const char *bundle,
		    const char *file, int64_t size, const char *sha256, int64_t stamp);
/* After a crash: every 'downloading' row back to pending. *n (may be NULL). */
int idx_asset_reset_downloading(struct idx *idx, int *n);

/* Assets of a server (NULL: every server) in a state (state < 0: any),
 * ordered by last_access ascending (least recently used first); reads
 * recorded and not yet written are written first. */
typedef int (*idx_asset_fn)(void *arg, const struct idx_asset *a);
int idx_asset_list(struct idx *idx, const char *server, int state, idx_asset_fn fn, void *arg);

struct idx_costume_status {
	int files_total;  /* files backed by an asset */
	int files_done;   /* of those, completed */
	int files_failed;
	int64_t bytes_done; /* completed bytes */
	int64_t bytes_total;/* known sizes */
};
int idx_costume_status(struct idx *idx, int64_t costume_id, struct idx_costume_status *st);

#endif
