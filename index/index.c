/*
 * index.c: opening, schema, documents and the catalogue.
 * Asset rows live in assets.c; shared plumbing in index_int.h.
 */
#include "index_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define IDX_SCHEMA_VERSION 1

static const char schema_sql[] =
	"CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
	"CREATE TABLE IF NOT EXISTS documents(key TEXT PRIMARY KEY, body BLOB NOT NULL,"
	" fetched_at INTEGER NOT NULL);"
	"CREATE TABLE IF NOT EXISTS characters(id INTEGER PRIMARY KEY,"
	" name0 TEXT, name1 TEXT, name2 TEXT, name3 TEXT, name4 TEXT);"
	"CREATE TABLE IF NOT EXISTS costumes(id INTEGER PRIMARY KEY AUTOINCREMENT, server TEXT NOT NULL,"
	" live2d_name TEXT NOT NULL, character_id INTEGER NOT NULL, costume_id INTEGER NOT NULL,"
	" desc0 TEXT, desc1 TEXT, desc2 TEXT, desc3 TEXT, desc4 TEXT, rank INTEGER NOT NULL,"
	" files_listed INTEGER NOT NULL DEFAULT 0, generation INTEGER NOT NULL DEFAULT 0,"
	" UNIQUE(server, live2d_name));"
	"CREATE INDEX IF NOT EXISTS costumes_by_character ON costumes(server, character_id, rank);"
	"CREATE TABLE IF NOT EXISTS assets(id INTEGER PRIMARY KEY, server TEXT NOT NULL,"
	" bundle TEXT NOT NULL, file TEXT NOT NULL,"
	" state TEXT NOT NULL DEFAULT 'pending'"
	"  CHECK(state IN ('pending','downloading','completed','failed')),"
	" size INTEGER NOT NULL DEFAULT -1, bytes_done INTEGER NOT NULL DEFAULT 0,"
	" sha256 TEXT NOT NULL DEFAULT '', err INTEGER NOT NULL DEFAULT 0,"
	" error TEXT NOT NULL DEFAULT '', url TEXT NOT NULL DEFAULT '',"
	" created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,"
	" last_access INTEGER NOT NULL DEFAULT 0, UNIQUE(server, bundle, file));"
	"CREATE INDEX IF NOT EXISTS assets_lru ON assets(server, state, last_access);"
	"CREATE TABLE IF NOT EXISTS costume_files(id INTEGER PRIMARY KEY AUTOINCREMENT,"
	" costume_id INTEGER NOT NULL REFERENCES costumes(id) ON DELETE CASCADE,"
	" dir INTEGER NOT NULL, name TEXT NOT NULL, kind INTEGER NOT NULL,"
	" asset_id INTEGER REFERENCES assets(id), optional INTEGER NOT NULL,"
	" position INTEGER NOT NULL, generation INTEGER NOT NULL DEFAULT 0,"
	" UNIQUE(costume_id, dir, name));"
	"CREATE INDEX IF NOT EXISTS costume_files_by_asset ON costume_files(asset_id);";

int64_t idx_now(void)
{
#ifdef L2DFS_TEST_HOOKS
	/* Test builds only: the clock shifted forward, to pass a TTL. */
	static int64_t offset = -1;
	if (offset < 0) {
		const char *s = getenv("L2DFS_TIME_OFFSET");
		offset = s ? strtoll(s, NULL, 10) : 0;
		if (offset < 0)
			offset = 0;
	}
	return (int64_t)time(NULL) + offset;
#else
	return (int64_t)time(NULL);
#endif
}

int idx_errno(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_ROW:
	case SQLITE_DONE:
		return 0;
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_READONLY:
		return -EROFS;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	default:
		return -EIO;
	}
}

int idx_prepare(struct idx *idx, sqlite3_stmt **st, const char *sql)
{
	struct idx_stmt *free_entry = NULL;
	int rc;

	for (int i = 0; i < idx->nstmts; i++) {
		struct idx_stmt *e = &idx->stmts[i];
		if (!e->busy && strcmp(e->sql, sql) == 0) {
			e->busy = 1;
			*st = e->st;
			return 0;
		}
	}
	rc = sqlite3_prepare_v3(idx->db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL);
	if (rc != SQLITE_OK)
		return idx_errno(rc);
	if (idx->nstmts < IDX_STMT_CACHE) {
		free_entry = &idx->stmts[idx->nstmts];
		free_entry->sql = strdup(sql);
		if (free_entry->sql) {
			free_entry->st = *st;
			free_entry->busy = 1;
			idx->nstmts++;
		}
	}
	return 0;
}

