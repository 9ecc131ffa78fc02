/*
 * Unit tests of the fetch/ parsers: catalogue, name vetting, buildData,
 * model.json and the costume order. Real Bestdori samples are read from the
 * fuzz seed corpus (run from the repository root, as `make unit` does).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cJSON.h>
#include <cmocka.h>

#include "../../fetch/bestdori/bestdori.h"
#include "../../index/index.h"

#define CORPUS "tests/fuzz/corpus/"
#define GEN "live2d/chara/001_general"

static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	long n = ftell(f);
	assert_true(n >= 0);
	rewind(f);
	char *buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	*len = (size_t)n;
	return buf;
}

/* Index of the first reject line containing needle, -1 if none. */
static long reject_with(const struct bd_rejects *r, const char *needle)
{
	for (size_t i = 0; i < r->n; i++)
		if (strstr(r->lines[i], needle))
			return (long)i;
	return -1;
}

/* Every one of the NULL-terminated needles is in some reject line. */
static void assert_rejected(const struct bd_rejects *r, const char *const *needles)
{
	for (; *needles; needles++) {
		if (reject_with(r, *needles) < 0)
			fail_msg("no reject line with: %s", *needles);
	}
}

static size_t rejects_with(const struct bd_rejects *r, const char *needle)
{
	size_t n = 0;
	for (size_t i = 0; i < r->n; i++)
		n += strstr(r->lines[i], needle) != NULL;
	return n;
}

/* ------------------------------------------------------------------ */
/* Languages and servers                                               */
/* ------------------------------------------------------------------ */

static void test_lang_server(void **state)
{
	(void)state;
	static const char *const langs[] = { "ja", "en", "zh-hant", "zh-hans", "ko" };
	int lang = -1;
	for (int i = 0; i < BD_LANGS; i++) {
		assert_int_equal(bd_parse_lang(langs[i], &lang), 0);
		assert_int_equal(lang, i);
	}
	assert_int_equal(bd_parse_lang("jp", &lang), -EINVAL);
	assert_int_equal(bd_parse_lang("", &lang), -EINVAL);
	assert_int_equal(bd_parse_lang("EN", &lang), -EINVAL);

	assert_true(bd_server_is_valid("jp"));
	assert_true(bd_server_is_valid("kr"));
	assert_false(bd_server_is_valid("ja"));
	assert_false(bd_server_is_valid("jp/../x"));
	assert_false(bd_server_is_valid(""));
}

/* ------------------------------------------------------------------ */
/* Catalogue                                                           */
/* ------------------------------------------------------------------ */

static const struct bd_character *character(const struct bd_catalogue *cat, int64_t id)
{
	for (size_t i = 0; i < cat->ncharacters; i++)
		if (cat->characters[i].id == id)
			return &cat->characters[i];
	return NULL;
}

static const struct bd_costume *costume(const struct bd_catalogue *cat, const char *name)
{
	for (size_t i = 0; i < cat->ncostumes; i++)
		if (strcmp(cat->costumes[i].live2d_name, name) == 0)
			return &cat->costumes[i];
	return NULL;
}

/* The seed holds roster, asset index and costume index separated by NULs. */
static void split3(char *buf, size_t len, const char *part[3], size_t plen[3])
{
	char *p = buf, *end = buf + len;
	for (int i = 0; i < 3; i++) {
		char *nul = memchr(p, '\0', (size_t)(end - p));
		assert_true(i == 2 || nul);
		part[i] = p;
		plen[i] = (size_t)((nul ? nul : end) - p);
		p = nul ? nul + 1 : end;
	}
}

static void test_catalogue_samples(void **state)
{
	(void)state;
	size_t len, plen[3];
	const char *part[3];
	char *buf = read_file(CORPUS "catalogue/samples.bin", &len);
	split3(buf, len, part, plen);

	struct bd_catalogue cat;
	struct bd_rejects rej = { 0 };
	assert_int_equal(bd_parse_catalogue(part[0], plen[0], part[1], plen[1], part[2],
					       plen[2], &cat, &rej),
			 0);

	assert_int_equal(cat.ncharacters, 264);
	const struct bd_character *kasumi = character(&cat, 1);
	assert_non_null(kasumi);
	assert_string_equal(kasumi->names[0], "戸山 香澄");
	assert_string_equal(kasumi->names[1], "Kasumi Toyama");
	assert_string_equal(kasumi->names[4], "토야마 카스미");
	const struct bd_character *tomori = character(&cat, 36);
	assert_non_null(tomori);
	assert_string_equal(tomori->names[3], "高松 灯");
	assert_null(tomori->names[4]);
	assert_non_null(character(&cat, 9911));

	/* 3,639 bundles: 113 end in "general"; every other one is a costume,
	 * those without a numeric prefix too. */
	assert_int_equal(cat.ncostumes, 3639 - 113);
	assert_int_equal(rej.n, 0);
	assert_null(costume(&cat, "001_general"));
	assert_int_equal(costume(&cat, "bili_001_collabo_r")->character_id, 1);
	assert_int_equal(costume(&cat, "bili_036_collabo_ur")->character_id, 36);
	assert_int_equal(costume(&cat, "l2dres00001")->character_id, -1);

	size_t joined = 0;
	for (size_t i = 0; i < cat.ncostumes; i++) {
		const struct bd_costume *c = &cat.costumes[i];
		size_t n = strlen(c->live2d_name);
		assert_false(n >= 7 && strcmp(c->live2d_name + n - 7, "general") == 0);
		if (c->live2d_name[0] >= '0' && c->live2d_name[0] <= '9')
			assert_int_equal(c->character_id, strtol(c->live2d_name, NULL, 10));
		if (c->costume_id >= 0)
			joined++;
		else
			for (int l = 0; l < BD_LANGS; l++)
				assert_null(c->desc[l]);
	}
	assert_int_equal(joined, 71);

	const struct bd_costume *c = costume(&cat, "027_live_event_242_sr");
	assert_non_null(c);
	assert_int_equal(c->character_id, 27);
	assert_int_equal(c->costume_id, 1837);
	assert_string_equal(c->desc[0], "レッツ、トーコレ！");
	assert_string_equal(c->desc[1], "TOKO Time!");
	assert_null(c->desc[4]);
	c = costume(&cat, "001_collabo_d_1_ur");
	assert_non_null(c);
	assert_int_equal(c->costume_id, 1842);
	assert_null(c->desc[1]);
	assert_string_equal(c->desc[2], "心動合奏♪");
	c = costume(&cat, "036_live_event_307_ssr");
	assert_non_null(c);
	assert_int_equal(c->character_id, 36);
	assert_int_equal(c->costume_id, -1);

	bd_catalogue_free(&cat);
	bd_rejects_free(&rej);
	free(buf);
}

