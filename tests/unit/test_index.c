/* Unit tests for index/: what index/index.h promises, one behaviour a test. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

/* ---- documents ---- */

static void test_doc_never_stored_is_enoent(void **state)
{
	struct idx *idx = open_fresh();
	char *body;
	size_t len;
	int64_t at;

	(void)state;
	assert_int_equal(idx_doc_get(idx, "roster", &body, &len, &at), -ENOENT);
	assert_int_equal(idx_doc_fetched_at(idx, "roster", &at), -ENOENT);
	idx_close(idx);
}

static void test_doc_get_returns_the_stored_body_and_time(void **state)
{
	struct idx *idx = open_fresh();
	char *body;
	size_t len;
	int64_t at;

	(void)state;
	assert_int_equal(idx_doc_put(idx, "roster", "{\"a\":1}", 7, 1234), 0);
	assert_int_equal(idx_doc_get(idx, "roster", &body, &len, &at), 0);
	assert_int_equal(len, 7);
	assert_string_equal(body, "{\"a\":1}");
	assert_int_equal(at, 1234);
	free(body);
	idx_close(idx);
}

static void test_doc_put_replaces_the_body(void **state)
{
	struct idx *idx = open_fresh();
	char *body;
	size_t len;
	int64_t at;

	(void)state;
	assert_int_equal(idx_doc_put(idx, "roster", "old", 3, 1), 0);
	assert_int_equal(idx_doc_put(idx, "roster", "newer", 5, 2), 0);
	assert_int_equal(idx_doc_get(idx, "roster", &body, &len, &at), 0);
	assert_int_equal(len, 5);
	assert_string_equal(body, "newer");
	assert_int_equal(at, 2);
	free(body);
	idx_close(idx);
}

static void test_doc_fetched_at_alone(void **state)
{
	struct idx *idx = open_fresh();
	int64_t at = 0;

	(void)state;
	assert_int_equal(idx_doc_put(idx, "costumes", "[]", 2, 5678), 0);
	assert_int_equal(idx_doc_fetched_at(idx, "costumes", &at), 0);
	assert_int_equal(at, 5678);
	idx_close(idx);
}

/* ---- opening ---- */

static void test_reopen_keeps_what_was_stored(void **state)
{
	struct idx *idx = open_fresh();
	int64_t at = 0;

	(void)state;
	assert_int_equal(idx_doc_put(idx, "k", "v", 1, 42), 0);
	idx_close(idx);
	idx = open_fresh();
	assert_int_equal(idx_doc_fetched_at(idx, "k", &at), 0);
	assert_int_equal(at, 42);
	idx_close(idx);
}

static int corrupt_copies(void)
{
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "ls '%s' | grep -c '^index\\.db\\.corrupt-'", dir);
	FILE *p = popen(cmd, "r");
	int n = -1;
	assert_non_null(p);
	assert_int_equal(fscanf(p, "%d", &n), 1);
	pclose(p);
	return n;
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
	assert_int_equal(corrupt_copies(), 1);
	assert_int_equal(idx_doc_put(idx, "k", "v", 1, 1), 0);
	idx_close(idx);
}

/* Failures that are not a broken file say why and leave the file alone. */
static void test_open_failures_keep_the_file(void **state)
{
	char longpath[700];
	struct idx *idx = NULL;
	int recreated = -1;

	(void)state;
	/* Past SQLite's 512 bytes: said as such, not as an I/O error. */
	memset(longpath, 'a', sizeof(longpath) - 1);
	longpath[0] = '/';
	longpath[sizeof(longpath) - 1] = '\0';
	assert_int_equal(idx_open(&idx, longpath, &recreated), -ENAMETOOLONG);
	assert_int_equal(recreated, 0);
	/* Something that cannot be opened is not moved aside. */
	assert_int_equal(mkdir(path, 0700), 0);
	assert_true(idx_open(&idx, path, &recreated) < 0);
	assert_int_equal(corrupt_copies(), 0);
	assert_int_equal(rmdir(path), 0);
}

/* ---- the catalogue ---- */

static void test_catalogue_present_per_server(void **state)
{
	struct idx *idx = open_fresh();

	(void)state;
	assert_int_equal(idx_catalogue_present(idx, "jp"), 0);
	store_small_catalogue(idx);
	assert_int_equal(idx_catalogue_present(idx, "jp"), 1);
	assert_int_equal(idx_catalogue_present(idx, "en"), 0);
	idx_close(idx);
}

static void test_character_names_in_lang_japanese_where_null(void **state)
{
	struct idx *idx = open_fresh();
	struct names n = { 0 };

	(void)state;
	store_small_catalogue(idx);
	assert_int_equal(idx_character_list(idx, "jp", 3, collect_character, &n), 0);
	assert_string_equal(n.list[0], "户山 香澄"); /* zh-hans */
	memset(&n, 0, sizeof(n));
	assert_int_equal(idx_character_list(idx, "jp", 2, collect_character, &n), 0);
	assert_string_equal(n.list[0], "戸山 香澄"); /* zh-hant null: Japanese */
	idx_close(idx);
}

static void test_character_without_names_shows_its_id(void **state)
{
	struct idx *idx = open_fresh();
	struct names n = { 0 };
	const struct idx_character_in chars[] = { { 7, { NULL } } };
	const struct idx_costume_in cos[] = { { "007_a", 7, -1, { NULL }, 0 } };

	(void)state;
	assert_int_equal(idx_catalogue_store(idx, "jp", chars, 1, cos, 1), 0);
	assert_int_equal(idx_character_list(idx, "jp", 3, collect_character, &n), 0);
	assert_int_equal(n.n, 1);
	assert_string_equal(n.list[0], "7");
	idx_close(idx);
}

