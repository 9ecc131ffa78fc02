/*
 * library.c: the catalogue and the costumes, kept in the index.
 */
#include "library_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../log/log.h"

/* After a failed refresh served from a stale copy, wait this long before
 * asking the origin again. */
#define CATALOGUE_RETRY_S 60

/* Busy keys: costumes' buildData work and probes (costume id * 2 [+1]) and
 * the catalogue (-1). */
#define KEY_CATALOGUE (-1)
#define KEY_COSTUME(id) ((id) * 2)
#define KEY_PROBE(id) ((id) * 2 + 1)

/* The first back-off after a failed download: 5 s, or L2DFS_RETRY_BACKOFF_MS. */
static int64_t backoff_first_ms(void)
{
	const char *s = getenv("L2DFS_RETRY_BACKOFF_MS");
	long long v = s ? strtoll(s, NULL, 10) : 0;
	return v > 0 && v <= (long long)FETCH_BACKOFF_MAX_S * 1000 ? v : 5000;
}

int fetch_library_new(struct fetch_library **out, const struct fetch_library_config *cfg,
		      struct fetch_engine *e, struct idx *idx, struct cache *cache)
{
	struct fetch_library *lib = calloc(1, sizeof(*lib));
	int rc;

	if (!lib)
		return -ENOMEM;
	lib->cfg = *cfg;
	snprintf(lib->server, sizeof(lib->server), "%s", cfg->server);
	lib->cfg.server = lib->server;
	lib->engine = e;
	lib->idx = idx;
	lib->cache = cache;
	lib->backoff_ms = backoff_first_ms();
	pthread_mutex_init(&lib->lock, NULL);
	pthread_cond_init(&lib->key_released, NULL);
	pthread_cond_init(&lib->job_ready, NULL);
	pthread_cond_init(&lib->pass_over, NULL);
	pthread_cond_init(&lib->offload_over, NULL);
	fetch_budget_start(lib);
	rc = fetch_assets_start(lib);
	if (rc < 0) {
		fetch_library_free(lib);
		return rc;
	}
	*out = lib;
	return 0;
}

void fetch_library_free(struct fetch_library *lib)
{
	if (!lib)
		return;
	fetch_assets_stop(lib);
	fetch_offload_drain(lib);
	pthread_mutex_destroy(&lib->lock);
	pthread_cond_destroy(&lib->key_released);
	pthread_cond_destroy(&lib->job_ready);
	pthread_cond_destroy(&lib->pass_over);
	pthread_cond_destroy(&lib->offload_over);
	free(lib->busy.v);
	free(lib->pins.v);
	free(lib);
}

/* Take a key, waiting while another thread holds it; if cancellable,
 * -EINTR once this thread's cancel token fires (the key not taken). */
static int busy_take(struct fetch_library *lib, int64_t key, int cancellable)
{
	int rc = 0;

	pthread_mutex_lock(&lib->lock);
	while (rc == 0 && fetch_keys_has(&lib->busy, key)) {
		if (cancellable)
			rc = fetch_wait(lib, &lib->key_released);
		else
			pthread_cond_wait(&lib->key_released, &lib->lock);
	}
	if (rc == 0)
		fetch_keys_add(&lib->busy, key);
	pthread_mutex_unlock(&lib->lock);
	return rc;
}

void fetch_busy_acquire(struct fetch_library *lib, int64_t key)
{
	busy_take(lib, key, 0);
}

void fetch_busy_release(struct fetch_library *lib, int64_t key)
{
	pthread_mutex_lock(&lib->lock);
	fetch_keys_remove(&lib->busy, key);
	pthread_cond_broadcast(&lib->key_released);
	pthread_mutex_unlock(&lib->lock);
}

/* ---- the catalogue ---- */

enum { DOC_ROSTER, DOC_ASSETS, DOC_COSTUMES, NDOCS };

struct doc {
	char key[64];
	char path[128];
	char *body;       /* what will be parsed */
	size_t len;
	int64_t fetched_at;
	int fresh;        /* body is younger than the TTL */
	int fetched;      /* body came from the origin just now */
	char *stale;      /* the stored copy, when a new one was fetched */
	size_t stale_len;
	int err;
	struct fetch_engine *engine;
	pthread_t thread;
};