static int parse_catalogue(const char *roster, const char *assets, const char *costumes,
			   struct bd_catalogue *cat, struct bd_rejects *rej)
{
	return bd_parse_catalogue(roster, strlen(roster), assets, strlen(assets), costumes,
				     costumes ? strlen(costumes) : 0, cat, rej);
}

#define NO_COSTUMES "{\"live2d\":{\"chara\":{}}}"

static void test_catalogue_malformed(void **state)
{
	(void)state;
	static const char *const bad_roster[] = {
		"", " ", "{", "{\"1\":", "[]", "null", "\"x\"", "{} {}", "{}x", "{\"1\":{}}}",
	};
	static const char *const bad_assets[] = {
		"{}", "[]", "{\"live2d\":[]}", "{\"live2d\":{}}", "{\"live2d\":{\"chara\":[]}}",
		"{\"live2d\":{\"chara\":5}}", "{\"live2d\":{\"chara\":{}}",
	};
	struct bd_catalogue cat;
	struct bd_rejects rej = { 0 };

	for (size_t i = 0; i < sizeof(bad_roster) / sizeof(bad_roster[0]); i++) {
		assert_int_equal(parse_catalogue(bad_roster[i], NO_COSTUMES, NULL, &cat, &rej),
				 -EBADMSG);
		assert_int_equal(cat.ncharacters + cat.ncostumes, 0);
	}
	for (size_t i = 0; i < sizeof(bad_assets) / sizeof(bad_assets[0]); i++)
		assert_int_equal(parse_catalogue("{}", bad_assets[i], NULL, &cat, &rej), -EBADMSG);
	assert_int_equal(parse_catalogue("{}", NO_COSTUMES, "[]", &cat, &rej), -EBADMSG);
	assert_int_equal(parse_catalogue("{}", NO_COSTUMES, "", &cat, &rej), -EBADMSG);

	/* A NUL inside the text is not JSON. */
	assert_int_equal(bd_parse_catalogue("{}\0{}", 5, NO_COSTUMES, strlen(NO_COSTUMES), NULL,
					       0, &cat, &rej),
			 -EBADMSG);

	/* Whitespace around the value is fine; a costume index is optional. */
	assert_int_equal(parse_catalogue(" {}\n", "\t" NO_COSTUMES "\r\n", NULL, &cat, &rej), 0);
	assert_int_equal(cat.ncharacters + cat.ncostumes, 0);
	bd_catalogue_free(&cat);

	/* Nesting far deeper than any parser stack allows. */
	size_t deep = 100000;
	char *nest = malloc(2 * deep + 1);
	assert_non_null(nest);
	memset(nest, '[', deep);
	memset(nest + deep, ']', deep);
	nest[2 * deep] = '\0';
	assert_int_equal(parse_catalogue(nest, NO_COSTUMES, NULL, &cat, &rej), -EBADMSG);
	free(nest);
	assert_int_equal(rej.n, 0);
}

static void test_catalogue_wrong_types(void **state)
{
	(void)state;
	const char *roster =
		"{\"1\":{\"characterName\":[\"A\",5,null,\"D\"]},"
		"\"x\":{\"characterName\":[\"X\"]},"
		"\"2\":5,"
		"\"3\":{\"characterName\":\"C\"},"
		"\"4\":{},"
		"\"1\":{\"characterName\":[\"again\"]},"
		"\"-5\":{},\"1234567890123456789\":{},\"\":{}}";
	const char *assets =
		"{\"live2d\":{\"chara\":{"
		"\"001_a\":5,\"001_b\":\"5\",\"..\":1,\"001_c\\\\d\":1,\"001_e\\u0001\":1,"
		"\"x_f\":1,\"_g\":1,\"h\":1,\"9999999999999999999_i\":1,\"002_general\":4,"
		"\"002_j\":1,\"002_j\":2,\"003_k\":0,\"003_\\u00ff\":1,\"a_07_b_8\":1,"
		"\"004_m\":1,\"004_n\":1}}}";
	const char *costumes =
		"{\"10\":{\"characterId\":1,\"assetBundleName\":\"001_a\","
		"\"description\":[\"one\",7,\"th/ree\"]},"
		"\"11\":{\"assetBundleName\":\"001_a\",\"description\":[\"later\"]},"
		"\"12\":{\"assetBundleName\":5},"
		"\"13\":[],"
		"\"z\":{\"assetBundleName\":\"002_j\"},"
		"\"14\":{\"assetBundleName\":\"002_j\",\"description\":\"x\"},"
		"\"15\":{\"assetBundleName\":\"999_elsewhere\"},"
		"\"16\":{\"characterId\":37,\"assetBundleName\":\"004_m\"},"
		"\"17\":{\"characterId\":\"37\",\"assetBundleName\":\"004_n\"},"
		"\"18\":{\"characterId\":38,\"assetBundleName\":\"h\"}}";
	struct bd_catalogue cat;
	struct bd_rejects rej = { 0 };

	assert_int_equal(parse_catalogue(roster, assets, costumes, &cat, &rej), 0);

	assert_int_equal(cat.ncharacters, 3);
	const struct bd_character *c1 = character(&cat, 1);
	assert_string_equal(c1->names[0], "A");
	assert_null(c1->names[1]);
	assert_null(c1->names[2]);
	assert_string_equal(c1->names[3], "D");
	assert_null(c1->names[4]);
	assert_non_null(character(&cat, 3));
	assert_null(character(&cat, 3)->names[0]);
	assert_non_null(character(&cat, 4));
	assert_rejected(&rej, (const char *const[]){
		"characters \"x\": id is not a number",
		"characters \"-5\": id is not a number",
		"characters \"\": id is not a number",
		"characters \"1234567890123456789\"",
		"characters 2: not an object",
		"characters 1 characterName[1]: not a string",
		"characters 3 characterName: not an array",
		"characters 1: an id seen before",
		NULL });

	/* A costume's character: characterId, else the first all-digit field,
	 * else none (-1); a costume either way. */
	assert_int_equal(cat.ncostumes, 11);
	assert_int_equal(costume(&cat, "004_m")->character_id, 37);
	assert_int_equal(costume(&cat, "004_n")->character_id, 4);
	assert_int_equal(costume(&cat, "h")->character_id, 38);
	assert_int_equal(costume(&cat, "a_07_b_8")->character_id, 7);
	assert_int_equal(costume(&cat, "x_f")->character_id, -1);
	assert_int_equal(costume(&cat, "_g")->character_id, -1);
	assert_int_equal(costume(&cat, "9999999999999999999_i")->character_id, -1);
	const struct bd_costume *a = costume(&cat, "001_a");
	assert_int_equal(a->costume_id, 10);
	assert_string_equal(a->desc[0], "one");
	assert_null(a->desc[1]);
	assert_string_equal(a->desc[2], "th/ree"); /* name.txt text, not a path */
	const struct bd_costume *j = costume(&cat, "002_j");
	assert_int_equal(j->character_id, 2);
	assert_int_equal(j->costume_id, 14);
	assert_null(j->desc[0]);
	assert_non_null(costume(&cat, "003_k"));
	assert_non_null(costume(&cat, "003_\xc3\xbf"));
	assert_rejected(&rej, (const char *const[]){
		"\"001_b\": file count is not a number",
		"\"..\": unsafe name",
		"\"001_c\\x5cd\": unsafe name",
		"\"001_e\\x01\": unsafe name",
		"\"002_j\": a name seen before",
		NULL });
	assert_int_equal(reject_with(&rej, "002_general"), -1);
	assert_rejected(&rej, (const char *const[]){
		"costumes 10 description[1]: not a string",
		"costumes 12: assetBundleName is not a string",
		"costumes 13: not an object",
		"costumes \"z\": id is not a number",
		"costumes 14 description: not an array",
		"costumes 17: characterId is not an id",
		NULL });
	assert_int_equal(reject_with(&rej, "character id"), -1);

	bd_catalogue_free(&cat);
	bd_rejects_free(&rej);
}

