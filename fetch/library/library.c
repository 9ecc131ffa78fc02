/*
 * library.c: the catalogue and the costumes, kept in the index.
 */
#include <assert.h>
#include "library_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cJSON.h>

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

/* Milliseconds from the environment variable name (1 to
 * FETCH_BACKOFF_MAX_S s), else dflt. */
static int64_t env_ms(const char *name, int64_t dflt)
{
	const char *s = getenv(name);
	long long v = s ? strtoll(s, NULL, 10) : 0;
	return v > 0 && v <= (long long)FETCH_BACKOFF_MAX_S * 1000 ? v : dflt;
}

/* The first back-off after a failed download: 5 s, or L2DFS_RETRY_BACKOFF_MS. */
static int64_t backoff_first_ms(void)
{
	return env_ms("L2DFS_RETRY_BACKOFF_MS", 5000);
}

int fetch_library_new(struct fetch_library **out, const struct fetch_library_config *cfg,
		      struct http_engine *e, struct idx *idx, struct cache *cache)
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
#ifdef L2DFS_TEST_HOOKS
	lib->commit_delay_ms = env_ms("L2DFS_TEST_COMMIT_DELAY_MS", 0);
	lib->publish_delay_ms = env_ms("L2DFS_TEST_PUBLISH_DELAY_MS", 0);
#endif
	pthread_mutex_init(&lib->lock, NULL);
	pthread_cond_init(&lib->key_released, NULL);
	pthread_cond_init(&lib->jobs_idle, NULL);
	pthread_cond_init(&lib->job_ready, NULL);
	pthread_cond_init(&lib->pass_over, NULL);
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
	pthread_cond_destroy(&lib->key_released);
	pthread_cond_destroy(&lib->jobs_idle);
	pthread_cond_destroy(&lib->job_ready);
	pthread_cond_destroy(&lib->pass_over);
	free(lib->busy.v);
	free(lib->pins.v);
	free(lib->refused.v);
	for (int i = 0; i < FETCH_MODEL_MEMOS; i++)
		free(lib->memo[i].text);
	free(lib);
}

/* Take a key, waiting while another thread holds it: -EINTR once this
 * thread's cancel token fires (the key not taken). */
static int busy_take(struct fetch_library *lib, int64_t key)
{
	assert(!lib_locked(lib));
	int rc = 0;

	lib_lock(lib);
	while (rc == 0 && fetch_keys_has(&lib->busy, key))
		rc = fetch_wait(lib, &lib->key_released);
	if (rc == 0)
		fetch_keys_add(&lib->busy, key);
	lib_unlock(lib);
	return rc;
}

void fetch_busy_release(struct fetch_library *lib, int64_t key)
{
	lib_lock(lib);
	fetch_keys_remove(&lib->busy, key);
	pthread_cond_broadcast(&lib->key_released);
	lib_unlock(lib);
}

/* ---- the catalogue ---- */

enum { DOC_ROSTER, DOC_ASSETS, DOC_COSTUMES, NDOCS };

/* One catalogue document: the copy in the index and the origin's answer. */
struct doc {
	char key[64];
	char path[128];    /* under the API base: the stored copy's name */
	const char *url;   /* a configured whole URL to fetch instead, or NULL */
	char *stored;      /* NULL if never stored */
	size_t stored_len;
	int64_t fetched_at;
	struct fetch_request *r; /* the request for it, joined; NULL if none */
	int err;                 /* of the request */
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
	docs[DOC_ROSTER].url = lib->cfg.roster_url;
	docs[DOC_ASSETS].url = lib->cfg.assets_index_url;
	docs[DOC_COSTUMES].url = lib->cfg.costume_index_url;
}

int fetch_catalogue_document(struct fetch_library *lib, const char *path, char **body,
			     size_t *len)
{
	struct doc docs[NDOCS];

	docs_init(lib, docs);
	for (int i = 0; i < NDOCS; i++)
		if (strcmp(path, docs[i].path) == 0)
			return idx_doc_get(lib->idx, docs[i].key, body, len, NULL);
	return -ENOENT;
}

static void docs_free(struct fetch_library *lib, struct doc *docs)
{
	for (int i = 0; i < NDOCS; i++) {
		free(docs[i].stored);
		fetch_request_release(lib, docs[i].r);
	}
}

