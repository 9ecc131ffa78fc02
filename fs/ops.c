/*
 * ops.c: lookups, attributes, listings, reads. Every operation answers from
 * the index when it can and asks the library (fetch/) for what is missing.
 */
#include "fs_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../log/log.h"
#include "../util/util.h"

static struct fs *fs_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

/* ---- waits the kernel may interrupt ---- */

static void on_interrupt(fuse_req_t req, void *data)
{
	(void)req;
	fetch_cancel_fire(data);
}

/* From here the library's waits on this thread end with -EINTR once the
 * kernel interrupts req (a signal to the caller). Call wait_end() before
 * answering req. */
static void wait_begin(fuse_req_t req, struct fetch_cancel *c)
{
	fetch_cancel_init(c, fs_of(req)->lib);
	fetch_cancel_enter(c);
	fuse_req_interrupt_func(req, on_interrupt, c);
}

/* Returns rc. libfuse runs the interrupt callback under the request's lock,
 * which this takes too: once it returns, none runs with c any more. */
static int wait_end(fuse_req_t req, int rc)
{
	fuse_req_interrupt_func(req, NULL, NULL);
	fetch_cancel_enter(NULL);
	return rc;
}

/* ---- what a node is ---- */

static int costume_of(struct fs *fs, int64_t id, struct idx_costume *c)
{
	return idx_costume_get(fs->idx, id, fs->cfg.lang, c);
}

/* The text of a generated file (model.json, name.txt); *text is malloc'd. */
static int generated_text(struct fs *fs, const struct idx_file *f, char **text, size_t *len)
{
	if (f->kind == IDX_KIND_MODEL_JSON)
		return fetch_costume_model_json(fs->lib, f->costume_id, text, len);
	return fetch_costume_name_txt(fs->lib, f->costume_id, text, len);
}

/* FNV-1a: tells one rendering of a generated file from another. */
static uint32_t text_hash(const char *text, size_t len)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)text[i]) * 16777619u;
	return h;
}

/* 1 if the file inode ino names another version of its asset than the
 * one a holds: then it is stale, and the kernel is told to forget it. */
static int stale(struct fs *fs, fuse_ino_t ino, const struct idx_asset *a)
{
	if (fs_ino_version(ino) == (a->version & FS_VERSION_MASK))
		return 0;
	fs_follow_stale(fs, ino);
	return 1;
}

/* Size of an asset-backed file, asked of the library only when the index
 * does not know it. */
static int asset_size(struct fs *fs, const struct idx_file *f, struct idx_asset *a)
{
	return fetch_asset_stat(fs->lib, f->costume_id, f->asset_id, a);
}

static void dir_stat(struct fs *fs, fuse_ino_t ino, struct stat *st)
{
	st->st_ino = ino;
	st->st_mode = S_IFDIR | 0555;
	st->st_nlink = 2;
	st->st_mtime = st->st_ctime = st->st_atime = fs->started;
}

static void owner_stat(struct fs *fs, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_uid = fs->uid;
	st->st_gid = fs->gid;
}

/* A regular file's attributes but its size and times. */
static void file_stat(struct fs *fs, fuse_ino_t ino, struct stat *st)
{
	st->st_ino = ino;
	st->st_mode = S_IFREG | 0444;
	st->st_nlink = 1;
	st->st_blksize = 65536;
	st->st_mtime = st->st_ctime = st->st_atime = fs->started;
}

/* Size and times of an asset's file, from its row. */
static void asset_stat(const struct idx_asset *a, struct stat *st)
{
	st->st_size = a->size;
	st->st_blocks = (a->size + 511) / 512;
	st->st_mtime = st->st_ctime = st->st_atime = a->created_at;
}

/*
 * A file's mode, times and size: a generated one's from its text, an
 * asset's from the index (probed or heard from its download if unknown).
 * *ino is the kernel's inode, stale when its version is not the asset's;
 * or, when named (a lookup just found f through view), it is set to the
 * inode of the asset's current version. *timeout gets how long the kernel
 * may keep them: long for an asset, 0 for a generated text that can change.
 */
