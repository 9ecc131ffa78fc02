/* Shared between the index's own files; not part of the contract. */
#ifndef L2DFS_INDEX_INT_H
#define L2DFS_INDEX_INT_H

#include <pthread.h>
#include <sqlite3.h>

#include "index.h"

struct idx {
	sqlite3 *db;
	pthread_mutex_t lock; /* recursive: list callbacks may query again */
};

/* SQLite result code -> 0 or a negative errno. */
int idx_errno(int rc);
/* Prepare sql on idx's connection (caller holds the lock). */
int idx_prepare(struct idx *idx, sqlite3_stmt **st, const char *sql);
/* Run statements without results (caller holds the lock). */
int idx_exec(struct idx *idx, const char *sql);
/* Copy a text column, "" for NULL, truncated to len. */
void idx_copy_text(char *dst, size_t len, sqlite3_stmt *st, int col);

#endif