/* The display name parsing the roster makes of name (a JSON string body). */
static char *shown(const char *json_string, struct bd_rejects *rej)
{
	char *roster;
	assert_true(asprintf(&roster, "{\"1\":{\"characterName\":[\"%s\"]}}", json_string) > 0);
	struct bd_catalogue cat;
	assert_int_equal(parse_catalogue(roster, NO_COSTUMES, NULL, &cat, rej), 0);
	free(roster);
	assert_int_equal(cat.ncharacters, 1);
	char *name = cat.characters[0].names[0];
	cat.characters[0].names[0] = NULL;
	bd_catalogue_free(&cat);
	return name;
}

static void test_display_names(void **state)
{
	(void)state;
	struct bd_rejects rej = { 0 };
	char *s;

	s = shown("AC/DC", &rej);
	assert_string_equal(s, "AC\xef\xbc\x8f" "DC");
	free(s);
	s = shown("/", &rej);
	assert_string_equal(s, "\xef\xbc\x8f");
	free(s);
	s = shown("高松 灯", &rej);
	assert_string_equal(s, "高松 灯");
	free(s);
	s = shown("Cafe\u0301 \u30cf\u309a", &rej); /* NFD: composed */
	assert_string_equal(s, "Caf\xc3\xa9 \xe3\x83\x91");
	free(s);
	assert_int_equal(rej.n, 0);

	static const char *const bad[] = {
		"",		  ".",		 "..",		"a\\u0001b", "tab\\there",
		"del\x7f",	  "c1\xc2\x9b",  "\xff",	"\xc0\xaf",  "\xed\xa0\x80",
		"\xf4\x90\x80\x80", "cut\xe3\x81", "new\\nline",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		s = shown(bad[i], &rej);
		assert_null(s);
		assert_int_equal(rej.n, i + 1);
	}
	assert_true(reject_with(&rej, "characters 1 characterName[0] \"a\\x01b\": control") >=
		    0);
	assert_true(reject_with(&rej, "\"\\xff\": not UTF-8") >= 0);
	assert_true(reject_with(&rej, "\"..\": empty or a dot name") >= 0);
	bd_rejects_free(&rej);

	/* 200 bytes is the most, counted after '/' becomes 3 bytes. */
	char name[260];
	memset(name, 'x', 200);
	name[200] = '\0';
	s = shown(name, &rej);
	assert_non_null(s);
	free(s);
	strcpy(name + 200, "x");
	assert_null(shown(name, &rej));
	memset(name, '/', 66);
	name[66] = '\0';
	s = shown(name, &rej);
	assert_int_equal(strlen(s), 198);
	free(s);
	strcpy(name + 66, "/");
	assert_null(shown(name, &rej));
	assert_int_equal(rejects_with(&rej, "longer than 200 bytes"), 2);
	bd_rejects_free(&rej);
}

static void test_reject_lines_are_quoted(void **state)
{
	(void)state;
	char assets[700];
	char long_key[300];
	memset(long_key, 'k', 299);
	long_key[299] = '\0';
	snprintf(assets, sizeof(assets),
		 "{\"live2d\":{\"chara\":{\"a\\\"b\":\"1\",\"\\u001b[31m\":1,\"%s\":1}}}", long_key);
	struct bd_catalogue cat;
	struct bd_rejects rej = { 0 };
	assert_int_equal(parse_catalogue("{}", assets, NULL, &cat, &rej), 0);
	assert_int_equal(rej.n, 3);
	assert_string_equal(rej.lines[0], "live2d.chara \"a\\x22b\": file count is not a number");
	assert_string_equal(rej.lines[1], "live2d.chara \"\\x1b[31m\": unsafe name");
	/* 64 bytes shown, then "..." */
	assert_int_equal(strlen(rej.lines[2]), strlen("live2d.chara \"\": unsafe name") + 64 + 3);
	bd_catalogue_free(&cat);
	bd_rejects_free(&rej);
}

/* ------------------------------------------------------------------ */
/* buildData                                                           */
/* ------------------------------------------------------------------ */

static void parse_sample(const char *name, struct bd_costume_files *f,
			 struct bd_rejects *rej)
{
	size_t len;
	char *json = read_file(name, &len);
	assert_int_equal(bd_parse_build_data(json, len, f, rej), 0);
	free(json);
}

static void assert_spec(const struct bd_file_spec *s, enum idx_file_kind kind,
			const char *rel_path, const char *bundle, const char *file)
{
	assert_int_equal(s->kind, kind);
	assert_string_equal(s->rel_path, rel_path);
	assert_string_equal(s->bundle, bundle);
	assert_string_equal(s->file, file);
	assert_int_equal(s->optional, kind == IDX_KIND_PHYSICS);
}