static int file_attr(struct fs *fs, fuse_ino_t *ino, int named, int view,
		     const struct idx_file *f, struct stat *st, double *timeout)
{
	struct idx_asset a;
	int rc;

	if (named)
		*ino = fs_file_ino(view, f->id, 0);
	file_stat(fs, *ino, st);
	if (!f->asset_id) {
		char *text = NULL;
		size_t len;
		/* While it is open, the text it reads is the size: a web server
		 * sends fstat's size as Content-Length of what it then reads. */
		if (fs_handle_text_len(fs, *ino, &len) < 0) {
			rc = generated_text(fs, f, &text, &len);
			if (rc < 0)
				return rc;
			/* A changed text changes the mtime: the kernel drops the
			 * pages of the old one (auto_inval_data), and asks for
			 * these attributes before each read (timeout 0). */
			st->st_mtim.tv_nsec = (long)(text_hash(text, len) % 1000000000u);
			free(text);
		}
		st->st_size = (off_t)len;
		st->st_blocks = (st->st_size + 511) / 512;
		*timeout = 0;
		return 0;
	}
	rc = asset_size(fs, f, &a);
	if (rc < 0)
		return rc;
	if (named)
		st->st_ino = *ino = fs_file_ino(view, f->id, a.version);
	else if (stale(fs, *ino, &a))
		return -ESTALE;
	asset_stat(&a, st);
	*timeout = fs->cfg.cache_timeout_s;
	return 0;
}

/* Attributes of the node ino (see file_attr for *timeout). */
static int node_attr(struct fs *fs, fuse_ino_t ino, struct stat *st, double *timeout)
{
	int64_t id = fs_ino_id(ino);
	struct idx_costume c;
	struct idx_file f;
	int rc;

	owner_stat(fs, st);
	*timeout = fs->cfg.cache_timeout_s;
	switch (fs_ino_kind(ino)) {
	case FS_SPECIAL:
		if (ino < FS_INO_ROOT || ino > FS_INO_COSTUMES)
			return -ENOENT;
		dir_stat(fs, ino, st);
		return 0;
	case FS_CHARACTER:
		dir_stat(fs, ino, st);
		return 0;
	case FS_COSTUME:
		rc = costume_of(fs, id, &c);
		if (rc == 0)
			dir_stat(fs, ino, st);
		return rc;
	case FS_SUBDIR:
		rc = costume_of(fs, id / 4, &c);
		if (rc == 0)
			dir_stat(fs, ino, st);
		return rc;
	case FS_FILE:
		break;
	default:
		return -ENOENT;
	}
	rc = idx_file_get(fs->idx, id, &f);
	return rc < 0 ? rc : file_attr(fs, &ino, 0, 0, &f, st, timeout);
}

/* ---- lookup ---- */

static int find_subdir(const char *name)
{
	for (int d = 1; d < IDX_NDIRS; d++)
		if (strcmp(name, idx_dir_names[d]) == 0)
			return d;
	return -1;
}

static int count_file(void *arg, const struct idx_file *f)
{
	(void)f;
	++*(int *)arg;
	return 1; /* one is enough */
}

/* The costume called name under a character (-1: under costumes/). A
 * costume without buildData does not exist (DESIGN §9): said here, as
 * folders are read without opendir and glibc takes a listing's ENOENT for
 * its end. */
static int resolve_costume(struct fs *fs, int64_t character, int view, const char *name,
			   fuse_ino_t *child)
{
	struct idx_costume c;
	int rc = fetch_catalogue_ensure(fs->lib);

	if (rc == 0)
		rc = idx_costume_find(fs->idx, fs->server, fs->cfg.lang, character, name, &c);
	if (rc == 0)
		rc = fetch_costume_ensure(fs->lib, c.id);
	if (rc == 0)
		*child = fs_ino(FS_COSTUME, view, c.id);
	return rc;
}

/* A name in the root, characters/ or costumes/. */
static int resolve_top(struct fs *fs, fuse_ino_t parent, const char *name, fuse_ino_t *child)
{
	int64_t cid;
	int rc;

	if (parent == FS_INO_ROOT) {
		if (strcmp(name, "characters") == 0)
			*child = FS_INO_CHARACTERS;
		else if (strcmp(name, "costumes") == 0)
			*child = FS_INO_COSTUMES;
		else
			return -ENOENT;
		return 0;
	}
	if (parent != FS_INO_CHARACTERS)
		return resolve_costume(fs, -1, 0, name, child);
	rc = fetch_catalogue_ensure(fs->lib);
	if (rc == 0)
		rc = idx_character_find(fs->idx, fs->server, fs->cfg.lang, name, &cid);
	if (rc == 0)
		*child = fs_ino(FS_CHARACTER, 1, cid);
	return rc;
}

/* A name in a costume's folder dir (IDX_DIR_ROOT: the costume's own). A
 * file found is *f (its inode is the version of its bytes, which its
 * attributes settle: file_attr); f->id stays 0 for a folder. */