static void *doc_fetch_thread(void *arg)
{
	struct doc *d = arg;
	struct fetch_result res;

	d->err = fetch_get_memory(d->engine, FETCH_API, d->path, FETCH_DOC_MAX, &d->body, &d->len,
				  &res);
	if (d->err < 0)
		log_warn("%s: %s", d->path, res.reason[0] ? res.reason : strerror(-d->err));
	return NULL;
}

static void docs_free(struct doc *docs)
{
	for (int i = 0; i < NDOCS; i++) {
		free(docs[i].body);
		free(docs[i].stale);
	}
}

/* Sort key for qsort of costumes by DESIGN §4. */
static int costume_rank_cmp(const void *a, const void *b)
{
	const struct fetch_costume *x = a, *y = b;
	return fetch_costume_cmp(x->live2d_name, y->live2d_name);
}

static int has_character(const struct fetch_catalogue *cat, int64_t id)
{
	for (size_t i = 0; i < cat->ncharacters; i++)
		if (cat->characters[i].id == id)
			return 1;
	return 0;
}

/* Parsed catalogue -> index. Characters missing from the roster are stored
 * without names (listed by id). */
static int catalogue_store(struct fetch_library *lib, struct fetch_catalogue *cat)
{
	size_t nch = cat->ncharacters, cap = cat->ncharacters + cat->ncostumes;
	struct idx_character_in *chars = calloc(cap ? cap : 1, sizeof(*chars));
	struct idx_costume_in *cos = calloc(cat->ncostumes ? cat->ncostumes : 1, sizeof(*cos));
	int rc = -ENOMEM;

	if (!chars || !cos)
		goto out;
	qsort(cat->costumes, cat->ncostumes, sizeof(*cat->costumes), costume_rank_cmp);
	for (size_t i = 0; i < cat->ncharacters; i++) {
		chars[i].id = cat->characters[i].id;
		for (int l = 0; l < IDX_LANGS; l++)
			chars[i].names[l] = cat->characters[i].names[l];
	}
	for (size_t i = 0; i < cat->ncostumes; i++) {
		const struct fetch_costume *c = &cat->costumes[i];
		cos[i].live2d_name = c->live2d_name;
		cos[i].character_id = c->character_id;
		cos[i].costume_id = c->costume_id;
		for (int l = 0; l < IDX_LANGS; l++)
			cos[i].desc[l] = c->desc[l];
		cos[i].rank = (int64_t)i;
		if (!has_character(cat, c->character_id)) {
			size_t j;
			for (j = cat->ncharacters; j < nch && chars[j].id != c->character_id; j++)
				;
			if (j == nch)
				chars[nch++].id = c->character_id;
		}
	}
	rc = idx_catalogue_store(lib->idx, lib->server, chars, nch, cos, cat->ncostumes);
out:
	free(chars);
	free(cos);
	return rc;
}

static void log_rejects(const char *what, struct fetch_rejects *r)
{
	for (size_t i = 0; i < r->n; i++)
		log_warn("%s: left out %s", what, r->lines[i]);
	fetch_rejects_free(r);
}

static int catalogue_parse_store(struct fetch_library *lib, struct doc *docs)
{
	struct fetch_catalogue cat;
	struct fetch_rejects rej = { 0 };
	int rc = fetch_parse_catalogue(docs[DOC_ROSTER].body, docs[DOC_ROSTER].len,
				       docs[DOC_ASSETS].body, docs[DOC_ASSETS].len,
				       docs[DOC_COSTUMES].body, docs[DOC_COSTUMES].len, &cat, &rej);
	log_rejects("catalogue", &rej);
	if (rc < 0)
		return rc;
	rc = catalogue_store(lib, &cat);
	fetch_catalogue_free(&cat);
	return rc;
}

