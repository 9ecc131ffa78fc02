/*
 * tree.c: the mount's tree (/characters/..., /costumes/...) and the
 * origin's own layout (/assets/..., /api/...), read through the library
 * as the mount reads them.
 */
#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../util/util.h"
#include "serve_int.h"

const char *serve_rel_path(const struct idx_file *f, char *buf, size_t len)
{
	if (f->dir == IDX_DIR_ROOT)
		snprintf(buf, len, "%s", f->name);
	else
		snprintf(buf, len, "%s/%s", idx_dir_names[f->dir], f->name);
	return buf;
}

int serve_costume(struct serve_req *r, int i, int64_t character_id, struct idx_costume *c,
		  enum MHD_Result *res)
{
	int rc = fetch_catalogue_ensure(r->s->lib);

	if (rc == 0 && (i >= r->nparts ||
			idx_costume_find(r->s->idx, r->s->cfg.server, r->s->cfg.lang, character_id,
					 r->part[i], c) < 0))
		rc = -ENOENT;
	/* The row just found tells whether its files are listed: no need to
	 * ask the index again. */
	if (rc == 0 && !c->files_listed)
		rc = fetch_costume_ensure(r->s->lib, c->id);
	if (rc < 0)
		*res = serve_errno(r, rc, i < r->nparts ? r->part[i] : "costume");
	return rc;
}

int serve_costume_file(struct serve_req *r, int i, const struct idx_costume *c,
		       struct idx_file *f)
{
	enum idx_dir dir = IDX_DIR_ROOT;

	if (r->nparts - i == 2) {
		for (dir = IDX_DIR_TEXTURES; dir < IDX_NDIRS; dir++)
			if (strcmp(r->part[i], idx_dir_names[dir]) == 0)
				break;
		if (dir == IDX_NDIRS)
			return -ENOENT;
		i++;
	}
	if (r->nparts - i != 1)
		return -ENOENT;
	return idx_file_find(r->s->idx, c->id, dir, r->part[i], f);
}

/* Serve an asset row's bytes (downloading them first if need be). */
static enum MHD_Result send_asset(struct serve_req *r, int64_t asset_id, const char *name)
{
	struct idx_asset a;
	int fd = -1, rc = fetch_asset_open(r->s->lib, asset_id, &fd);

	if (rc == 0 && (rc = idx_asset_get(r->s->idx, asset_id, &a)) < 0)
		close(fd);
	if (rc == 0)
		return serve_file(r, fd, a.sha256, serve_type_of(name), SERVE_IMMUTABLE);
	if (rc == -EIO && idx_asset_get(r->s->idx, asset_id, &a) == 0 &&
	    fetch_asset_backing_off(&a)) {
		/* Asked again only after the back-off: say when. */
		char after[32], msg[IDX_TEXT_MAX + 64];
		int64_t s = (a.retry_at - (int64_t)idx_now() * 1000) / 1000 + 1;
		snprintf(after, sizeof(after), "%lld", (long long)(s > 0 ? s : 1));
		snprintf(msg, sizeof(msg), "%s: %s (retried after a back-off)", name, a.error);
		cJSON *j = cJSON_CreateObject();
		cJSON_AddStringToObject(j, "error", msg);
		cJSON_AddNumberToObject(j, "retry_after", (double)(s > 0 ? s : 1));
		return serve_json(r, MHD_HTTP_SERVICE_UNAVAILABLE, j);
	}
	return serve_errno(r, rc, name);
}

static enum MHD_Result send_file(struct serve_req *r, const struct idx_file *f)
{
	char *text = NULL;
	size_t len = 0;
	int rc;

	if (f->kind != IDX_KIND_MODEL_JSON && f->kind != IDX_KIND_NAME_TXT)
		return send_asset(r, f->asset_id, f->name);
	rc = f->kind == IDX_KIND_MODEL_JSON
		     ? fetch_costume_model_json(r->s->lib, f->costume_id, &text, &len)
		     : fetch_costume_name_txt(r->s->lib, f->costume_id, &text, &len);
	if (rc < 0)
		return serve_errno(r, rc, f->name);
	return serve_text(r, text, len, serve_type_of(f->name), SERVE_SHORT);
}

/* ---- folders, as JSON arrays of names ---- */

static int add_character(void *arg, int64_t id, const char *display)
{
	(void)id;
	cJSON_AddItemToArray(arg, cJSON_CreateString(display));
	return 0;
}

static int add_costume(void *arg, const struct idx_costume *c)
{
	cJSON_AddItemToArray(arg, cJSON_CreateString(c->live2d_name));
	return 0;
}

struct file_listing {
	struct serve_req *r;
	cJSON *arr;
	int dir; /* -1: the costume's root (its folders too) */
};

static int add_file(void *arg, const struct idx_file *f)
{
	struct file_listing *l = arg;
	struct idx_asset a;

	/* Files the origin lacks are not in the tree (DESIGN §3). */
	if (f->asset_id && idx_asset_get(l->r->s->idx, f->asset_id, &a) == 0 &&
	    fetch_asset_missing(&a))
		return 0;
	if (l->dir >= 0 || f->dir == IDX_DIR_ROOT)
		cJSON_AddItemToArray(l->arr, cJSON_CreateString(f->name));
	return 0;
}

static enum MHD_Result costume_listing(struct serve_req *r, const struct idx_costume *c, int i)
{
	struct file_listing l = { r, cJSON_CreateArray(), -1 };
	int rc = 0;

