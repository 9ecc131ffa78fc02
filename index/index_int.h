/* Shared between the index's own files; not part of the contract. */
#ifndef L2DFS_INDEX_INT_H
#define L2DFS_INDEX_INT_H

#include <pthread.h>
#include <sqlite3.h>

#include "index.h"

/* Prepared statements kept for reuse: preparing costs more than running
 * most of these queries. A statement in use (a list whose callback queries
 * again) is busy; the same SQL is then prepared afresh. */
#define IDX_STMT_CACHE 64

struct idx_stmt {
	char *sql;
	sqlite3_stmt *st;
	int busy;
};

struct idx {
	sqlite3 *db;
	pthread_mutex_t lock; /* recursive: list callbacks may query again */
	struct idx_stmt stmts[IDX_STMT_CACHE];
	int nstmts;
	/* Reads recorded by idx_asset_touch(), written by idx_asset_touch_flush(). */
	pthread_mutex_t touch_lock; /* guards touched, ntouched, captouched */
	int64_t *touched;
	size_t ntouched, captouched;
};

/* SQLite result code -> 0 or a negative errno. */
int idx_errno(int rc);
/* A statement for sql, from the cache or prepared (caller holds the lock);
 * give it back with idx_done(). */
int idx_prepare(struct idx *idx, sqlite3_stmt **st, const char *sql);
/* Reset a statement from idx_prepare() for reuse (or finalize it). */
void idx_done(struct idx *idx, sqlite3_stmt *st);
/* Finalize every cached statement (before closing the connection). */
void idx_stmts_free(struct idx *idx);
/* Run statements without results (caller holds the lock). */
int idx_exec(struct idx *idx, const char *sql);
/* Run sql (no result rows) with ?1..?n bound to the n arguments that follow,
 * each an int64_t (cast constants) (caller holds the lock). */
int idx_run(struct idx *idx, const char *sql, int n, ...);
/* The first column of the first row of sql, whose one parameter is text
 * (when not NULL) or else num (caller holds the lock). */
int idx_query_int64(struct idx *idx, const char *sql, const char *text, int64_t num,
		    int64_t *out);
/* Migration (any schema version): add the assets' columns a database made
 * before them lacks (back-off: failures, retry_at; versions: version,
 * ver_size, ver_sha256; the stamp and what a rebuild found: stamp,
 * found); caller holds the lock. */
int idx_assets_migrate_columns(struct idx *idx);
/* Copy a text column, "" for NULL, truncated to len. */
void idx_copy_text(char *dst, size_t len, sqlite3_stmt *st, int col);

#endif