static int64_t catalogue_ttl(const struct fetch_library *lib)
{
	return lib->cfg.catalogue_ttl_s > 0 ? lib->cfg.catalogue_ttl_s : FETCH_CATALOGUE_TTL_S;
}

/* A document (or buildData) from the origin, waited for as this thread's
 * cancel token allows: 0 with *body (malloc'd, NUL-terminated), or the
 * error with the reason in reason. */
static int doc_get(struct fetch_library *lib, enum http_base base, const char *path,
		   enum http_priority prio, char **body, size_t *len, char *reason, size_t rlen)
{
	struct fetch_request *r = fetch_request_joined(lib, FETCH_REQ_DOCUMENT, prio);
	int rc;

	if (!r)
		return -ENOMEM;
	fetch_request_document(lib, r, base, path);
	rc = fetch_request_outcome(lib, r);
	if (rc == 0) {
		*body = r->body.buf, *len = r->body.len;
		r->body.buf = NULL;
	}
	snprintf(reason, rlen, "%s", r->res.reason[0] ? r->res.reason : strerror(-rc));
	fetch_request_release(lib, r);
	return rc;
}

int fetch_character_document(struct fetch_library *lib, int64_t id, char **body, size_t *len)
{
	char key[64], path[64], *stored = NULL;
	size_t stored_len = 0;
	int64_t at = 0, now = idx_now();
	char reason[HTTP_REASON_MAX];
	int rc;

	if (id < 0)
		return -ENOENT;
	snprintf(key, sizeof(key), "character:%lld", (long long)id);
	snprintf(path, sizeof(path), "/characters/%lld.json", (long long)id);
	if (idx_doc_get(lib->idx, key, &stored, &stored_len, &at) == 0 && at <= now &&
	    now - at < catalogue_ttl(lib)) {
		*body = stored, *len = stored_len;
		return 0;
	}
	rc = doc_get(lib, HTTP_API, path, HTTP_FOREGROUND, body, len, reason, sizeof(reason));
	if (rc == 0) {
		cJSON *j = cJSON_ParseWithLength(*body, *len);
		rc = cJSON_IsObject(j) ? 0 : -EBADMSG;
		cJSON_Delete(j);
		if (rc < 0) {
			snprintf(reason, sizeof(reason), "not a JSON object");
			free(*body);
		}
	}
	if (rc == 0) {
		idx_doc_put(lib->idx, key, *body, *len, now);
		free(stored);
		return 0;
	}
	if (rc == -EINTR) {
		free(stored);
		return rc;
	}
	log_warn("%s: %s", path, reason);
	if (rc == -ENOENT || !stored) {
		free(stored);
		return rc == -ENOENT ? -ENOENT : -EIO;
	}
	log_warn("%s: serving the copy from %lld s ago", path, (long long)(now - at));
	*body = stored, *len = stored_len;
	return 0;
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

/* Ask the origin for the three documents at once; wait for every answer
 * as this thread's cancel token allows (-EINTR: the waiting ends, the
 * requests no one else wants are abandoned). */
static int docs_fetch(struct fetch_library *lib, struct doc *docs)
{
	for (int i = 0; i < NDOCS; i++) {
		docs[i].r = fetch_request_joined(lib, FETCH_REQ_DOCUMENT, HTTP_FOREGROUND);
		if (docs[i].r)
			fetch_request_document(lib, docs[i].r, docs[i].url ? HTTP_URL : HTTP_API,
					       docs[i].url ? docs[i].url : docs[i].path);
	}
	for (int i = 0; i < NDOCS; i++) {
		struct fetch_request *r = docs[i].r;
		docs[i].err = r ? fetch_request_outcome(lib, r) : -ENOMEM;
		if (docs[i].err == -EINTR)
			return -EINTR;
		if (docs[i].err < 0)
			log_warn("%s: %s", docs[i].url ? docs[i].url : docs[i].path,
				 r && r->res.reason[0] ? r->res.reason : strerror(-docs[i].err));
	}
	return 0;
}

/* Sort key for qsort of costumes by DESIGN §4. */
static int costume_rank_cmp(const void *a, const void *b)
{
	const struct bd_costume *x = a, *y = b;
	return bd_costume_cmp(x->live2d_name, y->live2d_name);
}

static int has_character(const struct bd_catalogue *cat, int64_t id)
{
	for (size_t i = 0; i < cat->ncharacters; i++)
		if (cat->characters[i].id == id)
			return 1;
	return 0;
}

/* Parsed catalogue -> index. Characters missing from the roster are stored
 * without names (listed by id); a costume of no character (-1) adds none. */
static int catalogue_store(struct fetch_library *lib, struct bd_catalogue *cat)
{
	size_t nch = cat->ncharacters, cap = cat->ncharacters + cat->ncostumes;
	struct idx_character_in *chars = calloc(cap ? cap : 1, sizeof(*chars));
	struct idx_costume_in *cos = calloc(cat->ncostumes ? cat->ncostumes : 1, sizeof(*cos));
	int rc = -ENOMEM;

	if (!chars || !cos)
		goto out;
	if (cat->ncostumes)
		qsort(cat->costumes, cat->ncostumes, sizeof(*cat->costumes), costume_rank_cmp);
	for (size_t i = 0; i < cat->ncharacters; i++) {
		chars[i].id = cat->characters[i].id;
		for (int l = 0; l < IDX_LANGS; l++)
			chars[i].names[l] = cat->characters[i].names[l];
	}
	for (size_t i = 0; i < cat->ncostumes; i++) {
		const struct bd_costume *c = &cat->costumes[i];
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

static void log_rejects(const char *what, struct bd_rejects *r)
{
	for (size_t i = 0; i < r->n; i++)
		log_warn("%s: left out %s", what, r->lines[i]);
	bd_rejects_free(r);
}

/* The catalogue's rejects: one line at info (a mount says it once per fetch;
 * a subcommand at its default level says nothing), each reject at debug. */
static void log_catalogue_rejects(struct bd_rejects *r)
{
	if (r->n)
		log_info("catalogue: %zu entries left out (the first: %s); log_level=debug"
			 " lists them", r->n, r->lines[0]);
	for (size_t i = 0; i < r->n; i++)
		log_debug("catalogue: left out %s", r->lines[i]);
	bd_rejects_free(r);
}

static int catalogue_parse_store(struct fetch_library *lib, const char *const *body,
				 const size_t *len)
{
	struct bd_catalogue cat;
	struct bd_rejects rej = { 0 };
	int rc = bd_parse_catalogue(body[DOC_ROSTER], len[DOC_ROSTER], body[DOC_ASSETS],
				       len[DOC_ASSETS], body[DOC_COSTUMES], len[DOC_COSTUMES], &cat,
				       &rej);
	log_catalogue_rejects(&rej);
	if (rc < 0)
		return rc;
	rc = catalogue_store(lib, &cat);
	bd_catalogue_free(&cat);
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
			body[i] = d->r->body.buf, len[i] = d->r->body.len;
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
			idx_doc_put(lib->idx, docs[i].key, docs[i].r->body.buf, docs[i].r->body.len,
				    now);
	return rc < 0 ? -EIO : 0;
}

/* Fetch and store; 0 only if every document came from the origin. */
static int catalogue_fetch(struct fetch_library *lib, struct doc *docs)
{
	int rc;

	for (int i = 0; i < NDOCS; i++)
		idx_doc_get(lib->idx, docs[i].key, &docs[i].stored, &docs[i].stored_len,
			    &docs[i].fetched_at);
	rc = docs_fetch(lib, docs);
	if (rc < 0)
		return rc;
	rc = docs_store(lib, docs);
	for (int i = 0; rc == 0 && i < NDOCS; i++)
		if (docs[i].err < 0)
			rc = docs[i].err == -ENOENT ? -ENOENT : -EIO;
	return rc;
}

/* A refresh is the moment to ask again for files that failed (DESIGN §10). */
static void refresh_done(struct fetch_library *lib)
{
	int rc = fetch_library_clear_backoff(lib);

	if (rc < 0)
		log_warn("catalogue of %s refreshed; clearing the download back-off failed: %s",
			 lib->server, strerror(-rc));
	else
		log_info("catalogue of %s refreshed", lib->server);
}

int fetch_catalogue_refresh(struct fetch_library *lib, int force)
{
	struct doc docs[NDOCS];
	int64_t ttl = catalogue_ttl(lib);
	int rc = 0;

	docs_init(lib, docs);
	rc = busy_take(lib, KEY_CATALOGUE);
	if (rc < 0)
		return rc;
	if (force || !docs_young(lib, docs)) {
		rc = catalogue_fetch(lib, docs);
		if (rc == 0)
			refresh_done(lib);
	}
	/* Look at the documents' age again once one could have expired, or
	 * ask the origin again a while after it failed (at once if there is
	 * nothing to serve meanwhile). */
	if (rc == 0 || (rc != -EINTR && idx_catalogue_present(lib->idx, lib->server))) {
		lib_lock(lib);
		lib->catalogue_checked_until =
			idx_now() + (rc < 0 ? MIN(CATALOGUE_RETRY_S, ttl) : MIN(300, ttl));
		lib_unlock(lib);
	}
	fetch_busy_release(lib, KEY_CATALOGUE);
	docs_free(lib, docs);
	return rc;
}

int fetch_catalogue_ensure(struct fetch_library *lib)
{
	int rc;

	lib_lock(lib);
	int fresh = idx_now() < lib->catalogue_checked_until;
	lib_unlock(lib);
	if (fresh)
		return 0;
	rc = fetch_catalogue_refresh(lib, 0);
	if (rc == -EINTR)
		return rc;
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
			       const struct bd_costume_files *spec)
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
		const struct bd_file_spec *f = &spec->files[i];
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

/* The costume's buildData.asset from the origin (*body malloc'd). */
static int build_data_fetch(struct fetch_library *lib, const struct idx_costume *c, char **body,
			    size_t *len)
{
	char path[IDX_NAME_MAX + 64], reason[HTTP_REASON_MAX];
	int rc;

	snprintf(path, sizeof(path), "/%s/live2d/chara/%s_rip/buildData.asset", c->server,
		 c->live2d_name);
	rc = doc_get(lib, HTTP_ASSETS, path, HTTP_PROBE, body, len, reason, sizeof(reason));
	if (rc < 0 && rc != -EINTR) {
		log_error("%s: buildData: %s", c->live2d_name, reason);
		rc = rc == -ENOENT ? -ENOENT : -EIO;
	}
	return rc;
}

/* Where the index keeps a costume's buildData. */
static void build_data_key(const struct idx_costume *c, char *key, size_t len)
{
	snprintf(key, len, "build:%s:%s", c->server, c->live2d_name);
}

/* 1 if the costume was refused (too many files), now or before: it is not
 * asked again in this library's life, and none of its files is probed. */
static int costume_refused(struct fetch_library *lib, const struct idx_costume *c,
			   const char *body, size_t len)
{
	assert(!lib_locked(lib));
	size_t n = body ? bd_build_data_entries(body, len) : 0;

	lib_lock(lib);
	if (n > BD_COSTUME_FILES_MAX)
		fetch_keys_add(&lib->refused, c->id);
	int refused = fetch_keys_has(&lib->refused, c->id);
	lib_unlock(lib);
	if (n > BD_COSTUME_FILES_MAX)
		log_error("%s: buildData lists %zu files, more than any costume has (%d): refused",
			  c->live2d_name, n, BD_COSTUME_FILES_MAX);
	return refused;
}

/* buildData -> the costume's file list in the index; the caller holds the
 * costume's busy key. */
static int costume_list_files(struct fetch_library *lib, const struct idx_costume *c)
{
	assert(!lib_locked(lib)); /* network, SQL */
	struct bd_costume_files spec = { 0 };
	struct bd_rejects rej = { 0 };
	char key[IDX_NAME_MAX + 32];
	char *body = NULL;
	size_t len = 0;
	int rc;

	/* Asked anew after each catalogue store (it may have changed); the
	 * stored copy serves when the origin cannot answer. */
	build_data_key(c, key, sizeof(key));
	if (costume_refused(lib, c, NULL, 0))
		return -EIO;
	rc = build_data_fetch(lib, c, &body, &len);
	int stored = rc < 0 && rc != -EINTR && idx_doc_get(lib->idx, key, &body, &len, NULL) == 0;
	if (rc < 0 && !stored)
		return rc;
	if (stored)
		log_warn("%s: buildData: using the stored copy", c->live2d_name);
	if (costume_refused(lib, c, body, len)) {
		free(body);
		return -EIO;
	}
	rc = bd_parse_build_data(body, len, &spec, &rej);
	log_rejects(c->live2d_name, &rej);
	if (rc < 0) {
		log_error("%s: buildData.asset is malformed (%s)", c->live2d_name, strerror(-rc));
		rc = -EIO;
	} else {
		if (!stored)
			idx_doc_put(lib->idx, key, body, len, idx_now());
		rc = costume_files_store(lib, c, &spec);
	}
	bd_costume_files_free(&spec);
	free(body);
	return rc;
}

int fetch_costume_build_data(struct fetch_library *lib, int64_t costume_id, char **body,
			     size_t *len)
{
	char key[IDX_NAME_MAX + 32];
	struct idx_costume c;
	int rc = idx_costume_get(lib->idx, costume_id, lib->cfg.lang, &c);

	if (rc < 0)
		return rc;
	build_data_key(&c, key, sizeof(key));
	return idx_doc_get(lib->idx, key, body, len, NULL);
}

int fetch_costume_ensure(struct fetch_library *lib, int64_t costume_id)
{
	struct idx_costume c;
	int rc;

	rc = idx_costume_get(lib->idx, costume_id, lib->cfg.lang, &c);
	if (rc < 0 || c.files_listed)
		return rc;
	rc = busy_take(lib, KEY_COSTUME(costume_id));
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

/* A size to ask the origin for: not known, and the file neither missing
 * nor backing off (nothing is sent for it then). */
static int size_unknown(const struct idx_asset *a)
{
	return a->state != IDX_COMPLETED && a->size < 0 && !fetch_asset_missing(a) &&
	       !fetch_asset_backing_off(a);
}

/* The HEAD requests of a probe, all in flight together (joined). */
struct probe {
	struct fetch_request **reqs;
	int64_t *ids;
	size_t n;
};

static void probe_free(struct fetch_library *lib, struct probe *p)
{
	for (size_t i = 0; p->reqs && i < p->n; i++)
		fetch_request_release(lib, p->reqs[i]);
	free(p->reqs);
	free(p->ids);
}

/* Send a HEAD for asset a as the next request of p. */
static void probe_send(struct fetch_library *lib, struct probe *p, const struct idx_asset *a)
{
	char path[HTTP_URL_MAX];
	struct fetch_request *r;

	if (fetch_asset_url_path(lib->server, a->bundle, a->file, path, sizeof(path)) < 0 ||
	    !(r = fetch_request_joined(lib, FETCH_REQ_HEAD, HTTP_PROBE)))
		return;
	fetch_request_head(lib, r, HTTP_ASSETS, path, NULL);
	p->reqs[p->n] = r;
	p->ids[p->n++] = a->id;
}

/* A HEAD for each asset of l whose size is unknown. One in flight answers
 * better than a HEAD: its answer's headers are waited for (hear), or it is
 * left to tell its size when its headers come. */
static int probe_collect(struct fetch_library *lib, const struct asset_list *l,
			 int optional_only, int hear, struct probe *p)
{
	struct idx_asset a;
	int64_t size;

	p->reqs = calloc(l->n + 1, sizeof(*p->reqs));
	p->ids = calloc(l->n + 1, sizeof(*p->ids));
	if (!p->reqs || !p->ids)
		return -ENOMEM;
	for (size_t i = 0; i < l->n; i++) {
		if ((optional_only && !l->optional[i]) || idx_asset_get(lib->idx, l->ids[i], &a) < 0 ||
		    !size_unknown(&a))
			continue;
		int rc = hear ? fetch_asset_answered(lib, a.id, HTTP_PROBE, &size)
			      : fetch_asset_inflight(lib, a.id);
		if (rc < 0)
			return rc;
		if (rc > 0 && hear && size >= 0)
			idx_asset_mark_probed(lib->idx, a.id, size, 0, NULL);
		if (rc == 0)
			probe_send(lib, p, &a);
	}
	return 0;
}

/* The answers of p into the index: 0, or -EINTR. */
static int probe_record(struct fetch_library *lib, struct probe *p)
{
	for (size_t i = 0; i < p->n; i++) {
		const struct http_result *res = &p->reqs[i]->res;
		int rc = fetch_request_outcome(lib, p->reqs[i]);
		if (rc == -EINTR)
			return rc;
		if (rc == 0 && res->size >= 0)
			idx_asset_mark_probed(lib->idx, p->ids[i], res->size, 0, NULL);
		else if (rc == -ENOENT)
			idx_asset_mark_probed(lib->idx, p->ids[i], -1, ENOENT, res->reason);
	}
	return 0;
}

/* fetch_costume_probe(); files in flight are heard, or else left out. */
static int costume_probe(struct fetch_library *lib, int64_t costume_id, int optional_only,
			 int hear)
{
	struct asset_list l = { 0 };
	struct probe p = { 0 };
	int rc = costume_assets(lib, costume_id, &l);

	if (rc < 0 || fetch_costume_complete(lib->idx, costume_id))
		goto out;
	rc = busy_take(lib, KEY_PROBE(costume_id));
	if (rc < 0)
		goto out;
	rc = probe_collect(lib, &l, optional_only, hear, &p);
	if (rc == 0)
		rc = probe_record(lib, &p);
	fetch_busy_release(lib, KEY_PROBE(costume_id));
	probe_free(lib, &p);
out:
	asset_list_free(&l);
	return rc;
}

int fetch_costume_probe(struct fetch_library *lib, int64_t costume_id, int optional_only)
{
	return costume_probe(lib, costume_id, optional_only, 1);
}

/* The size of an asset whose index row does not know it (and neither a
 * probe nor its transfer's headers could tell): read it whole. */
static int size_from_body(struct fetch_library *lib, struct idx_asset *a)
{
	struct stat st;
	int fd, rc = fetch_asset_read(lib, a->id, &fd);

	if (rc < 0)
		return rc;
	rc = fstat(fd, &st) < 0 ? -errno : 0;
	close(fd);
	if (rc == 0)
		rc = idx_asset_get(lib->idx, a->id, a);
	if (rc == 0)
		a->size = st.st_size; /* the row may not be committed yet */
	return rc;
}

int fetch_asset_stat(struct fetch_library *lib, int64_t costume_id, int64_t asset_id,
		     struct idx_asset *a)
{
	int64_t size;
	int rc = idx_asset_get(lib->idx, asset_id, a);

	/* Backing off: fail at once, send nothing (DESIGN §10). */
	if (rc == 0 && fetch_asset_backing_off(a))
		return a->err == EFBIG ? -EFBIG : -EIO;
	if (rc == 0 && size_unknown(a)) {
		/* Its download tells the size in its headers; else a HEAD
		 * (with the costume's other files nobody fetches) does. */
		rc = fetch_asset_answered(lib, asset_id, HTTP_FOREGROUND, &size);
		if (rc > 0 && size >= 0)
			idx_asset_mark_probed(lib->idx, asset_id, size, 0, NULL);
		if (rc == 0)
			rc = costume_probe(lib, costume_id, 0, 0);
		if (rc != -EINTR)
			rc = idx_asset_get(lib->idx, asset_id, a);
	}
	if (rc == 0 && fetch_asset_backing_off(a))
		return a->err == EFBIG ? -EFBIG : -EIO;
	if (rc == 0 && size_unknown(a))
		rc = size_from_body(lib, a);
	if (rc == 0 && fetch_asset_missing(a))
		rc = -ENOENT;
	return rc;
}

void fetch_costume_prefetch(struct fetch_library *lib, int64_t costume_id)
{
	struct asset_list l = { 0 };

	if (costume_assets(lib, costume_id, &l) == 0 && !fetch_costume_complete(lib->idx, costume_id))
		for (size_t i = 0; i < l.n; i++)
			fetch_asset_queue(lib, l.ids[i], HTTP_BACKGROUND);
	asset_list_free(&l);
}

struct spec_list {
	struct fetch_library *lib;
	struct bd_file_spec *files;
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
	l->files[l->n] = (struct bd_file_spec){ f->kind, l->paths[l->n], NULL, NULL,
						   f->optional };
	l->n++;
	return 0;
}

/* A copy of the costume's rendering made at index version v, if one is
 * kept and young enough: 1 with *text (malloc'd) and *len, else 0. */
static int memo_get(struct fetch_library *lib, int64_t costume_id, uint64_t v, char **text,
		    size_t *len)
{
	int found = 0;
	int64_t now = idx_now();

	lib_lock(lib);
	for (int i = 0; i < FETCH_MODEL_MEMOS && !found; i++) {
		struct fetch_model_memo *m = &lib->memo[i];
		if (!m->text || m->costume_id != costume_id || m->version != v ||
		    now - m->at >= FETCH_MODEL_MEMO_S)
			continue;
		found = 1;
		*text = strdup(m->text);
		*len = m->len;
	}
	lib_unlock(lib);
	return found && *text;
}

/* Keep a copy of a rendering made at index version v (a failed copy keeps
 * nothing). */
static void memo_put(struct fetch_library *lib, int64_t costume_id, uint64_t v,
		     const char *text, size_t len)
{
	char *copy = strdup(text), *old = NULL;

	if (!copy)
		return;
	lib_lock(lib);
	int slot = 0;
	while (slot < FETCH_MODEL_MEMOS && !(lib->memo[slot].text &&
					     lib->memo[slot].costume_id == costume_id))
		slot++;
	if (slot == FETCH_MODEL_MEMOS)
		slot = (int)(lib->memo_next++ % FETCH_MODEL_MEMOS);
	old = lib->memo[slot].text;
	lib->memo[slot] = (struct fetch_model_memo){ costume_id, v, idx_now(), copy, len };
	lib_unlock(lib);
	free(old);
}

static int costume_model_json(struct fetch_library *lib, int64_t costume_id, char **text,
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
	l.complete = fetch_costume_complete(lib->idx, costume_id);
	rc = idx_file_list(lib->idx, costume_id, -1, collect_present, &l);
	if (rc == 0) {
		*text = bd_render_model_json(l.files, l.n);
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

/*
 * Rendering model.json asks the index about every file of the costume
 * (and may probe the origin); a stat asks for it before each read. The
 * text depends on the index alone (and on time, for files found missing):
 * while idx_version() stays where it was before a rendering, that
 * rendering is still right.
 */
int fetch_costume_model_json(struct fetch_library *lib, int64_t costume_id, char **text,
			     size_t *len)
{
	uint64_t v;
	int versioned = idx_version(lib->idx, &v) == 0;

	if (versioned && memo_get(lib, costume_id, v, text, len))
		return 0;
	int rc = costume_model_json(lib, costume_id, text, len);
	if (rc == 0 && versioned)
		memo_put(lib, costume_id, v, *text, *len);
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

/* ---- asking again about a costume (`l2dfs refresh COSTUME`) ---- */

/* Ask the origin whether a cached asset changed (a conditional HEAD: its
 * SHA-256 as the ETag, the time it was stored): 1 if it did (its copy is
 * dropped, the next read downloads the new bytes as a new version), 0 if
 * not, or a negative errno. */
static int asset_recheck(struct fetch_library *lib, int64_t asset_id)
{
	struct idx_asset a;
	struct http_result res;
	char path[HTTP_URL_MAX];
	int rc = idx_asset_get(lib->idx, asset_id, &a);

	if (rc < 0 || a.state != IDX_COMPLETED)
		return rc;
	rc = fetch_asset_url_path(a.server, a.bundle, a.file, path, sizeof(path));
	struct fetch_request *r = rc < 0 ? NULL : fetch_request_joined(lib, FETCH_REQ_HEAD, HTTP_PROBE);
	if (!r)
		return rc < 0 ? rc : -ENOMEM;
	const struct http_cond cond = { a.sha256, a.updated_at };
	fetch_request_head(lib, r, HTTP_ASSETS, path, &cond);
	rc = fetch_request_outcome(lib, r);
	res = r->res;
	fetch_request_release(lib, r);
	if (rc == 0 && res.status == 304)
		return 0;
	if (rc < 0 && rc != -ENOENT) {
		log_error("%s/%s: asking the origin again: %s", a.bundle, a.file,
			  res.reason[0] ? res.reason : strerror(-rc));
		return rc;
	}
	log_info("%s/%s: %s on the origin; its copy is dropped", a.bundle, a.file,
		 rc == 0 ? "changed" : "gone");
	cache_asset_remove(lib->cache, a.server, a.bundle, a.file);
	rc = idx_asset_mark_changed(lib->idx, asset_id);
	return rc < 0 ? rc : 1;
}

int fetch_costume_refresh(struct fetch_library *lib, int64_t costume_id, int *changed)
{
	struct asset_list l = { 0 };
	struct idx_costume c;
	int rc = busy_take(lib, KEY_COSTUME(costume_id));

	*changed = 0;
	if (rc < 0)
		return rc;
	rc = idx_costume_get(lib->idx, costume_id, lib->cfg.lang, &c);
	if (rc == 0)
		rc = costume_list_files(lib, &c);
	fetch_busy_release(lib, KEY_COSTUME(costume_id));
	if (rc == 0)
		rc = costume_assets(lib, costume_id, &l);
	for (size_t i = 0; rc == 0 && i < l.n; i++) {
		int r = asset_recheck(lib, l.ids[i]);
		if (r < 0)
			rc = r;
		else
			*changed += r;
	}
	asset_list_free(&l);
	return rc;
}
