/*
 * api.c: the JSON API shaped like the Electron resource cache (download,
 * getStatus, retry), per costume and per file, and the lists the gallery
 * reads. States come from fetch/library/status.c alone.
 */
#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "serve_int.h"

/* A file's state in the resource cache's words. */
static cJSON *file_json(struct serve_req *r, const struct idx_file *f)
{
	cJSON *j = cJSON_CreateObject();
	struct fetch_asset_status st;
	struct idx_asset a;
	char rel[2 * IDX_NAME_MAX + 2];

	cJSON_AddStringToObject(j, "path", serve_rel_path(f, rel, sizeof(rel)));
	if (!f->asset_id || idx_asset_get(r->s->idx, f->asset_id, &a) < 0) {
		cJSON_AddStringToObject(j, "status", "completed"); /* generated */
		cJSON_AddNumberToObject(j, "progress", 100);
		cJSON_AddBoolToObject(j, "generated", 1);
		return j;
	}
	fetch_asset_status(&a, f->optional, &st);
	cJSON_AddStringToObject(j, "status", st.state);
	cJSON_AddNumberToObject(j, "progress", st.progress);
	cJSON_AddNumberToObject(j, "size", (double)a.size);
	if (a.state == IDX_FAILED)
		cJSON_AddStringToObject(j, "error", a.error);
	if (st.absent || st.missing)
		cJSON_AddBoolToObject(j, "missing", 1);
	return j;
}

struct files {
	struct serve_req *r;
	cJSON *arr;
	int downloading;
	char error[IDX_TEXT_MAX + 2 * IDX_NAME_MAX];
	/* what to do with each: queue it, retry it if failed */
	int queue, retry, queued;
};

static int each_file(void *arg, const struct idx_file *f)
{
	struct files *l = arg;
	struct fetch_asset_status st;
	struct idx_asset a;
	char rel[2 * IDX_NAME_MAX + 2];

	if (l->arr)
		cJSON_AddItemToArray(l->arr, file_json(l->r, f));
	if (!f->asset_id || idx_asset_get(l->r->s->idx, f->asset_id, &a) < 0)
		return 0;
	fetch_asset_status(&a, f->optional, &st);
	if (st.absent)
		return 0;
	l->downloading |= a.state == IDX_DOWNLOADING;
	if (a.state == IDX_FAILED && !l->error[0])
		snprintf(l->error, sizeof(l->error), "%s: %s", serve_rel_path(f, rel, sizeof(rel)),
			 a.error);
	if (l->retry && a.state == IDX_FAILED) {
		idx_asset_mark_pending(l->r->s->idx, a.id);
		a.state = IDX_PENDING;
	}
	if ((l->queue || l->retry) && a.state == IDX_PENDING) {
		fetch_asset_queue(l->r->s->lib, a.id, HTTP_FOREGROUND);
		l->queued++;
	}
	return 0;
}

/* {status, progress, error, files_done, files_total, ...} of a costume. */
static cJSON *costume_json(struct serve_req *r, const struct idx_costume *c, int with_files)
{
	struct fetch_costume_status cs;
	struct files l = { .r = r };
	cJSON *j = cJSON_CreateObject();

	if (with_files)
		l.arr = cJSON_CreateArray();
	idx_file_list(r->s->idx, c->id, -1, each_file, &l);
	if (fetch_costume_status(r->s->idx, c->id, &cs) < 0) {
		cJSON_Delete(l.arr);
		cJSON_Delete(j);
		return NULL;
	}
	/* The resource cache's four states: "partial" is downloading. */
	const char *st = strcmp(cs.state, "partial") == 0 || (l.downloading &&
							      strcmp(cs.state, "pending") == 0)
				 ? "downloading"
				 : cs.state;
	int total = cs.st.files_total;
	cJSON_AddStringToObject(j, "name", c->live2d_name);
	cJSON_AddStringToObject(j, "status", st);
	cJSON_AddNumberToObject(j, "progress",
				total ? cs.st.files_done * 100 / total : 100);
	if (l.error[0])
		cJSON_AddStringToObject(j, "error", l.error);
	else
		cJSON_AddNullToObject(j, "error");
	cJSON_AddNumberToObject(j, "files_done", cs.st.files_done);
	cJSON_AddNumberToObject(j, "files_total", total);
	cJSON_AddNumberToObject(j, "files_failed", cs.st.files_failed);
	cJSON_AddNumberToObject(j, "bytes_done", (double)cs.st.bytes_done);
	cJSON_AddNumberToObject(j, "bytes_total", (double)cs.st.bytes_total);
	if (l.arr)
		cJSON_AddItemToObject(j, "files", l.arr);
	return j;
}

/* POST /download/<c>[/<file>], POST /retry/<c>[/<file>], GET /status/<c>[/<file>]. */
static enum MHD_Result costume_call(struct serve_req *r)
{
	int post = strcmp(r->method, "POST") == 0, retry = strcmp(r->part[0], "retry") == 0;
	int status = strcmp(r->part[0], "status") == 0;
	struct files l = { .r = r, .queue = !retry, .retry = retry };
	struct idx_costume c;
	struct idx_file f;
	enum MHD_Result res;
	cJSON *j;