static void test_build_data_samples(void **state)
{
	(void)state;
	struct bd_costume_files f;
	struct bd_rejects rej = { 0 };
	const char *own = "live2d/chara/001_live_event_332_r";

	parse_sample(CORPUS "build_data/jp_001_live_event_332_r.json", &f, &rej);
	assert_int_equal(rej.n, 0);
	assert_int_equal(f.n, 1 + 1 + 2 + 51 + 32);
	assert_spec(&f.files[0], IDX_KIND_MODEL, "kasumi_event332.moc", own,
		    "kasumi_event332.moc");
	assert_spec(&f.files[1], IDX_KIND_PHYSICS, "kasumi_event332.physics.json", own,
		    "kasumi_event332.physics.json");
	assert_spec(&f.files[2], IDX_KIND_TEXTURE, "textures/texture_00.png", own,
		    "texture_00.png");
	assert_spec(&f.files[3], IDX_KIND_TEXTURE, "textures/texture_01.png", own,
		    "texture_01.png");
	assert_spec(&f.files[4], IDX_KIND_MOTION, "motions/angry01.mtn", GEN, "angry01.mtn");
	assert_spec(&f.files[21], IDX_KIND_MOTION, "motions/nf_left01.mtn", GEN,
		    "nf_left01.mtn");
	assert_spec(&f.files[54], IDX_KIND_MOTION, "motions/wink01.mtn", GEN, "wink01.mtn");
	assert_spec(&f.files[55], IDX_KIND_EXPRESSION, "expressions/angry01.exp.json", GEN,
		    "angry01.exp.json");
	assert_spec(&f.files[86], IDX_KIND_EXPRESSION, "expressions/surprised01.exp.json", GEN,
		    "surprised01.exp.json");
	bd_costume_files_free(&f);
	assert_null(f.files);

	parse_sample(CORPUS "build_data/jp_001_live_event_312_ur.json", &f, &rej);
	assert_int_equal(rej.n, 0);
	assert_int_equal(f.n, 1 + 1 + 2 + 53 + 32);
	assert_spec(&f.files[2], IDX_KIND_TEXTURE, "textures/texture_00.png", GEN,
		    "texture_00.png");
	assert_spec(&f.files[4], IDX_KIND_MOTION, "motions/angry01.mtn",
		    "live2d/chara/001_live_event_312_ur", "angry01.mtn");
	bd_costume_files_free(&f);
}

/* buildData with model x.moc and the given Base members after it. */
static int parse_base(const char *members, struct bd_costume_files *f,
		      struct bd_rejects *rej)
{
	char *json;
	assert_true(asprintf(&json,
			     "{\"Base\":{\"model\":{\"bundleName\":\"live2d/chara/001_x\","
			     "\"fileName\":\"x.moc.bytes\"}%s%s}}",
			     *members ? "," : "", members) > 0);
	int rc = bd_parse_build_data(json, strlen(json), f, rej);
	free(json);
	return rc;
}

#define M(file) "{\"bundleName\":\"" GEN "\",\"fileName\":\"" file "\"}"

static void test_build_data_hostile(void **state)
{
	(void)state;
	struct bd_costume_files f;
	struct bd_rejects rej = { 0 };
	char big[4200];
	memset(big, 'a', 4096);
	strcpy(big + 4096, ".mtn");
	char *members;
	assert_true(asprintf(&members,
			     "\"motions\":[" M("../x.mtn") "," M("/abs.mtn") "," M("a\\\\b.mtn") ","
			     M("ctl\\u0007.mtn") "," M("%s") "," M("a.mtn") "," M("a.mtn.bytes") ","
			     M("..") "," M(".bytes") "," M("..bytes") "," M("\\u0000.mtn") ","
			     M("\xff.mtn") ",5,{\"bundleName\":1,\"fileName\":\"b.mtn\"},"
			     "{\"bundleName\":\"" GEN "\"},"
			     "{\"bundleName\":\"live2d/../etc\",\"fileName\":\"c.mtn\"},"
			     "{\"bundleName\":\"/abs\",\"fileName\":\"d.mtn\"},"
			     "{\"bundleName\":\"\",\"fileName\":\"e.mtn\"}," M("ok.mtn.bytes") "],"
			     "\"expressions\":{\"a\":1},"
			     "\"textures\":[" M("t0") "," M("t0.png") "," M("t1.PNG") ","
			     M("t2.jpeg.bytes") "," M("t3.png.bytes") "]",
			     big) > 0);
	assert_int_equal(parse_base(members, &f, &rej), 0);
	free(members);

	/* Two entries on one path: the later one is numbered, not dropped;
	 * the same file listed twice is kept once. */
	assert_int_equal(f.n, 1 + 5 + 2);
	assert_spec(&f.files[0], IDX_KIND_MODEL, "x.moc", "live2d/chara/001_x", "x.moc");
	assert_spec(&f.files[1], IDX_KIND_TEXTURE, "textures/t0.png", GEN, "t0");
	assert_spec(&f.files[2], IDX_KIND_TEXTURE, "textures/t0-2.png", GEN, "t0.png");
	assert_spec(&f.files[3], IDX_KIND_TEXTURE, "textures/t1.PNG", GEN, "t1.PNG");
	assert_spec(&f.files[4], IDX_KIND_TEXTURE, "textures/t2.jpeg", GEN, "t2.jpeg");
	assert_spec(&f.files[5], IDX_KIND_TEXTURE, "textures/t3.png", GEN, "t3.png");
	assert_spec(&f.files[6], IDX_KIND_MOTION, "motions/a.mtn", GEN, "a.mtn");
	assert_spec(&f.files[7], IDX_KIND_MOTION, "motions/ok.mtn", GEN, "ok.mtn");

	assert_rejected(&rej, (const char *const[]){
		"motions[0] \"../x.mtn\": unsafe name",
		"motions[1] \"/abs.mtn\": unsafe name",
		"motions[2] \"a\\x5cb.mtn\": unsafe name",
		"motions[3] \"ctl\\x07.mtn\": unsafe name",
		"motions[4] \"aaaa",
		"motions[6] \"motions/a.mtn\": same path and file as an earlier entry",
		"motions[7] \"..\": unsafe name",
		"motions[8] \".bytes\": unsafe name",
		"motions[9] \"..bytes\": unsafe name",
		"motions[10] \"\\x01.mtn\": unsafe name", /* \u0000 made a control byte */
		"motions[11] \"\\xff.mtn\": unsafe name",
		"motions[12]: not an object",
		"motions[13]: bundleName is not a string",
		"motions[14]: fileName is not a string",
		"motions[15] \"live2d/../etc\": unsafe bundle name",
		"motions[16] \"/abs\": unsafe bundle name",
		"motions[17] \"\": unsafe bundle name",
		"expressions: not an array",
		NULL });
	assert_int_equal(rej.n, 18);
	bd_costume_files_free(&f);
	bd_rejects_free(&rej);

	/* Physics alone wrong: only the model is left. */
	static const struct {
		const char *members, *reject;
	} alone[] = {
		{ "\"physics\":{\"bundleName\":\"b\",\"fileName\":\"model.json\"}",
		  "physics \"model.json\": reserved name" },
		{ "\"physics\":{\"bundleName\":\"b\",\"fileName\":\"textures\"}",
		  "physics \"textures\": reserved name" },
		{ "\"physics\":7,\"motions\":null", "physics: not an object" },
	};
	for (size_t i = 0; i < sizeof(alone) / sizeof(alone[0]); i++) {
		assert_int_equal(parse_base(alone[i].members, &f, &rej), 0);
		assert_int_equal(f.n, 1);
		assert_int_equal(rej.n, 1);
		assert_string_equal(rej.lines[0], alone[i].reject);
		bd_costume_files_free(&f);
		bd_rejects_free(&rej);
	}
}