static int resolve_in_costume(struct fs *fs, int64_t costume, int view, int dir,
			      const char *name, fuse_ino_t *child, struct idx_file *f)
{
	int rc = fetch_costume_ensure(fs->lib, costume);
	int d = dir == IDX_DIR_ROOT ? find_subdir(name) : 0;

	if (rc < 0)
		return rc;
	if (d > 0) {
		int n = 0;
		idx_file_list(fs->idx, costume, d, count_file, &n);
		if (!n)
			return -ENOENT;
		*child = fs_subdir_ino(view, costume, d);
		return 0;
	}
	rc = idx_file_find(fs->idx, costume, (enum idx_dir)dir, name, f);
	if (rc == 0)
		*child = fs_file_ino(view, f->id, 0);
	return rc;
}

/* Resolve name in parent to a child inode; a file found is *f (else f->id
 * is 0). */
static int resolve(struct fs *fs, fuse_ino_t parent, const char *name, fuse_ino_t *child,
		   struct idx_file *f)
{
	int64_t id = fs_ino_id(parent);
	int view = fs_ino_view(parent);

	f->id = 0;
	switch (fs_ino_kind(parent)) {
	case FS_SPECIAL:
		return resolve_top(fs, parent, name, child);
	case FS_CHARACTER:
		return resolve_costume(fs, id, 1, name, child);
	case FS_COSTUME:
		return resolve_in_costume(fs, id, view, IDX_DIR_ROOT, name, child, f);
	case FS_SUBDIR:
		return resolve_in_costume(fs, id / 4, view, (int)(id % 4), name, child, f);
	default:
		return -ENOTDIR;
	}
}

/* The entry of name in parent: its inode and attributes. A file's are
 * asked of its row as found, not of the index again. */
static int entry_of(struct fs *fs, fuse_ino_t parent, const char *name,
		    struct fuse_entry_param *e, double *timeout)
{
	struct idx_file f;
	int rc = resolve(fs, parent, name, &e->ino, &f);

	if ((rc == 0 || rc == -ENOENT) && (parent == FS_INO_CHARACTERS || parent == FS_INO_COSTUMES ||
					   fs_ino_kind(parent) == FS_CHARACTER))
		fs_follow_served(fs, parent, name, rc == 0 ? e->ino : 0);
	if (rc < 0)
		return rc;
	if (!f.id)
		return node_attr(fs, e->ino, &e->attr, timeout);
	owner_stat(fs, &e->attr);
	return file_attr(fs, &e->ino, 1, fs_ino_view(parent), &f, &e->attr, timeout);
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs *fs = fs_of(req);
	struct fuse_entry_param e;
	double timeout;
	int rc;

	struct fetch_cancel c;

	memset(&e, 0, sizeof(e));
	wait_begin(req, &c);
	rc = entry_of(fs, parent, name, &e, &timeout);
	wait_end(req, rc);
	if (rc == -ENOENT) {
		/* A negative entry: forgotten when the catalogue changes (notify.c). */
		e.ino = 0;
		e.entry_timeout = fs->cfg.cache_timeout_s;
		fuse_reply_entry(req, &e);
		return;
	}
	if (rc < 0) {
		fuse_reply_err(req, -rc);
		return;
	}
	e.attr_timeout = timeout;
	e.entry_timeout = fs->cfg.cache_timeout_s;
	fuse_reply_entry(req, &e);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	struct stat st;
	double timeout;
	int rc;

	struct fetch_cancel c;

	(void)fi; /* fstat does not pass it: see node_attr */
	wait_begin(req, &c);
	rc = wait_end(req, node_attr(fs, ino, &st, &timeout));
	if (rc < 0)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_attr(req, &st, timeout);
}

/* ---- listings ---- */

struct dirbuf {
	fuse_req_t req;
	struct fs *fs;
	int plus; /* readdirplus: entries carry attributes */
	char *p;
	size_t size, cap;
	int err;
};

/* A readdirplus entry: the attributes lookup would give where the listing
 * knows them (local: a folder, or a cached file whose asset row is
 * cached), else none (ino 0: the kernel looks the name up itself). */
static void listed_entry(struct fs *fs, const char *name, fuse_ino_t ino, mode_t type,
			 int local, const struct idx_asset *cached, struct fuse_entry_param *e)
{
	memset(e, 0, sizeof(*e));
	e->attr.st_ino = ino;
	e->attr.st_mode = type;
	if (!local || !strcmp(name, ".") || !strcmp(name, ".."))
		return;
	owner_stat(fs, &e->attr);
	if (cached) {
		file_stat(fs, ino, &e->attr);
		asset_stat(cached, &e->attr);
	} else {
		dir_stat(fs, ino, &e->attr);
	}
	e->ino = ino;
	e->attr_timeout = e->entry_timeout = fs->cfg.cache_timeout_s;
}

