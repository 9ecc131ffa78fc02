/*
 * The catalogue parsers: roster, asset index and costume index in, vetted
 * characters and costumes out. Also the helpers every parser of this module
 * shares (JSON intake, UTF-8, reject lines, duplicate finding).
 */
#include "bestdori_int.h"

#include <cJSON.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#define DISPLAY_MAX 200 /* bytes of a display name, after '/' is replaced */
#define TEXT_MAX 1000   /* bytes of a description (name.txt) */
#define QUOTE_BYTES 64  /* bytes of an untrusted name shown in a reject line */
#define ID_DIGITS 18    /* fits int64_t */

static const char *const lang_names[BD_LANGS] = { "ja", "en", "zh-hant", "zh-hans", "ko" };
const char *const bd_server_names[BD_NSERVERS] = { "jp", "en", "tw", "cn", "kr" };

int bd_parse_lang(const char *s, int *lang)
{
	for (int i = 0; i < BD_LANGS; i++) {
		if (strcmp(s, lang_names[i]) == 0) {
			*lang = i;
			return 0;
		}
	}
	return -EINVAL;
}

/* Returns 1 for a known server name, else 0. */
int bd_server_is_valid(const char *s)
{
	for (size_t i = 0; i < BD_NSERVERS; i++)
		if (strcmp(s, bd_server_names[i]) == 0)
			return 1;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Helpers shared with model_json.c                                    */
/* ------------------------------------------------------------------ */

/*
 * Parse untrusted text that must be exactly one JSON value (whitespace
 * around it allowed). -EBADMSG if it is not, -ENOMEM.
 */
int bd_json_parse(const char *text, size_t len, cJSON **out)
{
	/* cJSON may look one byte past the length it is given: hand it a
	 * NUL-terminated copy. */
	*out = NULL;
	if (!text)
		return -EBADMSG;
	char *copy = malloc(len + 1);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, text, len);
	copy[len] = '\0';
	/* cJSON cuts a string at an escaped NUL ("a\u0000b" would read as the
	 * name "a"): make it U+0001, a control character every name check
	 * rejects. An escaped backslash before "u0000" is text, not an escape. */
	for (size_t i = 0; i < len; i++) {
		if (copy[i] != '\\')
			continue;
		size_t n = 0;
		while (i + n < len && copy[i + n] == '\\')
			n++;
		if (n % 2 == 1 && i + n + 5 <= len && memcmp(copy + i + n, "u0000", 5) == 0)
			copy[i + n + 4] = '1';
		i += n - 1;
	}

	const char *end = NULL;
	cJSON *json = cJSON_ParseWithLengthOpts(copy, len, &end, 0);
	if (json) {
		while (end < copy + len && strchr(" \t\r\n", *end) && *end)
			end++;
		if (end != copy + len) {
			cJSON_Delete(json);
			json = NULL;
		}
	}
	free(copy);
	*out = json;
	return json ? 0 : -EBADMSG;
}

/* Length of the UTF-8 sequence a lead byte starts, 0 if it cannot lead. */
static size_t utf8_seq_len(unsigned char c)
{
	if (c < 0x80)
		return 1;
	if ((c & 0xe0) == 0xc0)
		return 2;
	if ((c & 0xf0) == 0xe0)
		return 3;
	if ((c & 0xf8) == 0xf0)
		return 4;
	return 0;
}

/* 1 if s is well-formed UTF-8 (no overlong forms, surrogates or values
 * beyond U+10FFFF), else 0. */