static void test_shared_display_names_get_their_id(void **state)
{
	struct idx *idx = open_fresh();
	struct names n = { 0 };
	int64_t id;

	(void)state;
	store_small_catalogue(idx);
	assert_int_equal(idx_character_list(idx, "jp", 3, collect_character, &n), 0);
	assert_string_equal(n.list[1], "同名 (2)");
	assert_string_equal(n.list[2], "同名 (3)");
	assert_int_equal(idx_character_find(idx, "jp", 3, "同名 (3)", &id), 0);
	assert_int_equal(id, 3);
	assert_int_equal(idx_character_find(idx, "jp", 3, "同名", &id), -ENOENT);
	idx_close(idx);
}

static void test_characters_without_costumes_are_not_listed(void **state)
{
	struct idx *idx = open_fresh();
	struct names n = { 0 };
	int64_t id;

	(void)state;
	store_small_catalogue(idx);
	assert_int_equal(idx_character_list(idx, "jp", 0, collect_character, &n), 0);
	assert_int_equal(n.n, 3);
	for (int i = 0; i < n.n; i++)
		assert_int_not_equal(n.ids[i], 4);
	assert_int_equal(idx_character_find(idx, "jp", 0, "no costumes", &id), -ENOENT);
	n.n = 0;
	assert_int_equal(idx_character_list(idx, "en", 0, collect_character, &n), 0);
	assert_int_equal(n.n, 0); /* no costume on that server */
	idx_close(idx);
}

static void test_character_find_in_the_chosen_lang(void **state)
{
	struct idx *idx = open_fresh();
	int64_t id = 0;

	(void)state;
	store_small_catalogue(idx);
	assert_int_equal(idx_character_find(idx, "jp", 1, "Kasumi", &id), 0);
	assert_int_equal(id, 1);
	assert_int_equal(idx_character_find(idx, "jp", 3, "Kasumi", &id), -ENOENT);
	idx_close(idx);
}

static void test_character_names_gives_all_five(void **state)
{
	struct idx *idx = open_fresh();
	char *names[IDX_LANGS];

	(void)state;
	store_small_catalogue(idx);
	assert_int_equal(idx_character_names(idx, 1, names), 0);
	assert_string_equal(names[0], "戸山 香澄");
	assert_string_equal(names[1], "Kasumi");
	assert_null(names[2]);
	assert_string_equal(names[3], "户山 香澄");
	assert_null(names[4]);
	for (int l = 0; l < IDX_LANGS; l++)
		free(names[l]);
	assert_int_equal(idx_character_names(idx, 99, names), -ENOENT);
	idx_close(idx);
}

static void test_costumes_of_a_character_in_rank_order(void **state)
{
	struct idx *idx = open_fresh();
	struct names n = { 0 };

	(void)state;
	store_small_catalogue(idx);
	assert_int_equal(idx_costume_list(idx, "jp", 3, 1, collect_costume, &n), 0);
	assert_int_equal(n.n, 2);
	assert_string_equal(n.list[0], "001_a"); /* rank 0, stored second */
	assert_string_equal(n.list[1], "001_b");
	idx_close(idx);
}

static void test_costumes_of_the_server_by_name(void **state)
{
	struct idx *idx = open_fresh();
	struct names n = { 0 };

	(void)state;
	store_small_catalogue(idx);
	assert_int_equal(idx_costume_list(idx, "jp", 3, -1, collect_costume, &n), 0);
	assert_int_equal(n.n, 4);
	assert_string_equal(n.list[0], "001_a");
	assert_string_equal(n.list[1], "001_b");
	assert_string_equal(n.list[2], "002_x");
	assert_string_equal(n.list[3], "003_y");
	n.n = 0;
	assert_int_equal(idx_costume_list(idx, "en", 3, -1, collect_costume, &n), 0);
	assert_int_equal(n.n, 0);
	idx_close(idx);
}

static int stop_at_first(void *arg, const struct idx_costume *c)
{
	(void)c;
	++*(int *)arg;
	return 7;
}

static void test_costume_list_stops_when_fn_says_so(void **state)
{
	struct idx *idx = open_fresh();
	int calls = 0;

	(void)state;
	store_small_catalogue(idx);
	assert_int_equal(idx_costume_list(idx, "jp", 0, -1, stop_at_first, &calls), 7);
	assert_int_equal(calls, 1);
	idx_close(idx);
}

static void test_costume_display_falls_back(void **state)
{
	struct idx *idx = open_fresh();
	struct idx_costume c;

	(void)state;
	store_small_catalogue(idx);
	assert_int_equal(idx_costume_find(idx, "jp", 3, -1, "001_b", &c), 0);
	assert_string_equal(c.display, "B zh");
	assert_int_equal(c.costume_id, 10);
	assert_int_equal(c.character_id, 1);
	assert_string_equal(c.server, "jp");
	assert_int_equal(idx_costume_get(idx, c.id, 4, &c), 0);
	assert_string_equal(c.display, "B ja（日服）"); /* ko missing: Japanese, marked */
	assert_int_equal(idx_costume_find(idx, "jp", 0, -1, "002_x", &c), 0);
	assert_string_equal(c.display, "X en（日服）"); /* Japanese missing too: the next one */
	assert_int_equal(idx_costume_find(idx, "jp", 0, -1, "001_a", &c), 0);
	assert_string_equal(c.display, "");
	idx_close(idx);
}

static void test_costume_find_of_another_character_is_enoent(void **state)
{
	struct idx *idx = open_fresh();
	struct idx_costume c;

	(void)state;
	store_small_catalogue(idx);
	assert_int_equal(idx_costume_find(idx, "jp", 3, 1, "001_b", &c), 0);
	assert_int_equal(idx_costume_find(idx, "jp", 3, 2, "001_b", &c), -ENOENT);
	assert_int_equal(idx_costume_find(idx, "en", 3, -1, "001_b", &c), -ENOENT);
	assert_int_equal(idx_costume_get(idx, 9999, 3, &c), -ENOENT);
	idx_close(idx);
}