static int catalogue_refresh(struct fetch_library *lib)
{
	struct doc docs[NDOCS];
	int64_t now = idx_now();
	int nfetch = 0, rc, all_fresh = 1;

	memset(docs, 0, sizeof(docs));
	snprintf(docs[DOC_ROSTER].key, sizeof(docs[0].key), "roster");
	snprintf(docs[DOC_ROSTER].path, sizeof(docs[0].path), "/characters/all.2.json");
	snprintf(docs[DOC_ASSETS].key, sizeof(docs[0].key), "asset_index:%s", lib->server);
	snprintf(docs[DOC_ASSETS].path, sizeof(docs[0].path), "/explorer/%s/assets/_info.json",
		 lib->server);
	snprintf(docs[DOC_COSTUMES].key, sizeof(docs[0].key), "costume_index");
	snprintf(docs[DOC_COSTUMES].path, sizeof(docs[0].path), "/costumes/all.5.json");

	/* The usual case: everything young and stored; no body needs reading. */
	for (int i = 0; i < NDOCS && all_fresh; i++) {
		int64_t at;
		all_fresh = idx_doc_fetched_at(lib->idx, docs[i].key, &at) == 0 &&
			    now - at < FETCH_CATALOGUE_TTL_S && at <= now;
	}
	if (all_fresh && idx_catalogue_present(lib->idx, lib->server))
		return 0;
	all_fresh = 1;

	for (int i = 0; i < NDOCS; i++) {
		struct doc *d = &docs[i];
		d->engine = lib->engine;
		if (idx_doc_get(lib->idx, d->key, &d->stale, &d->stale_len, &d->fetched_at) == 0 &&
		    now - d->fetched_at < FETCH_CATALOGUE_TTL_S && d->fetched_at <= now) {
			d->fresh = 1;
			d->body = d->stale, d->len = d->stale_len;
			d->stale = NULL;
			continue;
		}
		all_fresh = 0;
		if (pthread_create(&d->thread, NULL, doc_fetch_thread, d) == 0)
			d->fetched = 1, nfetch++;
		else
			d->err = -EAGAIN;
	}
	if (all_fresh && idx_catalogue_present(lib->idx, lib->server)) {
		docs_free(docs);
		return 0;
	}
	for (int i = 0; i < NDOCS; i++)
		if (docs[i].fetched)
			pthread_join(docs[i].thread, NULL);

	/* A document that could not be fetched is replaced by its stale copy. */
	int stale_used = 0;
	for (int i = 0; i < NDOCS; i++) {
		struct doc *d = &docs[i];
		if (d->fresh || (d->fetched && d->err == 0))
			continue;
		if (!d->stale) {
			log_error("%s: no copy of the catalogue to serve", d->path);
			docs_free(docs);
			return -EIO;
		}
		log_warn("%s: serving the copy from %lld s ago", d->path,
			 (long long)(now - d->fetched_at));
		d->body = d->stale, d->len = d->stale_len;
		d->stale = NULL;
		stale_used = 1;
	}
	rc = catalogue_parse_store(lib, docs);
	if (rc == -EBADMSG) {
		/* Something new is malformed: fall back to the stored copies. */
		log_error("catalogue: a document from the origin is malformed; keeping the"
			  " previous copy");
		int fell_back = 0;
		for (int i = 0; i < NDOCS; i++) {
			if (docs[i].fetched && docs[i].err == 0 && docs[i].stale) {
				free(docs[i].body);
				docs[i].body = docs[i].stale, docs[i].len = docs[i].stale_len;
				docs[i].stale = NULL;
				docs[i].fetched = 0;
				fell_back = 1;
			}
		}
		rc = fell_back ? catalogue_parse_store(lib, docs) : -EIO;
		stale_used = 1;
	}
	if (rc == 0) {
		for (int i = 0; i < NDOCS; i++)
			if (docs[i].fetched && docs[i].err == 0)
				idx_doc_put(lib->idx, docs[i].key, docs[i].body, docs[i].len, now);
	}
	docs_free(docs);
	if (rc < 0)
		return -EIO;
	return stale_used ? 1 : 0;
}