void idx_done(struct idx *idx, sqlite3_stmt *st)
{
	for (int i = 0; i < idx->nstmts; i++) {
		if (idx->stmts[i].st == st) {
			sqlite3_reset(st);
			sqlite3_clear_bindings(st);
			idx->stmts[i].busy = 0;
			return;
		}
	}
	sqlite3_finalize(st);
}

void idx_stmts_free(struct idx *idx)
{
	for (int i = 0; i < idx->nstmts; i++) {
		sqlite3_finalize(idx->stmts[i].st);
		free(idx->stmts[i].sql);
	}
	idx->nstmts = 0;
}

int idx_exec(struct idx *idx, const char *sql)
{
	return idx_errno(sqlite3_exec(idx->db, sql, NULL, NULL, NULL));
}

int idx_log_truncate(struct idx *idx)
{
	pthread_mutex_lock(&idx->lock);
	int rc = idx_errno(sqlite3_wal_checkpoint_v2(idx->db, NULL, SQLITE_CHECKPOINT_TRUNCATE,
						     NULL, NULL));
	pthread_mutex_unlock(&idx->lock);
	return rc;
}

int idx_write(struct idx *idx, int (*fn)(void *arg), void *arg)
{
	/* The connection is one for every thread: no other thread's statement
	 * may fall inside the transaction (the lock is recursive, so fn's own
	 * calls go through). */
	pthread_mutex_lock(&idx->lock);
	int rc = idx_exec(idx, "BEGIN IMMEDIATE");
	if (rc == 0) {
		rc = fn(arg);
		rc = rc == 0 ? idx_exec(idx, "COMMIT") : rc;
		if (rc < 0)
			idx_exec(idx, "ROLLBACK");
	}
	pthread_mutex_unlock(&idx->lock);
	return rc;
}

int idx_run(struct idx *idx, const char *sql, int n, ...)
{
	sqlite3_stmt *st;
	va_list ap;
	int rc = idx_prepare(idx, &st, sql);

	if (rc < 0)
		return rc;
	va_start(ap, n);
	for (int i = 1; i <= n; i++)
		sqlite3_bind_int64(st, i, va_arg(ap, int64_t));
	va_end(ap);
	rc = idx_errno(sqlite3_step(st));
	idx_done(idx, st);
	return rc;
}

int idx_query_int64(struct idx *idx, const char *sql, const char *text, int64_t num,
		    int64_t *out)
{
	sqlite3_stmt *st;
	int rc = idx_prepare(idx, &st, sql);

	if (rc < 0)
		return rc;
	if (text)
		sqlite3_bind_text(st, 1, text, -1, SQLITE_STATIC);
	else
		sqlite3_bind_int64(st, 1, num);
	int step = sqlite3_step(st);
	if (step == SQLITE_ROW)
		*out = sqlite3_column_int64(st, 0);
	else
		rc = step == SQLITE_DONE ? -ENOENT : idx_errno(step);
	idx_done(idx, st);
	return rc;
}

void idx_copy_text(char *dst, size_t len, sqlite3_stmt *st, int col)
{
	const unsigned char *s = sqlite3_column_text(st, col);
	snprintf(dst, len, "%s", s ? (const char *)s : "");
}

/*
 * Migration: costumes and costume_files without AUTOINCREMENT (row ids of
 * deleted rows could be given again, and fs/ uses them as inode numbers).
 * The old tables are renamed and copied into new ones, ids kept; the new
 * ones are created by schema_sql. Runs with foreign keys off.
 */
static int idx_migrate_autoincrement(struct idx *idx, int *copy)
{
	sqlite3_stmt *st;
	int old = 0;

	*copy = 0;
	if (idx_prepare(idx, &st, "SELECT sql FROM sqlite_master WHERE type='table'"
				  " AND name='costumes' AND sql NOT LIKE '%AUTOINCREMENT%'") < 0)
		return -EIO;
	old = sqlite3_step(st) == SQLITE_ROW;
	idx_done(idx, st);
	if (!old)
		return 0;
	*copy = 1;
	return idx_exec(idx, "DROP INDEX IF EXISTS costumes_by_character;"
			     " DROP INDEX IF EXISTS costume_files_by_asset;"
			     " ALTER TABLE costume_files RENAME TO costume_files_v1;"
			     " ALTER TABLE costumes RENAME TO costumes_v1;");
}