	if (i < r->nparts) {
		for (l.dir = IDX_DIR_TEXTURES; l.dir < IDX_NDIRS; l.dir++)
			if (strcmp(r->part[i], idx_dir_names[l.dir]) == 0)
				break;
		if (l.dir == IDX_NDIRS || i + 1 != r->nparts)
			rc = -ENOENT;
	}
	if (rc == 0)
		rc = idx_file_list(r->s->idx, c->id, l.dir, add_file, &l);
	for (int d = IDX_DIR_TEXTURES; rc == 0 && l.dir < 0 && d < IDX_NDIRS; d++)
		cJSON_AddItemToArray(l.arr, cJSON_CreateString(idx_dir_names[d]));
	if (rc < 0) {
		cJSON_Delete(l.arr);
		return serve_errno(r, rc, c->live2d_name);
	}
	return serve_json(r, MHD_HTTP_OK, l.arr);
}

enum MHD_Result serve_tree(struct serve_req *r)
{
	struct serve *s = r->s;
	int by_character = strcmp(r->part[0], "characters") == 0, i = 1, rc;
	int64_t character_id = -1;
	struct idx_costume c;
	struct idx_file f;
	enum MHD_Result res;

	if ((rc = fetch_catalogue_ensure(s->lib)) < 0)
		return serve_errno(r, rc, "catalogue");
	if (r->nparts == 1) {
		cJSON *arr = cJSON_CreateArray();
		rc = by_character ? idx_character_list(s->idx, s->cfg.server, s->cfg.lang,
						       add_character, arr)
				  : idx_costume_list(s->idx, s->cfg.server, s->cfg.lang, -1,
						     add_costume, arr);
		if (rc < 0) {
			cJSON_Delete(arr);
			return serve_errno(r, rc, r->part[0]);
		}
		return serve_json(r, MHD_HTTP_OK, arr);
	}
	if (by_character) {
		if (idx_character_find(s->idx, s->cfg.server, s->cfg.lang, r->part[1],
				       &character_id) < 0)
			return serve_errno(r, -ENOENT, r->part[1]);
		i = 2;
		if (r->nparts == 2) {
			cJSON *arr = cJSON_CreateArray();
			idx_costume_list(s->idx, s->cfg.server, s->cfg.lang, character_id,
					 add_costume, arr);
			return serve_json(r, MHD_HTTP_OK, arr);
		}
	}
	if (serve_costume(r, i, character_id, &c, &res) < 0)
		return res;
	if (r->nparts == i + 1 || (r->nparts == i + 2 && r->dir))
		return costume_listing(r, &c, i + 1);
	if (serve_costume_file(r, i + 1, &c, &f) < 0)
		return serve_errno(r, -ENOENT, r->part[r->nparts - 1]);
	return send_file(r, &f);
}

/* /assets/<server>/<bundle>_rip/<file>: the bundle may hold slashes
 * (live2d/chara/<name>, thumb/costume/group<n>). buildData.asset comes from
 * the index (the copy the costume's file list was made from). */
enum MHD_Result serve_assets(struct serve_req *r)
{
	struct serve *s = r->s;
	char bundle[IDX_BUNDLE_MAX + 1] = "";
	struct idx_asset a;
	int rc;

	if (r->nparts < 4 || strcmp(r->part[1], s->cfg.server) != 0 || r->dir ||
	    !util_ends_with(r->part[r->nparts - 2], "_rip", 0))
		return serve_errno(r, -ENOENT, "asset");
	for (int i = 2; i < r->nparts - 1; i++) {
		size_t n = strlen(bundle);
		snprintf(bundle + n, sizeof(bundle) - n, "%s%s", n ? "/" : "", r->part[i]);
	}
	bundle[strlen(bundle) - 4] = '\0'; /* "_rip" */
	const char *file = r->part[r->nparts - 1];
	if (strcmp(file, "buildData.asset") == 0 && strncmp(bundle, "live2d/chara/", 13) == 0) {
		struct idx_costume c;
		enum MHD_Result res;
		char *body;
		size_t len;
		r->part[r->nparts - 2] = bundle + 13; /* the costume's name */
		if (serve_costume(r, r->nparts - 2, -1, &c, &res) < 0)
			return res;
		if ((rc = fetch_costume_build_data(s->lib, c.id, &body, &len)) < 0)
			return serve_errno(r, rc, file);
		return serve_text(r, body, len, "application/json", SERVE_SHORT);
	}
	if ((rc = fetch_catalogue_ensure(s->lib)) < 0)
		return serve_errno(r, rc, "catalogue");
	if (idx_asset_find(s->idx, s->cfg.server, bundle, file, &a) < 0)
		return serve_errno(r, -ENOENT, file);
	return send_asset(r, a.id, file);
}

/* /api/...: the catalogue documents as stored (the origin's bytes). */
enum MHD_Result serve_api_docs(struct serve_req *r)
{
	char path[SERVE_URL_MAX + 1] = "", *body;
	size_t len;
	int rc = fetch_catalogue_ensure(r->s->lib);

	for (int i = 1; i < r->nparts; i++) {
		size_t n = strlen(path);
		snprintf(path + n, sizeof(path) - n, "/%s", r->part[i]);
	}
	if (rc == 0)
		rc = fetch_catalogue_document(r->s->lib, path, &body, &len);
	if (rc < 0)
		return serve_errno(r, rc, path[0] ? path : "/api");
	return serve_text(r, body, len, "application/json", SERVE_SHORT);
}
