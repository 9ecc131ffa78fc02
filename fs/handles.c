/*
 * handles.c: open files and directories, by id.
 *
 * fi->fh holds an id, not a pointer: a read that races with the release of
 * its handle (the reader was killed and the kernel released the file while
 * the read was still queued) then finds no handle and fails with EBADF,
 * instead of using freed memory or a descriptor number already reused for
 * another file.
 */
#include "fs_int.h"

#include "../util/util.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

static void handle_free(struct fs_handle *h)
{
	if (h->fd >= 0)
		close(h->fd);
	free(h->data);
	free(h);
}

int fs_handle_add(struct fs *fs, struct fs_handle *h, uint64_t *id)
{
	uint32_t slot;

	pthread_mutex_lock(&fs->lock);
	if (fs->nfree) {
		slot = fs->free_slots[--fs->nfree];
	} else {
		/* Three arrays of one capacity: each grows to the same size. */
		size_t cs = fs->capslots, cg = cs, cf = cs, need = fs->nslots + 1;
		if (util_grow(&fs->slots, &cs, need, sizeof(*fs->slots)) < 0 ||
		    util_grow(&fs->gens, &cg, need, sizeof(*fs->gens)) < 0 ||
		    util_grow(&fs->free_slots, &cf, need, sizeof(*fs->free_slots)) < 0) {
			pthread_mutex_unlock(&fs->lock);
			return -ENOMEM;
		}
		fs->capslots = cs;
		slot = (uint32_t)fs->nslots++;
		fs->gens[slot] = 0;
	}
	fs->slots[slot] = h;
	h->refs = 1;
	*id = ((uint64_t)++fs->gens[slot] << 32) | slot;
	pthread_mutex_unlock(&fs->lock);
	return 0;
}

/* The slot of a live id, or -1. Caller holds fs->lock. */
static long slot_of(struct fs *fs, uint64_t id)
{
	uint32_t slot = (uint32_t)id;
	if (slot >= fs->nslots || !fs->slots[slot] || fs->gens[slot] != (uint32_t)(id >> 32))
		return -1;
	return slot;
}

struct fs_handle *fs_handle_get(struct fs *fs, uint64_t id)
{
	struct fs_handle *h = NULL;

	pthread_mutex_lock(&fs->lock);
	long slot = slot_of(fs, id);
	if (slot >= 0) {
		h = fs->slots[slot];
		h->refs++;
	}
	pthread_mutex_unlock(&fs->lock);
	return h;
}

void fs_handle_put(struct fs *fs, struct fs_handle *h)
{
	pthread_mutex_lock(&fs->lock);
	int last = --h->refs == 0;
	pthread_mutex_unlock(&fs->lock);
	if (last)
		handle_free(h);
}

void fs_handle_remove(struct fs *fs, uint64_t id)
{
	struct fs_handle *h = NULL;

	pthread_mutex_lock(&fs->lock);
	long slot = slot_of(fs, id);
	if (slot >= 0) {
		h = fs->slots[slot];
		fs->slots[slot] = NULL;
		fs->free_slots[fs->nfree++] = (uint32_t)slot;
	}
	pthread_mutex_unlock(&fs->lock);
	if (h)
		fs_handle_put(fs, h);
}

int fs_handle_text_len(struct fs *fs, fuse_ino_t ino, size_t *len)
{
	uint32_t newest = 0;
	int rc = -ENOENT;

	pthread_mutex_lock(&fs->lock);
	for (size_t i = 0; i < fs->nslots; i++) {
		struct fs_handle *h = fs->slots[i];
		if (h && h->ino == ino && h->fd < 0 && (rc < 0 || fs->gens[i] > newest)) {
			newest = fs->gens[i];
			*len = h->len;
			rc = 0;
		}
	}
	pthread_mutex_unlock(&fs->lock);
	return rc;
}

struct fs_handle *fs_listing_get(struct fs *fs, fuse_ino_t ino, int plus)
{
	struct fs_handle *h = NULL;

	pthread_mutex_lock(&fs->lock);
	for (size_t i = 0; fs->listings && i < FS_LISTINGS && !h; i++)
		if (fs->listings[i].h && fs->listings[i].ino == ino && fs->listings[i].plus == plus) {
			h = fs->listings[i].h;
			h->refs++;
		}
	pthread_mutex_unlock(&fs->lock);
	return h;
}

void fs_listing_put(struct fs *fs, int plus, struct fs_handle *h)
{
	struct fs_handle *old = NULL;
	size_t slot;

	pthread_mutex_lock(&fs->lock);
	if (!fs->listings)
		fs->listings = calloc(FS_LISTINGS, sizeof(*fs->listings));
	if (!fs->listings) {
		pthread_mutex_unlock(&fs->lock);
		return; /* each piece then builds the listing again */
	}
	for (slot = 0; slot < FS_LISTINGS; slot++)
		if (fs->listings[slot].h && fs->listings[slot].ino == h->ino &&
		    fs->listings[slot].plus == plus)
			break;
	if (slot == FS_LISTINGS)
		slot = fs->next_listing++ % FS_LISTINGS;
	old = fs->listings[slot].h;
	fs->listings[slot] = (struct fs_listing){ h->ino, plus, h };
	h->refs++;
	pthread_mutex_unlock(&fs->lock);
	if (old)
		fs_handle_put(fs, old);
}

void fs_handles_free(struct fs *fs)
{
	for (size_t i = 0; fs->listings && i < FS_LISTINGS; i++)
		if (fs->listings[i].h)
			handle_free(fs->listings[i].h);
	free(fs->listings);
	for (size_t i = 0; i < fs->nslots; i++)
		if (fs->slots[i])
			handle_free(fs->slots[i]);
	free(fs->slots);
	free(fs->gens);
	free(fs->free_slots);
}
