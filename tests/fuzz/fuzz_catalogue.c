/*
 * bd_parse_catalogue on hostile documents. The input is the roster, the
 * asset index and the costume index separated by NUL bytes; a part left out
 * is an empty document of its kind (no costume index at all for the third).
 */
#include <stdint.h>
#include <string.h>

#include "fuzz_check.h"

static void next_part(const char **p, const char *end, const char **part, size_t *len)
{
	const char *nul = memchr(*p, '\0', (size_t)(end - *p));
	*part = *p;
	*len = (size_t)((nul ? nul : end) - *p);
	*p = nul ? nul + 1 : end;
}

static int id_cmp(const void *a, const void *b)
{
	const struct bd_character *x = a, *y = b;
	return x->id < y->id ? -1 : x->id > y->id;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(((const struct bd_costume *)a)->live2d_name,
		      ((const struct bd_costume *)b)->live2d_name);
}

/* No two of the n items compare equal (sorts a copy). */
static int all_distinct(const void *items, size_t n, size_t size,
			int (*cmp)(const void *, const void *))
{
	char *copy = malloc(n * size + 1);
	CHECK(copy);
	memcpy(copy, items, n * size);
	qsort(copy, n, size, cmp);
	int ok = 1;
	for (size_t i = 1; i < n && ok; i++)
		ok = cmp(copy + (i - 1) * size, copy + i * size) != 0;
	free(copy);
	return ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size;
	const char *roster, *assets, *costumes;
	size_t roster_len, assets_len, costumes_len;

	next_part(&p, end, &roster, &roster_len);
	int have_assets = p < end;
	next_part(&p, end, &assets, &assets_len);
	int have_costumes = p < end;
	next_part(&p, end, &costumes, &costumes_len);
	if (!have_assets) {
		assets = "{\"live2d\":{\"chara\":{}}}";
		assets_len = strlen(assets);
	}

	struct bd_catalogue cat;
	struct bd_rejects rej = { 0 };
	int rc = bd_parse_catalogue(roster, roster_len, assets, assets_len,
				       have_costumes ? costumes : NULL, costumes_len, &cat, &rej);
	check_rejects(&rej);
	if (rc < 0) {
		CHECK(cat.ncharacters == 0 && cat.ncostumes == 0);
		return 0;
	}

	for (size_t i = 0; i < cat.ncharacters; i++) {
		CHECK(cat.characters[i].id >= 0);
		for (int l = 0; l < BD_LANGS; l++)
			check_display_name(cat.characters[i].names[l]);
	}
	for (size_t i = 0; i < cat.ncostumes; i++) {
		const struct bd_costume *c = &cat.costumes[i];
		size_t n = strlen(c->live2d_name);
		CHECK(cache_name_is_safe(c->live2d_name) && bd_utf8_valid(c->live2d_name));
		CHECK(n < 7 || strcmp(c->live2d_name + n - 7, "general") != 0);
		CHECK(c->character_id >= -1 && c->costume_id >= -1);
		for (int l = 0; l < BD_LANGS; l++)
			check_text(c->desc[l]);
	}
	CHECK(all_distinct(cat.characters, cat.ncharacters, sizeof(*cat.characters), id_cmp));
	CHECK(all_distinct(cat.costumes, cat.ncostumes, sizeof(*cat.costumes), name_cmp));
	bd_catalogue_free(&cat);
	return 0;
}