static void test_catalogue_store_keeps_ids_of_costumes_that_stay(void **state)
{
	struct idx *idx = open_fresh();
	struct idx_costume before, after;

	(void)state;
	store_small_catalogue(idx);
	assert_int_equal(idx_costume_find(idx, "jp", 3, -1, "001_b", &before), 0);
	store_small_catalogue(idx);
	assert_int_equal(idx_costume_find(idx, "jp", 3, -1, "001_b", &after), 0);
	assert_int_equal(after.id, before.id);
	idx_close(idx);
}

static const struct idx_character_in one_char[] = { { 1, { "A", NULL, NULL, NULL, NULL } } };

static void test_catalogue_store_deletes_gone_costumes(void **state)
{
	struct idx *idx = open_fresh();
	struct idx_costume c;
	const struct idx_costume_in cos[] = { { "001_b", 1, 10, { NULL }, 0 } };

	(void)state;
	store_small_catalogue(idx);
	assert_int_equal(idx_catalogue_store(idx, "jp", one_char, 1, cos, 1), 0);
	assert_int_equal(idx_costume_find(idx, "jp", 0, -1, "001_b", &c), 0);
	assert_int_equal(idx_costume_find(idx, "jp", 0, -1, "001_a", &c), -ENOENT);
	assert_int_equal(idx_costume_find(idx, "jp", 0, -1, "003_y", &c), -ENOENT);
	idx_close(idx);
}

static void test_catalogue_of_one_server_leaves_the_others(void **state)
{
	struct idx *idx = open_fresh();
	struct idx_costume c;
	const struct idx_costume_in cos[] = { { "001_en", 1, -1, { NULL }, 0 } };

	(void)state;
	store_small_catalogue(idx);
	assert_int_equal(idx_catalogue_store(idx, "en", one_char, 1, cos, 1), 0);
	assert_int_equal(idx_costume_find(idx, "jp", 0, -1, "003_y", &c), 0);
	assert_int_equal(idx_costume_find(idx, "en", 0, -1, "001_en", &c), 0);
	idx_close(idx);
}

static void test_deleted_costume_id_is_never_given_again(void **state)
{
	struct idx *idx = open_fresh();
	struct idx_costume c;
	struct names n = { 0 };
	const struct idx_costume_in keep[] = { { "001_a", 1, -1, { NULL }, 0 } };
	const struct idx_costume_in fresh[] = { { "001_a", 1, -1, { NULL }, 0 },
						 { "001_new", 1, -1, { NULL }, 1 } };
	int64_t highest = 0;

	(void)state;
	store_small_catalogue(idx);
	assert_int_equal(idx_costume_list(idx, "jp", 0, -1, collect_costume, &n), 0);
	for (int i = 0; i < n.n; i++)
		highest = n.ids[i] > highest ? n.ids[i] : highest;
	/* The row with the highest id goes; without AUTOINCREMENT SQLite
	 * would hand that id to the next row. */
	assert_int_equal(idx_catalogue_store(idx, "jp", one_char, 1, keep, 1), 0);
	assert_int_equal(idx_catalogue_store(idx, "jp", one_char, 1, fresh, 2), 0);
	assert_int_equal(idx_costume_find(idx, "jp", 0, -1, "001_new", &c), 0);
	assert_true(c.id > highest);
	idx_close(idx);
}

static void test_catalogue_generation_goes_up_with_each_store(void **state)
{
	struct idx *idx = open_fresh(), *other;
	int64_t g0 = -1, g1 = -1, g2 = -1, seen = -1;

	(void)state;
	assert_int_equal(idx_catalogue_generation(idx, &g0), 0);
	assert_int_equal(g0, 0);
	store_small_catalogue(idx);
	assert_int_equal(idx_catalogue_generation(idx, &g1), 0);
	store_small_catalogue(idx);
	assert_int_equal(idx_catalogue_generation(idx, &g2), 0);
	assert_true(g1 > g0);
	assert_true(g2 > g1);
	/* Another opener of the same file sees it too. */
	assert_int_equal(idx_open(&other, path, NULL), 0);
	assert_int_equal(idx_catalogue_generation(other, &seen), 0);
	assert_int_equal(seen, g2);
	idx_close(other);
	idx_close(idx);
}

static void test_version_changes_with_any_write(void **state)
{
	struct idx *idx = open_fresh(), *other;
	uint64_t v0, v1, v2, v3;
	struct idx_costume c;

	(void)state;
	store_small_catalogue(idx);
	assert_int_equal(idx_open(&other, path, NULL), 0);
	assert_int_equal(idx_version(idx, &v0), 0);
	/* Reads change nothing. */
	idx_costume_find(idx, "jp", 0, -1, "001_b", &c);
	assert_int_equal(idx_version(idx, &v1), 0);
	assert_true(v1 == v0);
	/* A write through this handle. */
	store_small_catalogue(idx);
	assert_int_equal(idx_version(idx, &v2), 0);
	assert_true(v2 != v1);
	/* A commit through another. */
	store_small_catalogue(other);
	assert_int_equal(idx_version(idx, &v3), 0);
	assert_true(v3 != v2);
	idx_close(other);
	idx_close(idx);
}

/* ---- a costume's files ---- */