/* The second half of the migration, once schema_sql made the new tables. */
static int idx_migrate_copy(struct idx *idx)
{
	return idx_exec(idx, "INSERT INTO costumes SELECT * FROM costumes_v1;"
			     " INSERT INTO costume_files SELECT * FROM costume_files_v1;"
			     " DROP TABLE costume_files_v1; DROP TABLE costumes_v1;");
}

/* A file whose content is not a database of ours: moved aside. */
#define IDX_UNUSABLE (-EUCLEAN)

/* What a failed statement of the set-up means: content that is not a
 * database (corrupt, not one) is IDX_UNUSABLE; the rest (a full disk, a
 * read-only file, a lock) is said as it is, and the file left alone. An
 * I/O error says its cause where the system gave one (ENOSPC while the
 * shared-memory file or the log grows). */
static int setup_errno(struct idx *idx, int rc)
{
	int sys = idx->db ? sqlite3_system_errno(idx->db) : 0;

	switch (rc & 0xff) {
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
	case SQLITE_SCHEMA:
		return IDX_UNUSABLE;
	case SQLITE_IOERR:
	case SQLITE_CANTOPEN:
		if (sys == ENOSPC || sys == EDQUOT || sys == EROFS || sys == EACCES)
			return -sys;
		return idx_errno(rc);
	default:
		return idx_errno(rc);
	}
}

static int setup_exec(struct idx *idx, const char *sql)
{
	return setup_errno(idx, sqlite3_exec(idx->db, sql, NULL, NULL, NULL));
}

static int setup_schema(struct idx *idx)
{
	int rc, copy;

	if ((rc = setup_exec(idx, "BEGIN IMMEDIATE")) < 0)
		return rc;
	rc = idx_migrate_autoincrement(idx, &copy);
	if (rc == 0)
		rc = setup_exec(idx, schema_sql);
	if (rc == 0 && copy)
		rc = idx_migrate_copy(idx);
	if (rc == 0)
		rc = idx_assets_migrate_columns(idx);
	if (rc == 0)
		return setup_exec(idx, "COMMIT");
	idx_exec(idx, "ROLLBACK");
	return rc;
}

/* Apply pragmas and schema. A set-up with nothing to change writes
 * nothing, so that a full disk still opens. */
static int idx_setup(struct idx *idx)
{
	sqlite3_stmt *st;
	int rc, version = 0;

	sqlite3_busy_timeout(idx->db, 10000);
	/* A file we may not write is said so, not taken for a broken one. */
	if (sqlite3_db_readonly(idx->db, "main") == 1)
		return -EROFS;
	/* The log is cut back to 1 MiB after each checkpoint: the cache's disk
	 * may be small, and the log otherwise keeps its largest size. */
	rc = setup_exec(idx, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
			     " PRAGMA journal_size_limit=1048576;");
	if (rc < 0)
		return rc;
	if ((rc = idx_prepare(idx, &st, "PRAGMA quick_check")) < 0)
		return rc;
	rc = sqlite3_step(st);
	rc = rc == SQLITE_ROW ? strcmp((const char *)sqlite3_column_text(st, 0), "ok") == 0
				       ? 0
				       : IDX_UNUSABLE
			      : setup_errno(idx, rc);
	idx_done(idx, st);
	if (rc == 0)
		rc = setup_schema(idx);
	if (rc == 0)
		rc = setup_exec(idx, "PRAGMA foreign_keys=ON");
	if (rc < 0)
		return rc;
	if (idx_prepare(idx, &st, "SELECT value FROM meta WHERE key='schema'") < 0)
		return -EIO;
	if (sqlite3_step(st) == SQLITE_ROW)
		version = sqlite3_column_int(st, 0);
	idx_done(idx, st);
	if (version > IDX_SCHEMA_VERSION)
		return IDX_UNUSABLE;
	if (version == IDX_SCHEMA_VERSION)
		return 0;
	return idx_exec(idx, "INSERT OR REPLACE INTO meta VALUES('schema', '1')");
}