static void test_build_data_unusable(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"",
		"{",
		"[]",
		"{}",
		"{\"Base\":[]}",
		"{\"Base\":{}}",
		"{\"Base\":{\"model\":null}}",
		"{\"Base\":{\"model\":{\"bundleName\":\"b\"}}}",
		"{\"Base\":{\"model\":{\"bundleName\":\"b\",\"fileName\":5}}}",
		"{\"Base\":{\"model\":{\"bundleName\":\"../b\",\"fileName\":\"m.moc\"}}}",
		"{\"Base\":{\"model\":{\"bundleName\":\"b\",\"fileName\":\"../m.moc\"}}}",
		"{\"Base\":{\"model\":{\"bundleName\":\"b\",\"fileName\":\"model.json\"}}}",
		"{\"Base\":{\"model\":{\"bundleName\":\"b\",\"fileName\":\"m.moc\"}}",
		"{\"Base\":{\"model\":{\"bundleName\":\"b\",\"fileName\":\"m.moc\"}}}}",
	};
	struct bd_costume_files f;
	struct bd_rejects rej = { 0 };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(bd_parse_build_data(bad[i], strlen(bad[i]), &f, &rej), -EBADMSG);
		assert_int_equal(f.n, 0);
		assert_null(f.files);
	}
	assert_true(reject_with(&rej, "model: not an object") >= 0);
	assert_true(reject_with(&rej, "model \"../m.moc\": unsafe name") >= 0);

	/* Truncated anywhere, the real sample is refused. */
	size_t len;
	char *json = read_file(CORPUS "build_data/jp_001_live_event_332_r.json", &len);
	for (size_t cut = 0; cut < len; cut += 97)
		assert_int_equal(bd_parse_build_data(json, cut, &f, &rej), -EBADMSG);
	free(json);

	/* Deep nesting inside Base. */
	size_t deep = 200000;
	char *nest = malloc(deep * 6 + 64);
	assert_non_null(nest);
	char *p = nest + sprintf(nest, "{\"Base\":{\"motions\":");
	for (size_t i = 0; i < deep; i++)
		p += sprintf(p, "[{\"a\":");
	strcpy(p, "1");
	assert_int_equal(bd_parse_build_data(nest, strlen(nest), &f, &rej), -EBADMSG);
	free(nest);
	bd_rejects_free(&rej);
}

static void test_build_data_limit(void **state)
{
	(void)state;
	size_t n = 100000;
	size_t cap = n * 64 + 256;
	char *json = malloc(cap), *p = json;
	assert_non_null(json);
	p += sprintf(p, "{\"Base\":{\"model\":{\"bundleName\":\"b\",\"fileName\":\"m.moc\"},"
			"\"motions\":[");
	for (size_t i = 0; i < n; i++)
		p += sprintf(p, "%s{\"bundleName\":\"b\",\"fileName\":\"m%zu.mtn\"}", i ? "," : "", i);
	strcpy(p, "]}}");

	struct bd_costume_files f;
	struct bd_rejects rej = { 0 };
	assert_int_equal(bd_parse_build_data(json, strlen(json), &f, &rej), 0);
	free(json);
	assert_int_equal(f.n, 1 + 10000);
	assert_string_equal(f.files[10000].rel_path, "motions/m9999.mtn");
	assert_int_equal(rej.n, 1);
	assert_string_equal(rej.lines[0], "motions: 90000 entries past the first 10000 left out");
	bd_costume_files_free(&f);
	bd_rejects_free(&rej);
}

/* ------------------------------------------------------------------ */
/* model.json                                                          */
/* ------------------------------------------------------------------ */

static void assert_numbers(const cJSON *arr, double a, double b)
{
	assert_int_equal(cJSON_GetArraySize(arr), 2);
	assert_true(cJSON_GetArrayItem(arr, 0)->valuedouble == a);
	assert_true(cJSON_GetArrayItem(arr, 1)->valuedouble == b);
}

static void assert_named(const cJSON *o, const char *name, const char *file)
{
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(o, "name")->valuestring, name);
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(o, "file")->valuestring, file);
	assert_int_equal(cJSON_GetArraySize(o), 2);
}