int fetch_catalogue_ensure(struct fetch_library *lib)
{
	int64_t now = idx_now();
	int rc;

	pthread_mutex_lock(&lib->lock);
	int fresh = now < lib->catalogue_checked_until;
	pthread_mutex_unlock(&lib->lock);
	if (fresh)
		return 0;

	fetch_busy_acquire(lib, KEY_CATALOGUE);
	pthread_mutex_lock(&lib->lock);
	fresh = idx_now() < lib->catalogue_checked_until;
	pthread_mutex_unlock(&lib->lock);
	rc = fresh ? 0 : catalogue_refresh(lib);
	if (rc >= 0) {
		pthread_mutex_lock(&lib->lock);
		/* Check again once the oldest copy could have expired (cheap). */
		lib->catalogue_checked_until = idx_now() + (rc == 1 ? CATALOGUE_RETRY_S : 300);
		pthread_mutex_unlock(&lib->lock);
		rc = 0;
	}
	fetch_busy_release(lib, KEY_CATALOGUE);
	return rc;
}

static int catalogue_call(void *arg)
{
	return fetch_catalogue_ensure(arg);
}

static void catalogue_call_free(void *arg)
{
	(void)arg; /* the library outlives its offloaded calls */
}

int fetch_catalogue_wait(struct fetch_library *lib)
{
	pthread_mutex_lock(&lib->lock);
	int fresh = idx_now() < lib->catalogue_checked_until;
	pthread_mutex_unlock(&lib->lock);
	/* The usual case, without a thread. */
	if (fresh)
		return 0;
	return fetch_offload(lib, catalogue_call, lib, catalogue_call_free);
}

/* ---- a costume's files ---- */

static const char *const dir_prefix[IDX_NDIRS] = { "", "textures/", "motions/",
						   "expressions/" };

static enum idx_dir dir_of(const char *rel_path, const char **name)
{
	for (int d = IDX_NDIRS - 1; d > 0; d--) {
		size_t n = strlen(dir_prefix[d]);
		if (strncmp(rel_path, dir_prefix[d], n) == 0) {
			*name = rel_path + n;
			return (enum idx_dir)d;
		}
	}
	*name = rel_path;
	return IDX_DIR_ROOT;
}

static const enum idx_file_kind kind_of_spec[] = {
	[FETCH_KIND_MODEL] = IDX_KIND_MODEL,
	[FETCH_KIND_PHYSICS] = IDX_KIND_PHYSICS,
	[FETCH_KIND_TEXTURE] = IDX_KIND_TEXTURE,
	[FETCH_KIND_MOTION] = IDX_KIND_MOTION,
	[FETCH_KIND_EXPRESSION] = IDX_KIND_EXPRESSION,
};

/* The generated files and the icon come first; buildData's after, minus any
 * that would take one of their names. */
static int costume_files_store(struct fetch_library *lib, const struct idx_costume *c,
			       const struct fetch_costume_files *spec)
{
	struct idx_file_in *in = calloc(spec->n + 3, sizeof(*in));
	char icon_bundle[64], icon_file[IDX_NAME_MAX + 8];
	size_t n = 0;
	int rc;

	if (!in)
		return -ENOMEM;
	in[n++] = (struct idx_file_in){ IDX_DIR_ROOT, "model.json", IDX_KIND_MODEL_JSON, NULL,
					NULL, 0 };
	if (c->display[0])
		in[n++] = (struct idx_file_in){ IDX_DIR_ROOT, "name.txt", IDX_KIND_NAME_TXT,
						NULL, NULL, 0 };
	if (c->costume_id >= 0) {
		snprintf(icon_bundle, sizeof(icon_bundle), "thumb/costume/group%lld",
			 (long long)(c->costume_id / 50));
		snprintf(icon_file, sizeof(icon_file), "%s.png", c->live2d_name);
		in[n++] = (struct idx_file_in){ IDX_DIR_ROOT, "icon.png", IDX_KIND_ICON,
						icon_bundle, icon_file, 1 };
	}
	size_t generated = n;
	for (size_t i = 0; i < spec->n; i++) {
		const struct fetch_file_spec *f = &spec->files[i];
		const char *name;
		enum idx_dir d = dir_of(f->rel_path, &name);
		size_t j;
		for (j = 0; j < generated && !(in[j].dir == d && strcmp(in[j].name, name) == 0); j++)
			;
		if (j < generated) {
			log_warn("%s: left out \"%s\": the name is taken by a generated file",
				 c->live2d_name, f->rel_path);
			continue;
		}
		in[n++] = (struct idx_file_in){ d, name, kind_of_spec[f->kind], f->bundle, f->file,
						f->optional };
	}
	rc = idx_costume_files_store(lib->idx, c->id, in, n);
	free(in);
	return rc;
}

