/*
 * assets.c: a costume's files and the asset rows behind them.
 */
#include "index_int.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../util/util.h"

/* Insert the asset if new; return its id. Caller holds the lock. */
static int asset_upsert(struct idx *idx, const char *server, const char *bundle,
			const char *file, int64_t *id)
{
	sqlite3_stmt *st;
	int64_t now = idx_now();
	int rc = idx_prepare(idx, &st,
			     "INSERT INTO assets(server, bundle, file, created_at, updated_at)"
			     " VALUES(?,?,?,?,?) ON CONFLICT(server, bundle, file)"
			     " DO UPDATE SET server=server RETURNING id");
	if (rc < 0)
		return rc;
	sqlite3_bind_text(st, 1, server, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, bundle, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, file, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, now);
	sqlite3_bind_int64(st, 5, now);
	int step = sqlite3_step(st);
	if (step == SQLITE_ROW)
		*id = sqlite3_column_int64(st, 0);
	else
		rc = idx_errno(step) ? idx_errno(step) : -EIO;
	idx_done(idx, st);
	return rc;
}

/* A name that now stands for another asset or kind gets a new row id: the
 * kernel may still hold the old one's pages under the old number. */
static int files_drop_changed(struct idx *idx, int64_t costume_id,
			      const struct idx_file_in *files, size_t n)
{
	sqlite3_stmt *st;
	int rc = idx_prepare(idx, &st,
			     "DELETE FROM costume_files WHERE costume_id=?1 AND dir=?2 AND name=?3"
			     " AND (kind<>?4 OR asset_id IS NOT (SELECT a.id FROM assets a, costumes c"
			     " WHERE c.id=?1 AND a.server=c.server AND a.bundle=?5 AND a.file=?6))");

	if (rc < 0)
		return rc;
	for (size_t i = 0; rc == 0 && i < n; i++) {
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, costume_id);
		sqlite3_bind_int(st, 2, files[i].dir);
		sqlite3_bind_text(st, 3, files[i].name, -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 4, files[i].kind);
		sqlite3_bind_text(st, 5, files[i].bundle, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 6, files[i].file, -1, SQLITE_STATIC);
		rc = idx_errno(sqlite3_step(st));
	}
	idx_done(idx, st);
	return rc;
}

/* The server a costume belongs to. */
static int costume_server(struct idx *idx, int64_t costume_id, char *server, size_t len)
{
	sqlite3_stmt *st;
	int rc = idx_prepare(idx, &st, "SELECT server FROM costumes WHERE id=?");

	if (rc < 0)
		return rc;
	sqlite3_bind_int64(st, 1, costume_id);
	if (sqlite3_step(st) != SQLITE_ROW)
		rc = -ENOENT;
	else
		idx_copy_text(server, len, st, 0);
	idx_done(idx, st);
	return rc;
}

/* Insert or update each file (and its asset row), stamped with generation.
 * Upsert keeps the row ids (inode numbers) of files that stay. */
static int files_upsert(struct idx *idx, int64_t costume_id, const char *server,
			const struct idx_file_in *files, size_t n, int64_t generation)
{
	sqlite3_stmt *st;
	int rc = idx_prepare(idx, &st,
			     "INSERT INTO costume_files(costume_id, dir, name, kind, asset_id,"
			     " optional, position, generation) VALUES(?,?,?,?,?,?,?,?)"
			     " ON CONFLICT(costume_id, dir, name) DO UPDATE SET kind=excluded.kind,"
			     " asset_id=excluded.asset_id, optional=excluded.optional,"
			     " position=excluded.position, generation=excluded.generation");

	if (rc < 0)
		return rc;
	for (size_t i = 0; rc == 0 && i < n; i++) {
		int64_t asset = 0;
		if (files[i].bundle)
			rc = asset_upsert(idx, server, files[i].bundle, files[i].file, &asset);
		if (rc < 0)
			break;
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, costume_id);
		sqlite3_bind_int(st, 2, files[i].dir);
		sqlite3_bind_text(st, 3, files[i].name, -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 4, files[i].kind);
		if (asset)
			sqlite3_bind_int64(st, 5, asset);
		else
			sqlite3_bind_null(st, 5);
		sqlite3_bind_int(st, 6, files[i].optional);
		sqlite3_bind_int64(st, 7, (int64_t)i);
		sqlite3_bind_int64(st, 8, generation);
		rc = idx_errno(sqlite3_step(st));
	}
	idx_done(idx, st);
	return rc;
}

