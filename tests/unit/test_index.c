/* Unit tests for index/: schema, documents, catalogue, files, asset states. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../index/index.h"

static char dir[] = "/tmp/l2dfs-test-index-XXXXXX";
static char path[256];

static int setup(void **state)
{
	(void)state;
	strcpy(dir, "/tmp/l2dfs-test-index-XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/index.db", dir);
	return 0;
}

static int teardown(void **state)
{
	char cmd[300];
	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd);
}

static struct idx *open_fresh(void)
{
	struct idx *idx;
	int recreated = -1;
	assert_int_equal(idx_open(&idx, path, &recreated), 0);
	assert_int_equal(recreated, 0);
	return idx;
}

static void test_documents(void **state)
{
	struct idx *idx = open_fresh();
	char *body;
	size_t len;
	int64_t at;

	(void)state;
	assert_int_equal(idx_doc_get(idx, "roster", &body, &len, &at), -ENOENT);
	assert_int_equal(idx_doc_put(idx, "roster", "{\"a\":1}", 7, 1234), 0);
	assert_int_equal(idx_doc_get(idx, "roster", &body, &len, &at), 0);
	assert_int_equal(len, 7);
	assert_string_equal(body, "{\"a\":1}");
	assert_int_equal(at, 1234);
	free(body);
	idx_close(idx);
}

static void test_garbage_is_moved_aside(void **state)
{
	struct idx *idx;
	int recreated = 0;
	FILE *f = fopen(path, "w");

	(void)state;
	assert_non_null(f);
	fputs("this is not a database, just garbage bytes that fill a page.........", f);
	fclose(f);
	assert_int_equal(idx_open(&idx, path, &recreated), 0);
	assert_int_equal(recreated, 1);
	assert_int_equal(idx_doc_put(idx, "k", "v", 1, 1), 0);
	idx_close(idx);
}

struct names {
	char list[8][IDX_NAME_MAX + 1];
	int64_t ids[8];
	int n;
};

static int collect_character(void *arg, int64_t id, const char *display)
{
	struct names *n = arg;
	snprintf(n->list[n->n], sizeof(n->list[0]), "%s", display);
	n->ids[n->n++] = id;
	return 0;
}

static int collect_costume(void *arg, const struct idx_costume *c)
{
	struct names *n = arg;
	snprintf(n->list[n->n], sizeof(n->list[0]), "%s", c->live2d_name);
	n->ids[n->n++] = c->id;
	return 0;
}

static void store_small_catalogue(struct idx *idx)
{
	const struct idx_character_in chars[] = {
		{ 1, { "戸山 香澄", "Kasumi", NULL, "户山 香澄", NULL } },
		{ 2, { "同名", NULL, NULL, NULL, NULL } },
		{ 3, { "同名", NULL, NULL, NULL, NULL } },
		{ 4, { "no costumes", NULL, NULL, NULL, NULL } },
	};
	const struct idx_costume_in cos[] = {
		{ "001_b", 1, 10, { "B ja", NULL, NULL, "B zh", NULL }, 1 },
		{ "001_a", 1, -1, { NULL, NULL, NULL, NULL, NULL }, 0 },
		{ "002_x", 2, 11, { NULL, "X en", NULL, NULL, NULL }, 2 },
		{ "003_y", 3, 12, { NULL }, 3 },
	};
	assert_int_equal(idx_catalogue_store(idx, "jp", chars, 4, cos, 4), 0);
}

static void test_catalogue(void **state)
{
	struct idx *idx = open_fresh();
	struct names n = { 0 };
	struct idx_costume c;
	int64_t id;

	(void)state;
	assert_int_equal(idx_catalogue_present(idx, "jp"), 0);
	store_small_catalogue(idx);
	assert_int_equal(idx_catalogue_present(idx, "jp"), 1);
	assert_int_equal(idx_catalogue_present(idx, "en"), 0);

	/* zh-hans with Japanese fallback, duplicates told apart, no costume-less ones. */
	assert_int_equal(idx_character_list(idx, "jp", 3, collect_character, &n), 0);
	assert_int_equal(n.n, 3);
	assert_string_equal(n.list[0], "户山 香澄");
	assert_string_equal(n.list[1], "同名 (2)");
	assert_string_equal(n.list[2], "同名 (3)");
	assert_int_equal(idx_character_find(idx, "jp", 3, "同名 (3)", &id), 0);
	assert_int_equal(id, 3);
	assert_int_equal(idx_character_find(idx, "jp", 3, "同名", &id), -ENOENT);
	assert_int_equal(idx_character_find(idx, "jp", 1, "Kasumi", &id), 0);

	/* Costumes of a character in rank order; all of them by name. */
	memset(&n, 0, sizeof(n));
	assert_int_equal(idx_costume_list(idx, "jp", 3, 1, collect_costume, &n), 0);
	assert_int_equal(n.n, 2);
	assert_string_equal(n.list[0], "001_a");
	assert_string_equal(n.list[1], "001_b");
	int64_t b_id = n.ids[1];

	assert_int_equal(idx_costume_find(idx, "jp", 3, -1, "001_b", &c), 0);
	assert_string_equal(c.display, "B zh");
	assert_int_equal(idx_costume_get(idx, c.id, 4, &c), 0);
	assert_string_equal(c.display, "B ja（日服）"); /* ko missing: Japanese, marked */
	assert_int_equal(idx_costume_find(idx, "jp", 4, -1, "002_x", &c), 0);
	assert_string_equal(c.display, "X en（日服）"); /* first non-null slot */
	assert_int_equal(idx_costume_find(idx, "jp", 4, -1, "003_y", &c), 0);
	assert_string_equal(c.display, "");
	assert_int_equal(idx_costume_find(idx, "jp", 3, 2, "001_b", &c), -ENOENT);

	/* Storing again keeps row ids (they are inode numbers). */
	store_small_catalogue(idx);
	assert_int_equal(idx_costume_find(idx, "jp", 3, 1, "001_b", &c), 0);
	assert_int_equal(c.id, b_id);
	idx_close(idx);
}

