/*
 * bd_parse_build_data on hostile buildData, then bd_render_model_json
 * on what it kept: the file list must be safe and the model.json must parse.
 */
#include <cJSON.h>
#include <stdint.h>
#include <string.h>

#include "fuzz_check.h"

/* Every '/'-separated component of a relative path is a safe name. */
static int rel_path_is_safe(const char *rel)
{
	char *copy = strdup(rel), *save = NULL;
	int ok = copy && *rel && rel[strlen(rel) - 1] != '/' && !strstr(rel, "//");
	for (char *c = ok ? strtok_r(copy, "/", &save) : NULL; c; c = strtok_r(NULL, "/", &save))
		ok = ok && cache_name_is_safe(c);
	free(copy);
	return ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bd_costume_files f;
	struct bd_rejects rej = { 0 };
	int rc = bd_parse_build_data((const char *)data, size, &f, &rej);
	check_rejects(&rej);
	if (rc < 0) {
		CHECK(f.n == 0 && f.files == NULL);
		return 0;
	}

	int count[IDX_KIND_EXPRESSION + 1] = { 0 };
	CHECK(f.n >= 1 && f.files[0].kind == IDX_KIND_MODEL);
	for (size_t i = 0; i < f.n; i++) {
		const struct bd_file_spec *s = &f.files[i];
		CHECK(rel_path_is_safe(s->rel_path) && bd_utf8_valid(s->rel_path));
		CHECK(cache_bundle_is_safe(s->bundle) && cache_name_is_safe(s->file));
		CHECK(i == 0 || s->kind >= f.files[i - 1].kind);
		CHECK(s->optional == (s->kind == IDX_KIND_PHYSICS));
		count[s->kind]++;
		for (size_t j = 0; j < i; j++)
			CHECK(strcmp(f.files[j].rel_path, s->rel_path) != 0);
	}

	char *text = bd_render_model_json(f.files, f.n);
	CHECK(text);
	size_t len = strlen(text);
	/* json.dumps(indent=2) bytes: no final newline (DESIGN §3). */
	CHECK(len > 0 && text[len - 1] == '}');
	cJSON *back = cJSON_ParseWithLength(text, len);
	CHECK(cJSON_IsObject(back));
	CHECK(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(back, "model")));
	CHECK(cJSON_HasObjectItem(back, "physics") == (count[IDX_KIND_PHYSICS] > 0));
	CHECK(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(back, "textures")) ==
	      count[IDX_KIND_TEXTURE]);
	CHECK(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(back, "expressions")) ==
	      count[IDX_KIND_EXPRESSION]);
	int motions = 0;
	const cJSON *group;
	cJSON_ArrayForEach(group, cJSON_GetObjectItemCaseSensitive(back, "motions"))
		motions += cJSON_GetArraySize(group);
	CHECK(motions == count[IDX_KIND_MOTION]);
	cJSON_Delete(back);
	free(text);
	bd_costume_files_free(&f);
	return 0;
}