static int files_store_locked(struct idx *idx, int64_t costume_id,
			      const struct idx_file_in *files, size_t n)
{
	char server[8];
	int64_t generation = 0;
	/* Unique per store of this costume's list (two may fall in one second). */
	int rc = idx_query_int64(idx, "SELECT COALESCE(MAX(generation), 0) + 1 FROM costume_files"
				      " WHERE costume_id=?", NULL, costume_id, &generation);

	if (rc == 0)
		rc = costume_server(idx, costume_id, server, sizeof(server));
	if (rc == 0)
		rc = files_drop_changed(idx, costume_id, files, n);
	if (rc == 0)
		rc = files_upsert(idx, costume_id, server, files, n, generation);
	if (rc == 0)
		rc = idx_run(idx, "DELETE FROM costume_files WHERE costume_id=?1 AND generation<>?2",
			     2, costume_id, generation);
	if (rc == 0)
		rc = idx_run(idx, "UPDATE costumes SET files_listed=1 WHERE id=?1", 1, costume_id);
	return rc;
}

int idx_costume_files_store(struct idx *idx, int64_t costume_id,
			    const struct idx_file_in *files, size_t n)
{
	int rc;

	pthread_mutex_lock(&idx->lock);
	rc = idx_exec(idx, "BEGIN IMMEDIATE");
	if (rc == 0) {
		rc = files_store_locked(idx, costume_id, files, n);
		rc = rc == 0 ? idx_exec(idx, "COMMIT") : rc;
		if (rc < 0)
			idx_exec(idx, "ROLLBACK");
	}
	pthread_mutex_unlock(&idx->lock);
	return rc;
}

#define FILE_COLUMNS "id, costume_id, dir, name, kind, COALESCE(asset_id, 0), optional"

static void file_from_row(sqlite3_stmt *st, struct idx_file *f)
{
	f->id = sqlite3_column_int64(st, 0);
	f->costume_id = sqlite3_column_int64(st, 1);
	f->dir = (enum idx_dir)sqlite3_column_int(st, 2);
	idx_copy_text(f->name, sizeof(f->name), st, 3);
	f->kind = (enum idx_file_kind)sqlite3_column_int(st, 4);
	f->asset_id = sqlite3_column_int64(st, 5);
	f->optional = sqlite3_column_int(st, 6);
}

int idx_file_list(struct idx *idx, int64_t costume_id, int dir, idx_file_fn fn, void *arg)
{
	sqlite3_stmt *st;
	struct idx_file f;
	int rc, step;

	pthread_mutex_lock(&idx->lock);
	rc = idx_prepare(idx, &st,
			 dir < 0 ? "SELECT " FILE_COLUMNS " FROM costume_files WHERE costume_id=?1"
				   " ORDER BY position"
				 : "SELECT " FILE_COLUMNS " FROM costume_files WHERE costume_id=?1"
				   " AND dir=?2 ORDER BY position");
	if (rc == 0) {
		sqlite3_bind_int64(st, 1, costume_id);
		if (dir >= 0)
			sqlite3_bind_int(st, 2, dir);
		while ((step = sqlite3_step(st)) == SQLITE_ROW) {
			file_from_row(st, &f);
			rc = fn(arg, &f);
			if (rc)
				break;
		}
		if (rc == 0 && step != SQLITE_DONE)
			rc = idx_errno(step);
		idx_done(idx, st);
	}
	pthread_mutex_unlock(&idx->lock);
	return rc;
}

static int file_one(struct idx *idx, const char *sql, int64_t a, int b, const char *name,
		    struct idx_file *out)
{
	sqlite3_stmt *st;
	int rc;