static const struct idx_file_in files4[] = {
	{ IDX_DIR_ROOT, "model.json", IDX_KIND_MODEL_JSON, NULL, NULL, 0 },
	{ IDX_DIR_ROOT, "x.moc", IDX_KIND_MODEL, "live2d/chara/001_b", "x.moc", 0 },
	{ IDX_DIR_MOTIONS, "idle01.mtn", IDX_KIND_MOTION, "live2d/chara/001_general",
	  "idle01.mtn", 0 },
	{ IDX_DIR_ROOT, "x.physics.json", IDX_KIND_PHYSICS, "live2d/chara/001_b",
	  "x.physics.json", 1 },
};

/* The costume "001_b" of the small catalogue with files4 stored. */
static int64_t costume_with_files(struct idx *idx)
{
	struct idx_costume c;

	store_small_catalogue(idx);
	assert_int_equal(idx_costume_find(idx, "jp", 0, -1, "001_b", &c), 0);
	assert_int_equal(idx_costume_files_store(idx, c.id, files4, 4), 0);
	return c.id;
}

/* The asset row behind idle01.mtn of costume_with_files(). */
static int64_t motion_asset(struct idx *idx, int64_t costume)
{
	struct idx_file f;

	assert_int_equal(idx_file_find(idx, costume, IDX_DIR_MOTIONS, "idle01.mtn", &f), 0);
	assert_true(f.asset_id > 0);
	return f.asset_id;
}

struct file_names {
	char list[8][IDX_NAME_MAX + 1];
	int n;
};

static int collect_file(void *arg, const struct idx_file *f)
{
	struct file_names *n = arg;
	snprintf(n->list[n->n++], sizeof(n->list[0]), "%s", f->name);
	return 0;
}

static void test_files_store_marks_the_costume_listed(void **state)
{
	struct idx *idx = open_fresh();
	struct idx_costume c;

	(void)state;
	store_small_catalogue(idx);
	assert_int_equal(idx_costume_find(idx, "jp", 0, -1, "001_b", &c), 0);
	assert_int_equal(c.files_listed, 0);
	assert_int_equal(idx_costume_files_store(idx, c.id, files4, 4), 0);
	assert_int_equal(idx_costume_get(idx, c.id, 0, &c), 0);
	assert_int_equal(c.files_listed, 1);
	idx_close(idx);
}

static void test_catalogue_store_marks_costumes_unlisted(void **state)
{
	struct idx *idx = open_fresh();
	int64_t id = costume_with_files(idx);
	struct idx_costume c;
	struct idx_file f;

	(void)state;
	store_small_catalogue(idx);
	assert_int_equal(idx_costume_get(idx, id, 0, &c), 0);
	assert_int_equal(c.files_listed, 0);
	/* File rows are kept until the list is stored again. */
	assert_int_equal(idx_file_find(idx, id, IDX_DIR_ROOT, "x.moc", &f), 0);
	idx_close(idx);
}

static void test_file_find_looks_in_one_folder(void **state)
{
	struct idx *idx = open_fresh();
	int64_t id = costume_with_files(idx);
	struct idx_file f;

	(void)state;
	assert_int_equal(idx_file_find(idx, id, IDX_DIR_MOTIONS, "idle01.mtn", &f), 0);
	assert_int_equal(f.kind, IDX_KIND_MOTION);
	assert_int_equal(f.costume_id, id);
	assert_int_equal(idx_file_find(idx, id, IDX_DIR_ROOT, "idle01.mtn", &f), -ENOENT);
	idx_close(idx);
}

static void test_generated_files_have_no_asset(void **state)
{
	struct idx *idx = open_fresh();
	int64_t id = costume_with_files(idx);
	struct idx_file f;

	(void)state;
	assert_int_equal(idx_file_find(idx, id, IDX_DIR_ROOT, "model.json", &f), 0);
	assert_int_equal(f.asset_id, 0);
	assert_int_equal(f.kind, IDX_KIND_MODEL_JSON);
	idx_close(idx);
}

static void test_file_get_by_row_id(void **state)
{
	struct idx *idx = open_fresh();
	int64_t id = costume_with_files(idx);
	struct idx_file f, g;

	(void)state;
	assert_int_equal(idx_file_find(idx, id, IDX_DIR_ROOT, "x.physics.json", &f), 0);
	assert_int_equal(idx_file_get(idx, f.id, &g), 0);
	assert_string_equal(g.name, "x.physics.json");
	assert_int_equal(g.optional, 1);
	assert_int_equal(g.asset_id, f.asset_id);
	assert_int_equal(idx_file_get(idx, 99999, &g), -ENOENT);
	idx_close(idx);
}

static void test_file_list_keeps_the_stored_order(void **state)
{
	struct idx *idx = open_fresh();
	int64_t id = costume_with_files(idx);
	struct file_names n = { 0 };

	(void)state;
	assert_int_equal(idx_file_list(idx, id, -1, collect_file, &n), 0);
	assert_int_equal(n.n, 4);
	for (int i = 0; i < 4; i++)
		assert_string_equal(n.list[i], files4[i].name);
	memset(&n, 0, sizeof(n));
	assert_int_equal(idx_file_list(idx, id, IDX_DIR_ROOT, collect_file, &n), 0);
	assert_int_equal(n.n, 3);
	assert_string_equal(n.list[2], "x.physics.json");
	idx_close(idx);
}

static void test_files_store_replaces_the_list(void **state)
{
	struct idx *idx = open_fresh();
	int64_t id = costume_with_files(idx);
	struct file_names n = { 0 };
	struct idx_file f;
	const struct idx_file_in next[] = {
		{ IDX_DIR_TEXTURES, "t.png", IDX_KIND_TEXTURE, "live2d/chara/001_b", "t", 0 },
		files4[1],
	};

	(void)state;
	assert_int_equal(idx_costume_files_store(idx, id, next, 2), 0);
	assert_int_equal(idx_file_list(idx, id, -1, collect_file, &n), 0);
	assert_int_equal(n.n, 2);
	assert_string_equal(n.list[0], "t.png");
	assert_string_equal(n.list[1], "x.moc");
	assert_int_equal(idx_file_find(idx, id, IDX_DIR_MOTIONS, "idle01.mtn", &f), -ENOENT);
	idx_close(idx);
}