/* Append one entry; its offset is the byte position of the next one, so
 * readdir can resume anywhere and the kernel can cache the listing. local,
 * cached: see listed_entry. */
static void dirbuf_put(struct dirbuf *b, const char *name, fuse_ino_t ino, mode_t type, int local,
		       const struct idx_asset *cached)
{
	struct fuse_entry_param e;
	size_t old = b->size, need;

	if (b->err)
		return;
	if (b->plus) {
		listed_entry(b->fs, name, ino, type, local, cached, &e);
		need = fuse_add_direntry_plus(b->req, NULL, 0, name, NULL, 0);
	} else {
		e.attr = (struct stat){ .st_ino = ino, .st_mode = type };
		need = fuse_add_direntry(b->req, NULL, 0, name, NULL, 0);
	}
	/* Doubling: a folder of 100,000 entries costs no quadratic copying. */
	if (util_grow(&b->p, &b->cap, old + need, 1) < 0) {
		b->err = -ENOMEM;
		return;
	}
	b->size = old + need;
	if (b->plus)
		fuse_add_direntry_plus(b->req, b->p + old, need, name, &e, (off_t)b->size);
	else
		fuse_add_direntry(b->req, b->p + old, need, name, &e.attr, (off_t)b->size);
}

/* A folder the listing found. */
static void dirbuf_add(struct dirbuf *b, const char *name, fuse_ino_t ino, mode_t type)
{
	dirbuf_put(b, name, ino, type, 1, NULL);
}

struct list_ctx {
	struct fs *fs;
	fuse_ino_t ino; /* the folder listed */
	struct dirbuf *b;
	int view;
	int seen[IDX_NDIRS];
};

static int list_character(void *arg, int64_t id, const char *display)
{
	struct list_ctx *l = arg;
	fs_follow_served(l->fs, l->ino, display, fs_ino(FS_CHARACTER, 1, id));
	dirbuf_add(l->b, display, fs_ino(FS_CHARACTER, 1, id), S_IFDIR);
	return 0;
}

static int list_costume(void *arg, const struct idx_costume *c)
{
	struct list_ctx *l = arg;
	fs_follow_served(l->fs, l->ino, c->live2d_name, fs_ino(FS_COSTUME, l->view, c->id));
	dirbuf_add(l->b, c->live2d_name, fs_ino(FS_COSTUME, l->view, c->id), S_IFDIR);
	return 0;
}

/* Files known to be missing on the origin are not listed: 0. Else 1, or
 * 2 when its attributes come from the index alone: a cached asset, whose
 * row is *a (never a generated file, whose size is a rendering, nor an
 * asset whose size may need the network). *ino gets its inode. */
static int file_listed(struct fs *fs, int view, const struct idx_file *f, fuse_ino_t *ino,
		       struct idx_asset *a)
{
	*ino = fs_file_ino(view, f->id, 0);
	if (!f->asset_id)
		return 1;
	if (idx_asset_get(fs->idx, f->asset_id, a) < 0)
		return 0;
	if (fetch_asset_missing(a))
		return 0;
	*ino = fs_file_ino(view, f->id, a->version);
	return a->state == IDX_COMPLETED ? 2 : 1;
}

static int list_file(void *arg, const struct idx_file *f)
{
	struct list_ctx *l = arg;
	struct idx_asset a;
	fuse_ino_t ino;
	int listed = file_listed(l->fs, l->view, f, &ino, &a);

	if (!listed)
		return 0;
	if (f->dir != IDX_DIR_ROOT) {
		l->seen[f->dir] = 1;
		return 0;
	}
	dirbuf_put(l->b, f->name, ino, S_IFREG, listed == 2, listed == 2 ? &a : NULL);
	return 0;
}

static int list_subdir_file(void *arg, const struct idx_file *f)
{
	struct list_ctx *l = arg;
	struct idx_asset a;
	fuse_ino_t ino;
	int listed = file_listed(l->fs, l->view, f, &ino, &a);

	if (listed)
		dirbuf_put(l->b, f->name, ino, S_IFREG, listed == 2, listed == 2 ? &a : NULL);
	return 0;
}