	pthread_mutex_lock(&idx->lock);
	rc = idx_prepare(idx, &st, sql);
	if (rc == 0) {
		sqlite3_bind_int64(st, 1, a);
		if (name) {
			sqlite3_bind_int(st, 2, b);
			sqlite3_bind_text(st, 3, name, -1, SQLITE_STATIC);
		}
		int step = sqlite3_step(st);
		if (step == SQLITE_ROW)
			file_from_row(st, out);
		else
			rc = step == SQLITE_DONE ? -ENOENT : idx_errno(step);
		idx_done(idx, st);
	}
	pthread_mutex_unlock(&idx->lock);
	return rc;
}

int idx_file_find(struct idx *idx, int64_t costume_id, enum idx_dir dir, const char *name,
		  struct idx_file *out)
{
	return file_one(idx,
			"SELECT " FILE_COLUMNS " FROM costume_files WHERE costume_id=? AND dir=?"
			" AND name=?",
			costume_id, dir, name, out);
}

int idx_file_get(struct idx *idx, int64_t id, struct idx_file *out)
{
	return file_one(idx, "SELECT " FILE_COLUMNS " FROM costume_files WHERE id=?", id, 0,
			NULL, out);
}

/* ---- assets ---- */

const char *idx_state_name(enum idx_state s)
{
	static const char *const names[] = { "pending", "downloading", "completed", "failed" };
	return (unsigned)s < 4 ? names[s] : "unknown";
}

static enum idx_state state_parse(const char *s)
{
	for (int i = 0; i < 4; i++)
		if (s && strcmp(s, idx_state_name((enum idx_state)i)) == 0)
			return (enum idx_state)i;
	return IDX_PENDING;
}

#define ASSET_COLUMNS                                                                  \
	"id, server, bundle, file, state, size, bytes_done, sha256, err, error, url,"     \
	" created_at, updated_at, last_access, failures, retry_at, version, ver_size,"      \
	" ver_sha256, stamp, found FROM assets"

static void asset_from_row(sqlite3_stmt *st, struct idx_asset *a)
{
	a->id = sqlite3_column_int64(st, 0);
	idx_copy_text(a->server, sizeof(a->server), st, 1);
	idx_copy_text(a->bundle, sizeof(a->bundle), st, 2);
	idx_copy_text(a->file, sizeof(a->file), st, 3);
	a->state = state_parse((const char *)sqlite3_column_text(st, 4));
	a->size = sqlite3_column_int64(st, 5);
	a->bytes_done = sqlite3_column_int64(st, 6);
	idx_copy_text(a->sha256, sizeof(a->sha256), st, 7);
	a->err = sqlite3_column_int(st, 8);
	idx_copy_text(a->error, sizeof(a->error), st, 9);
	idx_copy_text(a->url, sizeof(a->url), st, 10);
	a->created_at = sqlite3_column_int64(st, 11);
	a->updated_at = sqlite3_column_int64(st, 12);
	a->last_access = sqlite3_column_int64(st, 13);
	a->failures = sqlite3_column_int(st, 14);
	a->retry_at = sqlite3_column_int64(st, 15);
	a->version = sqlite3_column_int64(st, 16);
	a->ver_size = sqlite3_column_int64(st, 17);
	idx_copy_text(a->ver_sha256, sizeof(a->ver_sha256), st, 18);
	a->stamp = sqlite3_column_int64(st, 19);
	a->found = sqlite3_column_int64(st, 20);
}

int idx_asset_get(struct idx *idx, int64_t id, struct idx_asset *out)
{
	sqlite3_stmt *st;
	int rc;

	pthread_mutex_lock(&idx->lock);
	rc = idx_prepare(idx, &st, "SELECT " ASSET_COLUMNS " WHERE id=?");
	if (rc == 0) {
		sqlite3_bind_int64(st, 1, id);
		int step = sqlite3_step(st);
		if (step == SQLITE_ROW)
			asset_from_row(st, out);
		else
			rc = step == SQLITE_DONE ? -ENOENT : idx_errno(step);
		idx_done(idx, st);
	}
	pthread_mutex_unlock(&idx->lock);
	return rc;
}