static void test_model_json_sample(void **state)
{
	(void)state;
	struct bd_costume_files f;
	struct bd_rejects rej = { 0 };
	parse_sample(CORPUS "build_data/jp_001_live_event_332_r.json", &f, &rej);
	char *text = bd_render_model_json(f.files, f.n);
	bd_costume_files_free(&f);
	assert_non_null(text);
	/* json.dumps(obj, ensure_ascii=False, indent=2): no final newline. */
	size_t len = strlen(text);
	assert_int_equal(text[len - 1], '}');
	assert_non_null(strstr(text, "{\n  \"version\": \"3.1\",\n  \"layout\": {\n    \"center_x\": 0,"));
	assert_non_null(strstr(text, "\"body_x\": [\n      -0.3,\n      0.2\n    ],"));
	assert_non_null(strstr(text, "\"head_x\": [\n      -0.25,\n      1\n    ],"));

	cJSON *j = cJSON_Parse(text);
	free(text);
	assert_non_null(j);
	static const char *const keys[] = { "version",  "layout", "hit_areas_custom",
					    "model",    "textures", "motions",
					    "expressions", "physics" };
	size_t k = 0;
	const cJSON *e;
	cJSON_ArrayForEach(e, j) {
		assert_true(k < 8);
		assert_string_equal(e->string, keys[k++]);
	}
	assert_int_equal(k, 8);

	assert_string_equal(cJSON_GetObjectItem(j, "version")->valuestring, "3.1");
	const cJSON *layout = cJSON_GetObjectItem(j, "layout");
	assert_int_equal(cJSON_GetArraySize(layout), 3);
	assert_true(cJSON_GetObjectItem(layout, "center_x")->valuedouble == 0);
	assert_true(cJSON_GetObjectItem(layout, "center_y")->valuedouble == 0);
	assert_true(cJSON_GetObjectItem(layout, "width")->valuedouble == 2);
	const cJSON *hit = cJSON_GetObjectItem(j, "hit_areas_custom");
	assert_numbers(cJSON_GetObjectItem(hit, "body_x"), -0.3, 0.2);
	assert_numbers(cJSON_GetObjectItem(hit, "body_y"), 0.3, -1.9);
	assert_numbers(cJSON_GetObjectItem(hit, "head_x"), -0.25, 1);
	assert_numbers(cJSON_GetObjectItem(hit, "head_y"), 0.25, 0.2);
	assert_string_equal(cJSON_GetObjectItem(j, "model")->valuestring, "kasumi_event332.moc");
	assert_string_equal(cJSON_GetObjectItem(j, "physics")->valuestring,
			    "kasumi_event332.physics.json");

	const cJSON *tex = cJSON_GetObjectItem(j, "textures");
	assert_int_equal(cJSON_GetArraySize(tex), 2);
	assert_string_equal(cJSON_GetArrayItem(tex, 0)->valuestring, "textures/texture_00.png");
	assert_string_equal(cJSON_GetArrayItem(tex, 1)->valuestring, "textures/texture_01.png");

	static const char *const cats[] = { "angry", "bye",	 "cry",	     "eeto",   "gattsu",
					    "hukumi", "idle",	 "jaan",     "kime",   "nf",
					    "nfleft", "nfright", "niyaniya", "nnf",    "nnfleft",
					    "nnfright", "nod",	 "oowarai",  "sad",    "scared",
					    "serious", "shame",	 "sing",     "sleep",  "smile",
					    "sneeze", "surprised", "wink" };
	const cJSON *motions = cJSON_GetObjectItem(j, "motions");
	int total = 0;
	k = 0;
	cJSON_ArrayForEach(e, motions) {
		assert_string_equal(e->string, cats[k++]);
		total += cJSON_GetArraySize(e);
	}
	assert_int_equal(k, sizeof(cats) / sizeof(cats[0]));
	assert_int_equal(total, 51);
	const cJSON *idle = cJSON_GetObjectItem(motions, "idle");
	assert_int_equal(cJSON_GetArraySize(idle), 2);
	assert_named(cJSON_GetArrayItem(idle, 0), "idle01", "motions/idle01.mtn");
	assert_named(cJSON_GetArrayItem(idle, 1), "idle02", "motions/idle02.mtn");
	assert_named(cJSON_GetArrayItem(cJSON_GetObjectItem(motions, "nfleft"), 0), "nf_left01",
		     "motions/nf_left01.mtn");
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(motions, "smile")), 6);

	const cJSON *exprs = cJSON_GetObjectItem(j, "expressions");
	assert_int_equal(cJSON_GetArraySize(exprs), 32);
	assert_named(cJSON_GetArrayItem(exprs, 0), "angry01.exp", "expressions/angry01.exp.json");
	assert_named(cJSON_GetArrayItem(exprs, 31), "surprised01.exp",
		     "expressions/surprised01.exp.json");
	cJSON_Delete(j);
}

static void test_model_json_edges(void **state)
{
	(void)state;
	struct bd_file_spec files[] = {
		{ .kind = IDX_KIND_MODEL, .rel_path = "m.moc" },
		{ .kind = IDX_KIND_MOTION, .rel_path = "motions/01.mtn" },
		{ .kind = IDX_KIND_MOTION, .rel_path = "motions/Idle_2" },
		{ .kind = IDX_KIND_MOTION, .rel_path = "motions/_.mtn" },
		{ .kind = IDX_KIND_EXPRESSION, .rel_path = "expressions/plain" },
		{ .kind = IDX_KIND_EXPRESSION, .rel_path = "expressions/\"q\".json" },
	};
	char *text = bd_render_model_json(files, 6);
	cJSON *j = cJSON_Parse(text);
	free(text);
	assert_non_null(j);
	assert_null(cJSON_GetObjectItem(j, "physics"));
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "textures")), 0);
	const cJSON *motions = cJSON_GetObjectItem(j, "motions");
	assert_int_equal(cJSON_GetArraySize(motions), 2);
	const cJSON *m = cJSON_GetObjectItem(motions, "motion");
	assert_int_equal(cJSON_GetArraySize(m), 2);
	assert_named(cJSON_GetArrayItem(m, 0), "01", "motions/01.mtn");
	assert_named(cJSON_GetArrayItem(m, 1), "_", "motions/_.mtn");
	assert_named(cJSON_GetArrayItem(cJSON_GetObjectItem(motions, "Idle"), 0), "Idle_2",
		     "motions/Idle_2");
	const cJSON *exprs = cJSON_GetObjectItem(j, "expressions");
	assert_named(cJSON_GetArrayItem(exprs, 0), "plain", "expressions/plain");
	assert_named(cJSON_GetArrayItem(exprs, 1), "\"q\"", "expressions/\"q\".json");
	cJSON_Delete(j);

	/* Nothing at all: the lists are still there, empty. */
	text = bd_render_model_json(NULL, 0);
	assert_non_null(strstr(text, "\"textures\": [],\n  \"motions\": {},\n  \"expressions\": []\n}"));
	j = cJSON_Parse(text);
	free(text);
	assert_non_null(j);
	assert_null(cJSON_GetObjectItem(j, "model"));
	assert_true(cJSON_IsArray(cJSON_GetObjectItem(j, "textures")));
	assert_true(cJSON_IsObject(cJSON_GetObjectItem(j, "motions")));
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "motions")), 0);
	assert_true(cJSON_IsArray(cJSON_GetObjectItem(j, "expressions")));
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "expressions")), 0);
	cJSON_Delete(j);
}

/* A name of up to 12 characters drawn from awkward ones: quotes,
 * backslashes, control characters, DEL, U+2028, characters outside the BMP. */
static void awkward_name(unsigned *seed, char *out)
{
	static const char *const pool[] = { "a", "Z", "0", "_", ".", " ", "\"", "\\", "\b",
					    "\f", "\n", "\r", "\t", "\x01", "\x1f", "\x7f",
					    "é", "灯", "\xe2\x80\xa8", "😀", "𝄞", "/", "'" };
	size_t n = 1 + rand_r(seed) % 12, used = 0;
	for (size_t i = 0; i < n; i++) {
		const char *c = pool[rand_r(seed) % (sizeof(pool) / sizeof(pool[0]))];
		memcpy(out + used, c, strlen(c));
		used += strlen(c);
	}
	out[used] = '\0';
}

/* The model.json writer against Python's own json.dumps(obj,
 * ensure_ascii=False, indent=2): 400 generated costumes with awkward names,
 * checked by tests/unit/model_json_check.py (which also renders each
 * costume's dict as the Python downloader does and compares). */