static int build_listing(struct fs *fs, fuse_ino_t ino, struct dirbuf *b)
{
	struct list_ctx l = { .fs = fs, .ino = ino, .b = b, .view = fs_ino_view(ino) };
	int64_t id = fs_ino_id(ino);
	int rc = 0;

	dirbuf_add(b, ".", ino, S_IFDIR);
	dirbuf_add(b, "..", FS_INO_ROOT, S_IFDIR);
	switch (fs_ino_kind(ino)) {
	case FS_SPECIAL:
		if (ino == FS_INO_ROOT) {
			dirbuf_add(b, "characters", FS_INO_CHARACTERS, S_IFDIR);
			dirbuf_add(b, "costumes", FS_INO_COSTUMES, S_IFDIR);
			break;
		}
		rc = fetch_catalogue_ensure(fs->lib);
		if (rc == 0 && ino == FS_INO_CHARACTERS)
			rc = idx_character_list(fs->idx, fs->server, fs->cfg.lang, list_character,
						&l);
		else if (rc == 0)
			rc = idx_costume_list(fs->idx, fs->server, fs->cfg.lang, -1, list_costume,
					      &l);
		break;
	case FS_CHARACTER:
		l.view = 1;
		rc = fetch_catalogue_ensure(fs->lib);
		if (rc == 0)
			rc = idx_costume_list(fs->idx, fs->server, fs->cfg.lang, id, list_costume,
					      &l);
		break;
	case FS_COSTUME:
		rc = fetch_costume_ensure(fs->lib, id);
		/* Optional files (physics, icon) are listed only if they exist. */
		if (rc == 0)
			rc = fetch_costume_probe(fs->lib, id, 1);
		if (rc == 0)
			rc = idx_file_list(fs->idx, id, -1, list_file, &l);
		for (int d = 1; rc == 0 && d < IDX_NDIRS; d++)
			if (l.seen[d])
				dirbuf_add(b, idx_dir_names[d], fs_subdir_ino(l.view, id, d),
					   S_IFDIR);
		break;
	case FS_SUBDIR:
		rc = fetch_costume_ensure(fs->lib, id / 4);
		if (rc == 0)
			rc = idx_file_list(fs->idx, id / 4, (int)(id % 4), list_subdir_file, &l);
		break;
	default:
		rc = -ENOTDIR;
	}
	return rc < 0 ? rc : b->err;
}

/* Register a handle and answer the open; frees h on failure. */
static void reply_open(fuse_req_t req, struct fuse_file_info *fi, struct fs_handle *h)
{
	struct fs *fs = fs_of(req); /* req is gone once answered */
	int rc = fs_handle_add(fs, h, &fi->fh);

	if (rc < 0) {
		if (h->fd >= 0)
			close(h->fd);
		free(h->data);
		free(h);
		fuse_reply_err(req, -rc);
	} else if (fuse_reply_open(req, fi) == -ENOENT) {
		/* The opener is gone (interrupted): no release will come. */
		fs_handle_remove(fs, fi->fh);
	}
}

/* Answer a read of size bytes at off from a handle's memory. */
static void reply_from_memory(fuse_req_t req, const struct fs_handle *h, size_t size,
			      off_t off)
{
	if (off < 0 || (size_t)off >= h->len)
		fuse_reply_buf(req, NULL, 0);
	else
		fuse_reply_buf(req, h->data + off,
			       h->len - (size_t)off < size ? h->len - (size_t)off : size);
}

/* Folders need no handle: listings are built by readdir. Where the kernel
 * can open folders itself, ENOSYS tells it to, and it then sends neither
 * opendir nor releasedir again, and keeps listings as if cache_readdir. */
static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	if (fs_of(req)->no_opendir) {
		fuse_reply_err(req, ENOSYS);
		return;
	}
	fi->fh = 0;
	fi->cache_readdir = 1;
	fi->keep_cache = 1;
	fuse_reply_open(req, fi);
}

/* The listing of ino: built at offset 0 (a new read of the folder), else
 * the one the first piece stored. NULL with *rc on failure. */
static struct fs_handle *listing(fuse_req_t req, fuse_ino_t ino, off_t off, int plus, int *rc)
{
	struct fs *fs = fs_of(req);
	struct dirbuf b = { .req = req, .fs = fs, .plus = plus };
	struct fs_handle *h = off ? fs_listing_get(fs, ino, plus) : NULL;
	struct fetch_cancel c;

	if (h)
		return h;
	wait_begin(req, &c);
	*rc = wait_end(req, build_listing(fs, ino, &b));
	h = *rc == 0 ? calloc(1, sizeof(*h)) : NULL;
	if (!h) {
		free(b.p);
		*rc = *rc < 0 ? *rc : -ENOMEM;
		return NULL;
	}
	*h = (struct fs_handle){ .ino = ino, .fd = -1, .data = b.p, .len = b.size, .refs = 1 };
	fs_listing_put(fs, plus, h);
	return h;
}