static int idx_try_open(struct idx *idx, const char *path)
{
	int rc = sqlite3_open_v2(path, &idx->db,
				 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
				 NULL);
	rc = rc == SQLITE_OK ? idx_setup(idx) : setup_errno(idx, rc);
	if (rc < 0) {
		idx_stmts_free(idx);
		sqlite3_close(idx->db);
		idx->db = NULL;
	}
	return rc;
}

/* Move a broken database and its WAL files out of the way. */
static int idx_move_aside(const char *path)
{
	static const char *const suffixes[] = { "", "-wal", "-shm" };
	char from[4096], to[4200];
	long now = (long)time(NULL);

	for (int i = 0; i < 3; i++) {
		snprintf(from, sizeof(from), "%s%s", path, suffixes[i]);
		snprintf(to, sizeof(to), "%s.corrupt-%ld%s", path, now, suffixes[i]);
		if (rename(from, to) < 0 && errno != ENOENT)
			return -errno;
	}
	return 0;
}

int idx_open(struct idx **out, const char *path, int *recreated)
{
	sqlite3_vfs *vfs = sqlite3_vfs_find(NULL);
	struct idx *idx;
	int rc;

	if (recreated)
		*recreated = 0;
	/* SQLite refuses longer paths with a bare "unable to open". */
	if (vfs && strlen(path) >= (size_t)vfs->mxPathname)
		return -ENAMETOOLONG;
	idx = calloc(1, sizeof(*idx));
	if (!idx)
		return -ENOMEM;
	/* Recursive: list callbacks may query the index again. */
	pthread_mutexattr_t attr;
	pthread_mutexattr_init(&attr);
	pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
	pthread_mutex_init(&idx->lock, &attr);
	pthread_mutexattr_destroy(&attr);
	pthread_mutex_init(&idx->touch_lock, NULL);
	rc = idx_try_open(idx, path);
	if (rc == IDX_UNUSABLE) {
		rc = idx_move_aside(path);
		if (rc == 0)
			rc = idx_try_open(idx, path);
		if (rc == 0 && recreated)
			*recreated = 1;
		if (rc == IDX_UNUSABLE)
			rc = -EIO;
	}
	if (rc < 0) {
		pthread_mutex_destroy(&idx->lock);
		pthread_mutex_destroy(&idx->touch_lock);
		free(idx);
		return rc;
	}
	*out = idx;
	return 0;
}

void idx_close(struct idx *idx)
{
	if (!idx)
		return;
	idx_asset_touch_flush(idx);
	idx_stmts_free(idx);
	sqlite3_close_v2(idx->db);
	pthread_mutex_destroy(&idx->lock);
	pthread_mutex_destroy(&idx->touch_lock);
	free(idx->touched);
	free(idx);
}

/* ---- documents ---- */

int idx_doc_get(struct idx *idx, const char *key, char **body, size_t *len,
		int64_t *fetched_at)
{
	sqlite3_stmt *st;
	int rc;

	pthread_mutex_lock(&idx->lock);
	rc = idx_prepare(idx, &st, "SELECT body, fetched_at FROM documents WHERE key=?");
	if (rc == 0) {
		sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
		int step = sqlite3_step(st);
		if (step == SQLITE_ROW) {
			int n = sqlite3_column_bytes(st, 0);
			char *b = malloc((size_t)n + 1);
			if (!b) {
				rc = -ENOMEM;
			} else {
				if (n)
					memcpy(b, sqlite3_column_blob(st, 0), (size_t)n);
				b[n] = '\0';
				*body = b;
				if (len)
					*len = (size_t)n;
				if (fetched_at)
					*fetched_at = sqlite3_column_int64(st, 1);
			}
		} else {
			rc = step == SQLITE_DONE ? -ENOENT : idx_errno(step);
		}
		idx_done(idx, st);
	}
	pthread_mutex_unlock(&idx->lock);
	return rc;
}

int idx_doc_fetched_at(struct idx *idx, const char *key, int64_t *fetched_at)
{
	sqlite3_stmt *st;
	int rc;

	pthread_mutex_lock(&idx->lock);
	rc = idx_prepare(idx, &st, "SELECT fetched_at FROM documents WHERE key=?");
	if (rc == 0) {
		sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
		int step = sqlite3_step(st);
		if (step == SQLITE_ROW)
			*fetched_at = sqlite3_column_int64(st, 0);
		else
			rc = step == SQLITE_DONE ? -ENOENT : idx_errno(step);
		idx_done(idx, st);
	}
	pthread_mutex_unlock(&idx->lock);
	return rc;
}