/* One GET into memory, offloaded (fetch_offload()). */
struct get_call {
	struct fetch_engine *engine;
	char path[IDX_NAME_MAX + 64];
	char *body;
	size_t len;
	struct fetch_result res;
};

static int get_call_run(void *arg)
{
	struct get_call *g = arg;
	return fetch_get_memory(g->engine, FETCH_ASSETS, g->path, FETCH_DOC_MAX, &g->body, &g->len,
				&g->res);
}

static void get_call_free(void *arg)
{
	struct get_call *g = arg;
	free(g->body);
	free(g);
}

/* The costume's buildData.asset from the origin (*body malloc'd). */
static int build_data_fetch(struct fetch_library *lib, const struct idx_costume *c, char **body,
			    size_t *len)
{
	struct get_call *g = calloc(1, sizeof(*g));
	int rc;

	if (!g)
		return -ENOMEM;
	g->engine = lib->engine;
	snprintf(g->path, sizeof(g->path), "/%s/live2d/chara/%s_rip/buildData.asset", c->server,
		 c->live2d_name);
	rc = fetch_offload(lib, get_call_run, g, get_call_free);
	if (rc == -EINTR)
		return rc; /* g is the offloaded call's now */
	if (rc < 0) {
		log_error("%s: buildData: %s", c->live2d_name,
			  g->res.reason[0] ? g->res.reason : strerror(-rc));
		rc = rc == -ENOENT ? -ENOENT : -EIO;
	} else {
		*body = g->body, *len = g->len;
		g->body = NULL;
	}
	get_call_free(g);
	return rc;
}

/* buildData -> the costume's file list in the index; the caller holds the
 * costume's busy key. */
static int costume_list_files(struct fetch_library *lib, const struct idx_costume *c)
{
	struct fetch_costume_files spec = { 0 };
	struct fetch_rejects rej = { 0 };
	char key[IDX_NAME_MAX + 32];
	char *body = NULL;
	size_t len = 0;
	int rc;

	snprintf(key, sizeof(key), "build:%s:%s", c->server, c->live2d_name);
	int stored = idx_doc_get(lib->idx, key, &body, &len, NULL) == 0;
	if (!stored && (rc = build_data_fetch(lib, c, &body, &len)) < 0)
		return rc;
	rc = fetch_parse_build_data(body, len, &spec, &rej);
	log_rejects(c->live2d_name, &rej);
	if (rc < 0) {
		log_error("%s: buildData.asset is malformed (%s)", c->live2d_name, strerror(-rc));
		rc = -EIO;
	} else {
		if (!stored)
			idx_doc_put(lib->idx, key, body, len, idx_now());
		rc = costume_files_store(lib, c, &spec);
	}
	fetch_costume_files_free(&spec);
	free(body);
	return rc;
}

int fetch_costume_ensure(struct fetch_library *lib, int64_t costume_id)
{
	struct idx_costume c;
	int rc;

	rc = idx_costume_get(lib->idx, costume_id, lib->cfg.lang, &c);
	if (rc < 0 || c.files_listed)
		return rc;
	rc = busy_take(lib, KEY_COSTUME(costume_id), 1);
	if (rc < 0)
		return rc;
	rc = idx_costume_get(lib->idx, costume_id, lib->cfg.lang, &c);
	if (rc == 0 && !c.files_listed)
		rc = costume_list_files(lib, &c);
	fetch_busy_release(lib, KEY_COSTUME(costume_id));
	return rc;
}

/* ---- sizes and presence ---- */

struct asset_list {
	int64_t *ids;
	unsigned char *optional;
	size_t n, cap;
};

static void asset_list_free(struct asset_list *l)
{
	free(l->ids);
	free(l->optional);
}