static void reply_listing(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, int plus)
{
	struct fs *fs = fs_of(req); /* req is gone once answered */
	int rc;
	struct fs_handle *h = listing(req, ino, off, plus, &rc);

	if (!h) {
		fuse_reply_err(req, -rc);
		return;
	}
	/* An entry cut at the end is dropped by the kernel and asked again
	 * from its offset. */
	reply_from_memory(req, h, size, off);
	fs_handle_put(fs, h);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	(void)fi;
	reply_listing(req, ino, size, off, 0);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			   struct fuse_file_info *fi)
{
	(void)fi;
	reply_listing(req, ino, size, off, 1);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	fs_handle_remove(fs_of(req), fi->fh); /* before the reply frees req */
	fuse_reply_err(req, 0);
}

/* ---- files ---- */

/* The first read of one of a costume's files in this mount queues that
 * file, then the rest of the costume behind it (DESIGN §9). */
static void maybe_prefetch(struct fs *fs, const struct idx_file *f)
{
	int64_t costume = f->costume_id;
	size_t i;

	if (!fs->cfg.prefetch)
		return;
	pthread_mutex_lock(&fs->lock);
	for (i = 0; i < fs->nprefetched && fs->prefetched[i] != costume; i++)
		;
	int first = i == fs->nprefetched;
	if (first) {
		if (util_grow(&fs->prefetched, &fs->capprefetched, fs->nprefetched + 1,
			      sizeof(*fs->prefetched)) < 0)
			first = 0;
		if (first)
			fs->prefetched[fs->nprefetched++] = costume;
	}
	pthread_mutex_unlock(&fs->lock);
	if (!first)
		return;
	if (f->asset_id)
		fetch_asset_queue(fs->lib, f->asset_id, HTTP_FOREGROUND);
	fetch_costume_prefetch(fs->lib, costume);
}

/*
 * The cache file of the asset behind the file inode ino, downloaded if
 * needed. Bytes of another version than the inode's are never served: the
 * reader gets -ESTALE (its kernel pages are of the old bytes, which are
 * gone) and the kernel is told to forget the inode; a new lookup gives the
 * new one. Bytes that may be another version reach here only once their
 * commit settled it (fetch_asset_read()).
 */
static int asset_content(struct fs *fs, fuse_ino_t ino, const struct idx_file *f, int *fd)
{
	struct idx_asset a;
	int rc = fetch_asset_read(fs->lib, f->asset_id, fd);

	if (rc == 0)
		rc = idx_asset_get(fs->idx, f->asset_id, &a);
	if (rc == 0 && stale(fs, ino, &a))
		rc = -ESTALE;
	if (rc < 0 && *fd >= 0) {
		close(*fd);
		*fd = -1;
	}
	return rc;
}

/*
 * What a read of the file f (inode ino) reads into h: its text (generated)
 * or its cache file's descriptor, downloading it if needed. Interruptible.
 */
static int file_content(fuse_req_t req, fuse_ino_t ino, const struct idx_file *f,
			struct fs_handle *h)
{
	struct fs *fs = fs_of(req);
	struct fetch_cancel c;
	int rc;

	*h = (struct fs_handle){ .ino = ino, .fd = -1, .refs = 1 };
	wait_begin(req, &c);
	maybe_prefetch(fs, f);
	if (f->asset_id)
		rc = asset_content(fs, ino, f, &h->fd);
	else
		rc = generated_text(fs, f, &h->data, &h->len);
	return wait_end(req, rc);
}

/*
 * A handle on file ino for reading, the same for an open (op_open) and for
 * one read without an open (fs->no_open). Without opens the cache file is
 * opened (downloaded if needed) for this read only, so that its lock keeps
 * eviction away while it is read and no longer (a later read opens it
 * again, and downloads it again if it was evicted meanwhile); a generated
 * text is rendered afresh, and its attributes (file_attr) tell the kernel
 * when its pages are stale. NULL with *rc on failure.
 */
static struct fs_handle *file_for_read(fuse_req_t req, fuse_ino_t ino, int *rc)
{
	struct fs *fs = fs_of(req);
	struct fs_handle *h = NULL;
	struct idx_file f;