static void test_files_store_keeps_ids_of_files_that_stay(void **state)
{
	struct idx *idx = open_fresh();
	int64_t id = costume_with_files(idx);
	struct idx_file before, after;

	(void)state;
	assert_int_equal(idx_file_find(idx, id, IDX_DIR_MOTIONS, "idle01.mtn", &before), 0);
	assert_int_equal(idx_costume_files_store(idx, id, files4, 4), 0);
	assert_int_equal(idx_file_find(idx, id, IDX_DIR_MOTIONS, "idle01.mtn", &after), 0);
	assert_int_equal(after.id, before.id);
	assert_int_equal(after.asset_id, before.asset_id);
	idx_close(idx);
}

static void test_costumes_share_the_row_of_one_asset(void **state)
{
	struct idx *idx = open_fresh();
	int64_t b = costume_with_files(idx);
	struct idx_costume a;
	struct idx_file f;

	(void)state;
	assert_int_equal(idx_costume_find(idx, "jp", 0, -1, "001_a", &a), 0);
	assert_int_equal(idx_costume_files_store(idx, a.id, &files4[2], 1), 0);
	assert_int_equal(idx_file_find(idx, a.id, IDX_DIR_MOTIONS, "idle01.mtn", &f), 0);
	assert_int_equal(f.asset_id, motion_asset(idx, b));
	idx_close(idx);
}

/* ---- assets ---- */

static void test_new_asset_is_pending_with_unknown_size(void **state)
{
	struct idx *idx = open_fresh();
	struct idx_asset a;

	(void)state;
	assert_int_equal(idx_asset_get(idx, motion_asset(idx, costume_with_files(idx)), &a), 0);
	assert_int_equal(a.state, IDX_PENDING);
	assert_int_equal(a.size, -1);
	assert_string_equal(a.server, "jp");
	assert_string_equal(a.bundle, "live2d/chara/001_general");
	assert_string_equal(a.file, "idle01.mtn");
	assert_string_equal(a.sha256, "");
	assert_int_equal(idx_asset_get(idx, 99999, &a), -ENOENT);
	idx_close(idx);
}

static void test_probe_records_the_size(void **state)
{
	struct idx *idx = open_fresh();
	int64_t id = motion_asset(idx, costume_with_files(idx));
	struct idx_asset a;

	(void)state;
	assert_int_equal(idx_asset_mark_probed(idx, id, 500, 0, NULL), 0);
	assert_int_equal(idx_asset_get(idx, id, &a), 0);
	assert_int_equal(a.size, 500);
	assert_int_equal(a.state, IDX_PENDING);
	idx_close(idx);
}

static void test_probe_with_an_error_marks_failed(void **state)
{
	struct idx *idx = open_fresh();
	int64_t id = motion_asset(idx, costume_with_files(idx));
	struct idx_asset a;

	(void)state;
	assert_int_equal(idx_asset_mark_probed(idx, id, -1, ENOENT, "HTTP 404"), 0);
	assert_int_equal(idx_asset_get(idx, id, &a), 0);
	assert_int_equal(a.state, IDX_FAILED);
	assert_int_equal(a.err, ENOENT);
	assert_string_equal(a.error, "HTTP 404");
	idx_close(idx);
}

static void test_probe_leaves_a_completed_row_alone(void **state)
{
	struct idx *idx = open_fresh();
	int64_t id = motion_asset(idx, costume_with_files(idx));
	struct idx_asset a;

	(void)state;
	assert_int_equal(idx_asset_mark_completed(idx, id, 500, "ab12", "http://o/x", 7), 0);
	assert_int_equal(idx_asset_mark_probed(idx, id, 7, 0, NULL), 0);
	assert_int_equal(idx_asset_get(idx, id, &a), 0);
	assert_int_equal(a.size, 500);
	assert_int_equal(a.state, IDX_COMPLETED);
	idx_close(idx);
}

struct in_write {
	struct idx *idx, *other; /* other: a second connection, as another process has */
	int64_t id;
	int rc;                  /* what fn returns */
	enum idx_state seen;     /* the row's state through other, inside the write */
};

static int write_completed(void *arg)
{
	struct in_write *w = arg;
	struct idx_asset a;

	assert_int_equal(idx_asset_mark_completed(w->idx, w->id, 3, "ab12", "u", 7), 0);
	assert_int_equal(idx_asset_get(w->other, w->id, &a), 0);
	w->seen = a.state;
	return w->rc;
}

/* What fn writes is one step for everyone else: unseen until it returns,
 * then committed (0) or rolled back (an error, returned). */
static void test_write_is_one_step(void **state)
{
	struct idx *idx = open_fresh(), *other;
	struct in_write w = { idx, NULL, motion_asset(idx, costume_with_files(idx)), -EIO, 0 };
	struct idx_asset a;
	int recreated;

	(void)state;
	assert_int_equal(idx_open(&other, path, &recreated), 0);
	w.other = other;
	assert_int_equal(idx_write(idx, write_completed, &w), -EIO);
	assert_int_equal(w.seen, IDX_PENDING);
	assert_int_equal(idx_asset_get(other, w.id, &a), 0);
	assert_int_equal(a.state, IDX_PENDING);

	w.rc = 0;
	assert_int_equal(idx_write(idx, write_completed, &w), 0);
	assert_int_equal(w.seen, IDX_PENDING);
	assert_int_equal(idx_asset_get(other, w.id, &a), 0);
	assert_int_equal(a.state, IDX_COMPLETED);
	assert_int_equal(a.stamp, 7);
	idx_close(other);
	idx_close(idx);
}