int idx_doc_put(struct idx *idx, const char *key, const char *body, size_t len,
		int64_t fetched_at)
{
	sqlite3_stmt *st;
	int rc;

	pthread_mutex_lock(&idx->lock);
	rc = idx_prepare(idx, &st, "INSERT OR REPLACE INTO documents VALUES(?, ?, ?)");
	if (rc == 0) {
		sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
		sqlite3_bind_blob64(st, 2, body, len, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, fetched_at);
		rc = idx_errno(sqlite3_step(st));
		idx_done(idx, st);
	}
	pthread_mutex_unlock(&idx->lock);
	return rc;
}

/* ---- the catalogue ---- */

static void bind_text_or_null(sqlite3_stmt *st, int col, const char *s)
{
	if (s)
		sqlite3_bind_text(st, col, s, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, col);
}

static int store_characters(struct idx *idx, const struct idx_character_in *chars, size_t n)
{
	sqlite3_stmt *st;
	int rc = idx_prepare(idx, &st, "INSERT OR REPLACE INTO characters VALUES(?,?,?,?,?,?)");

	for (size_t i = 0; rc == 0 && i < n; i++) {
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, chars[i].id);
		for (int l = 0; l < IDX_LANGS; l++)
			bind_text_or_null(st, 2 + l, chars[i].names[l]);
		rc = idx_errno(sqlite3_step(st));
	}
	idx_done(idx, st);
	return rc;
}

static int store_costumes(struct idx *idx, const char *server,
			  const struct idx_costume_in *cos, size_t n, int64_t generation)
{
	sqlite3_stmt *st;
	int rc = idx_prepare(idx, &st,
			     "INSERT INTO costumes(server, live2d_name, character_id, costume_id,"
			     " desc0, desc1, desc2, desc3, desc4, rank, generation)"
			     " VALUES(?,?,?,?,?,?,?,?,?,?,?)"
			     " ON CONFLICT(server, live2d_name) DO UPDATE SET"
			     " character_id=excluded.character_id, costume_id=excluded.costume_id,"
			     " desc0=excluded.desc0, desc1=excluded.desc1, desc2=excluded.desc2,"
			     " desc3=excluded.desc3, desc4=excluded.desc4, rank=excluded.rank,"
			     " generation=excluded.generation");

	for (size_t i = 0; rc == 0 && i < n; i++) {
		sqlite3_reset(st);
		sqlite3_bind_text(st, 1, server, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, cos[i].live2d_name, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, cos[i].character_id);
		sqlite3_bind_int64(st, 4, cos[i].costume_id);
		for (int l = 0; l < IDX_LANGS; l++)
			bind_text_or_null(st, 5 + l, cos[i].desc[l]);
		sqlite3_bind_int64(st, 10, cos[i].rank);
		sqlite3_bind_int64(st, 11, generation);
		rc = idx_errno(sqlite3_step(st));
	}
	idx_done(idx, st);
	if (rc == 0) {
		rc = idx_prepare(idx, &st, "DELETE FROM costumes WHERE server=? AND generation<>?");
		if (rc == 0) {
			sqlite3_bind_text(st, 1, server, -1, SQLITE_STATIC);
			sqlite3_bind_int64(st, 2, generation);
			rc = idx_errno(sqlite3_step(st));
			idx_done(idx, st);
		}
	}
	return rc;
}

/* After a store: file lists are read again from a new buildData when next
 * needed, and readers of the generation see that something changed. */
static int catalogue_bump(struct idx *idx, const char *server)
{
	sqlite3_stmt *st;
	int rc = idx_prepare(idx, &st, "UPDATE costumes SET files_listed=0 WHERE server=?");

	if (rc < 0)
		return rc;
	sqlite3_bind_text(st, 1, server, -1, SQLITE_STATIC);
	rc = idx_errno(sqlite3_step(st));
	idx_done(idx, st);
	if (rc < 0)
		return rc;
	return idx_exec(idx, "INSERT INTO meta VALUES('catalogue_generation', '1')"
			     " ON CONFLICT(key) DO UPDATE SET value=CAST(value AS INTEGER)+1");
}