	*rc = idx_file_get(fs->idx, fs_ino_id(ino), &f);
	if (*rc == 0 && !(h = malloc(sizeof(*h))))
		*rc = -ENOMEM;
	if (*rc == 0)
		*rc = file_content(req, ino, &f, h);
	if (*rc < 0) {
		if (h)
			free(h->data);
		free(h);
		return NULL;
	}
	return h;
}

/* Where the kernel cannot open files itself: a handle per open, its id in
 * fi->fh (handles.c). Writes never come here: the mount is read-only, so
 * the kernel refuses them with EROFS itself. */
static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs_handle *h;
	int rc;

	if (fs_of(req)->no_open) {
		fuse_reply_err(req, ENOSYS); /* the kernel opens files from now on */
		return;
	}
	if (fs_ino_kind(ino) != FS_FILE) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	h = file_for_read(req, ino, &rc);
	if (!h) {
		fuse_reply_err(req, -rc);
		return;
	}
	/* Through the page cache, so that mmap works. An asset's pages stay;
	 * a generated file's are dropped at each open (its text may change). */
	fi->keep_cache = h->fd >= 0;
	reply_open(req, fi, h);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req); /* req is gone once answered */
	int rc = -EBADF;
	/* fh 0 is no id (ids start at generation 1): a read without an open. */
	struct fs_handle *h = fi->fh ? fs_handle_get(fs, fi->fh) : file_for_read(req, ino, &rc);

	if (!h) {
		fuse_reply_err(req, -rc);
		return;
	}
	if (h->fd < 0) {
		reply_from_memory(req, h, size, off);
	} else {
		/* Spliced from the fd, copied (not moved) into the kernel's pages:
		 * moving would steal them from the cache file's page cache, and
		 * the next read of it would go to the disk. */
		struct fuse_bufvec buf = FUSE_BUFVEC_INIT(size);
		buf.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
		buf.buf[0].fd = h->fd;
		buf.buf[0].pos = off;
		fuse_reply_data(req, &buf, 0);
	}
	fs_handle_put(fs, h);
}

/* ---- status as extended attributes ---- */

#define XATTR_PREFIX "user.l2dfs."

static const char file_xattrs[] = XATTR_PREFIX "state\0" XATTR_PREFIX "progress\0" XATTR_PREFIX
	"size\0" XATTR_PREFIX "sha256\0" XATTR_PREFIX "cache_path\0" XATTR_PREFIX
	"error\0" XATTR_PREFIX "url\0";
static const char costume_xattrs[] = XATTR_PREFIX "state\0" XATTR_PREFIX "files_done\0" XATTR_PREFIX
	"files_total\0";

/* The value of the status attribute XATTR_PREFIX name into buf
 * (NUL-terminated). */