int idx_asset_find(struct idx *idx, const char *server, const char *bundle, const char *file,
		   struct idx_asset *out)
{
	sqlite3_stmt *st;
	int rc;

	pthread_mutex_lock(&idx->lock);
	rc = idx_prepare(idx, &st,
			 "SELECT " ASSET_COLUMNS " WHERE server=? AND bundle=? AND file=?");
	if (rc == 0) {
		sqlite3_bind_text(st, 1, server, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, bundle, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, file, -1, SQLITE_STATIC);
		int step = sqlite3_step(st);
		if (step == SQLITE_ROW)
			asset_from_row(st, out);
		else
			rc = step == SQLITE_DONE ? -ENOENT : idx_errno(step);
		idx_done(idx, st);
	}
	pthread_mutex_unlock(&idx->lock);
	return rc;
}

/*
 * One UPDATE of an asset row by id. sql's first "?" is updated_at, the last
 * is the id; the ones between are bound from ints[] (int64) and texts[] in
 * the order given by kinds ("i" or "t").
 */
static int asset_update(struct idx *idx, int64_t id, const char *sql, const char *kinds,
			const int64_t *ints, const char *const *texts)
{
	sqlite3_stmt *st;
	int rc, col = 1, ni = 0, nt = 0;

	pthread_mutex_lock(&idx->lock);
	rc = idx_prepare(idx, &st, sql);
	if (rc == 0) {
		sqlite3_bind_int64(st, col++, idx_now());
		for (const char *k = kinds; *k; k++) {
			if (*k == 'i')
				sqlite3_bind_int64(st, col++, ints[ni++]);
			else
				sqlite3_bind_text(st, col++, texts[nt] ? texts[nt] : "", -1,
						  SQLITE_STATIC), nt++;
		}
		sqlite3_bind_int64(st, col, id);
		rc = idx_errno(sqlite3_step(st));
		if (rc == 0 && sqlite3_changes(idx->db) == 0)
			rc = -ENOENT;
		idx_done(idx, st);
	}
	pthread_mutex_unlock(&idx->lock);
	return rc;
}

int idx_asset_mark_downloading(struct idx *idx, int64_t id, const char *url)
{
	const char *t[] = { url };
	return asset_update(idx, id,
			    "UPDATE assets SET updated_at=?, state='downloading', bytes_done=0,"
			    " found=-1, url=? WHERE state<>'completed' AND id=?",
			    "t", NULL, t);
}

int idx_asset_mark_progress(struct idx *idx, int64_t id, int64_t bytes_done, int64_t size)
{
	const int64_t v[] = { bytes_done, size, size };
	return asset_update(idx, id,
			    "UPDATE assets SET updated_at=?, bytes_done=?,"
			    " size=CASE WHEN ?>=0 THEN ? ELSE size END"
			    " WHERE state='downloading' AND id=?",
			    "iii", v, NULL);
}

int idx_asset_mark_completed(struct idx *idx, int64_t id, int64_t size, const char *sha256,
			     const char *url, int64_t stamp)
{
	const int64_t v[] = { size, size, stamp };
	const char *t[] = { sha256, url };
	/* Just downloaded is just used: last_access in the same write. Other
	 * bytes than the version's (its size or hash known and different) are
	 * a new version. */
	return asset_update(idx, id,
			    "UPDATE assets SET updated_at=?1, last_access=?1, state='completed', size=?2,"
			    " bytes_done=?3, stamp=?4, found=-1, sha256=?5, url=?6, err=0, error='',"
			    " failures=0, retry_at=0,"
			    " version=version+((ver_size>=0 AND ver_size<>?2)"
			    "  OR (ver_sha256<>'' AND ver_sha256<>?5)),"
			    " ver_size=?2, ver_sha256=?5"
			    " WHERE id=?7",
			    "iiitt", v, t);
}

