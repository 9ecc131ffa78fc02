/*
 * cmd_care.c: `l2dfs gc` and `l2dfs verify`, the cache care policy of
 * fetch/ run from the command line (no network; a mount may run).
 */
#include "cmd_common.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

struct care_opts {
	int64_t max_size;
	long low_pct;
	int repair, json;
};

static int gc_flag(void *arg, const char *name, const char *value)
{
	struct care_opts *o = arg;

	if (strcmp(name, "--low-water") == 0)
		return cmd_parse_int(name, value, 1, 100, &o->low_pct);
	if (cli_parse_size(value, &o->max_size) < 0) {
		fprintf(stderr, "l2dfs gc: bad value for --max-size: '%s' (a size: 500M, 10G...)\n",
			value);
		return -EINVAL;
	}
	return 0;
}

/* ---- gc ---- */

static const char gc_usage[] =
	"usage: l2dfs gc [-o OPTIONS] --max-size SIZE [--low-water PCT] [--json]\n"
	"\n"
	"Evict least recently used files from the cache (every server) until it\n"
	"holds at most PCT % (default 90) of SIZE (123, 10K, 512M, 4G). Files a\n"
	"mount has open, downloads in flight, and files hardlinked elsewhere (by\n"
	"`l2dfs pull`: evicting them would free nothing) are kept. Evicted files\n"
	"are downloaded again when next read. The mount does the same after each\n"
	"download with -o cache_max=SIZE.\n"
	"Exit status: 0 when the cache ends at most SIZE, 5 when kept files hold it\n"
	"above.\n";

int cli_cmd_gc(int argc, char **argv)
{
	static const char *const value_flags[] = { "--max-size", "--low-water", NULL };
	struct care_opts o = { -1, CARE_LOW_WATER, 0, 0 };
	const struct cmd_switch sw[] = { { "--json", &o.json }, { NULL, NULL } };
	const struct cmd_spec spec = { gc_usage, sw, value_flags, gc_flag, &o, 0, 0 };
	struct care_report r;
	struct cli_settings s;
	struct cli_env env;
	char b[5][32];
	int npos, rc = cmd_parse_args(argc, argv, &spec, &s, NULL, &npos);

	if (rc >= 0)
		return rc;
	if (o.max_size < 0) {
		fprintf(stderr, "l2dfs gc: --max-size SIZE is required\n");
		return CLI_USAGE;
	}
	rc = cli_env_open(&env, &s, 0);
	if (rc)
		return rc;
	rc = care_gc(env.idx, env.cache, o.max_size, (int)o.low_pct, &r);
	cli_env_close(&env);
	if (rc < 0) {
		fprintf(stderr, "l2dfs gc: %s\n", strerror(-rc));
		return CLI_CACHE;
	}
	if (o.json) {
		cJSON *j = cJSON_CreateObject();
		cJSON_AddNumberToObject(j, "max_size", (double)o.max_size);
		cJSON_AddNumberToObject(j, "total_before", (double)r.total_before);
		cJSON_AddNumberToObject(j, "total_after", (double)r.total_after);
		cJSON_AddNumberToObject(j, "freed", (double)r.freed);
		cJSON_AddNumberToObject(j, "evicted", r.evicted);
		cJSON_AddNumberToObject(j, "kept_open", r.kept_open);
		cJSON_AddNumberToObject(j, "kept_open_bytes", (double)r.kept_open_bytes);
		cJSON_AddNumberToObject(j, "kept_hardlinked", r.kept_linked);
		cJSON_AddNumberToObject(j, "kept_hardlinked_bytes", (double)r.kept_linked_bytes);
		cJSON_AddNumberToObject(j, "in_flight", r.in_flight);
		cmd_json_line(j);
	} else {
		printf("cache: %s before, %s after (limit %s)\n"
		       "evicted: %d files, %s freed\n"
		       "kept open: %d files (%s)\n"
		       "kept hardlinked elsewhere: %d files (%s)\n"
		       "downloads in flight: %d\n",
		       cmd_human_size(r.total_before, b[0]), cmd_human_size(r.total_after, b[1]),
		       cmd_human_size(o.max_size, b[2]), r.evicted, cmd_human_size(r.freed, b[3]),
		       r.kept_open, cmd_human_size(r.kept_open_bytes, b[4]), r.kept_linked,
		       cmd_human_size(r.kept_linked_bytes, b[0]), r.in_flight);
	}
	return r.total_after <= o.max_size ? CLI_OK : CLI_FAILED;
}

/* ---- verify ---- */

