/*
 * library.c: the catalogue and the costumes, kept in the index.
 */
#include "library_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../log/log.h"

/* After a failed refresh served from a stale copy, wait this long before
 * asking the origin again. */
#define CATALOGUE_RETRY_S 60

#define MIN(a, b) ((a) < (b) ? (a) : (b))

/* Busy keys: costumes' buildData work and probes (costume id * 2 [+1]) and
 * the catalogue (-1). */
#define KEY_CATALOGUE (-1)
#define KEY_COSTUME(id) ((id) * 2)
#define KEY_PROBE(id) ((id) * 2 + 1)

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
	pthread_mutex_init(&lib->lock, NULL);
	pthread_cond_init(&lib->changed, NULL);
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
	pthread_mutex_destroy(&lib->lock);
	pthread_cond_destroy(&lib->changed);
	free(lib->busy.v);
	free(lib->pins.v);
	free(lib);
}

void fetch_keys_add(struct fetch_keys *k, int64_t key)
{
	if (k->n == k->cap) {
		size_t cap = k->cap ? k->cap * 2 : 16;
		int64_t *v = realloc(k->v, cap * sizeof(*v));
		if (!v)
			abort();
		k->v = v;
		k->cap = cap;
	}
	k->v[k->n++] = key;
}

void fetch_keys_remove(struct fetch_keys *k, int64_t key)
{
	for (size_t i = 0; i < k->n; i++) {
		if (k->v[i] == key) {
			k->v[i] = k->v[--k->n];
			return;
		}
	}
}

int fetch_keys_has(const struct fetch_keys *k, int64_t key)
{
	for (size_t i = 0; i < k->n; i++)
		if (k->v[i] == key)
			return 1;
	return 0;
}

void fetch_busy_acquire(struct fetch_library *lib, int64_t key)
{
	pthread_mutex_lock(&lib->lock);
	while (fetch_keys_has(&lib->busy, key))
		pthread_cond_wait(&lib->changed, &lib->lock);
	fetch_keys_add(&lib->busy, key);
	pthread_mutex_unlock(&lib->lock);
}

void fetch_busy_release(struct fetch_library *lib, int64_t key)
{
	pthread_mutex_lock(&lib->lock);
	fetch_keys_remove(&lib->busy, key);
	pthread_cond_broadcast(&lib->changed);
	pthread_mutex_unlock(&lib->lock);
}

/* ---- the catalogue ---- */

enum { DOC_ROSTER, DOC_ASSETS, DOC_COSTUMES, NDOCS };

/* One catalogue document: the copy in the index and the origin's answer. */
struct doc {
	char key[64];
	char path[128];
	char *stored;      /* NULL if never stored */
	size_t stored_len;
	int64_t fetched_at;
	struct fetch_membuf got;
	int err;           /* of the fetch (guarded by lib->lock while in flight) */
	char reason[FETCH_REASON_MAX];
	struct fetch_library *lib;
	int *pending;      /* requests in flight (guarded by lib->lock) */
};

static void docs_init(struct fetch_library *lib, struct doc *docs)
{
	memset(docs, 0, NDOCS * sizeof(*docs));
	snprintf(docs[DOC_ROSTER].key, sizeof(docs[0].key), "roster");
	snprintf(docs[DOC_ROSTER].path, sizeof(docs[0].path), "/characters/all.2.json");
	snprintf(docs[DOC_ASSETS].key, sizeof(docs[0].key), "asset_index:%s", lib->server);
	snprintf(docs[DOC_ASSETS].path, sizeof(docs[0].path), "/explorer/%s/assets/_info.json",
		 lib->server);
	snprintf(docs[DOC_COSTUMES].key, sizeof(docs[0].key), "costume_index");
	snprintf(docs[DOC_COSTUMES].path, sizeof(docs[0].path), "/costumes/all.5.json");
	for (int i = 0; i < NDOCS; i++) {
		docs[i].lib = lib;
		docs[i].got.max = FETCH_DOC_MAX;
	}
}

static void docs_free(struct doc *docs)
{
	for (int i = 0; i < NDOCS; i++) {
		free(docs[i].stored);
		free(docs[i].got.buf);
	}
}

static int64_t catalogue_ttl(const struct fetch_library *lib)
{
	return lib->cfg.catalogue_ttl_s > 0 ? lib->cfg.catalogue_ttl_s : FETCH_CATALOGUE_TTL_S;
}

/* 1 if every document is stored, younger than the TTL, and parsed. */
static int docs_young(struct fetch_library *lib, struct doc *docs)
{
	int64_t now = idx_now(), at;

	for (int i = 0; i < NDOCS; i++)
		if (idx_doc_fetched_at(lib->idx, docs[i].key, &at) < 0 || at > now ||
		    now - at >= catalogue_ttl(lib))
			return 0;
	return idx_catalogue_present(lib->idx, lib->server);
}