int idx_catalogue_store(struct idx *idx, const char *server,
			const struct idx_character_in *chars, size_t nchars,
			const struct idx_costume_in *costumes, size_t ncostumes)
{
	int64_t stamp = 0;
	int rc;

	pthread_mutex_lock(&idx->lock);
	rc = idx_exec(idx, "BEGIN IMMEDIATE");
	if (rc == 0) {
		rc = store_characters(idx, chars, nchars);
		/* Unique per store (two may fall in one second): rows not
		 * stamped with it are gone. */
		if (rc == 0)
			rc = idx_query_int64(idx, "SELECT COALESCE(MAX(generation), 0) + 1"
						  " FROM costumes WHERE server=?", server, 0, &stamp);
		if (rc == 0)
			rc = store_costumes(idx, server, costumes, ncostumes, stamp);
		if (rc == 0)
			rc = catalogue_bump(idx, server);
		rc = rc == 0 ? idx_exec(idx, "COMMIT") : rc;
		if (rc < 0)
			idx_exec(idx, "ROLLBACK");
	}
	pthread_mutex_unlock(&idx->lock);
	return rc;
}

int idx_catalogue_generation(struct idx *idx, int64_t *generation)
{
	sqlite3_stmt *st;
	int rc;

	pthread_mutex_lock(&idx->lock);
	rc = idx_prepare(idx, &st,
			 "SELECT CAST(value AS INTEGER) FROM meta WHERE key='catalogue_generation'");
	if (rc == 0) {
		int step = sqlite3_step(st);
		*generation = step == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
		rc = step == SQLITE_ROW || step == SQLITE_DONE ? 0 : idx_errno(step);
		idx_done(idx, st);
	}
	pthread_mutex_unlock(&idx->lock);
	return rc;
}

int idx_version(struct idx *idx, uint64_t *version)
{
	sqlite3_stmt *st;
	int rc;

	pthread_mutex_lock(&idx->lock);
	rc = idx_prepare(idx, &st, "PRAGMA data_version");
	if (rc == 0) {
		int step = sqlite3_step(st);
		rc = step == SQLITE_ROW ? 0 : idx_errno(step);
		/* data_version counts the others' commits, not this handle's. */
		if (rc == 0)
			*version = (uint64_t)sqlite3_column_int64(st, 0) << 40 ^
				   (uint64_t)sqlite3_total_changes64(idx->db);
		idx_done(idx, st);
	}
	pthread_mutex_unlock(&idx->lock);
	return rc;
}

int idx_catalogue_present(struct idx *idx, const char *server)
{
	sqlite3_stmt *st;
	int present = 0;

	pthread_mutex_lock(&idx->lock);
	if (idx_prepare(idx, &st, "SELECT 1 FROM costumes WHERE server=? LIMIT 1") == 0) {
		sqlite3_bind_text(st, 1, server, -1, SQLITE_STATIC);
		present = sqlite3_step(st) == SQLITE_ROW;
		idx_done(idx, st);
	}
	pthread_mutex_unlock(&idx->lock);
	return present;
}

const char *const idx_dir_names[IDX_NDIRS] = { "", "textures", "motions", "expressions" };

/* Each listed character's name in lang (Japanese where NULL, the id where
 * both are), by id; lang is 0..4 and formatted into the column name. */
static const char character_base_sql[] =
	"SELECT ch.id, COALESCE(ch.name%d, ch.name0, CAST(ch.id AS TEXT)) FROM characters ch"
	" WHERE EXISTS (SELECT 1 FROM costumes co WHERE co.server=?1 AND co.character_id=ch.id)"
	" ORDER BY ch.id";

static int named_cmp(const void *a, const void *b)
{
	return strcmp(((const struct idx_named *)a)->name, ((const struct idx_named *)b)->name);
}

static int named_id_cmp(const void *a, const void *b)
{
	const struct idx_named *x = a, *y = b;
	return x->id < y->id ? -1 : x->id > y->id;
}

/* Append " (<id>)" to v->name. */
static int named_suffix(struct idx_named *v)
{
	char *s;
	if (asprintf(&s, "%s (%lld)", v->name, (long long)v->id) < 0)
		return -ENOMEM;
	free(v->name);
	v->name = s;
	return 0;
}

/*
 * Every name that equals another gets " (<id>)"; a name so made that still
 * equals a name of its own (unsuffixed, hence unique) gets " (<id>)" again
 * until it does not. Suffixed names end in distinct ids, so they differ from
 * one another; names that were unique never change. Order: by id.
 */