struct verify_out {
	struct cli_env *env;
	int json;
};

static void print_problem(void *arg, const struct idx_asset *a,
			  enum care_verify_problem problem, int64_t found_size, int repaired)
{
	static const char *const names[] = { "missing", "truncated", "corrupted", "not_file" };
	struct verify_out *v = arg;
	char path[PATH_MAX] = "";

	cache_asset_path(v->env->cache, a->server, a->bundle, a->file, path, sizeof(path));
	if (v->json) {
		cJSON *j = cJSON_CreateObject();
		cJSON_AddStringToObject(j, "event", "problem");
		cJSON_AddStringToObject(j, "problem", names[problem]);
		cJSON_AddStringToObject(j, "server", a->server);
		cJSON_AddStringToObject(j, "bundle", a->bundle);
		cJSON_AddStringToObject(j, "file", a->file);
		cJSON_AddStringToObject(j, "cache_path", path);
		cJSON_AddNumberToObject(j, "expected_size", (double)a->size);
		cJSON_AddNumberToObject(j, "found_size", (double)found_size);
		cJSON_AddBoolToObject(j, "repaired", repaired);
		cmd_json_line(j);
		return;
	}
	printf("%-9s %s", names[problem], path);
	if (problem == CARE_VERIFY_TRUNCATED)
		printf(" (%lld bytes, the index says %lld)", (long long)found_size, (long long)a->size);
	printf("%s\n", repaired ? ": removed, downloaded again when next read" : "");
}

static const char verify_usage[] =
	"usage: l2dfs verify [-o OPTIONS] [--repair] [--json]\n"
	"\n"
	"Hash every completed file of the cache (every server) and compare it with\n"
	"the index: missing, truncated (the size differs), corrupted (the SHA-256\n"
	"differs) files and not_file (a folder or other odd thing at a file's\n"
	"path) are listed. --repair removes them and marks them\n"
	"pending, so the next read downloads them again. --json prints\n"
	"{\"event\": \"problem\", ...} lines and a final {\"event\": \"done\", ...}.\n"
	"Exit status: 0 only if every file was sound; 5 if any was not, repaired\n"
	"or not.\n";

int cli_cmd_verify(int argc, char **argv)
{
	struct care_opts o = { 0, 0, 0, 0 };
	const struct cmd_switch sw[] = { { "--repair", &o.repair },
					 { "--json", &o.json },
					 { NULL, NULL } };
	const struct cmd_spec spec = { verify_usage, sw, NULL, NULL, NULL, 0, 0 };
	struct care_verify_report r;
	struct cli_settings s;
	struct cli_env env;
	char b[32];
	int npos, rc = cmd_start(argc, argv, &spec, &s, NULL, &npos, &env, 0);

	if (rc >= 0)
		return rc;
	struct verify_out v = { &env, o.json };
	rc = care_verify(env.idx, env.cache, o.repair, print_problem, &v, &r);
	cli_env_close(&env);
	if (rc < 0) {
		fprintf(stderr, "l2dfs verify: %s\n", strerror(-rc));
		return CLI_CACHE;
	}
	int bad = r.missing + r.truncated + r.corrupted + r.not_file;
	if (o.json) {
		cJSON *j = cJSON_CreateObject();
		cJSON_AddStringToObject(j, "event", "done");
		cJSON_AddNumberToObject(j, "checked", r.checked);
		cJSON_AddNumberToObject(j, "bytes", (double)r.bytes);
		cJSON_AddNumberToObject(j, "missing", r.missing);
		cJSON_AddNumberToObject(j, "truncated", r.truncated);
		cJSON_AddNumberToObject(j, "corrupted", r.corrupted);
		cJSON_AddNumberToObject(j, "not_file", r.not_file);
		cJSON_AddNumberToObject(j, "repaired", r.repaired);
		cJSON_AddNumberToObject(j, "found", r.found);
		cJSON_AddBoolToObject(j, "sound", !bad);
		cmd_json_line(j);
	} else {
		printf("%d files checked (%s): %s%d missing, %d truncated, %d corrupted,"
		       " %d not a file", r.checked, cmd_human_size(r.bytes, b),
		       bad ? "" : "all sound; ", r.missing, r.truncated, r.corrupted, r.not_file);
		if (o.repair && bad)
			printf("; %d repaired", r.repaired);
		if (r.found)
			printf("; %d files found by an index rebuild are not served until the"
			       " origin's size for each agrees", r.found);
		putchar('\n');
	}
	return bad ? CLI_FAILED : CLI_OK;
}