static void doc_done(void *arg, const struct fetch_result *res)
{
	struct doc *d = arg;

	pthread_mutex_lock(&d->lib->lock);
	d->err = res->err;
	snprintf(d->reason, sizeof(d->reason), "%s",
		 res->reason[0] ? res->reason : strerror(-res->err));
	--*d->pending;
	pthread_cond_broadcast(&d->lib->changed);
	pthread_mutex_unlock(&d->lib->lock);
}

/* Ask the origin for the three documents at once; wait for every answer. */
static void docs_fetch(struct fetch_library *lib, struct doc *docs)
{
	int pending = NDOCS;

	for (int i = 0; i < NDOCS; i++) {
		struct fetch_result res = { .err = 0 };
		docs[i].pending = &pending;
		res.err = fetch_submit_document(lib->engine, FETCH_API, docs[i].path,
						FETCH_FOREGROUND, &docs[i].got, doc_done, &docs[i]);
		if (res.err < 0)
			doc_done(&docs[i], &res);
	}
	pthread_mutex_lock(&lib->lock);
	while (pending > 0)
		pthread_cond_wait(&lib->changed, &lib->lock);
	pthread_mutex_unlock(&lib->lock);
	for (int i = 0; i < NDOCS; i++) {
		if (docs[i].err == 0)
			docs[i].err = fetch_membuf_finish(&docs[i].got);
		if (docs[i].err < 0)
			log_warn("%s: %s", docs[i].path, docs[i].reason);
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
 * without names (listed by id); a costume of no character (-1) adds none. */
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
		if (c->character_id >= 0 && !has_character(cat, c->character_id)) {
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

/* The catalogue's rejects: one line at info (a mount says it once per fetch;
 * a subcommand at its default level says nothing), each reject at debug. */
static void log_catalogue_rejects(struct fetch_rejects *r)
{
	if (r->n)
		log_info("catalogue: %zu entries left out (the first: %s); log_level=debug"
			 " lists them", r->n, r->lines[0]);
	for (size_t i = 0; i < r->n; i++)
		log_debug("catalogue: left out %s", r->lines[i]);
	fetch_rejects_free(r);
}

static int catalogue_parse_store(struct fetch_library *lib, const char *const *body,
				 const size_t *len)
{
	struct fetch_catalogue cat;
	struct fetch_rejects rej = { 0 };
	int rc = fetch_parse_catalogue(body[DOC_ROSTER], len[DOC_ROSTER], body[DOC_ASSETS],
				       len[DOC_ASSETS], body[DOC_COSTUMES], len[DOC_COSTUMES], &cat,
				       &rej);
	log_catalogue_rejects(&rej);
	if (rc < 0)
		return rc;
	rc = catalogue_store(lib, &cat);
	fetch_catalogue_free(&cat);
	return rc;
}

/* Parse and store the new documents, the stored copy standing in for any
 * that could not be fetched. If the new ones are malformed, the stored
 * copies are parsed instead and the new ones dropped. */
static int docs_store(struct fetch_library *lib, struct doc *docs)
{
	const char *body[NDOCS], *old[NDOCS];
	size_t len[NDOCS], old_len[NDOCS];
	int64_t now = idx_now();
	int rc, all_stored = 1;

	for (int i = 0; i < NDOCS; i++) {
		struct doc *d = &docs[i];
		old[i] = d->stored, old_len[i] = d->stored_len;
		all_stored &= d->stored != NULL;
		if (d->err == 0) {
			body[i] = d->got.buf, len[i] = d->got.len;
			continue;
		}
		if (!d->stored) {
			log_error("%s: no copy of the catalogue to serve", d->path);
			return -EIO;
		}
		log_warn("%s: serving the copy from %lld s ago", d->path,
			 (long long)(now - d->fetched_at));
		body[i] = d->stored, len[i] = d->stored_len;
	}
	rc = catalogue_parse_store(lib, body, len);
	if (rc == -EBADMSG && all_stored) {
		log_error("catalogue: a document from the origin is malformed; keeping the"
			  " previous copy");
		return catalogue_parse_store(lib, old, old_len) < 0 ? -EIO : -EBADMSG;
	}
	for (int i = 0; rc == 0 && i < NDOCS; i++)
		if (docs[i].err == 0)
			idx_doc_put(lib->idx, docs[i].key, docs[i].got.buf, docs[i].got.len, now);
	return rc < 0 ? -EIO : 0;
}

/* Fetch and store; 0 only if every document came from the origin. */
static int catalogue_fetch(struct fetch_library *lib, struct doc *docs)
{
	int rc;

	for (int i = 0; i < NDOCS; i++)
		idx_doc_get(lib->idx, docs[i].key, &docs[i].stored, &docs[i].stored_len,
			    &docs[i].fetched_at);
	docs_fetch(lib, docs);
	rc = docs_store(lib, docs);
	for (int i = 0; rc == 0 && i < NDOCS; i++)
		if (docs[i].err < 0)
			rc = docs[i].err == -ENOENT ? -ENOENT : -EIO;
	return rc;
}

static void refresh_done(struct fetch_library *lib)
{
	log_info("catalogue of %s refreshed", lib->server);
}

int fetch_catalogue_refresh(struct fetch_library *lib, int force)
{
	struct doc docs[NDOCS];
	int64_t ttl = catalogue_ttl(lib);
	int rc = 0;

	docs_init(lib, docs);
	fetch_busy_acquire(lib, KEY_CATALOGUE);
	if (force || !docs_young(lib, docs)) {
		rc = catalogue_fetch(lib, docs);
		if (rc == 0)
			refresh_done(lib);
	}
	/* Look at the documents' age again once one could have expired, or
	 * ask the origin again a while after it failed (at once if there is
	 * nothing to serve meanwhile). */
	if (rc == 0 || idx_catalogue_present(lib->idx, lib->server)) {
		pthread_mutex_lock(&lib->lock);
		lib->catalogue_checked_until =
			idx_now() + (rc < 0 ? MIN(CATALOGUE_RETRY_S, ttl) : MIN(300, ttl));
		pthread_mutex_unlock(&lib->lock);
	}
	fetch_busy_release(lib, KEY_CATALOGUE);
	docs_free(docs);
	return rc;
}

int fetch_catalogue_ensure(struct fetch_library *lib)
{
	int rc;

	pthread_mutex_lock(&lib->lock);
	int fresh = idx_now() < lib->catalogue_checked_until;
	pthread_mutex_unlock(&lib->lock);
	if (fresh)
		return 0;
	rc = fetch_catalogue_refresh(lib, 0);
	if (rc < 0 && idx_catalogue_present(lib->idx, lib->server))
		return 0;
	return rc < 0 ? -EIO : 0;
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
		in[n++] = (struct idx_file_in){ d, name, f->kind, f->bundle, f->file,
						f->optional };
	}
	rc = idx_costume_files_store(lib->idx, c->id, in, n);
	free(in);
	return rc;
}

int fetch_costume_ensure(struct fetch_library *lib, int64_t costume_id)
{
	struct idx_costume c;
	struct fetch_costume_files spec = { 0 };
	struct fetch_rejects rej = { 0 };
	struct fetch_result res;
	char key[IDX_NAME_MAX + 32], path[IDX_NAME_MAX + 64];
	char *body = NULL;
	size_t len = 0;
	int rc;

	rc = idx_costume_get(lib->idx, costume_id, lib->cfg.lang, &c);
	if (rc < 0 || c.files_listed)
		return rc;
	fetch_busy_acquire(lib, KEY_COSTUME(costume_id));
	rc = idx_costume_get(lib->idx, costume_id, lib->cfg.lang, &c);
	if (rc < 0 || c.files_listed)
		goto out;
	snprintf(key, sizeof(key), "build:%s:%s", c.server, c.live2d_name);
	snprintf(path, sizeof(path), "/%s/live2d/chara/%s_rip/buildData.asset", c.server,
		 c.live2d_name);
	rc = fetch_get_memory(lib->engine, FETCH_ASSETS, path, FETCH_PROBE, FETCH_DOC_MAX, &body,
			      &len, &res);
	int stored = rc < 0 && idx_doc_get(lib->idx, key, &body, &len, NULL) == 0;
	if (rc < 0) {
		log_error("%s: buildData: %s%s", c.live2d_name,
			  res.reason[0] ? res.reason : strerror(-rc),
			  stored ? "; using the stored copy" : "");
		if (!stored) {
			rc = rc == -ENOENT ? -ENOENT : -EIO;
			goto out;
		}
	}
	rc = fetch_parse_build_data(body, len, &spec, &rej);
	log_rejects(c.live2d_name, &rej);
	if (rc < 0) {
		log_error("%s: buildData.asset is malformed (%s)", c.live2d_name, strerror(-rc));
		rc = -EIO;
		goto out;
	}
	if (!stored)
		idx_doc_put(lib->idx, key, body, len, idx_now());
	rc = costume_files_store(lib, &c, &spec);
out:
	fetch_costume_files_free(&spec);
	free(body);
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

int fetch_costume_probe(struct fetch_library *lib, int64_t costume_id, int optional_only)
{
	struct asset_list l = { 0 };
	struct idx_asset a;
	char **paths = NULL;
	int64_t *ids = NULL;
	struct fetch_result *res = NULL;
	size_t n = 0;
	int rc;

	rc = costume_assets(lib, costume_id, &l);
	if (rc < 0 || costume_complete(lib, costume_id))
		goto out;
	fetch_busy_acquire(lib, KEY_PROBE(costume_id));
	paths = calloc(l.n + 1, sizeof(*paths));
	ids = calloc(l.n + 1, sizeof(*ids));
	if (!paths || !ids) {
		rc = -ENOMEM;
		goto release;
	}
	for (size_t i = 0; i < l.n; i++) {
		if ((optional_only && !l.optional[i]) || idx_asset_get(lib->idx, l.ids[i], &a) < 0 ||
		    !size_unknown(&a))
			continue;
		/* A transfer in flight answers better than a HEAD. */
		if (fetch_asset_wait_inflight(lib, a.id))
			continue;
		paths[n] = malloc(FETCH_URL_MAX);
		if (!paths[n] ||
		    fetch_asset_url_path(lib->server, a.bundle, a.file, paths[n], FETCH_URL_MAX) < 0) {
			free(paths[n]);
			continue;
		}
		ids[n++] = a.id;
	}
	if (n) {
		res = calloc(n, sizeof(*res));
		rc = res ? fetch_head_batch(lib->engine, FETCH_ASSETS, (const char *const *)paths,
					    n, res)
			 : -ENOMEM;
		for (size_t i = 0; rc == 0 && i < n; i++) {
			if (res[i].err == 0 && res[i].size >= 0)
				idx_asset_mark_probed(lib->idx, ids[i], res[i].size, 0, NULL);
			else if (res[i].err == -ENOENT)
				idx_asset_mark_probed(lib->idx, ids[i], -1, ENOENT, res[i].reason);
		}
	}
release:
	fetch_busy_release(lib, KEY_PROBE(costume_id));
out:
	for (size_t i = 0; paths && i < n; i++)
		free(paths[i]);
	free(paths);
	free(ids);
	free(res);
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
	struct spec_list *l = arg;
	struct idx_asset a;

	if (!f->asset_id || f->kind > IDX_KIND_EXPRESSION)
		return 0;
	if (!l->complete &&
	    (idx_asset_get(l->lib->idx, f->asset_id, &a) < 0 || fetch_asset_missing(&a)))
		return 0;
	snprintf(l->paths[l->n], sizeof(l->paths[0]), "%s%s", dir_prefix[f->dir], f->name);
	l->files[l->n] = (struct fetch_file_spec){ f->kind, l->paths[l->n], NULL, NULL,
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
	if (!(*text = strdup(c.display)))
		return -ENOMEM;
	*len = strlen(*text);
	return 0;
}

/* ---- whole costumes ---- */

struct download_run {
	struct fetch_library *lib;
	struct asset_list *l;
	size_t next;
	int failed;
	const volatile int *cancel;
	fetch_progress_fn progress;
	void *arg;
	pthread_mutex_t lock;
};

static void *download_worker(void *arg)
{
	struct download_run *r = arg;

	for (;;) {
		pthread_mutex_lock(&r->lock);
		size_t i = r->next++;
		pthread_mutex_unlock(&r->lock);
		if (i >= r->l->n || (r->cancel && *r->cancel))
			break;
		int fd = -1;
		int err = fetch_asset_open(r->lib, r->l->ids[i], &fd);
		if (fd >= 0)
			close(fd);
		pthread_mutex_lock(&r->lock);
		/* A missing optional file (physics, icon) is not a failure. */
		if (err < 0 && !(err == -ENOENT && r->l->optional[i]))
			r->failed = 1;
		if (r->progress)
			r->progress(r->arg, r->l->ids[i], err);
		pthread_mutex_unlock(&r->lock);
	}
	return NULL;
}

int fetch_costume_download(struct fetch_library *lib, int64_t costume_id, int parallel,
			   const volatile int *cancel, fetch_progress_fn progress, void *arg)
{
	struct asset_list l = { 0 };
	struct download_run r = { lib, &l, 0, 0, cancel, progress, arg,
				  PTHREAD_MUTEX_INITIALIZER };
	pthread_t threads[64];
	int nthreads = 0, rc;

	rc = costume_assets(lib, costume_id, &l);
	if (rc < 0)
		goto out;
	if (parallel <= 0 || parallel > 64)
		parallel = parallel <= 0 ? 16 : 64;
	for (int i = 0; i < parallel && (size_t)i < l.n; i++)
		if (pthread_create(&threads[nthreads], NULL, download_worker, &r) == 0)
			nthreads++;
	if (l.n && !nthreads)
		download_worker(&r);
	for (int i = 0; i < nthreads; i++)
		pthread_join(threads[i], NULL);
	if (cancel && *cancel)
		rc = -EINTR;
	else if (r.failed)
		rc = -EIO;
out:
	asset_list_free(&l);
	return rc;
}