static void test_model_json_python_bytes(void **state)
{
	(void)state;
	static const char *const dirs[] = { "", "", "textures/", "motions/", "expressions/" };
	static const enum idx_file_kind kinds[] = { IDX_KIND_MODEL, IDX_KIND_PHYSICS,
						    IDX_KIND_TEXTURE, IDX_KIND_MOTION,
						    IDX_KIND_EXPRESSION };
	static const char *const ends[] = { "", ".mtn", ".json", ".exp.json", ".png", ".moc" };
	char path[] = "/tmp/l2dfs-model-json-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	FILE *cases = fdopen(fd, "w");
	unsigned seed = 16;

	for (int c = 0; c < 400; c++) {
		struct bd_file_spec files[24];
		char names[24][80];
		size_t n = rand_r(&seed) % 24;
		cJSON *line = cJSON_CreateObject(), *list = cJSON_AddArrayToObject(line, "files");
		for (size_t i = 0; i < n; i++) {
			size_t k = i < 2 ? i : 2 + (size_t)rand_r(&seed) % 3;
			char stem[60];
			awkward_name(&seed, stem);
			snprintf(names[i], sizeof(names[i]), "%s%s%s", dirs[k], stem,
				 ends[rand_r(&seed) % (sizeof(ends) / sizeof(ends[0]))]);
			files[i] = (struct bd_file_spec){ .kind = kinds[k], .rel_path = names[i] };
			cJSON *f = cJSON_CreateArray();
			cJSON_AddItemToArray(f, cJSON_CreateNumber((double)k));
			cJSON_AddItemToArray(f, cJSON_CreateString(names[i]));
			cJSON_AddItemToArray(list, f);
		}
		char *text = bd_render_model_json(files, n);
		assert_non_null(text);
		cJSON_AddStringToObject(line, "text", text);
		free(text);
		char *out = cJSON_PrintUnformatted(line);
		fprintf(cases, "%s\n", out);
		cJSON_free(out);
		cJSON_Delete(line);
	}
	assert_int_equal(fclose(cases), 0);
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "/usr/bin/python3 tests/unit/model_json_check.py %s", path);
	int rc = system(cmd);
	unlink(path);
	assert_int_equal(rc, 0);
}

#define E(bundle, file) "{\"bundleName\":\"" bundle "\",\"fileName\":\"" file "\"}"

/* Colliding names (DESIGN §3): the first keeps its name, later ones are
 * numbered before the extension, never onto a name some entry has. */
static void test_build_data_collisions(void **state)
{
	(void)state;
	struct bd_costume_files f;
	struct bd_rejects rej = { 0 };
	const char *members =
		"\"physics\":" E("live2d/chara/001_b", "x.moc") ","
		"\"textures\":[" E("live2d/chara/001_a", "texture_00.png") ","
		E("live2d/chara/001_b", "texture_00.png") "," E("live2d/chara/001_c", "texture_00") ","
		E("live2d/chara/001_d", "texture_00-2.png") "," E("live2d/chara/001_e", "texture_00-3") "],"
		"\"motions\":[" E(GEN, "idle01.mtn.bytes") "," E("live2d/chara/001_x", "idle01.mtn.bytes")
		"," E(GEN, "noext") "," E("live2d/chara/001_x", "noext") "],"
		"\"expressions\":[" E(GEN, "angry01.exp.json") "," E("live2d/chara/001_x", "angry01.exp.json")
		"," E(GEN, ".hidden") "," E("live2d/chara/001_x", ".hidden") "]";
	assert_int_equal(parse_base(members, &f, &rej), 0);
	assert_int_equal(rej.n, 0);

	static const char *const want[][2] = {
		{ "x.moc", "live2d/chara/001_x" },
		{ "x-2.moc", "live2d/chara/001_b" },
		{ "textures/texture_00.png", "live2d/chara/001_a" },
		{ "textures/texture_00-4.png", "live2d/chara/001_b" }, /* -2, -3 are real names */
		{ "textures/texture_00-5.png", "live2d/chara/001_c" },
		{ "textures/texture_00-2.png", "live2d/chara/001_d" },
		{ "textures/texture_00-3.png", "live2d/chara/001_e" },
		{ "motions/idle01.mtn", GEN },
		{ "motions/idle01-2.mtn", "live2d/chara/001_x" },
		{ "motions/noext", GEN },
		{ "motions/noext-2", "live2d/chara/001_x" },
		{ "expressions/angry01.exp.json", GEN },
		{ "expressions/angry01.exp-2.json", "live2d/chara/001_x" },
		{ "expressions/.hidden", GEN },
		{ "expressions/.hidden-2", "live2d/chara/001_x" },
	};
	assert_int_equal(f.n, sizeof(want) / sizeof(want[0]));
	for (size_t i = 0; i < f.n; i++) {
		assert_string_equal(f.files[i].rel_path, want[i][0]);
		assert_string_equal(f.files[i].bundle, want[i][1]);
	}

	/* model.json names each, in buildData order. */
	char *text = bd_render_model_json(f.files, f.n);
	cJSON *root = cJSON_Parse(text);
	const cJSON *tex = cJSON_GetObjectItemCaseSensitive(root, "textures");
	assert_int_equal(cJSON_GetArraySize(tex), 5);
	for (int i = 0; i < 5; i++)
		assert_string_equal(cJSON_GetArrayItem(tex, i)->valuestring, want[2 + i][0]);
	const cJSON *idle = cJSON_GetObjectItemCaseSensitive(
		cJSON_GetObjectItemCaseSensitive(root, "motions"), "idle");
	assert_int_equal(cJSON_GetArraySize(idle), 2);
	assert_named(cJSON_GetArrayItem(idle, 1), "idle01-2", "motions/idle01-2.mtn");
	assert_named(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(root, "expressions"), 1),
		     "angry01.exp-2", "expressions/angry01.exp-2.json");
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(root, "physics")->valuestring,
			    "x-2.moc");
	cJSON_Delete(root);
	free(text);
	bd_costume_files_free(&f);

	/* A numbered name over NAME_MAX is left out, with a reject. */
	char *long_members;
	char stem[260];
	memset(stem, 's', 251);
	strcpy(stem + 251, ".mtn");
	assert_true(asprintf(&long_members, "\"motions\":[" M("%s") "," E("live2d/chara/001_x", "%s") "]",
			     stem, stem) > 0);
	assert_int_equal(parse_base(long_members, &f, &rej), 0);
	free(long_members);
	assert_int_equal(f.n, 2);
	assert_int_equal(rejects_with(&rej, "too long once numbered"), 1);
	bd_costume_files_free(&f);
	bd_rejects_free(&rej);
}

/* ------------------------------------------------------------------ */
/* Character display names                                             */
/* ------------------------------------------------------------------ */

/* idx_names_unique() on names[i] with ids[i]; the results by id. */
static struct idx_named *unique(const char *const *names, const int64_t *ids, size_t n)
{
	struct idx_named *v = calloc(n, sizeof(*v));
	assert_non_null(v);
	for (size_t i = 0; i < n; i++) {
		v[i].id = ids[i];
		v[i].name = strdup(names[i]);
	}
	assert_int_equal(idx_names_unique(v, n), 0);
	for (size_t i = 0; i < n; i++)
		for (size_t j = i + 1; j < n; j++)
			assert_string_not_equal(v[i].name, v[j].name);
	return v;
}