static void test_downloading_records_url_and_progress(void **state)
{
	struct idx *idx = open_fresh();
	int64_t id = motion_asset(idx, costume_with_files(idx));
	struct idx_asset a;

	(void)state;
	assert_int_equal(idx_asset_mark_downloading(idx, id, "http://o/x"), 0);
	assert_int_equal(idx_asset_mark_progress(idx, id, 100, 500), 0);
	assert_int_equal(idx_asset_get(idx, id, &a), 0);
	assert_int_equal(a.state, IDX_DOWNLOADING);
	assert_int_equal(a.bytes_done, 100);
	assert_int_equal(a.size, 500);
	assert_string_equal(a.url, "http://o/x");
	idx_close(idx);
}

/* A download that read the row before another process completed it does
 * not take the row back. */
static void test_downloading_leaves_a_completed_row_alone(void **state)
{
	struct idx *idx = open_fresh();
	int64_t id = motion_asset(idx, costume_with_files(idx));
	struct idx_asset a;

	(void)state;
	assert_int_equal(idx_asset_mark_completed(idx, id, 500, "ab12", "u", 7), 0);
	assert_int_equal(idx_asset_mark_downloading(idx, id, "v"), -ENOENT);
	assert_int_equal(idx_asset_get(idx, id, &a), 0);
	assert_int_equal(a.state, IDX_COMPLETED);
	assert_int_equal(a.stamp, 7);
	assert_string_equal(a.url, "u");
	idx_close(idx);
}

