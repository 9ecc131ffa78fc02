/*
 * A costume's files: buildData.asset in, the vetted file list out, and the
 * model.json a viewer loads; the order of costumes within a character.
 */
#include "bestdori_int.h"

#include <cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define LIST_MAX 10000 /* entries taken from one buildData list */

/* A file as buildData lists it, with where it came from for reject lines. */
struct entry {
	struct bd_file_spec spec;
	const char *list; /* "model", "textures"... */
	size_t pos;       /* index in that list, -1 for model and physics */
};

struct entries {
	struct entry *v;
	size_t n, cap;
};

static void spec_free(struct bd_file_spec *s)
{
	free(s->rel_path);
	free(s->bundle);
	free(s->file);
}

void bd_costume_files_free(struct bd_costume_files *f)
{
	for (size_t i = 0; i < f->n; i++)
		spec_free(&f->files[i]);
	free(f->files);
	f->files = NULL;
	f->n = 0;
}

/* Reject the entry at e's place in buildData: "motions[3] \"x\": why". */
static int reject_at(struct bd_rejects *r, const struct entry *e, const char *name,
		     const char *why)
{
	if (e->pos == (size_t)-1)
		return bd_reject(r, name, why, "%s", e->list);
	return bd_reject(r, name, why, "%s[%zu]", e->list, e->pos);
}

static const char *base_name(const char *rel_path)
{
	const char *slash = strrchr(rel_path, '/');
	return slash ? slash + 1 : rel_path;
}

/* Names a file at the costume root may not take: they are generated there
 * or are its folders. */
static int reserved_at_root(const char *name)
{
	static const char *const names[] = { "model.json", "name.txt",	  "icon.png",
					     "textures",   "motions",	  "expressions" };
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(name, names[i]) == 0)
			return 1;
	return 0;
}

/*
 * Vet one {"bundleName", "fileName"} of kind k and fill e->spec.
 * Returns 0 when usable, 1 when rejected (line added), or -ENOMEM.
 */
static int vet_entry(const cJSON *j, enum idx_file_kind k, struct entry *e,
		     struct bd_rejects *r)
{
	static const char *const dirs[] = {
		[IDX_KIND_MODEL] = "",	    [IDX_KIND_PHYSICS] = "",
		[IDX_KIND_TEXTURE] = "textures/", [IDX_KIND_MOTION] = "motions/",
		[IDX_KIND_EXPRESSION] = "expressions/",
	};
	const cJSON *b = cJSON_GetObjectItemCaseSensitive(j, "bundleName");
	const cJSON *f = cJSON_GetObjectItemCaseSensitive(j, "fileName");
	const char *why = NULL;
	int rc;

	if (!cJSON_IsObject(j))
		why = "not an object";
	else if (!cJSON_IsString(b))
		why = "bundleName is not a string";
	else if (!cJSON_IsString(f))
		why = "fileName is not a string";
	else if (strlen(b->valuestring) > IDX_BUNDLE_MAX || !cache_bundle_is_safe(b->valuestring) ||
		 !bd_utf8_valid(b->valuestring))
		return reject_at(r, e, b->valuestring, "unsafe bundle name") ?: 1;
	if (why)
		return reject_at(r, e, NULL, why) ?: 1;

	/* The served name drops ".bytes"; the name in the costume's folder
	 * is that, with ".png" added to a texture that lacks an image ending. */
	const char *raw = f->valuestring;
	size_t len = strlen(raw);
	if (util_ends_with(raw, ".bytes", 0))
		len -= strlen(".bytes");
	e->spec.kind = k;
	e->spec.optional = k == IDX_KIND_PHYSICS;
	e->spec.file = strndup(raw, len);
	e->spec.bundle = strdup(b->valuestring);
	rc = e->spec.file && e->spec.bundle ? 0 : -ENOMEM;
	if (rc == 0) {
		const char *file = e->spec.file;
		int add_png = k == IDX_KIND_TEXTURE && !util_ends_with(file, ".png", 1) &&
			      !util_ends_with(file, ".jpg", 1) && !util_ends_with(file, ".jpeg", 1);
		if (asprintf(&e->spec.rel_path, "%s%s%s", dirs[k], file,
			     add_png ? ".png" : "") < 0) {
			e->spec.rel_path = NULL;
			rc = -ENOMEM;
		}
	}
	if (rc == 0) {
		const char *local = e->spec.rel_path + strlen(dirs[k]);
		if (!cache_name_is_safe(e->spec.file) || !bd_utf8_valid(e->spec.file) ||
		    !cache_name_is_safe(local))
			why = "unsafe name";
		else if (dirs[k][0] == '\0' && reserved_at_root(local))
			why = "reserved name";
		if (why)
			rc = reject_at(r, e, raw, why) ?: 1;
	}
	if (rc != 0)
		spec_free(&e->spec);
	return rc;
}