	if (post == status)
		return serve_error(r, MHD_HTTP_METHOD_NOT_ALLOWED,
				   status ? "/status takes GET" : "/download and /retry take POST");
	if (serve_costume(r, 1, -1, &c, &res) < 0)
		return res;
	int one = r->nparts > 2;
	if (one && serve_costume_file(r, 2, &c, &f) < 0)
		return serve_errno(r, -ENOENT, r->part[r->nparts - 1]);
	if (status)
		return serve_json(r, MHD_HTTP_OK, one ? file_json(r, &f) : costume_json(r, &c, 0));
	int cached;
	if (one) {
		cJSON *fj = file_json(r, &f);
		cached = strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(fj, "status")),
				"completed") == 0;
		cJSON_Delete(fj);
	} else {
		cached = fetch_costume_complete(r->s->idx, c.id) == 1;
	}
	if (!cached || retry) {
		if (one)
			each_file(&l, &f);
		else
			idx_file_list(r->s->idx, c.id, -1, each_file, &l);
	}
	j = cJSON_CreateObject();
	cJSON_AddBoolToObject(j, "success", 1);
	cJSON_AddBoolToObject(j, "cached", cached);
	cJSON_AddBoolToObject(j, "downloading", l.queued > 0);
	cJSON_AddNumberToObject(j, "queued", l.queued);
	cJSON_AddItemToObject(j, "state", one ? file_json(r, &f) : costume_json(r, &c, 0));
	return serve_json(r, MHD_HTTP_OK, j);
}

/* ---- the gallery's lists ---- */

struct char_list {
	struct serve *s;
	cJSON *arr;
	int n;
};

static int count_costume(void *arg, const struct idx_costume *c)
{
	(void)c;
	((struct char_list *)arg)->n++;
	return 0;
}

static int add_character(void *arg, int64_t id, const char *display)
{
	struct char_list *l = arg;
	cJSON *j = cJSON_CreateObject();

	l->n = 0;
	idx_costume_list(l->s->idx, l->s->cfg.server, l->s->cfg.lang, id, count_costume, l);
	cJSON_AddNumberToObject(j, "id", (double)id);
	cJSON_AddStringToObject(j, "name", display);
	cJSON_AddNumberToObject(j, "costumes", l->n);
	cJSON_AddItemToArray(l->arr, j);
	return 0;
}

static void costume_fields(cJSON *j, const struct idx_costume *c)
{
	char icon[IDX_NAME_MAX + 32];

	snprintf(icon, sizeof(icon), "/costumes/%s/icon.png", c->live2d_name);
	if (!cJSON_GetObjectItem(j, "name"))
		cJSON_AddStringToObject(j, "name", c->live2d_name);
	cJSON_AddStringToObject(j, "description", c->display);
	cJSON_AddNumberToObject(j, "character", (double)c->character_id);
	cJSON_AddStringToObject(j, "icon", icon);
}

static int add_costume(void *arg, const struct idx_costume *c)
{
	cJSON *j = cJSON_CreateObject();

	costume_fields(j, c);
	cJSON_AddItemToArray(arg, j);
	return 0;
}

/* GET /gallery/characters, /gallery/characters/<id>, /gallery/costumes/<c>. */
static enum MHD_Result gallery_call(struct serve_req *r)
{
	struct serve *s = r->s;
	struct char_list l = { s, cJSON_CreateArray(), 0 };
	char *end;
	int rc = fetch_catalogue_ensure(s->lib);

	if (rc < 0) {
		cJSON_Delete(l.arr);
		return serve_errno(r, rc, "catalogue");
	}
	if (r->nparts == 2 && strcmp(r->part[1], "characters") == 0) {
		idx_character_list(s->idx, s->cfg.server, s->cfg.lang, add_character, &l);
		return serve_json(r, MHD_HTTP_OK, l.arr);
	}
	if (r->nparts == 3 && strcmp(r->part[1], "characters") == 0) {
		long long id = strtoll(r->part[2], &end, 10);
		if (*end || id < 0)
			rc = -ENOENT;
		else
			rc = idx_costume_list(s->idx, s->cfg.server, s->cfg.lang, id, add_costume,
					      l.arr);
		if (rc == 0)
			return serve_json(r, MHD_HTTP_OK, l.arr);
	} else if (r->nparts == 3 && strcmp(r->part[1], "costumes") == 0) {
		struct idx_costume c;
		enum MHD_Result res;
		cJSON_Delete(l.arr);
		if (serve_costume(r, 2, -1, &c, &res) < 0)
			return res;
		cJSON *j = costume_json(r, &c, 1);
		if (!j)
			return serve_errno(r, -EIO, c.live2d_name);
		costume_fields(j, &c);
		return serve_json(r, MHD_HTTP_OK, j);
	}
	cJSON_Delete(l.arr);
	return serve_errno(r, -ENOENT, "gallery");
}

enum MHD_Result serve_api(struct serve_req *r)
{
	if (strcmp(r->part[0], "gallery") == 0) {
		if (strcmp(r->method, "POST") == 0)
			return serve_error(r, MHD_HTTP_METHOD_NOT_ALLOWED, "/gallery takes GET");
		return gallery_call(r);
	}
	if (r->nparts < 2)
		return serve_errno(r, -ENOENT, r->part[0]);
	return costume_call(r);
}
