/*
 * notify.c: a mount follows the catalogue. A thread polls the index's
 * catalogue generation every second; after a store (by this process or
 * by `l2dfs refresh` on the same cache) it checks every name the mount
 * gave the kernel in a catalogue folder (found or not found) against the
 * catalogue now and tells the kernel which entries and listings to
 * forget. The same thread fetches the catalogue again once it is older
 * than catalogue_ttl (DESIGN §11), and writes the reads recorded in
 * memory to the index every few seconds. It runs outside any request,
 * so the kernel never waits on it while it notifies.
 */
#include "fs_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../log/log.h"
#include "../util/util.h"

#define FOLLOW_MS 1000
/* Reads are written to the index as last_access every this many ticks. */
#define TOUCH_TICKS 5

static void names_add(struct fs_names *s, fuse_ino_t parent, const char *name, fuse_ino_t ino)
{
	if (s->err)
		return;
	if (util_grow(&s->v, &s->cap, s->n + 1, sizeof(*s->v)) < 0) {
		s->err = -ENOMEM;
		return;
	}
	s->v[s->n].name = strdup(name);
	if (!s->v[s->n].name) {
		s->err = -ENOMEM;
		return;
	}
	s->v[s->n].parent = parent;
	s->v[s->n++].ino = ino;
}

static void names_free(struct fs_names *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i].name);
	free(s->v);
	memset(s, 0, sizeof(*s));
}

static int name_cmp(const void *a, const void *b)
{
	const struct fs_name *x = a, *y = b;
	if (x->parent != y->parent)
		return x->parent < y->parent ? -1 : 1;
	return strcmp(x->name, y->name);
}

static int take_character(void *arg, int64_t id, const char *display)
{
	struct fs_names *s = arg;

	names_add(s, FS_INO_CHARACTERS, display, fs_ino(FS_CHARACTER, 1, id));
	return s->err;
}

static int take_costume(void *arg, const struct idx_costume *c)
{
	struct fs_names *s = arg;
	names_add(s, FS_INO_COSTUMES, c->live2d_name, fs_ino(FS_COSTUME, 0, c->id));
	names_add(s, fs_ino(FS_CHARACTER, 1, c->character_id), c->live2d_name,
		  fs_ino(FS_COSTUME, 1, c->id));
	return s->err;
}

/* The names under characters/, costumes/ and every character, sorted. */
static int names_take(struct fs *fs, struct fs_names *s)
{
	int rc = idx_character_list(fs->idx, fs->server, fs->cfg.lang, take_character, s);

	if (rc == 0)
		rc = idx_costume_list(fs->idx, fs->server, fs->cfg.lang, -1, take_costume, s);
	if (rc == 0 && s->n)
		qsort(s->v, s->n, sizeof(*s->v), name_cmp);
	return rc;
}

/* Attributes, pages and a cached listing of ino (-ENOENT when the kernel
 * does not know it: nothing to do). */
static void forget_inode(struct fs *fs, fuse_ino_t ino)
{
	fuse_lowlevel_notify_inval_inode(fs->se, ino, 0, 0);
}

/* A name that now leads elsewhere (or nowhere, or somewhere after a
 * "not found"): its dentry and its folder's listing go. */
static void forget_name(struct fs *fs, const struct fs_name *e, fuse_ino_t *last_parent)
{
	fuse_lowlevel_notify_inval_entry(fs->se, e->parent, e->name, strlen(e->name));
	if (e->parent != *last_parent)
		forget_inode(fs, e->parent);
	*last_parent = e->parent;
}

/* Where name in parent leads now (0: nowhere), from a sorted list. */
static fuse_ino_t names_find(const struct fs_names *now, fuse_ino_t parent, const char *name)
{
	struct fs_name key = { parent, 0, (char *)name };
	const struct fs_name *e =
		now->n ? bsearch(&key, now->v, now->n, sizeof(*now->v), name_cmp) : NULL;
	return e ? e->ino : 0;
}

/* Forget what the kernel was told and is no longer so; keep the rest. */
static void names_check(struct fs *fs, const struct fs_names *now)
{
	struct fs_names told;
	fuse_ino_t last = 0;

	pthread_mutex_lock(&fs->lock);
	told = fs->served;
	memset(&fs->served, 0, sizeof(fs->served));
	pthread_mutex_unlock(&fs->lock);
	if (told.n)
		qsort(told.v, told.n, sizeof(*told.v), name_cmp);
	for (size_t i = 0; i < told.n; i++) {
		struct fs_name *e = &told.v[i];
		if (i && name_cmp(e, e - 1) == 0 && e->ino == e[-1].ino)
			continue; /* listed or looked up again */
		if (names_find(now, e->parent, e->name) != e->ino)
			forget_name(fs, e, &last);
		else
			fs_follow_served(fs, e->parent, e->name, e->ino);
	}
	names_free(&told);
	forget_inode(fs, FS_INO_CHARACTERS);
	forget_inode(fs, FS_INO_COSTUMES);
	/* Folders that stay: their listings, and the costumes' file lists
	 * (read again from a new buildData), go. */
	for (size_t j = 0; j < now->n; j++) {
		forget_inode(fs, now->v[j].ino);
		if (fs_ino_kind(now->v[j].ino) == FS_COSTUME)
			for (int d = 1; d < IDX_NDIRS; d++)
				forget_inode(fs, fs_subdir_ino(fs_ino_view(now->v[j].ino),
							      fs_ino_id(now->v[j].ino), d));
	}
}

/* Sort s and drop repeated (parent, name, ino) entries. */
static void names_compact(struct fs_names *s)
{
	size_t k = 0;

	qsort(s->v, s->n, sizeof(*s->v), name_cmp);
	for (size_t i = 0; i < s->n; i++) {
		if (k && name_cmp(&s->v[i], &s->v[k - 1]) == 0 && s->v[i].ino == s->v[k - 1].ino)
			free(s->v[i].name);
		else
			s->v[k++] = s->v[i];
	}
	s->n = k;
}