static void test_reset_downloading_returns_rows_to_pending(void **state)
{
	struct idx *idx = open_fresh();
	int64_t id = motion_asset(idx, costume_with_files(idx));
	struct idx_asset a;
	int n = 0;

	(void)state;
	assert_int_equal(idx_asset_mark_downloading(idx, id, "u"), 0);
	assert_int_equal(idx_asset_mark_progress(idx, id, 100, 500), 0);
	assert_int_equal(idx_asset_reset_downloading(idx, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(idx_asset_get(idx, id, &a), 0);
	assert_int_equal(a.state, IDX_PENDING);
	assert_int_equal(a.bytes_done, 0);
	assert_int_equal(idx_asset_reset_downloading(idx, &n), 0);
	assert_int_equal(n, 0);
	idx_close(idx);
}

static void test_failed_keeps_errno_reason_and_url(void **state)
{
	struct idx *idx = open_fresh();
	int64_t id = motion_asset(idx, costume_with_files(idx));
	struct idx_asset a;

	(void)state;
	assert_int_equal(idx_asset_mark_failed(idx, id, EIO, "HTTP 503", "http://o/x"), 0);
	assert_int_equal(idx_asset_get(idx, id, &a), 0);
	assert_int_equal(a.state, IDX_FAILED);
	assert_int_equal(a.err, EIO);
	assert_string_equal(a.error, "HTTP 503");
	assert_string_equal(a.url, "http://o/x");
	idx_close(idx);
}

static void test_completed_clears_the_last_error(void **state)
{
	struct idx *idx = open_fresh();
	int64_t id = motion_asset(idx, costume_with_files(idx));
	struct idx_asset a;

	(void)state;
	assert_int_equal(idx_asset_mark_failed(idx, id, EIO, "HTTP 503", "u"), 0);
	assert_int_equal(idx_asset_mark_completed(idx, id, 500, "ab12", "http://o/x", 7), 0);
	assert_int_equal(idx_asset_get(idx, id, &a), 0);
	assert_int_equal(a.state, IDX_COMPLETED);
	assert_int_equal(a.size, 500);
	assert_int_equal(a.bytes_done, 500);
	assert_string_equal(a.sha256, "ab12");
	assert_int_equal(a.err, 0);
	assert_string_equal(a.error, "");
	idx_close(idx);
}

static void test_pending_forgets_size_and_hash(void **state)
{
	struct idx *idx = open_fresh();
	int64_t id = motion_asset(idx, costume_with_files(idx));
	struct idx_asset a;

	(void)state;
	assert_int_equal(idx_asset_mark_completed(idx, id, 500, "ab12", "u", 7), 0);
	assert_int_equal(idx_asset_mark_pending(idx, id), 0);
	assert_int_equal(idx_asset_get(idx, id, &a), 0);
	assert_int_equal(a.state, IDX_PENDING);
	assert_int_equal(a.size, -1);
	assert_string_equal(a.sha256, "");
	idx_close(idx);
}

static int64_t version_of(struct idx *idx, int64_t id)
{
	struct idx_asset a;
	assert_int_equal(idx_asset_get(idx, id, &a), 0);
	return a.version;
}

static void test_version_goes_up_only_for_other_bytes(void **state)
{
	struct idx *idx = open_fresh();
	int64_t id = motion_asset(idx, costume_with_files(idx));
	struct idx_asset a;

	(void)state;
	assert_int_equal(version_of(idx, id), 0);
	assert_int_equal(idx_asset_mark_probed(idx, id, 500, 0, NULL), 0);
	assert_int_equal(idx_asset_mark_completed(idx, id, 500, "ab12", "u", 7), 0);
	assert_int_equal(version_of(idx, id), 0);
	/* Evicted: the version remembers its bytes; the same bytes again
	 * are the same version. */
	assert_int_equal(idx_asset_mark_pending(idx, id), 0);
	assert_int_equal(idx_asset_get(idx, id, &a), 0);
	assert_int_equal(a.ver_size, 500);
	assert_string_equal(a.ver_sha256, "ab12");
	assert_int_equal(idx_asset_mark_completed(idx, id, 500, "ab12", "u", 7), 0);
	assert_int_equal(version_of(idx, id), 0);
	/* Same size, other hash. */
	assert_int_equal(idx_asset_mark_pending(idx, id), 0);
	assert_int_equal(idx_asset_mark_completed(idx, id, 500, "cd34", "u", 7), 0);
	assert_int_equal(version_of(idx, id), 1);
	/* A probe that finds another size is a new version at once; its
	 * download is that version. */
	assert_int_equal(idx_asset_mark_pending(idx, id), 0);
	assert_int_equal(idx_asset_mark_probed(idx, id, 700, 0, NULL), 0);
	assert_int_equal(version_of(idx, id), 2);
	assert_int_equal(idx_asset_mark_completed(idx, id, 700, "ef56", "u", 7), 0);
	assert_int_equal(version_of(idx, id), 2);
	idx_close(idx);
}

/* A file found by a rebuild is trusted only once the origin's size agrees. */
static void test_adopt_waits_for_the_origin(void **state)
{
	struct idx *idx = open_fresh();
	struct idx_asset a;

	(void)state;
	assert_int_equal(idx_asset_adopt(idx, "jp", "live2d/chara/009_z", "f.png", 9, "ff", 42), 0);
	assert_int_equal(idx_asset_find(idx, "jp", "live2d/chara/009_z", "f.png", &a), 0);
	assert_int_equal(a.state, IDX_PENDING);
	assert_int_equal(a.size, -1);
	assert_int_equal(a.found, 9);
	assert_int_equal(idx_asset_find(idx, "en", "live2d/chara/009_z", "f.png", &a), -ENOENT);

	/* The origin says 9 bytes: taken back, hash and stamp as found. */
	assert_int_equal(idx_asset_mark_probed(idx, a.id, 9, 0, NULL), 0);
	assert_int_equal(idx_asset_get(idx, a.id, &a), 0);
	assert_int_equal(a.state, IDX_COMPLETED);
	assert_int_equal(a.size, 9);
	assert_int_equal(a.found, -1);
	assert_string_equal(a.sha256, "ff");
	assert_int_equal(a.stamp, 42);

	/* The origin says 18 (a truncated file was found): not taken back. */
	assert_int_equal(idx_asset_adopt(idx, "jp", "b", "half", 9, "ee", 43), 0);
	assert_int_equal(idx_asset_find(idx, "jp", "b", "half", &a), 0);
	assert_int_equal(idx_asset_mark_probed(idx, a.id, 18, 0, NULL), 0);
	assert_int_equal(idx_asset_get(idx, a.id, &a), 0);
	assert_int_equal(a.state, IDX_PENDING);
	assert_int_equal(a.size, 18);
	assert_int_equal(a.found, -1);
	assert_string_equal(a.sha256, "");
	assert_int_equal(idx_asset_mark_probed(idx, a.id, 9, 0, NULL), 0);
	assert_int_equal(idx_asset_get(idx, a.id, &a), 0);
	assert_int_equal(a.state, IDX_PENDING);

	/* A download started forgets what was found. */
	assert_int_equal(idx_asset_adopt(idx, "jp", "b", "dl", 5, "dd", 44), 0);
	assert_int_equal(idx_asset_find(idx, "jp", "b", "dl", &a), 0);
	assert_int_equal(idx_asset_mark_downloading(idx, a.id, "u"), 0);
	assert_int_equal(idx_asset_mark_probed(idx, a.id, 5, 0, NULL), 0);
	assert_int_equal(idx_asset_get(idx, a.id, &a), 0);
	assert_int_equal(a.state, IDX_DOWNLOADING);
	idx_close(idx);
}

/* A completed row made as a rebuild and a probe make one. */
static void adopt_completed(struct idx *idx, const char *server, const char *bundle,
			    const char *file)
{
	struct idx_asset a;

	assert_int_equal(idx_asset_adopt(idx, server, bundle, file, 1, "a", 1), 0);
	assert_int_equal(idx_asset_find(idx, server, bundle, file, &a), 0);
	assert_int_equal(idx_asset_mark_probed(idx, a.id, 1, 0, NULL), 0);
}

static int count_asset(void *arg, const struct idx_asset *a)
{
	(void)a;
	++*(int *)arg;
	return 0;
}

static void test_asset_list_by_server_and_state(void **state)
{
	struct idx *idx = open_fresh();
	int n;

	(void)state;
	adopt_completed(idx, "jp", "b", "1");
	adopt_completed(idx, "jp", "b", "2");
	adopt_completed(idx, "en", "b", "1");
	struct idx_asset a;
	assert_int_equal(idx_asset_find(idx, "jp", "b", "2", &a), 0);
	assert_int_equal(idx_asset_mark_pending(idx, a.id), 0);
	n = 0;
	assert_int_equal(idx_asset_list(idx, "jp", -1, count_asset, &n), 0);
	assert_int_equal(n, 2);
	n = 0;
	assert_int_equal(idx_asset_list(idx, "jp", IDX_COMPLETED, count_asset, &n), 0);
	assert_int_equal(n, 1);
	n = 0;
	assert_int_equal(idx_asset_list(idx, NULL, -1, count_asset, &n), 0);
	assert_int_equal(n, 3); /* NULL: every server */
	n = 0;
	assert_int_equal(idx_asset_list(idx, NULL, IDX_COMPLETED, count_asset, &n), 0);
	assert_int_equal(n, 2);
	idx_close(idx);
}

static void test_touch_is_written_in_a_batch(void **state)
{
	struct idx *idx = open_fresh();
	int64_t id = motion_asset(idx, costume_with_files(idx));
	struct idx_asset a;

	(void)state;
	assert_int_equal(idx_asset_get(idx, id, &a), 0);
	int64_t before = a.last_access;
	assert_int_equal(idx_asset_touch(idx, id), 0);
	assert_int_equal(idx_asset_touch(idx, id), 0);
	/* Recorded, not written: a read costs no SQL write. */
	assert_int_equal(idx_asset_get(idx, id, &a), 0);
	assert_int_equal(a.last_access, before);
	assert_int_equal(idx_asset_touch_flush(idx), 2);
	assert_int_equal(idx_asset_get(idx, id, &a), 0);
	assert_true(a.last_access >= idx_now() - 1);
	assert_int_equal(idx_asset_touch_flush(idx), 0);
	idx_close(idx);
}

static void test_touch_is_written_before_an_lru_listing_and_at_close(void **state)
{
	struct idx *idx = open_fresh();
	int64_t costume = costume_with_files(idx), id = motion_asset(idx, costume);
	struct idx_asset a;
	struct idx_file f;
	int n = 0;

	(void)state;
	assert_int_equal(idx_asset_touch(idx, id), 0);
	assert_int_equal(idx_asset_list(idx, NULL, -1, count_asset, &n), 0);
	assert_int_equal(idx_asset_get(idx, id, &a), 0);
	assert_true(a.last_access >= idx_now() - 1);

	assert_int_equal(idx_file_find(idx, costume, IDX_DIR_ROOT, "x.moc", &f), 0);
	assert_int_equal(idx_asset_touch(idx, f.asset_id), 0);
	idx_close(idx);
	assert_int_equal(idx_open(&idx, path, NULL), 0);
	assert_int_equal(idx_asset_get(idx, f.asset_id, &a), 0);
	assert_true(a.last_access >= idx_now() - 1);
	idx_close(idx);
}

static void test_costume_status_counts_asset_files(void **state)
{
	struct idx *idx = open_fresh();
	int64_t id = costume_with_files(idx), asset = motion_asset(idx, id);
	struct idx_costume_status st;
	struct idx_file moc;

	(void)state;
	assert_int_equal(idx_file_find(idx, id, IDX_DIR_ROOT, "x.moc", &moc), 0);
	assert_int_equal(idx_asset_mark_completed(idx, asset, 500, "ab12", "u", 7), 0);
	assert_int_equal(idx_asset_mark_failed(idx, moc.asset_id, EIO, "HTTP 503", "u"), 0);
	assert_int_equal(idx_costume_status(idx, id, &st), 0);
	assert_int_equal(st.files_total, 3); /* model.json has no asset */
	assert_int_equal(st.files_done, 1);
	assert_int_equal(st.files_failed, 1);
	assert_int_equal(st.bytes_done, 500);
	idx_close(idx);
}

static void test_state_names(void **state)
{
	(void)state;
	assert_string_equal(idx_state_name(IDX_PENDING), "pending");
	assert_string_equal(idx_state_name(IDX_DOWNLOADING), "downloading");
	assert_string_equal(idx_state_name(IDX_COMPLETED), "completed");
	assert_string_equal(idx_state_name(IDX_FAILED), "failed");
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_doc_never_stored_is_enoent),
		T(test_doc_get_returns_the_stored_body_and_time),
		T(test_doc_put_replaces_the_body),
		T(test_doc_fetched_at_alone),
		T(test_reopen_keeps_what_was_stored),
		T(test_garbage_is_moved_aside),
		T(test_open_failures_keep_the_file),
		T(test_catalogue_present_per_server),
		T(test_character_names_in_lang_japanese_where_null),
		T(test_character_without_names_shows_its_id),
		T(test_shared_display_names_get_their_id),
		T(test_characters_without_costumes_are_not_listed),
		T(test_character_find_in_the_chosen_lang),
		T(test_character_names_gives_all_five),
		T(test_costumes_of_a_character_in_rank_order),
		T(test_costumes_of_the_server_by_name),
		T(test_costume_list_stops_when_fn_says_so),
		T(test_costume_display_falls_back),
		T(test_costume_find_of_another_character_is_enoent),
		T(test_catalogue_store_keeps_ids_of_costumes_that_stay),
		T(test_catalogue_store_deletes_gone_costumes),
		T(test_catalogue_of_one_server_leaves_the_others),
		T(test_deleted_costume_id_is_never_given_again),
		T(test_catalogue_generation_goes_up_with_each_store),
		T(test_version_changes_with_any_write),
		T(test_files_store_marks_the_costume_listed),
		T(test_catalogue_store_marks_costumes_unlisted),
		T(test_file_find_looks_in_one_folder),
		T(test_generated_files_have_no_asset),
		T(test_file_get_by_row_id),
		T(test_file_list_keeps_the_stored_order),
		T(test_files_store_replaces_the_list),
		T(test_files_store_keeps_ids_of_files_that_stay),
		T(test_costumes_share_the_row_of_one_asset),
		T(test_write_is_one_step),
		T(test_downloading_leaves_a_completed_row_alone),
		T(test_new_asset_is_pending_with_unknown_size),
		T(test_probe_records_the_size),
		T(test_probe_with_an_error_marks_failed),
		T(test_probe_leaves_a_completed_row_alone),
		T(test_downloading_records_url_and_progress),
		T(test_reset_downloading_returns_rows_to_pending),
		T(test_failed_keeps_errno_reason_and_url),
		T(test_completed_clears_the_last_error),
		T(test_pending_forgets_size_and_hash),
		T(test_version_goes_up_only_for_other_bytes),
		T(test_adopt_waits_for_the_origin),
		T(test_asset_list_by_server_and_state),
		T(test_touch_is_written_in_a_batch),
	T(test_touch_is_written_before_an_lru_listing_and_at_close),
	T(test_costume_status_counts_asset_files),
		T(test_state_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