int idx_asset_mark_failed(struct idx *idx, int64_t id, int err, const char *error,
			  const char *url)
{
	const int64_t v[] = { err };
	const char *t[] = { error, url };
	return asset_update(idx, id,
			    "UPDATE assets SET updated_at=?, state='failed', err=?, error=?,"
			    " url=?, sha256='', found=-1 WHERE id=?",
			    "itt", v, t);
}

/* Back to pending; changed: as a new version whose bytes are not known. */
static int mark_pending(struct idx *idx, int64_t id, int changed)
{
	const int64_t v[] = { changed, changed, changed };
	return asset_update(idx, id,
			    "UPDATE assets SET updated_at=?, state='pending', size=-1,"
			    " bytes_done=0, sha256='', stamp=0, found=-1, err=0, error='',"
			    " failures=0, retry_at=0, version=version+?,"
			    " ver_size=CASE WHEN ? THEN -1 ELSE ver_size END,"
			    " ver_sha256=CASE WHEN ? THEN '' ELSE ver_sha256 END WHERE id=?",
			    "iii", v, NULL);
}

int idx_asset_mark_pending(struct idx *idx, int64_t id)
{
	return mark_pending(idx, id, 0);
}

int idx_asset_mark_changed(struct idx *idx, int64_t id)
{
	return mark_pending(idx, id, 1);
}

int idx_asset_set_backoff(struct idx *idx, int64_t id, int failures, int64_t retry_at_ms)
{
	const int64_t v[] = { failures, retry_at_ms };
	return asset_update(idx, id, "UPDATE assets SET updated_at=?, failures=?, retry_at=? WHERE id=?",
			    "ii", v, NULL);
}

int idx_asset_clear_backoff(struct idx *idx)
{
	pthread_mutex_lock(&idx->lock);
	int rc = idx_exec(idx, "UPDATE assets SET failures=0, retry_at=0 WHERE retry_at<>0"
			       " OR failures<>0");
	pthread_mutex_unlock(&idx->lock);
	return rc;
}

/* 1 if the assets table has the column, 0 if not, -EIO. */
static int assets_have(struct idx *idx, const char *column)
{
	sqlite3_stmt *st;

	if (idx_prepare(idx, &st, "SELECT 1 FROM pragma_table_info('assets') WHERE name=?") < 0)
		return -EIO;
	sqlite3_bind_text(st, 1, column, -1, SQLITE_STATIC);
	int found = sqlite3_step(st) == SQLITE_ROW;
	idx_done(idx, st);
	return found;
}

int idx_assets_migrate_columns(struct idx *idx)
{
	static const char *const added[][2] = {
		{ "retry_at", "ALTER TABLE assets ADD COLUMN failures INTEGER NOT NULL DEFAULT 0;"
			      "ALTER TABLE assets ADD COLUMN retry_at INTEGER NOT NULL DEFAULT 0;" },
		{ "version", "ALTER TABLE assets ADD COLUMN version INTEGER NOT NULL DEFAULT 0;"
			     "ALTER TABLE assets ADD COLUMN ver_size INTEGER NOT NULL DEFAULT -1;"
			     "ALTER TABLE assets ADD COLUMN ver_sha256 TEXT NOT NULL DEFAULT '';"
			     /* What a completed row holds is its version's bytes. */
			     "UPDATE assets SET ver_size=size, ver_sha256=sha256"
			     " WHERE state='completed';" },
		{ "stamp", "ALTER TABLE assets ADD COLUMN stamp INTEGER NOT NULL DEFAULT 0;" },
		{ "found", "ALTER TABLE assets ADD COLUMN found INTEGER NOT NULL DEFAULT -1;" },
	};
	for (size_t i = 0; i < sizeof(added) / sizeof(added[0]); i++) {
		int rc = assets_have(idx, added[i][0]);
		if (rc == 0)
			rc = idx_exec(idx, added[i][1]);
		if (rc < 0)
			return -EIO;
	}
	return 0;
}