static void test_character_names_unique(void **state)
{
	(void)state;
	/* Equal names all get their id; a made name equal to a real one is
	 * numbered again; the real one keeps its name. */
	static const char *const x[] = { "X (3)", "X", "Y", "X" };
	static const int64_t xid[] = { 5, 3, 9, 4 };
	struct idx_named *v = unique(x, xid, 4);
	assert_int_equal(v[0].id, 3);
	assert_string_equal(v[0].name, "X (3) (3)");
	assert_string_equal(v[1].name, "X (4)");
	assert_string_equal(v[2].name, "X (3)");
	assert_string_equal(v[3].name, "Y");
	idx_named_free(v, 4);

	/* Chains: "A (1)" and "A (1) (1)" are real names too. */
	static const char *const a[] = { "A", "A", "A (1)", "A (1) (1)", "A (1) (1) (1) (1)" };
	static const int64_t aid[] = { 1, 2, 7, 8, 9 };
	v = unique(a, aid, 5);
	assert_string_equal(v[0].name, "A (1) (1) (1)");
	assert_string_equal(v[1].name, "A (2)");
	assert_string_equal(v[2].name, "A (1)");
	assert_string_equal(v[3].name, "A (1) (1)");
	assert_string_equal(v[4].name, "A (1) (1) (1) (1)");
	idx_named_free(v, 5);

	/* Equal made names of equal real ones: "A (1)" twice is a group too. */
	static const char *const b[] = { "A", "A", "A (1)", "A (1)" };
	static const int64_t bid[] = { 1, 2, 7, 9 };
	v = unique(b, bid, 4);
	assert_string_equal(v[0].name, "A (1)");
	assert_string_equal(v[1].name, "A (2)");
	assert_string_equal(v[2].name, "A (1) (7)");
	assert_string_equal(v[3].name, "A (1) (9)");
	idx_named_free(v, 4);

	/* A character listed by its id beside one named like that id. */
	static const char *const d[] = { "12", "12", "Solo" };
	static const int64_t did[] = { 12, 7, 1 };
	v = unique(d, did, 3);
	assert_string_equal(v[0].name, "Solo");
	assert_string_equal(v[1].name, "12 (7)");
	assert_string_equal(v[2].name, "12 (12)");
	idx_named_free(v, 3);
	assert_int_equal(idx_names_unique(NULL, 0), 0);
}

/* ------------------------------------------------------------------ */
/* Costume order                                                       */
/* ------------------------------------------------------------------ */

static int cmp_names(const void *a, const void *b)
{
	return bd_costume_cmp(*(const char *const *)a, *(const char *const *)b);
}

static void test_costume_order(void **state)
{
	(void)state;
	const char *names[] = {
		"036_live_event",	  "036_live_event_307_ssr", "036_casual-2023",
		"036_dream_festival_3_ur", "036_casual",	    "036_2018_dog",
		"036_birthday_2022",	  "036_birthday_2021",	    "036_a_live_event",
		"036_event_99999999999999999999_x", "036_event_100000000000000000000_x",
		"036_x007",		  "036_x7",		    "036_x10",
		"l2dres00001",		  "9_0",
	};
	static const char *const sorted[] = {
		/* by the first run of digits after the first '_', as a number */
		"9_0", "036_dream_festival_3_ur", "036_x007", "036_x7", "036_x10",
		"036_live_event_307_ssr", "036_2018_dog", "036_birthday_2021",
		"036_birthday_2022", "036_casual-2023",
		"036_event_99999999999999999999_x", "036_event_100000000000000000000_x",
		"036_casual", "l2dres00001", /* no number: after every numbered one */
		"036_a_live_event", "036_live_event", /* ending in live_event */
	};
	size_t n = sizeof(names) / sizeof(names[0]);
	qsort(names, n, sizeof(names[0]), cmp_names);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(names[i], sorted[i]);

	assert_int_equal(bd_costume_cmp("001_a", "001_a"), 0);
	assert_true(bd_costume_cmp("001_live_event", "001_z") > 0);
	assert_true(bd_costume_cmp("x", "y") < 0);
	assert_true(bd_costume_cmp("", "001_1") > 0);
}

/* Character 36 of the real asset index, as the Python downloader lists it. */
static void test_build_data_entries(void **state)
{
	static const char doc[] = "{\"Base\":{\"model\":{\"bundleName\":\"b\",\"fileName\":\"x.moc.bytes\"},"
				  "\"textures\":[{\"fileName\":\"t.png\"},{\"fileName\":\"u.png\"}]}}";
	(void)state;
	assert_int_equal(bd_build_data_entries(doc, strlen(doc)), 3);
	assert_int_equal(bd_build_data_entries(doc, 10), 0);
	assert_int_equal(bd_build_data_entries("", 0), 0);
}

static void test_costume_order_36(void **state)
{
	(void)state;
	static const char *const site[] = {
		"036_live_sr_01",	  "036_collabo_d_3_ur",	    "036_dream_festival_3_ur",
		"036_live_event_235_ur",  "036_live_event_240_ssr", "036_live_event_250_ur",
		"036_live_event_286_ur",  "036_live_event_289_ur",  "036_live_event_297_ur",
		"036_live_event_307_ssr", "036_casual-2023",	    "036_school_summer-2023",
		"036_school_winter-2023", "036_2024_furisode",	    "036_birthday_2024_ssr",
		"036_collabo_a_ur",	  "036_live_default",
	};
	size_t n = sizeof(site) / sizeof(site[0]);
	const char *names[sizeof(site) / sizeof(site[0])];
	/* reversed, then sorted */
	for (size_t i = 0; i < n; i++)
		names[i] = site[n - 1 - i];
	qsort(names, n, sizeof(names[0]), cmp_names);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(names[i], site[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lang_server),
		cmocka_unit_test(test_catalogue_samples),
		cmocka_unit_test(test_catalogue_malformed),
		cmocka_unit_test(test_catalogue_wrong_types),
		cmocka_unit_test(test_display_names),
		cmocka_unit_test(test_reject_lines_are_quoted),
		cmocka_unit_test(test_build_data_samples),
		cmocka_unit_test(test_build_data_hostile),
		cmocka_unit_test(test_build_data_collisions),
		cmocka_unit_test(test_build_data_unusable),
		cmocka_unit_test(test_build_data_limit),
		cmocka_unit_test(test_model_json_sample),
		cmocka_unit_test(test_model_json_edges),
		cmocka_unit_test(test_model_json_python_bytes),
		cmocka_unit_test(test_character_names_unique),
		cmocka_unit_test(test_costume_order),
		cmocka_unit_test(test_costume_order_36),
		cmocka_unit_test(test_build_data_entries),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