int idx_names_unique(struct idx_named *v, size_t n)
{
	if (n == 0)
		return 0; /* v may be NULL */
	unsigned char *dup = calloc(n, 1);
	size_t nown = 0;
	int rc = dup ? 0 : -ENOMEM;

	if (rc == 0)
		qsort(v, n, sizeof(*v), named_cmp);
	for (size_t i = 0; rc == 0 && i + 1 < n; i++)
		if (strcmp(v[i].name, v[i + 1].name) == 0)
			dup[i] = dup[i + 1] = 1;
	/* v sorted by name: the unsuffixed ones, in order, first; then the rest. */
	for (size_t i = 0; rc == 0 && i < n; i++) {
		if (!dup[i]) {
			struct idx_named t = v[nown];
			v[nown++] = v[i];
			v[i] = t;
		}
	}
	for (size_t i = nown; rc == 0 && i < n; i++) {
		rc = named_suffix(&v[i]);
		while (rc == 0 && bsearch(&v[i], v, nown, sizeof(*v), named_cmp))
			rc = named_suffix(&v[i]);
	}
	free(dup);
	qsort(v, n, sizeof(*v), named_id_cmp);
	return rc;
}

void idx_named_free(struct idx_named *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i].name);
	free(v);
}

/* The listed characters with their display names (DESIGN §4), by id. */
static int character_displays(struct idx *idx, const char *server, int lang,
			      struct idx_named **out, size_t *n)
{
	char sql[sizeof(character_base_sql) + 8];
	struct idx_named *v = NULL;
	size_t cap = 0;
	sqlite3_stmt *st;
	int rc, step = SQLITE_DONE;

	*n = 0;
	if (lang < 0 || lang >= IDX_LANGS)
		return -EINVAL;
	snprintf(sql, sizeof(sql), character_base_sql, lang);
	pthread_mutex_lock(&idx->lock);
	rc = idx_prepare(idx, &st, sql);
	if (rc == 0) {
		sqlite3_bind_text(st, 1, server, -1, SQLITE_STATIC);
		while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW) {
			if (*n == cap) {
				cap = cap ? cap * 2 : 64;
				struct idx_named *g = realloc(v, cap * sizeof(*v));
				if (!g) {
					rc = -ENOMEM;
					break;
				}
				v = g;
			}
			v[*n].id = sqlite3_column_int64(st, 0);
			v[*n].name = strdup((const char *)sqlite3_column_text(st, 1));
			rc = v[(*n)++].name ? 0 : -ENOMEM;
		}
		if (rc == 0 && step != SQLITE_DONE)
			rc = idx_errno(step);
		idx_done(idx, st);
	}
	pthread_mutex_unlock(&idx->lock);
	if (rc == 0)
		rc = idx_names_unique(v, *n);
	if (rc < 0) {
		idx_named_free(v, *n);
		v = NULL;
		*n = 0;
	}
	*out = v;
	return rc;
}

int idx_character_list(struct idx *idx, const char *server, int lang, idx_character_fn fn,
		       void *arg)
{
	struct idx_named *v;
	size_t n;
	int rc = character_displays(idx, server, lang, &v, &n);

	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = fn(arg, v[i].id, v[i].name);
	idx_named_free(v, n);
	return rc;
}

int idx_character_find(struct idx *idx, const char *server, int lang, const char *display,
		       int64_t *id)
{
	struct idx_named *v;
	size_t n;
	int rc = character_displays(idx, server, lang, &v, &n);

	if (rc == 0) {
		rc = -ENOENT;
		for (size_t i = 0; i < n && rc == -ENOENT; i++)
			if (strcmp(v[i].name, display) == 0)
				*id = v[i].id, rc = 0;
	}
	idx_named_free(v, n);
	return rc;
}

int idx_character_names(struct idx *idx, int64_t id, char *names[IDX_LANGS])
{
	sqlite3_stmt *st;
	int rc;

	for (int l = 0; l < IDX_LANGS; l++)
		names[l] = NULL;
	pthread_mutex_lock(&idx->lock);
	rc = idx_prepare(idx, &st,
			 "SELECT name0, name1, name2, name3, name4 FROM characters WHERE id=?");
	if (rc == 0) {
		sqlite3_bind_int64(st, 1, id);
		int step = sqlite3_step(st);
		if (step == SQLITE_ROW) {
			for (int l = 0; l < IDX_LANGS; l++) {
				const unsigned char *s = sqlite3_column_text(st, l);
				if (s && !(names[l] = strdup((const char *)s)))
					rc = -ENOMEM;
			}
		} else {
			rc = step == SQLITE_DONE ? -ENOENT : idx_errno(step);
		}
		idx_done(idx, st);
	}
	pthread_mutex_unlock(&idx->lock);
	return rc;
}