/* Vet j as entry pos of list and keep it if usable: 0 kept, 1 rejected
 * (line added), or -ENOMEM. */
static int add_entry(struct entries *es, const cJSON *j, enum idx_file_kind k,
		     const char *list, size_t pos, struct bd_rejects *r)
{
	if (es->n == es->cap) {
		size_t cap = es->cap ? es->cap * 2 : 16;
		struct entry *v = realloc(es->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		es->v = v;
		es->cap = cap;
	}
	struct entry *e = &es->v[es->n];
	memset(e, 0, sizeof(*e));
	e->list = list;
	e->pos = pos;
	int rc = vet_entry(j, k, e, r);
	if (rc == 0)
		es->n++;
	return rc;
}

/* Base[key]: an array of entries, the first LIST_MAX of them. */
static int add_list(struct entries *es, const cJSON *base, const char *key,
		    enum idx_file_kind k, struct bd_rejects *r)
{
	const cJSON *arr = cJSON_GetObjectItemCaseSensitive(base, key);
	int rc = bd_json_array(arr, key, r);
	if (rc <= 0)
		return rc;

	size_t pos = 0;
	const cJSON *j;
	cJSON_ArrayForEach(j, arr) {
		if (pos == LIST_MAX) {
			char why[80];
			snprintf(why, sizeof(why), "%d entries past the first %d left out",
				 cJSON_GetArraySize(arr) - LIST_MAX, LIST_MAX);
			return bd_reject(r, NULL, why, "%s", key);
		}
		rc = add_entry(es, j, k, key, pos++, r);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* One path, bundle and file: the same file listed twice. */
static int entry_same_cmp(const void *a, const void *b)
{
	const struct bd_file_spec *x = &((const struct entry *)a)->spec;
	const struct bd_file_spec *y = &((const struct entry *)b)->spec;
	int c = strcmp(x->rel_path, y->rel_path);
	if (c == 0)
		c = strcmp(x->bundle, y->bundle);
	return c ? c : strcmp(x->file, y->file);
}

static int entry_drop(void *item, struct bd_rejects *r)
{
	struct entry *e = item;
	int rc = reject_at(r, e, e->spec.rel_path, "same path and file as an earlier entry");
	spec_free(&e->spec);
	return rc;
}

struct path_sort {
	const struct entry *v;
};

/* Entries by rel_path, then by buildData position (their index). */
static int order_cmp(const void *a, const void *b, void *arg)
{
	const struct entry *v = ((const struct path_sort *)arg)->v;
	size_t i = *(const size_t *)a, j = *(const size_t *)b;
	int c = strcmp(v[i].spec.rel_path, v[j].spec.rel_path);
	return c ? c : (i > j) - (i < j);
}

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* rel_path with "-<k>" before the extension of its last component (the part
 * from its last '.', none when that is the first character):
 * "textures/texture_00.png" -> "textures/texture_00-2.png". */
static char *numbered(const char *rel_path, unsigned k)
{
	const char *base = base_name(rel_path), *dot = strrchr(base, '.');
	size_t stem = dot && dot != base ? (size_t)(dot - rel_path) : strlen(rel_path);
	char *out;

	if (asprintf(&out, "%.*s-%u%s", (int)stem, rel_path, k, rel_path + stem) < 0)
		return NULL;
	return out;
}

/*
 * Entries landing on one rel_path (DESIGN §3; the same file listed twice is
 * already kept once): the first in buildData order keeps it, each later one
 * gets "-2", "-3"... before the extension, skipping a number whose name some
 * entry has as its own, so a real name never moves and no two entries share
 * one. One whose new name is too long is dropped.
 */
static int rename_collisions(struct entries *es, struct bd_rejects *r)
{
	size_t n = es->n, *order = malloc((n ? n : 1) * sizeof(*order));
	const char **own = malloc((n ? n : 1) * sizeof(*own));
	char **renamed = calloc(n ? n : 1, sizeof(*renamed));
	struct path_sort ps = { es->v };
	int rc = order && own && renamed ? 0 : -ENOMEM;

	for (size_t i = 0; rc == 0 && i < n; i++)
		order[i] = i;
	if (rc == 0)
		qsort_r(order, n, sizeof(*order), order_cmp, &ps);
	for (size_t i = 0; rc == 0 && i < n; i++)
		own[i] = es->v[order[i]].spec.rel_path; /* sorted */
	unsigned k = 1;
	for (size_t i = 1; rc == 0 && i < n; i++) {
		if (strcmp(own[i], own[i - 1]) != 0) {
			k = 1;
			continue;
		}
		char *name = NULL;
		do {
			free(name);
			name = numbered(own[i], ++k);
		} while (name && bsearch(&name, own, n, sizeof(*own), str_cmp));
		renamed[order[i]] = name;
		rc = name ? 0 : -ENOMEM;
	}
	size_t kept = 0;
	for (size_t i = 0; i < n; i++) {
		struct entry *e = &es->v[i];
		if (renamed[i] && rc == 0 && !cache_name_is_safe(base_name(renamed[i]))) {
			rc = reject_at(r, e, renamed[i], "too long once numbered");
			free(renamed[i]);
			spec_free(&e->spec);
			continue;
		}
		if (renamed[i]) {
			free(e->spec.rel_path);
			e->spec.rel_path = renamed[i];
		}
		es->v[kept++] = *e;
	}
	es->n = kept;
	free(order);
	free(own);
	free(renamed);
	return rc;
}

static int parse_base(const cJSON *base, struct entries *es, struct bd_rejects *r)
{
	int rc = add_entry(es, cJSON_GetObjectItemCaseSensitive(base, "model"),
			   IDX_KIND_MODEL, "model", (size_t)-1, r);
	if (rc != 0)
		return rc < 0 ? rc : -EBADMSG;

	const cJSON *physics = cJSON_GetObjectItemCaseSensitive(base, "physics");
	if (physics && !cJSON_IsNull(physics))
		rc = add_entry(es, physics, IDX_KIND_PHYSICS, "physics", (size_t)-1, r);
	if (rc >= 0)
		rc = add_list(es, base, "textures", IDX_KIND_TEXTURE, r);
	if (rc >= 0)
		rc = add_list(es, base, "motions", IDX_KIND_MOTION, r);
	if (rc >= 0)
		rc = add_list(es, base, "expressions", IDX_KIND_EXPRESSION, r);
	if (rc >= 0)
		rc = bd_drop_duplicates(es->v, sizeof(*es->v), &es->n, entry_same_cmp,
					   entry_drop, r);
	if (rc >= 0)
		rc = rename_collisions(es, r);
	return rc < 0 ? rc : 0;
}

size_t bd_build_data_entries(const char *json, size_t len)
{
	static const char key[] = "\"fileName\"";
	size_t n = 0;
	const char *p = json, *end = json + len;

	while ((p = memmem(p, (size_t)(end - p), key, sizeof(key) - 1))) {
		n++;
		p += sizeof(key) - 1;
	}
	return n;
}

int bd_parse_build_data(const char *json, size_t len, struct bd_costume_files *out,
			   struct bd_rejects *rejects)
{
	struct entries es = { 0 };
	cJSON *root;

	out->files = NULL;
	out->n = 0;
	int rc = bd_json_parse(json, len, &root);
	if (rc < 0)
		return rc;

	const cJSON *base = cJSON_GetObjectItemCaseSensitive(root, "Base");
	rc = cJSON_IsObject(base) ? parse_base(base, &es, rejects) : -EBADMSG;
	cJSON_Delete(root);
	if (rc == 0) {
		out->files = calloc(es.n + 1, sizeof(*out->files));
		rc = out->files ? 0 : -ENOMEM;
	}
	for (size_t i = 0; i < es.n; i++) {
		if (rc == 0)
			out->files[out->n++] = es.v[i].spec;
		else
			spec_free(&es.v[i].spec);
	}
	free(es.v);
	return rc;
}

/* ------------------------------------------------------------------ */
/* model.json                                                          */
/* ------------------------------------------------------------------ */

/* {"name": <base name minus suffix>, "file": rel_path} */
static cJSON *named_file(const char *rel_path, const char *suffix)
{
	const char *name = base_name(rel_path);
	size_t len = strlen(name);
	if (util_ends_with(name, suffix, 0))
		len -= strlen(suffix);

	char *stem = strndup(name, len);
	cJSON *o = cJSON_CreateObject();
	if (!stem || !o || !cJSON_AddStringToObject(o, "name", stem) ||
	    !cJSON_AddStringToObject(o, "file", rel_path)) {
		cJSON_Delete(o);
		o = NULL;
	}
	free(stem);
	return o;
}

/* Add a motion to its group in motions, the group named by the ASCII
 * letters of its stem ("nf_left01" -> "nfleft"), "motion" when none. */
static int add_motion(cJSON *motions, const char *rel_path)
{
	cJSON *item = named_file(rel_path, ".mtn");
	if (!item)
		return -ENOMEM;

	const char *stem = cJSON_GetObjectItemCaseSensitive(item, "name")->valuestring;
	char *cat = malloc(strlen(stem) + sizeof("motion")), *o = cat;
	if (!cat) {
		cJSON_Delete(item);
		return -ENOMEM;
	}
	for (const char *p = stem; *p; p++)
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z'))
			*o++ = *p;
	*o = '\0';
	if (!*cat)
		strcpy(cat, "motion");

	cJSON *group = cJSON_GetObjectItemCaseSensitive(motions, cat);
	if (!group)
		group = cJSON_AddArrayToObject(motions, cat);
	free(cat);
	if (!group || !cJSON_AddItemToArray(group, item)) {
		cJSON_Delete(item);
		return -ENOMEM;
	}
	return 0;
}

static const struct bd_file_spec *first_of(const struct bd_file_spec *files, size_t n,
					      enum idx_file_kind k)
{
	for (size_t i = 0; i < n; i++)
		if (files[i].kind == k)
			return &files[i];
	return NULL;
}

/* Add item to obj under key; on failure item is deleted. 1 on success. */
static int put(cJSON *obj, const char *key, cJSON *item)
{
	if (item && cJSON_AddItemToObject(obj, key, item))
		return 1;
	cJSON_Delete(item);
	return 0;
}

static int put_pair(cJSON *obj, const char *key, double a, double b)
{
	const double v[2] = { a, b };
	return put(obj, key, cJSON_CreateDoubleArray(v, 2));
}

/* Keys in the order DESIGN §3 gives them. */
static cJSON *model_json(const struct bd_file_spec *files, size_t n)
{
	const struct bd_file_spec *model = first_of(files, n, IDX_KIND_MODEL);
	const struct bd_file_spec *physics = first_of(files, n, IDX_KIND_PHYSICS);
	cJSON *layout = NULL, *hit = NULL, *textures = NULL, *motions = NULL, *exprs = NULL;
	cJSON *root = cJSON_CreateObject();

	int ok = root && cJSON_AddStringToObject(root, "version", "3.1") &&
		 (layout = cJSON_AddObjectToObject(root, "layout")) &&
		 (hit = cJSON_AddObjectToObject(root, "hit_areas_custom")) &&
		 (!model || cJSON_AddStringToObject(root, "model", model->rel_path)) &&
		 (textures = cJSON_AddArrayToObject(root, "textures")) &&
		 (motions = cJSON_AddObjectToObject(root, "motions")) &&
		 (exprs = cJSON_AddArrayToObject(root, "expressions")) &&
		 (!physics || cJSON_AddStringToObject(root, "physics", physics->rel_path)) &&
		 cJSON_AddNumberToObject(layout, "center_x", 0) &&
		 cJSON_AddNumberToObject(layout, "center_y", 0) &&
		 cJSON_AddNumberToObject(layout, "width", 2) &&
		 put_pair(hit, "body_x", -0.3, 0.2) && put_pair(hit, "body_y", 0.3, -1.9) &&
		 put_pair(hit, "head_x", -0.25, 1) && put_pair(hit, "head_y", 0.25, 0.2);

	for (size_t i = 0; ok && i < n; i++) {
		const char *rel = files[i].rel_path;
		switch (files[i].kind) {
		case IDX_KIND_TEXTURE:
			ok = cJSON_AddItemToArray(textures, cJSON_CreateString(rel));
			break;
		case IDX_KIND_MOTION:
			ok = add_motion(motions, rel) == 0;
			break;
		case IDX_KIND_EXPRESSION:
			ok = cJSON_AddItemToArray(exprs, named_file(rel, ".json"));
			break;
		default: /* the model and physics: named above; no other kind is given */
			break;
		}
	}
	if (!ok) {
		cJSON_Delete(root);
		return NULL;
	}
	return root;
}

/* A string as Python's json.dumps(ensure_ascii=False) writes it: '"', '\\'
 * and the five short escapes, other control characters as \\u00xx, every
 * other byte as it is (UTF-8 stays UTF-8). */
static void py_string(FILE *out, const char *s)
{
	static const char shorts[] = { ['\b'] = 'b', ['\f'] = 'f', ['\n'] = 'n',
				       ['\r'] = 'r', ['\t'] = 't' };
	fputc('"', out);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(out, "\\%c", *p);
		else if (*p < 0x20 && *p < sizeof(shorts) && shorts[*p])
			fprintf(out, "\\%c", shorts[*p]);
		else if (*p < 0x20)
			fprintf(out, "\\u%04x", *p);
		else
			fputc(*p, out);
	}
	fputc('"', out);
}

/* A number as Python's repr: an integral value without a point (the
 * document's numbers are int literals there), else the shortest form that
 * reads back to the same double. */
static void py_number(FILE *out, double v)
{
	char buf[32];
	if (v == (double)(long long)v && v > -1e15 && v < 1e15) {
		fprintf(out, "%lld", (long long)v);
		return;
	}
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(buf, sizeof(buf), "%.*g", prec, v);
		if (strtod(buf, NULL) == v)
			break;
	}
	fputs(buf, out);
}

/* j as json.dumps(j, ensure_ascii=False, indent=2) at nesting depth. */
static void py_dump(FILE *out, const cJSON *j, int depth)
{
	if (cJSON_IsString(j)) {
		py_string(out, j->valuestring);
		return;
	}
	if (cJSON_IsNumber(j)) {
		py_number(out, j->valuedouble);
		return;
	}
	int obj = cJSON_IsObject(j);
	if (!j->child) {
		fputs(obj ? "{}" : "[]", out);
		return;
	}
	fputc(obj ? '{' : '[', out);
	for (const cJSON *c = j->child; c; c = c->next) {
		fprintf(out, "\n%*s", 2 * (depth + 1), "");
		if (obj) {
			py_string(out, c->string);
			fputs(": ", out);
		}
		py_dump(out, c, depth + 1);
		if (c->next)
			fputc(',', out);
	}
	fprintf(out, "\n%*s%c", 2 * depth, "", obj ? '}' : ']');
}

char *bd_render_model_json(const struct bd_file_spec *files, size_t n)
{
	cJSON *root = model_json(files, n);
	char *text = NULL;
	size_t len;
	FILE *out = root ? open_memstream(&text, &len) : NULL;

	if (out) {
		py_dump(out, root, 0);
		int bad = ferror(out);
		if (fclose(out) != 0 || bad) {
			free(text);
			text = NULL;
		}
	}
	cJSON_Delete(root);
	return text;
}

/* ------------------------------------------------------------------ */
/* Costume order                                                       */
/* ------------------------------------------------------------------ */

/* The number of a costume name: the first run of digits in the part after
 * its first '_' ("036_dream_festival_3_ur" -> 3, "036_casual-2023" -> 2023),
 * leading zeros skipped so runs compare by length, then bytes. NULL when it
 * has none ("036_collabo_a_ur", "l2dres00001"). */
static const char *first_number(const char *name, size_t *len)
{
	const char *p = strchr(name, '_');
	*len = 0;
	if (!p)
		return NULL;
	p += strcspn(p, "0123456789");
	if (!*p)
		return NULL;
	while (*p == '0' && p[1] >= '0' && p[1] <= '9')
		p++;
	*len = strspn(p, "0123456789");
	return p;
}

/* As the Python downloader's search_costumes: names ending in "live_event"
 * last; then by the number, compared at any length, names without one after
 * all that have one; then by name (bytes: code point order). */
int bd_costume_cmp(const char *a, const char *b)
{
	int la = util_ends_with(a, "live_event", 0), lb = util_ends_with(b, "live_event", 0);
	if (la != lb)
		return la - lb;

	size_t na, nb;
	const char *da = first_number(a, &na), *db = first_number(b, &nb);
	int c = 0;
	if (!da != !db)
		return da ? -1 : 1;
	if (da && na != nb)
		return na < nb ? -1 : 1;
	if (da)
		c = memcmp(da, db, na);
	if (c == 0)
		c = strcmp(a, b);
	return c < 0 ? -1 : c > 0;
}