static int collect_assets(void *arg, const struct idx_file *f)
{
	struct asset_list *l = arg;
	if (!f->asset_id)
		return 0;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		int64_t *ids = realloc(l->ids, cap * sizeof(*ids));
		if (ids)
			l->ids = ids;
		unsigned char *opt = realloc(l->optional, cap);
		if (opt)
			l->optional = opt;
		if (!ids || !opt)
			return -ENOMEM;
		l->cap = cap;
	}
	l->optional[l->n] = (unsigned char)f->optional;
	l->ids[l->n++] = f->asset_id;
	return 0;
}

static int costume_assets(struct fetch_library *lib, int64_t costume_id, struct asset_list *l)
{
	int rc = fetch_costume_ensure(lib, costume_id);
	if (rc == 0)
		rc = idx_file_list(lib->idx, costume_id, -1, collect_assets, l);
	return rc;
}

/* 1 if every file of the costume is cached: nothing to probe and nothing
 * missing, known from one query instead of one per file. */
static int costume_complete(struct fetch_library *lib, int64_t costume_id)
{
	struct idx_costume_status st;

	return idx_costume_status(lib->idx, costume_id, &st) == 0 &&
	       st.files_done == st.files_total;
}

static int size_unknown(const struct idx_asset *a)
{
	return a->state != IDX_COMPLETED && a->size < 0 && !fetch_asset_missing(a);
}

/* HEAD requests of a probe, offloaded (fetch_offload()). */
struct head_call {
	struct fetch_engine *engine;
	char **paths;
	int64_t *ids;
	struct fetch_result *res;
	size_t n;
};

static int head_call_run(void *arg)
{
	struct head_call *h = arg;
	return fetch_head_batch(h->engine, FETCH_ASSETS, (const char *const *)h->paths, h->n,
				h->res);
}

static void head_call_free(void *arg)
{
	struct head_call *h = arg;
	for (size_t i = 0; h->paths && i < h->n; i++)
		free(h->paths[i]);
	free(h->paths);
	free(h->ids);
	free(h->res);
	free(h);
}

/* The assets of l whose size is unknown into h (a transfer in flight is
 * waited for instead: it answers better than a HEAD). */
static int probe_collect(struct fetch_library *lib, const struct asset_list *l,
			 int optional_only, struct head_call *h)
{
	struct idx_asset a;

	h->paths = calloc(l->n + 1, sizeof(*h->paths));
	h->ids = calloc(l->n + 1, sizeof(*h->ids));
	h->res = calloc(l->n + 1, sizeof(*h->res));
	if (!h->paths || !h->ids || !h->res)
		return -ENOMEM;
	for (size_t i = 0; i < l->n; i++) {
		if ((optional_only && !l->optional[i]) || idx_asset_get(lib->idx, l->ids[i], &a) < 0 ||
		    !size_unknown(&a))
			continue;
		int rc = fetch_asset_wait_inflight(lib, a.id);
		if (rc < 0)
			return rc;
		if (rc > 0)
			continue;
		char *p = malloc(FETCH_URL_MAX);
		if (!p || fetch_asset_url_path(lib->server, a.bundle, a.file, p, FETCH_URL_MAX) < 0) {
			free(p);
			continue;
		}
		h->paths[h->n] = p;
		h->ids[h->n++] = a.id;
	}
	return 0;
}

/* Probe the files of h; the caller holds the costume's probe key. */
static int probe_run(struct fetch_library *lib, struct head_call *h)
{
	int rc = fetch_offload(lib, head_call_run, h, head_call_free);

	if (rc == -EINTR)
		return rc; /* h is the offloaded call's now */
	for (size_t i = 0; rc == 0 && i < h->n; i++) {
		if (h->res[i].err == 0 && h->res[i].size >= 0)
			idx_asset_mark_probed(lib->idx, h->ids[i], h->res[i].size, 0, NULL);
		else if (h->res[i].err == -ENOENT)
			idx_asset_mark_probed(lib->idx, h->ids[i], -1, ENOENT, h->res[i].reason);
	}
	head_call_free(h);
	return rc;
}