/* Costume columns with the display description in lang, else the first of
 * ja, en, zh-hant, zh-hans, ko marked as the Japanese server's (DESIGN §3). */
#define JP_MARK "'\xef\xbc\x88\xe6\x97\xa5\xe6\x9c\x8d\xef\xbc\x89'" /* （日服） */
#define COSTUME_COLUMNS                                                                  \
	"id, server, live2d_name, character_id, costume_id, COALESCE(desc%d,"               \
	" desc0||" JP_MARK ", desc1||" JP_MARK ", desc2||" JP_MARK ", desc3||" JP_MARK ","   \
	" desc4||" JP_MARK ", ''), files_listed FROM costumes"

static void costume_from_row(sqlite3_stmt *st, struct idx_costume *c)
{
	c->id = sqlite3_column_int64(st, 0);
	idx_copy_text(c->server, sizeof(c->server), st, 1);
	idx_copy_text(c->live2d_name, sizeof(c->live2d_name), st, 2);
	c->character_id = sqlite3_column_int64(st, 3);
	c->costume_id = sqlite3_column_int64(st, 4);
	idx_copy_text(c->display, sizeof(c->display), st, 5);
	c->files_listed = sqlite3_column_int(st, 6);
}

/* Run a costume query; fn gets each row (or the first row is copied to one). */
static int costume_query(struct idx *idx, int lang, const char *where, const char *server,
			 int64_t num, const char *name, idx_costume_fn fn, void *arg,
			 struct idx_costume *one)
{
	char sql[768];
	sqlite3_stmt *st;
	struct idx_costume c;
	int rc, step, found = 0;

	if (lang < 0 || lang >= IDX_LANGS)
		return -EINVAL;
	snprintf(sql, sizeof(sql), "SELECT " COSTUME_COLUMNS " %s", lang, where);
	pthread_mutex_lock(&idx->lock);
	rc = idx_prepare(idx, &st, sql);
	if (rc == 0) {
		int col = 1;
		if (server)
			sqlite3_bind_text(st, col++, server, -1, SQLITE_STATIC);
		if (num >= 0)
			sqlite3_bind_int64(st, col++, num);
		if (name)
			sqlite3_bind_text(st, col++, name, -1, SQLITE_STATIC);
		while ((step = sqlite3_step(st)) == SQLITE_ROW) {
			costume_from_row(st, one ? one : &c);
			found = 1;
			if (one)
				break;
			rc = fn(arg, &c);
			if (rc)
				break;
		}
		if (rc == 0 && step != SQLITE_DONE && step != SQLITE_ROW)
			rc = idx_errno(step);
		if (rc == 0 && one && !found)
			rc = -ENOENT;
		idx_done(idx, st);
	}
	pthread_mutex_unlock(&idx->lock);
	return rc;
}

int idx_costume_list(struct idx *idx, const char *server, int lang, int64_t character_id,
		     idx_costume_fn fn, void *arg)
{
	if (character_id >= 0)
		return costume_query(idx, lang, "WHERE server=? AND character_id=? ORDER BY rank",
				     server, character_id, NULL, fn, arg, NULL);
	return costume_query(idx, lang, "WHERE server=? ORDER BY live2d_name", server, -1, NULL,
			     fn, arg, NULL);
}

int idx_costume_find(struct idx *idx, const char *server, int lang, int64_t character_id,
		     const char *live2d_name, struct idx_costume *out)
{
	if (character_id >= 0)
		return costume_query(idx, lang,
				     "WHERE server=? AND character_id=? AND live2d_name=?", server,
				     character_id, live2d_name, NULL, NULL, out);
	return costume_query(idx, lang, "WHERE server=? AND live2d_name=?", server, -1,
			     live2d_name, NULL, NULL, out);
}

int idx_costume_get(struct idx *idx, int64_t id, int lang, struct idx_costume *out)
{
	return costume_query(idx, lang, "WHERE id=?", NULL, id, NULL, NULL, NULL, out);
}