int bd_utf8_valid(const char *s)
{
	static const uint32_t min_cp[5] = { 0, 0, 0x80, 0x800, 0x10000 };
	const unsigned char *p = (const unsigned char *)s;

	while (*p) {
		size_t n = utf8_seq_len(*p);
		if (n == 0)
			return 0;
		uint32_t cp = n == 1 ? *p : *p & (0x7f >> n);
		for (size_t i = 1; i < n; i++) {
			if ((p[i] & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (p[i] & 0x3f);
		}
		if (cp < min_cp[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		p += n;
	}
	return 1;
}

/* A C0/DEL byte or the UTF-8 form of a C1 control (U+0080..U+009F). */
static int is_control(const unsigned char *p)
{
	return *p < 0x20 || *p == 0x7f || (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f);
}

/* Untrusted s made fit for a log line: controls, quotes and (in text that
 * is not UTF-8) high bytes escaped, cut after QUOTE_BYTES at a character
 * boundary. out holds 4 * QUOTE_BYTES + 4 bytes. */
static void quote(char *out, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	int utf8 = bd_utf8_valid(s);
	size_t i = 0, o = 0;

	while (p[i]) {
		size_t n = utf8 ? utf8_seq_len(p[i]) : 1;
		if (i + n > QUOTE_BYTES)
			break;
		if (is_control(p + i) || p[i] == '"' || p[i] == '\\' || (!utf8 && p[i] >= 0x80)) {
			for (size_t k = 0; k < n; k++)
				o += (size_t)sprintf(out + o, "\\x%02x", p[i + k]);
		} else {
			memcpy(out + o, p + i, n);
			o += n;
		}
		i += n;
	}
	strcpy(out + o, p[i] ? "..." : "");
}

/*
 * Append one line "<where> \"<name>\": <why>" (name NULL: "<where>: <why>")
 * to r, where is printf-formatted. r NULL drops the line. -ENOMEM.
 */
int bd_reject(struct bd_rejects *r, const char *name, const char *why, const char *fmt,
		 ...)
{
	if (!r)
		return 0;

	/* r->lines grows in powers of two: a full array has n a power of two. */
	if ((r->n & (r->n - 1)) == 0) {
		size_t cap = r->n ? r->n * 2 : 1;
		char **lines = realloc(r->lines, cap * sizeof(*lines));
		if (!lines)
			return -ENOMEM;
		r->lines = lines;
	}

	char *where;
	va_list ap;
	va_start(ap, fmt);
	int rc = vasprintf(&where, fmt, ap);
	va_end(ap);
	if (rc < 0)
		return -ENOMEM;

	char q[4 * QUOTE_BYTES + 4];
	char *line;
	if (name) {
		quote(q, name);
		rc = asprintf(&line, "%s \"%s\": %s", where, q, why);
	} else {
		rc = asprintf(&line, "%s: %s", where, why);
	}
	free(where);
	if (rc < 0)
		return -ENOMEM;
	r->lines[r->n++] = line;
	return 0;
}

/*
 * A field that may be absent or null, else must be an array: 1 when v is an
 * array to walk, 0 when there is none (a wrong type is rejected as where),
 * or -ENOMEM.
 */
int bd_json_array(const cJSON *v, const char *where, struct bd_rejects *r)
{
	if (!v || cJSON_IsNull(v))
		return 0;
	if (cJSON_IsArray(v))
		return 1;
	return bd_reject(r, NULL, "not an array", "%s", where);
}

void bd_rejects_free(struct bd_rejects *r)
{
	for (size_t i = 0; i < r->n; i++)
		free(r->lines[i]);
	free(r->lines);
	r->lines = NULL;
	r->n = 0;
}

struct dup_sort {
	const char *arr;
	size_t size;
	int (*cmp)(const void *a, const void *b);
};

static int dup_order(const void *a, const void *b, void *arg)
{
	const struct dup_sort *s = arg;
	size_t i = *(const size_t *)a, j = *(const size_t *)b;
	int c = s->cmp(s->arr + i * s->size, s->arr + j * s->size);
	if (c)
		return c;
	return i < j ? -1 : i > j;
}

/*
 * Remove from arr[0..*n) (items of size bytes) every item whose key equals
 * that of an earlier item (cmp compares keys), keeping the order of the rest.
 * drop(item, r) is called for each one removed: it rejects and frees it.
 * O(n log n). -ENOMEM (arr unchanged) or drop's error.
 */
int bd_drop_duplicates(void *arr, size_t size, size_t *n,
			  int (*cmp)(const void *a, const void *b),
			  int (*drop)(void *item, struct bd_rejects *r), struct bd_rejects *r)
{
	size_t *order = malloc((*n ? *n : 1) * sizeof(*order));
	unsigned char *dup = calloc(*n ? *n : 1, 1);
	int rc = order && dup ? 0 : -ENOMEM;
	struct dup_sort s = { arr, size, cmp };

	if (rc == 0) {
		for (size_t i = 0; i < *n; i++)
			order[i] = i;
		qsort_r(order, *n, sizeof(*order), dup_order, &s);
		for (size_t k = 1; k < *n; k++)
			if (cmp(s.arr + order[k - 1] * size, s.arr + order[k] * size) == 0)
				dup[order[k]] = 1;

		size_t kept = 0;
		for (size_t i = 0; i < *n; i++) {
			char *item = (char *)arr + i * size;
			if (!dup[i])
				memmove((char *)arr + kept++ * size, item, size);
			else if (rc == 0)
				rc = drop(item, r);
			else
				drop(item, NULL);
		}
		*n = kept;
	}
	free(order);
	free(dup);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Names and ids                                                       */
/* ------------------------------------------------------------------ */

/* Decimal digits only, at most ID_DIGITS of them, the whole of s[0..len). */
static int parse_id(const char *s, size_t len, int64_t *id)
{
	if (len == 0 || len > ID_DIGITS)
		return -EINVAL;
	int64_t v = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		v = v * 10 + (s[i] - '0');
	}
	*id = v;
	return 0;
}

/*
 * A name from untrusted s: *out is a malloc'd copy, or NULL with *why set
 * when s cannot be shown. A path name (a character's folder) is NFC
 * normalized, each '/' replaced by U+FF0F, at most DISPLAY_MAX bytes; a text
 * (a description, written to name.txt as it is) is kept byte for byte, at
 * most TEXT_MAX bytes. Returns 0 or -ENOMEM.
 */
static int display_name(const char *s, int path, char **out, const char **why)
{
	static const char slash[] = "\xef\xbc\x8f"; /* U+FF0F FULLWIDTH SOLIDUS */
	size_t len = 0, max = path ? DISPLAY_MAX : TEXT_MAX;

	*out = NULL;
	*why = NULL;
	if (!bd_utf8_valid(s)) {
		*why = "not UTF-8";
		return 0;
	}
	char *nfc = path ? (char *)utf8proc_NFC((const utf8proc_uint8_t *)s) : strdup(s);
	if (!nfc)
		return -ENOMEM;
	for (const char *p = nfc; *p && !*why; p++) {
		if (is_control((const unsigned char *)p))
			*why = "control character";
		len += path && *p == '/' ? sizeof(slash) - 1 : 1;
	}
	if (!*why && (len == 0 || strcmp(nfc, ".") == 0 || strcmp(nfc, "..") == 0))
		*why = "empty or a dot name";
	else if (!*why && len > max)
		*why = path ? "longer than 200 bytes" : "longer than 1000 bytes";
	if (*why)
		free(nfc);
	if (*why || !path) {
		*out = *why ? NULL : nfc;
		return 0;
	}

	char *copy = malloc(len + 1), *o = copy;
	for (const char *p = nfc; copy && *p; p++) {
		if (*p == '/') {
			memcpy(o, slash, sizeof(slash) - 1);
			o += sizeof(slash) - 1;
		} else {
			*o++ = *p;
		}
	}
	free(nfc);
	if (!copy)
		return -ENOMEM;
	*o = '\0';
	*out = copy;
	return 0;
}

/*
 * names[0..BD_LANGS) from a JSON array of string|null (where: the field,
 * for reject lines; path: see display_name()). A missing or null field gives
 * no names; a field or a slot of the wrong type, or a name that cannot be
 * shown, is rejected.
 */
static int parse_names(const cJSON *arr, int path, char *names[BD_LANGS], const char *where,
		       struct bd_rejects *r)
{
	int rc = bd_json_array(arr, where, r);
	if (rc <= 0)
		return rc;

	int slot = 0;
	const cJSON *e;
	cJSON_ArrayForEach(e, arr) {
		if (slot == BD_LANGS)
			break;
		const char *why = NULL;
		rc = 0;
		if (cJSON_IsString(e)) {
			rc = display_name(e->valuestring, path, &names[slot], &why);
			if (rc == 0 && why)
				rc = bd_reject(r, e->valuestring, why, "%s[%d]", where, slot);
		} else if (!cJSON_IsNull(e)) {
			rc = bd_reject(r, NULL, "not a string", "%s[%d]", where, slot);
		}
		if (rc < 0)
			return rc;
		slot++;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* The three documents                                                 */
/* ------------------------------------------------------------------ */

static void character_free(struct bd_character *c)
{
	for (int l = 0; l < BD_LANGS; l++)
		free(c->names[l]);
}

static void costume_free(struct bd_costume *c)
{
	free(c->live2d_name);
	for (int l = 0; l < BD_LANGS; l++)
		free(c->desc[l]);
}

void bd_catalogue_free(struct bd_catalogue *cat)
{
	for (size_t i = 0; i < cat->ncharacters; i++)
		character_free(&cat->characters[i]);
	for (size_t i = 0; i < cat->ncostumes; i++)
		costume_free(&cat->costumes[i]);
	free(cat->characters);
	free(cat->costumes);
	memset(cat, 0, sizeof(*cat));
}

static int character_id_cmp(const void *a, const void *b)
{
	const struct bd_character *x = a, *y = b;
	return x->id < y->id ? -1 : x->id > y->id;
}

static int costume_name_cmp(const void *a, const void *b)
{
	return strcmp(((const struct bd_costume *)a)->live2d_name,
		      ((const struct bd_costume *)b)->live2d_name);
}

static int character_drop(void *item, struct bd_rejects *r)
{
	struct bd_character *c = item;
	int rc = bd_reject(r, NULL, "an id seen before", "characters %lld", (long long)c->id);
	character_free(c);
	return rc;
}

static int costume_drop(void *item, struct bd_rejects *r)
{
	struct bd_costume *c = item;
	int rc = bd_reject(r, c->live2d_name, "a name seen before", "live2d.chara");
	costume_free(c);
	return rc;
}

/* The roster: {"<id>": {"characterName": [5 x string|null], ...}, ...}. */
static int parse_roster(const cJSON *root, struct bd_catalogue *cat, struct bd_rejects *r)
{
	int rc = 0;
	cat->characters = calloc((size_t)cJSON_GetArraySize(root) + 1, sizeof(*cat->characters));
	if (!cat->characters)
		return -ENOMEM;

	const cJSON *e;
	cJSON_ArrayForEach(e, root) {
		int64_t id;
		if (parse_id(e->string, strlen(e->string), &id) < 0)
			rc = bd_reject(r, e->string, "id is not a number", "characters");
		else if (!cJSON_IsObject(e))
			rc = bd_reject(r, NULL, "not an object", "characters %lld", (long long)id);
		else {
			struct bd_character *c = &cat->characters[cat->ncharacters++];
			char where[64];
			c->id = id;
			snprintf(where, sizeof(where), "characters %lld characterName", (long long)id);
			rc = parse_names(cJSON_GetObjectItemCaseSensitive(e, "characterName"), 1,
					 c->names, where, r);
		}
		if (rc < 0)
			return rc;
	}
	return bd_drop_duplicates(cat->characters, sizeof(*cat->characters),
				     &cat->ncharacters, character_id_cmp, character_drop, r);
}

/* The character a bundle name gives: the first of its '_'-separated fields
 * that is all digits ("036_casual-2023" -> 36, "bili_001_collabo_r" -> 1),
 * else -1 ("l2dres00001", a name without '_', has no fields). */
static int64_t character_of_name(const char *name)
{
	const char *p = name;
	int64_t id;

	if (!strchr(name, '_'))
		return -1;
	for (;;) {
		const char *us = strchr(p, '_');
		size_t len = us ? (size_t)(us - p) : strlen(p);
		if (parse_id(p, len, &id) == 0)
			return id;
		if (!us)
			return -1;
		p = us + 1;
	}
}

/* The asset index: {"live2d": {"chara": {"<bundle>": <file count>, ...}}}. */
static int parse_asset_index(const cJSON *root, struct bd_catalogue *cat,
			     struct bd_rejects *r)
{
	const cJSON *chara = cJSON_GetObjectItemCaseSensitive(
		cJSON_GetObjectItemCaseSensitive(root, "live2d"), "chara");
	if (!cJSON_IsObject(chara))
		return -EBADMSG;
	cat->costumes = calloc((size_t)cJSON_GetArraySize(chara) + 1, sizeof(*cat->costumes));
	if (!cat->costumes)
		return -ENOMEM;

	const cJSON *e;
	cJSON_ArrayForEach(e, chara) {
		const char *name = e->string;
		int rc = 0;

		if (!cache_name_is_safe(name) || !bd_utf8_valid(name))
			rc = bd_reject(r, name, "unsafe name", "live2d.chara");
		else if (util_ends_with(name, "general", 0))
			continue; /* shared motions and expressions, not a costume */
		else if (!cJSON_IsNumber(e))
			rc = bd_reject(r, name, "file count is not a number", "live2d.chara");
		else {
			struct bd_costume *c = &cat->costumes[cat->ncostumes];
			c->live2d_name = strdup(name);
			if (!c->live2d_name)
				return -ENOMEM;
			c->character_id = character_of_name(name);
			c->costume_id = -1;
			cat->ncostumes++;
		}
		if (rc < 0)
			return rc;
	}
	int rc = bd_drop_duplicates(cat->costumes, sizeof(*cat->costumes), &cat->ncostumes,
				       costume_name_cmp, costume_drop, r);
	if (rc == 0 && cat->ncostumes) /* for the join by name */
		qsort(cat->costumes, cat->ncostumes, sizeof(*cat->costumes), costume_name_cmp);
	return rc;
}

/* Costume index entry e (costume id) joined to c: its id, descriptions and
 * characterId, which wins over the one the name gives. */
static int join_costume(struct bd_costume *c, const cJSON *e, int64_t id,
			struct bd_rejects *r)
{
	const cJSON *chara = cJSON_GetObjectItemCaseSensitive(e, "characterId");
	char where[64];

	c->costume_id = id;
	if (cJSON_IsNumber(chara) && chara->valuedouble >= 0 && chara->valuedouble <= 1e15 &&
	    chara->valuedouble == (double)(int64_t)chara->valuedouble)
		c->character_id = (int64_t)chara->valuedouble;
	else if (chara && !cJSON_IsNull(chara) &&
		 bd_reject(r, NULL, "characterId is not an id", "costumes %lld",
			      (long long)id) < 0)
		return -ENOMEM;
	snprintf(where, sizeof(where), "costumes %lld description", (long long)id);
	return parse_names(cJSON_GetObjectItemCaseSensitive(e, "description"), 0, c->desc, where,
			   r);
}

/* The costume index: {"<costume id>": {"assetBundleName": "...",
 * "description": [5 x string|null], ...}, ...}, joined on the bundle name.
 * The first entry naming a bundle wins; bundles not in the asset index are
 * another server's. */
static int parse_costume_index(const cJSON *root, struct bd_catalogue *cat,
			       struct bd_rejects *r)
{
	const cJSON *e;
	cJSON_ArrayForEach(e, root) {
		int64_t id;
		int rc = 0;
		const cJSON *bundle = cJSON_IsObject(e)
			? cJSON_GetObjectItemCaseSensitive(e, "assetBundleName") : NULL;

		if (parse_id(e->string, strlen(e->string), &id) < 0)
			rc = bd_reject(r, e->string, "id is not a number", "costumes");
		else if (!cJSON_IsObject(e))
			rc = bd_reject(r, NULL, "not an object", "costumes %lld", (long long)id);
		else if (!cJSON_IsString(bundle))
			rc = bd_reject(r, NULL, "assetBundleName is not a string",
					  "costumes %lld", (long long)id);
		else {
			struct bd_costume key = { .live2d_name = bundle->valuestring };
			struct bd_costume *c =
				cat->ncostumes ? bsearch(&key, cat->costumes, cat->ncostumes,
							 sizeof(*c), costume_name_cmp)
					       : NULL;
			if (c && c->costume_id < 0)
				rc = join_costume(c, e, id, r);
		}
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* costume_index may be NULL: costumes then have no ids or descriptions. */
int bd_parse_catalogue(const char *roster, size_t roster_len, const char *asset_index,
			  size_t asset_index_len, const char *costume_index,
			  size_t costume_index_len, struct bd_catalogue *out,
			  struct bd_rejects *rejects)
{
	cJSON *docs[3] = { NULL, NULL, NULL };
	int rc;

	memset(out, 0, sizeof(*out));
	rc = bd_json_parse(roster, roster_len, &docs[0]);
	if (rc == 0)
		rc = bd_json_parse(asset_index, asset_index_len, &docs[1]);
	if (rc == 0 && costume_index)
		rc = bd_json_parse(costume_index, costume_index_len, &docs[2]);
	if (rc == 0 && (!cJSON_IsObject(docs[0]) || !cJSON_IsObject(docs[1]) ||
			(docs[2] && !cJSON_IsObject(docs[2]))))
		rc = -EBADMSG;
	if (rc == 0)
		rc = parse_roster(docs[0], out, rejects);
	if (rc == 0)
		rc = parse_asset_index(docs[1], out, rejects);
	if (rc == 0 && docs[2])
		rc = parse_costume_index(docs[2], out, rejects);

	for (int i = 0; i < 3; i++)
		cJSON_Delete(docs[i]);
	if (rc < 0)
		bd_catalogue_free(out);
	return rc;
}