int fetch_costume_probe(struct fetch_library *lib, int64_t costume_id, int optional_only)
{
	struct asset_list l = { 0 };
	struct head_call *h = NULL;
	int rc = costume_assets(lib, costume_id, &l);

	if (rc < 0 || costume_complete(lib, costume_id))
		goto out;
	rc = busy_take(lib, KEY_PROBE(costume_id), 1);
	if (rc < 0)
		goto out;
	h = calloc(1, sizeof(*h));
	rc = h ? probe_collect(lib, &l, optional_only, h) : -ENOMEM;
	if (h)
		h->engine = lib->engine;
	if (rc == 0 && h->n) {
		rc = probe_run(lib, h);
		h = NULL; /* freed by it, now or when the offloaded call ends */
	}
	fetch_busy_release(lib, KEY_PROBE(costume_id));
out:
	if (h)
		head_call_free(h);
	asset_list_free(&l);
	return rc;
}

void fetch_costume_prefetch(struct fetch_library *lib, int64_t costume_id)
{
	struct asset_list l = { 0 };

	if (costume_assets(lib, costume_id, &l) == 0 && !costume_complete(lib, costume_id))
		for (size_t i = 0; i < l.n; i++)
			fetch_asset_queue(lib, l.ids[i], FETCH_BACKGROUND);
	asset_list_free(&l);
}

struct spec_list {
	struct fetch_library *lib;
	struct fetch_file_spec *files;
	char (*paths)[IDX_NAME_MAX + 16];
	size_t n;
	int complete; /* every file cached: none is missing */
};

static int collect_present(void *arg, const struct idx_file *f)
{
	static const enum fetch_file_kind spec_kind[] = {
		[IDX_KIND_MODEL] = FETCH_KIND_MODEL,
		[IDX_KIND_PHYSICS] = FETCH_KIND_PHYSICS,
		[IDX_KIND_TEXTURE] = FETCH_KIND_TEXTURE,
		[IDX_KIND_MOTION] = FETCH_KIND_MOTION,
		[IDX_KIND_EXPRESSION] = FETCH_KIND_EXPRESSION,
	};
	struct spec_list *l = arg;
	struct idx_asset a;

	if (!f->asset_id || f->kind > IDX_KIND_EXPRESSION)
		return 0;
	if (!l->complete &&
	    (idx_asset_get(l->lib->idx, f->asset_id, &a) < 0 || fetch_asset_missing(&a)))
		return 0;
	snprintf(l->paths[l->n], sizeof(l->paths[0]), "%s%s", dir_prefix[f->dir], f->name);
	l->files[l->n] = (struct fetch_file_spec){ spec_kind[f->kind], l->paths[l->n], NULL, NULL,
						   f->optional };
	l->n++;
	return 0;
}

int fetch_costume_model_json(struct fetch_library *lib, int64_t costume_id, char **text,
			     size_t *len)
{
	struct asset_list all = { 0 };
	struct spec_list l = { lib, NULL, NULL, 0, 0 };
	int rc = costume_assets(lib, costume_id, &all);

	if (rc == 0)
		rc = fetch_costume_probe(lib, costume_id, 0);
	if (rc < 0)
		goto out;
	l.files = calloc(all.n + 1, sizeof(*l.files));
	l.paths = calloc(all.n + 1, sizeof(*l.paths));
	if (!l.files || !l.paths) {
		rc = -ENOMEM;
		goto out;
	}
	l.complete = costume_complete(lib, costume_id);
	rc = idx_file_list(lib->idx, costume_id, -1, collect_present, &l);
	if (rc == 0) {
		*text = fetch_render_model_json(l.files, l.n);
		if (!*text)
			rc = -ENOMEM;
		else
			*len = strlen(*text);
	}
out:
	free(l.files);
	free(l.paths);
	asset_list_free(&all);
	return rc;
}

int fetch_costume_name_txt(struct fetch_library *lib, int64_t costume_id, char **text,
			   size_t *len)
{
	struct idx_costume c;
	int rc = idx_costume_get(lib->idx, costume_id, lib->cfg.lang, &c);

	if (rc < 0)
		return rc;
	if (!c.display[0])
		return -ENOENT;
	if (asprintf(text, "%s\n", c.display) < 0)
		return -ENOMEM;
	*len = strlen(*text);
	return 0;
}