static int xattr_value(struct fs *fs, fuse_ino_t ino, const char *name, char *buf, size_t len)
{
	if (fs_ino_kind(ino) == FS_COSTUME) {
		struct fetch_costume_status cs;
		int rc = fetch_costume_ensure(fs->lib, fs_ino_id(ino));
		if (rc == 0)
			rc = fetch_costume_status(fs->idx, fs_ino_id(ino), &cs);
		if (rc < 0)
			return rc;
		if (strcmp(name, "state") == 0)
			snprintf(buf, len, "%s", cs.state);
		else if (strcmp(name, "files_done") == 0)
			snprintf(buf, len, "%d", cs.st.files_done);
		else if (strcmp(name, "files_total") == 0)
			snprintf(buf, len, "%d", cs.st.files_total);
		else
			return -ENODATA;
		return 0;
	}
	struct idx_file f;
	struct idx_asset a;
	if (fs_ino_kind(ino) != FS_FILE || idx_file_get(fs->idx, fs_ino_id(ino), &f) < 0 ||
	    !f.asset_id)
		return -ENODATA;
	int rc = fetch_asset_settle(fs->lib, f.asset_id);
	if (rc < 0)
		return rc;
	if (idx_asset_get(fs->idx, f.asset_id, &a) < 0)
		return -ENODATA;
	struct fetch_asset_status as;
	fetch_asset_status(&a, f.optional, &as);
	if (strcmp(name, "state") == 0) {
		snprintf(buf, len, "%s", as.state);
	} else if (strcmp(name, "progress") == 0) {
		snprintf(buf, len, "%d", as.progress);
	} else if (strcmp(name, "size") == 0) {
		snprintf(buf, len, "%lld", (long long)a.size);
	} else if (strcmp(name, "sha256") == 0) {
		snprintf(buf, len, "%s", a.sha256);
	} else if (strcmp(name, "cache_path") == 0) {
		return cache_asset_path(fs->cache, a.server, a.bundle, a.file, buf, len);
	} else if (strcmp(name, "error") == 0) {
		snprintf(buf, len, "%s", a.error);
	} else if (strcmp(name, "url") == 0) {
		snprintf(buf, len, "%s", a.url);
	} else {
		return -ENODATA;
	}
	return 0;
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	char value[IDX_TEXT_MAX + 64];
	struct fetch_cancel c;
	int rc = -ENODATA;

	/* ls -l asks security.selinux and the POSIX ACLs of every file, each a
	 * round trip, unless the filesystem says it has no such namespace (as
	 * it has none but user.*): then it stops asking for the rest of the
	 * device. */
	if (strncmp(name, "user.", strlen("user.")) != 0) {
		rc = -EOPNOTSUPP;
	} else if (strncmp(name, XATTR_PREFIX, strlen(XATTR_PREFIX)) == 0) {
		wait_begin(req, &c);
		rc = wait_end(req, xattr_value(fs_of(req), ino, name + strlen(XATTR_PREFIX), value,
					       sizeof(value)));
	}
	size_t len = rc < 0 ? 0 : strlen(value); /* value is unset on failure */

	if (rc < 0)
		fuse_reply_err(req, -rc);
	else if (size == 0)
		fuse_reply_xattr(req, len);
	else if (size < len)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, value, len);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct fs *fs = fs_of(req);
	const char *names = "";
	size_t len = 0;
	struct idx_file f;

	if (fs_ino_kind(ino) == FS_COSTUME) {
		names = costume_xattrs, len = sizeof(costume_xattrs) - 1;
	} else if (fs_ino_kind(ino) == FS_FILE && idx_file_get(fs->idx, fs_ino_id(ino), &f) == 0 &&
		   f.asset_id) {
		names = file_xattrs, len = sizeof(file_xattrs) - 1;
	}
	if (size == 0)
		fuse_reply_xattr(req, len);
	else if (size < len)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, names, len);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct fs *fs = fs_of(req);
	struct statvfs sv = { .f_bsize = 4096, .f_frsize = 4096, .f_namemax = 255 };
	uint64_t total = 0, avail = 0;

	(void)ino;
	if (cache_fs_space(fs->cache, &total, &avail) == 0) {
		sv.f_blocks = total / 4096;
		sv.f_bfree = sv.f_bavail = avail / 4096;
	}
	fuse_reply_statfs(req, &sv);
}

/*
 * Reads: libfuse splices cache files to the device (op_read). Warm
 * reads ask the daemon as little as the kernel allows: files opened by the
 * kernel (op_open: no open, release or flush; pages kept; reads come by
 * inode, file_for_read), folders too (op_opendir; not with auto_unmount),
 * listings with attributes on every piece, not only the first
 * (readdirplus: no lookup per listed name). No POSIX ACL support: with it
 * the kernel asks each file's ACL once (ls -l wants them all); without it
 * the question reaches op_getxattr, whose EOPNOTSUPP makes ls stop asking
 * (the mount has default_permissions, so the kernel still checks the
 * 0444/0555 modes itself).
 */
static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	struct fs *fs = userdata;

	fs->no_opendir = !fs->need_opendir && (conn->capable & FUSE_CAP_NO_OPENDIR_SUPPORT);
	fs->no_open = !fs->need_open && (conn->capable & FUSE_CAP_NO_OPEN_SUPPORT);
	/* Without opens, a read may wait for a download: it must be the
	 * reader's own request, which a signal interrupts (DESIGN §7), not
	 * background readahead that no one can interrupt. */
	if (fs->no_open)
		conn->want &= ~FUSE_CAP_ASYNC_READ;
	if (conn->capable & FUSE_CAP_READDIRPLUS)
		conn->want |= FUSE_CAP_READDIRPLUS;
	conn->want &= ~FUSE_CAP_READDIRPLUS_AUTO;
	conn->want &= ~FUSE_CAP_POSIX_ACL;
	if (conn->capable & FUSE_CAP_SPLICE_WRITE)
		conn->want |= FUSE_CAP_SPLICE_WRITE;
}

const struct fuse_lowlevel_ops fs_lowlevel_ops = {
	.init = op_init,
	.lookup = op_lookup,
	.getattr = op_getattr,
	.opendir = op_opendir,
	.readdir = op_readdir,
	.readdirplus = op_readdirplus,
	.open = op_open,
	.read = op_read,
	.release = op_release,
	.getxattr = op_getxattr,
	.listxattr = op_listxattr,
	.statfs = op_statfs,
};
