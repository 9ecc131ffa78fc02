/*
 * The vetting of single names. The input holds up to three names separated
 * by NUL bytes; the first is put in every place a name can take (display
 * name, description, bundle key, buildData file and bundle names) and the
 * parsers' verdicts are checked against the rules; all three check that
 * bd_costume_cmp is a consistent order.
 */
#include <cJSON.h>
#include <stdint.h>
#include <string.h>
#include <utf8proc.h>

#include "fuzz_check.h"

/* The text of root (which is freed). */
static char *doc(cJSON *root)
{
	char *text = root ? cJSON_PrintUnformatted(root) : NULL;
	cJSON_Delete(root);
	CHECK(text);
	return text;
}


/* A name every rule lets through unchanged: printable ASCII without '/'. */
static int plain(const char *s)
{
	size_t n = strlen(s);
	for (const char *p = s; *p; p++)
		if (*p < 0x20 || *p > 0x7e || *p == '/')
			return 0;
	return n > 0 && n <= 200 && strcmp(s, ".") && strcmp(s, "..");
}

/* s with every '/' replaced by U+FF0F, as a display name shows it. */
static char *slashed(const char *s)
{
	char *out = malloc(3 * strlen(s) + 1), *o = out;
	CHECK(out);
	for (; *s; s++) {
		if (*s == '/') {
			memcpy(o, "\xef\xbc\x8f", 3);
			o += 3;
		} else {
			*o++ = *s;
		}
	}
	*o = '\0';
	return out;
}

static void check_catalogue(const char *name)
{
	cJSON *roster = cJSON_CreateObject(), *entry = cJSON_AddObjectToObject(roster, "1");
	const char *names[BD_LANGS] = { name, name, name, name, name };
	cJSON_AddItemToObject(entry, "characterName", cJSON_CreateStringArray(names, BD_LANGS));
	cJSON *assets = cJSON_CreateObject();
	cJSON_AddNumberToObject(cJSON_AddObjectToObject(cJSON_AddObjectToObject(assets, "live2d"),
							"chara"),
				name, 5);
	cJSON *costumes = cJSON_CreateObject(), *c = cJSON_AddObjectToObject(costumes, "7");
	cJSON_AddStringToObject(c, "assetBundleName", name);
	cJSON_AddItemToObject(c, "description", cJSON_CreateStringArray(names, BD_LANGS));

	char *r = doc(roster), *a = doc(assets), *k = doc(costumes);
	struct bd_catalogue cat;
	struct bd_rejects rej = { 0 };
	CHECK(bd_parse_catalogue(r, strlen(r), a, strlen(a), k, strlen(k), &cat, &rej) == 0);
	check_rejects(&rej);

	CHECK(cat.ncharacters == 1 && cat.characters[0].id == 1);
	const char *shown = cat.characters[0].names[0];
	check_display_name(shown);
	if (plain(name))
		CHECK(shown && strcmp(shown, name) == 0);
	if (shown) {
		char *expect = slashed(name);
		char *nfc = (char *)utf8proc_NFC((const utf8proc_uint8_t *)expect);
		CHECK(nfc && strcmp(shown, nfc) == 0);
		free(nfc);
		free(expect);
	}

	/* Every safe bundle not ending in "general" is a costume; its
	 * description is the name as sent where it is valid text. */
	int costume = cache_name_is_safe(name) && bd_utf8_valid(name) &&
		      !util_ends_with(name, "general", 0);
	int text = bd_utf8_valid(name) && !has_control(name) && *name &&
		   strcmp(name, ".") && strcmp(name, "..") && strlen(name) <= 1000;
	CHECK(cat.ncostumes == (size_t)costume);
	if (costume) {
		CHECK(strcmp(cat.costumes[0].live2d_name, name) == 0);
		CHECK(cat.costumes[0].costume_id == 7 && cat.costumes[0].character_id >= -1);
		for (int l = 0; l < BD_LANGS; l++)
			CHECK(text ? cat.costumes[0].desc[l] && !strcmp(cat.costumes[0].desc[l], name)
				   : !cat.costumes[0].desc[l]);
	}
	bd_catalogue_free(&cat);
	free(r);
	free(a);
	free(k);
}

static void check_build_data(const char *name)
{
	cJSON *root = cJSON_CreateObject(), *base = cJSON_AddObjectToObject(root, "Base");
	cJSON *model = cJSON_AddObjectToObject(base, "model");
	cJSON_AddStringToObject(model, "bundleName", "live2d/chara/001_x");
	cJSON_AddStringToObject(model, "fileName", "x.moc.bytes");
	cJSON *motions = cJSON_AddArrayToObject(base, "motions");
	cJSON *m = cJSON_CreateObject();
	cJSON_AddStringToObject(m, "bundleName", "live2d/chara/001_general");
	cJSON_AddStringToObject(m, "fileName", name);
	cJSON_AddItemToArray(motions, m);
	cJSON *tex = cJSON_CreateObject();
	cJSON_AddStringToObject(tex, "bundleName", name);
	cJSON_AddStringToObject(tex, "fileName", "texture_00.png");
	cJSON_AddItemToArray(cJSON_AddArrayToObject(base, "textures"), tex);

	char *text = doc(root);
	struct bd_costume_files f;
	struct bd_rejects rej = { 0 };
	CHECK(bd_parse_build_data(text, strlen(text), &f, &rej) == 0);
	check_rejects(&rej);
	free(text);

	char *served = strdup(name);
	CHECK(served);
	if (util_ends_with(served, ".bytes", 0))
		served[strlen(served) - 6] = '\0';
	int motion_ok = cache_name_is_safe(served) && bd_utf8_valid(served);
	int texture_ok = cache_bundle_is_safe(name) && bd_utf8_valid(name) && strlen(name) <= 511;
	CHECK(f.n == 1 + (size_t)motion_ok + (size_t)texture_ok);
	for (size_t i = 1; i < f.n; i++) {
		if (f.files[i].kind == IDX_KIND_MOTION)
			CHECK(strcmp(f.files[i].file, served) == 0);
		else
			CHECK(strcmp(f.files[i].bundle, name) == 0);
	}
	free(served);

	char *json = bd_render_model_json(f.files, f.n);
	cJSON *back = cJSON_Parse(json);
	CHECK(cJSON_IsObject(back));
	cJSON_Delete(back);
	free(json);
	bd_costume_files_free(&f);
}

static int sign(int v)
{
	return (v > 0) - (v < 0);
}

static void check_order(const char *a, const char *b, const char *c)
{
	CHECK(bd_costume_cmp(a, a) == 0);
	CHECK(sign(bd_costume_cmp(a, b)) == -sign(bd_costume_cmp(b, a)));
	CHECK((bd_costume_cmp(a, b) == 0) == (strcmp(a, b) == 0));
	if (bd_costume_cmp(a, b) <= 0 && bd_costume_cmp(b, c) <= 0)
		CHECK(bd_costume_cmp(a, c) <= 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size + 3);
	CHECK(buf);
	memcpy(buf, data, size);
	memset(buf + size, 0, 3);

	const char *a = buf, *b = a + strlen(a) + (a + strlen(a) < buf + size);
	const char *c = b + strlen(b) + (b + strlen(b) < buf + size);
	check_catalogue(a);
	check_build_data(a);
	check_order(a, b, c);
	free(buf);
	return 0;
}