int idx_asset_mark_probed(struct idx *idx, int64_t id, int64_t size, int err,
			  const char *error)
{
	if (err > 0)
		return idx_asset_mark_failed(idx, id, err, error, NULL);
	const int64_t v[] = { size };
	/* A completed row already knows its size: leave it alone. Another
	 * size than the version's is a new version, whose bytes are not
	 * known yet. A file found at its path by an index rebuild (found) is
	 * taken back when the origin's size agrees (its hash then the
	 * version's); else a download will replace it. */
	int rc = asset_update(idx, id,
			      "UPDATE assets SET updated_at=?1, size=?2, err=0, error='',"
			      " version=version+((ver_size>=0 AND ver_size<>?2) OR (state='pending'"
			      "  AND found=?2 AND ver_sha256<>'' AND ver_sha256<>sha256)),"
			      " ver_sha256=CASE WHEN state='pending' AND found=?2 THEN sha256"
			      "  WHEN ver_size=?2 THEN ver_sha256 ELSE '' END,"
			      " ver_size=?2,"
			      " state=CASE WHEN state='pending' AND found=?2 THEN 'completed' ELSE state END,"
			      " bytes_done=CASE WHEN state='pending' AND found=?2 THEN ?2 ELSE bytes_done END,"
			      " last_access=CASE WHEN state='pending' AND found=?2 THEN ?1 ELSE last_access END,"
			      " sha256=CASE WHEN state='pending' AND found=?2 THEN sha256 ELSE '' END,"
			      " stamp=CASE WHEN state='pending' AND found=?2 THEN stamp ELSE 0 END,"
			      " found=-1 WHERE state<>'completed' AND id=?3",
			      "i", v, NULL);
	return rc == -ENOENT ? 0 : rc;
}