static void test_files_and_assets(void **state)
{
	struct idx *idx = open_fresh();
	struct idx_costume c;
	struct idx_file f;
	struct idx_asset a;
	struct idx_costume_status st;

	(void)state;
	store_small_catalogue(idx);
	assert_int_equal(idx_costume_find(idx, "jp", 0, -1, "001_b", &c), 0);
	assert_int_equal(c.files_listed, 0);
	const struct idx_file_in files[] = {
		{ IDX_DIR_ROOT, "model.json", IDX_KIND_MODEL_JSON, NULL, NULL, 0 },
		{ IDX_DIR_ROOT, "x.moc", IDX_KIND_MODEL, "live2d/chara/001_b", "x.moc", 0 },
		{ IDX_DIR_MOTIONS, "idle01.mtn", IDX_KIND_MOTION, "live2d/chara/001_general",
		  "idle01.mtn", 0 },
		{ IDX_DIR_ROOT, "x.physics.json", IDX_KIND_PHYSICS, "live2d/chara/001_b",
		  "x.physics.json", 1 },
	};
	assert_int_equal(idx_costume_files_store(idx, c.id, files, 4), 0);
	assert_int_equal(idx_costume_get(idx, c.id, 0, &c), 0);
	assert_int_equal(c.files_listed, 1);

	assert_int_equal(idx_file_find(idx, c.id, IDX_DIR_MOTIONS, "idle01.mtn", &f), 0);
	assert_int_equal(f.kind, IDX_KIND_MOTION);
	int64_t file_id = f.id, asset_id = f.asset_id;
	assert_true(asset_id > 0);
	assert_int_equal(idx_file_find(idx, c.id, IDX_DIR_ROOT, "idle01.mtn", &f), -ENOENT);
	assert_int_equal(idx_file_find(idx, c.id, IDX_DIR_ROOT, "model.json", &f), 0);
	assert_int_equal(f.asset_id, 0);

	/* A second store keeps file row ids and shares asset rows. */
	assert_int_equal(idx_costume_files_store(idx, c.id, files, 4), 0);
	assert_int_equal(idx_file_find(idx, c.id, IDX_DIR_MOTIONS, "idle01.mtn", &f), 0);
	assert_int_equal(f.id, file_id);
	assert_int_equal(f.asset_id, asset_id);

	assert_int_equal(idx_asset_get(idx, asset_id, &a), 0);
	assert_int_equal(a.state, IDX_PENDING);
	assert_int_equal(a.size, -1);
	assert_string_equal(a.bundle, "live2d/chara/001_general");

	assert_int_equal(idx_asset_mark_probed(idx, asset_id, 500, 0, NULL), 0);
	assert_int_equal(idx_asset_mark_downloading(idx, asset_id, "/jp/x"), 0);
	assert_int_equal(idx_asset_mark_progress(idx, asset_id, 100, 500), 0);
	assert_int_equal(idx_asset_get(idx, asset_id, &a), 0);
	assert_int_equal(a.state, IDX_DOWNLOADING);
	assert_int_equal(a.bytes_done, 100);
	int n = 0;
	assert_int_equal(idx_asset_reset_downloading(idx, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(idx_asset_mark_failed(idx, asset_id, EIO, "HTTP 503", "u"), 0);
	assert_int_equal(idx_asset_get(idx, asset_id, &a), 0);
	assert_int_equal(a.state, IDX_FAILED);
	assert_int_equal(a.err, EIO);
	assert_string_equal(a.error, "HTTP 503");
	assert_int_equal(idx_asset_mark_completed(idx, asset_id, 500, "ab12", "http://o/x"), 0);
	assert_int_equal(idx_asset_get(idx, asset_id, &a), 0);
	assert_int_equal(a.state, IDX_COMPLETED);
	assert_int_equal(a.size, 500);
	assert_string_equal(a.sha256, "ab12");
	assert_string_equal(a.error, "");
	/* A probe does not overwrite a completed row. */
	assert_int_equal(idx_asset_mark_probed(idx, asset_id, 7, 0, NULL), 0);
	assert_int_equal(idx_asset_get(idx, asset_id, &a), 0);
	assert_int_equal(a.size, 500);

	assert_int_equal(idx_costume_status(idx, c.id, &st), 0);
	assert_int_equal(st.files_total, 3);
	assert_int_equal(st.files_done, 1);
	assert_int_equal(st.bytes_done, 500);

	assert_int_equal(idx_asset_mark_pending(idx, asset_id), 0);
	assert_int_equal(idx_asset_get(idx, asset_id, &a), 0);
	assert_int_equal(a.state, IDX_PENDING);
	assert_string_equal(a.sha256, "");

	assert_int_equal(idx_asset_adopt(idx, "jp", "live2d/chara/009_z", "f.png", 9, "ff"), 0);
	assert_int_equal(idx_asset_find(idx, "jp", "live2d/chara/009_z", "f.png", &a), 0);
	assert_int_equal(a.state, IDX_COMPLETED);
	assert_int_equal(a.size, 9);
	assert_int_equal(idx_asset_find(idx, "en", "live2d/chara/009_z", "f.png", &a), -ENOENT);
	idx_close(idx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_documents, setup, teardown),
		cmocka_unit_test_setup_teardown(test_garbage_is_moved_aside, setup, teardown),
		cmocka_unit_test_setup_teardown(test_catalogue, setup, teardown),
		cmocka_unit_test_setup_teardown(test_files_and_assets, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