void fs_follow_served(struct fs *fs, fuse_ino_t parent, const char *name, fuse_ino_t ino)
{
	pthread_mutex_lock(&fs->lock);
	/* Every lookup lands here: before the list grows, repeats go, so it
	 * holds each name once however long the mount stays up. */
	if (fs->served.n == fs->served.cap && fs->served.n) {
		names_compact(&fs->served);
		/* Mostly distinct: grow now rather than compact again soon. */
		if (fs->served.n > fs->served.cap / 4 * 3)
			util_grow(&fs->served.v, &fs->served.cap, fs->served.cap * 2,
				  sizeof(*fs->served.v));
	}
	names_add(&fs->served, parent, name, ino);
	fs->served.err = 0; /* without memory, that one name may stay stale */
	pthread_mutex_unlock(&fs->lock);
}

void fs_follow_stale(struct fs *fs, fuse_ino_t ino)
{
	pthread_mutex_lock(&fs->lock);
	size_t i;
	for (i = 0; i < fs->nstale && fs->stale[i] != ino; i++)
		;
	/* Without memory, the kernel keeps the stale inode: its reads keep
	 * failing with ESTALE, never serve other bytes. */
	if (i == fs->nstale &&
	    util_grow(&fs->stale, &fs->capstale, fs->nstale + 1, sizeof(*fs->stale)) == 0)
		fs->stale[fs->nstale++] = ino;
	pthread_cond_broadcast(&fs->follow_wake);
	pthread_mutex_unlock(&fs->lock);
}

/* Tell the kernel to forget the stale file inodes: their pages and
 * attributes, in both trees, and the names that lead to them, so that the
 * next lookup finds the file's new inode (DESIGN §7). */
static void stale_forget(struct fs *fs)
{
	pthread_mutex_lock(&fs->lock);
	fuse_ino_t *v = fs->stale;
	size_t n = fs->nstale;
	fs->stale = NULL;
	fs->nstale = fs->capstale = 0;
	pthread_mutex_unlock(&fs->lock);
	for (size_t i = 0; i < n; i++) {
		struct idx_file f;
		if (idx_file_get(fs->idx, fs_ino_id(v[i]), &f) < 0)
			continue;
		for (int view = 0; view < 2; view++) {
			fuse_ino_t parent = f.dir == IDX_DIR_ROOT
						    ? fs_ino(FS_COSTUME, view, f.costume_id)
						    : fs_subdir_ino(view, f.costume_id, f.dir);
			forget_inode(fs, fs_file_ino(view, f.id, fs_ino_version(v[i])));
			fuse_lowlevel_notify_inval_entry(fs->se, parent, f.name, strlen(f.name));
		}
		log_info("%s: its bytes changed on the origin; the kernel forgets the old ones",
			 f.name);
	}
	free(v);
}

/* Sleep ms unless told to stop; 1 when told. */
static int follow_sleep(struct fs *fs, int ms)
{
	struct timespec until;
	int stop;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += ms / 1000;
	until.tv_nsec += (ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&fs->lock);
	if (!fs->follow_stop && !fs->nstale)
		pthread_cond_timedwait(&fs->follow_wake, &fs->lock, &until);
	stop = fs->follow_stop;
	pthread_mutex_unlock(&fs->lock);
	return stop;
}

/* Write the reads recorded since the last time as last_access. */
static void touch_flush(struct fs *fs)
{
	int n = idx_asset_touch_flush(fs->idx);

	if (n < 0)
		log_warn("cannot record reads in the index: %s", strerror(-n));
	else if (n > 0)
		log_debug("last_access written for %d reads", n);
}

static void *follow(void *arg)
{
	struct fs *fs = arg;
	time_t refresh_at = time(NULL) + fs->cfg.catalogue_ttl_s;
	int64_t gen = 0, now_gen;
	int again = 0, ticks = 0;

	idx_catalogue_generation(fs->idx, &gen);
	while (!follow_sleep(fs, FOLLOW_MS)) {
		stale_forget(fs);
		/* One transaction for many reads: an open never writes. */
		if (++ticks % TOUCH_TICKS == 0)
			touch_flush(fs);
		/* Cheap when called often: it asks the origin only when due. */
		if (time(NULL) >= refresh_at)
			fetch_catalogue_ensure(fs->lib);
		if (idx_catalogue_generation(fs->idx, &now_gen) < 0 || (now_gen == gen && !again))
			continue;
		/* Once more on the next tick: a request answered from the old
		 * catalogue may have been recorded after the check. */
		again = now_gen != gen;
		struct fs_names now = { 0 };
		if (names_take(fs, &now) == 0) {
			gen = now_gen;
			names_check(fs, &now);
		}
		names_free(&now);
	}
	return NULL;
}

int fs_follow_start(struct fs *fs)
{
	fs->follow_stop = 0;
	if (pthread_create(&fs->follower, NULL, follow, fs) != 0)
		return -EAGAIN;
	fs->following = 1;
	return 0;
}

void fs_follow_stop(struct fs *fs)
{
	if (!fs->following)
		return;
	pthread_mutex_lock(&fs->lock);
	fs->follow_stop = 1;
	pthread_cond_broadcast(&fs->follow_wake);
	pthread_mutex_unlock(&fs->lock);
	pthread_join(fs->follower, NULL);
	fs->following = 0;
	names_free(&fs->served);
	free(fs->stale);
	fs->stale = NULL;
	fs->nstale = fs->capstale = 0;
	touch_flush(fs); /* the reads of the last few seconds */
}