static int id_cmp(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

int idx_asset_touch(struct idx *idx, int64_t id)
{
	int rc = 0;

	pthread_mutex_lock(&idx->touch_lock);
	/* Before the list grows, repeats go: it holds each asset once. */
	if (idx->ntouched == idx->captouched && idx->ntouched) {
		size_t k = 0;
		qsort(idx->touched, idx->ntouched, sizeof(*idx->touched), id_cmp);
		for (size_t i = 0; i < idx->ntouched; i++)
			if (!k || idx->touched[k - 1] != idx->touched[i])
				idx->touched[k++] = idx->touched[i];
		idx->ntouched = k;
	}
	if (util_grow(&idx->touched, &idx->captouched, idx->ntouched + 1, sizeof(*idx->touched)) < 0)
		rc = -ENOMEM;
	else
		idx->touched[idx->ntouched++] = id;
	pthread_mutex_unlock(&idx->touch_lock);
	return rc;
}

int idx_asset_touch_flush(struct idx *idx)
{
	int64_t *ids, now = idx_now();
	size_t n;
	int rc;

	pthread_mutex_lock(&idx->touch_lock);
	ids = idx->touched, n = idx->ntouched;
	idx->touched = NULL, idx->ntouched = idx->captouched = 0;
	pthread_mutex_unlock(&idx->touch_lock);
	if (!n)
		return 0;
	pthread_mutex_lock(&idx->lock);
	rc = idx_exec(idx, "BEGIN IMMEDIATE");
	/* Minute resolution: a row read again within one is not rewritten. */
	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = idx_run(idx, "UPDATE assets SET last_access=?1 WHERE id=?2 AND last_access<?1-60",
			     2, now, ids[i]);
	if (rc == 0)
		rc = idx_exec(idx, "COMMIT");
	if (rc < 0)
		idx_exec(idx, "ROLLBACK");
	pthread_mutex_unlock(&idx->lock);
	free(ids);
	return rc < 0 ? rc : (int)(n < INT_MAX ? n : INT_MAX);
}

int idx_asset_adopt(struct idx *idx, const char *server, const char *bundle,
		    const char *file, int64_t size, const char *sha256, int64_t stamp)
{
	sqlite3_stmt *st;
	int rc;
	int64_t now = idx_now();

	pthread_mutex_lock(&idx->lock);
	rc = idx_prepare(idx, &st,
			 "INSERT INTO assets(server, bundle, file, found, sha256, stamp,"
			 " created_at, updated_at, last_access) VALUES(?1,?2,?3,?4,?5,?6,?7,?7,?7)"
			 " ON CONFLICT(server, bundle, file) DO UPDATE SET found=?4, sha256=?5,"
			 " stamp=?6, updated_at=?7 WHERE state='pending'");
	if (rc == 0) {
		sqlite3_bind_text(st, 1, server, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, bundle, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, file, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 4, size);
		sqlite3_bind_text(st, 5, sha256, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 6, stamp);
		sqlite3_bind_int64(st, 7, now);
		rc = idx_errno(sqlite3_step(st));
		idx_done(idx, st);
	}
	pthread_mutex_unlock(&idx->lock);
	return rc;
}

int idx_asset_reset_downloading(struct idx *idx, int *n)
{
	int rc;

	pthread_mutex_lock(&idx->lock);
	rc = idx_exec(idx, "UPDATE assets SET state='pending', bytes_done=0"
			   " WHERE state='downloading'");
	if (n)
		*n = rc == 0 ? sqlite3_changes(idx->db) : 0;
	pthread_mutex_unlock(&idx->lock);
	return rc;
}

int idx_asset_list(struct idx *idx, const char *server, int state, idx_asset_fn fn, void *arg)
{
	sqlite3_stmt *st;
	struct idx_asset a;
	int rc, step;

	idx_asset_touch_flush(idx); /* the order below counts this process's reads */
	pthread_mutex_lock(&idx->lock);
	rc = idx_prepare(idx, &st,
			 state < 0 ? "SELECT " ASSET_COLUMNS " WHERE ?1 IS NULL OR server=?1"
				     " ORDER BY last_access, id"
				   : "SELECT " ASSET_COLUMNS " WHERE (?1 IS NULL OR server=?1) AND state=?2"
				     " ORDER BY last_access, id");
	if (rc == 0) {
		sqlite3_bind_text(st, 1, server, -1, SQLITE_STATIC);
		if (state >= 0)
			sqlite3_bind_text(st, 2, idx_state_name((enum idx_state)state), -1,
					  SQLITE_STATIC);
		while ((step = sqlite3_step(st)) == SQLITE_ROW) {
			asset_from_row(st, &a);
			rc = fn(arg, &a);
			if (rc)
				break;
		}
		if (rc == 0 && step != SQLITE_DONE)
			rc = idx_errno(step);
		idx_done(idx, st);
	}
	pthread_mutex_unlock(&idx->lock);
	return rc;
}

int idx_costume_status(struct idx *idx, int64_t costume_id, struct idx_costume_status *out)
{
	sqlite3_stmt *st;
	int rc;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&idx->lock);
	rc = idx_prepare(idx, &st,
			 "SELECT COUNT(*), COALESCE(SUM(a.state='completed'),0),"
			 " COALESCE(SUM(a.state='failed' AND NOT (f.optional AND a.err=2)),0),"
			 " COALESCE(SUM(CASE WHEN a.state='completed' THEN a.size END),0),"
			 " COALESCE(SUM(CASE WHEN a.size>=0 THEN a.size END),0)"
			 " FROM costume_files f JOIN assets a ON a.id=f.asset_id"
			 " WHERE f.costume_id=?");
	if (rc == 0) {
		sqlite3_bind_int64(st, 1, costume_id);
		if (sqlite3_step(st) == SQLITE_ROW) {
			out->files_total = sqlite3_column_int(st, 0);
			out->files_done = sqlite3_column_int(st, 1);
			out->files_failed = sqlite3_column_int(st, 2);
			out->bytes_done = sqlite3_column_int64(st, 3);
			out->bytes_total = sqlite3_column_int64(st, 4);
		} else {
			rc = -EIO;
		}
		idx_done(idx, st);
	}
	pthread_mutex_unlock(&idx->lock);
	return rc;
}
