/*
 * cmd_status.c: `l2dfs status` (what the index knows about a file or a
 * costume, no network) and `l2dfs retry` (download again what failed).
 */
#include "cmd_common.h"

#include "../fs/fs.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* ---- naming a costume or a file ---- */

struct target {
	struct idx_costume c;
	int is_file;
	struct idx_file f;
	char rel[IDX_NAME_MAX + 16]; /* "textures/texture_00.png" */
};

static const char *rel_of(const struct idx_file *f, char *buf, size_t len)
{
	snprintf(buf, len, "%s%s%s", idx_dir_names[f->dir], f->dir ? "/" : "", f->name);
	return buf;
}

/*
 * COSTUME, COSTUME/rel, or any path ending in ".../<costume>[/<rel>]" (a
 * path inside a mount, taken by its last components: nothing is opened).
 * -ENOENT with a message when it names nothing the index knows.
 */
static int find_target(struct cli_env *env, const struct cli_settings *s, const char *arg,
		       struct target *t)
{
	char buf[PATH_MAX], *comp[PATH_MAX / 2], *save;
	int n = 0;

	snprintf(buf, sizeof(buf), "%s", arg);
	for (char *c = strtok_r(buf, "/", &save); c; c = strtok_r(NULL, "/", &save))
		if (strcmp(c, ".") != 0)
			comp[n++] = c;
	memset(t, 0, sizeof(*t));
	for (int k = 1; k <= 3 && k <= n; k++) {
		if (idx_costume_find(env->idx, s->server, s->lang, -1, comp[n - k], &t->c) < 0)
			continue;
		if (k == 1)
			return 0;
		enum idx_dir dir = IDX_DIR_ROOT;
		if (k == 3) {
			int d;
			for (d = 1; d < IDX_NDIRS && strcmp(comp[n - 2], idx_dir_names[d]) != 0; d++)
				;
			if (d == IDX_NDIRS)
				continue;
			dir = (enum idx_dir)d;
		}
		if (idx_file_find(env->idx, t->c.id, dir, comp[n - 1], &t->f) < 0) {
			fprintf(stderr, "l2dfs: %s: no such file in %s%s\n", arg, t->c.live2d_name,
				t->c.files_listed ? "" : " (its file list is not known yet: read it"
							 " through a mount or pull it)");
			return -ENOENT;
		}
		t->is_file = 1;
		rel_of(&t->f, t->rel, sizeof(t->rel));
		return 0;
	}
	fprintf(stderr, "l2dfs: %s: no costume of server %s by that name in the index%s\n", arg,
		s->server, idx_catalogue_present(env->idx, s->server) ? "" : " (it has no catalogue yet)");
	return -ENOENT;
}

/* A costume's asset-backed files with their rows. */
struct costume_file {
	char rel[IDX_NAME_MAX + 16];
	int64_t asset_id;
	int optional;
	struct idx_asset a;
};

struct file_list {
	struct costume_file *v;
	size_t n, cap;
};

static int collect_file(void *arg, const struct idx_file *f)
{
	struct file_list *l = arg;

	if (!f->asset_id)
		return 0;
	if (util_grow(&l->v, &l->cap, l->n + 1, sizeof(*l->v)) < 0)
		return -ENOMEM;
	struct costume_file *x = &l->v[l->n++];
	rel_of(f, x->rel, sizeof(x->rel));
	x->asset_id = f->asset_id;
	x->optional = f->optional;
	return 0;
}

/* The costume's files and, once the listing is over, their asset rows. */
static int costume_files(struct cli_env *env, int64_t costume_id, struct file_list *l)
{
	int rc = idx_file_list(env->idx, costume_id, -1, collect_file, l);

	for (size_t i = 0; rc == 0 && i < l->n; i++)
		rc = idx_asset_get(env->idx, l->v[i].asset_id, &l->v[i].a);
	return rc;
}

/* Failed in the sense of fetch_costume_status(): an absent optional file is not. */
static int file_failed(const struct costume_file *f)
{
	return f->a.state == IDX_FAILED && !fetch_asset_absent(f->optional, &f->a);
}

/* ---- status ---- */

static int retry_flag(void *arg, const char *name, const char *value)
{
	return cmd_parse_int(name, value, 1, 64, arg);
}

static int print_file_status(struct cli_env *env, const struct target *t, int json)
{
	char path[PATH_MAX] = "";
	struct idx_asset a;
	const char *state = "generated";
	int rc = 0;

	memset(&a, 0, sizeof(a));
	a.size = -1;
	if (t->f.asset_id) {
		rc = idx_asset_get(env->idx, t->f.asset_id, &a);
		if (rc < 0)
			return rc;
		state = idx_state_name(a.state);
		cache_asset_path(env->cache, a.server, a.bundle, a.file, path, sizeof(path));
	}
	if (json) {
		cJSON *j = cJSON_CreateObject();
		cJSON_AddStringToObject(j, "costume", t->c.live2d_name);
		cJSON_AddStringToObject(j, "rel_path", t->rel);
		cJSON_AddStringToObject(j, "state", state);
		cJSON_AddNumberToObject(j, "progress", t->f.asset_id ? fetch_asset_progress(&a) : 100);
		cJSON_AddNumberToObject(j, "size", (double)a.size);
		cJSON_AddStringToObject(j, "cache_path", path);
		cJSON_AddStringToObject(j, "sha256", a.sha256);
		cJSON_AddStringToObject(j, "error", a.error);
		cJSON_AddStringToObject(j, "url", a.url);
		cmd_json_line(j);
		return 0;
	}
	printf("file:       %s/%s\n", t->c.live2d_name, t->rel);
	printf("state:      %s\n", state);
	if (!t->f.asset_id) {
		printf("(made from the catalogue when read; nothing is downloaded)\n");
		return 0;
	}
	printf("progress:   %d\n", fetch_asset_progress(&a));
	printf("size:       %lld\n", (long long)a.size);
	printf("cache_path: %s\n", path);
	printf("sha256:     %s\n", a.sha256);
	printf("error:      %s\n", a.error);
	printf("url:        %s\n", a.url);
	return 0;
}

/* {"rel_path", "error", "url"} of each file that pred holds for. */
static cJSON *file_array(const struct file_list *l, int (*pred)(const struct costume_file *))
{
	cJSON *arr = cJSON_CreateArray();

	for (size_t i = 0; i < l->n; i++) {
		if (!pred(&l->v[i]))
			continue;
		cJSON *f = cJSON_CreateObject();
		cJSON_AddStringToObject(f, "rel_path", l->v[i].rel);
		cJSON_AddStringToObject(f, "error", l->v[i].a.error);
		cJSON_AddStringToObject(f, "url", l->v[i].a.url);
		cJSON_AddItemToArray(arr, f);
	}
	return arr;
}

static int file_absent(const struct costume_file *f)
{
	return fetch_asset_absent(f->optional, &f->a);
}

static void print_costume_json(const struct target *t, const struct fetch_costume_status *cs,
			       const struct file_list *l)
{
	const struct idx_costume_status *st = &cs->st;
	cJSON *j = cJSON_CreateObject();

	cJSON_AddStringToObject(j, "costume", t->c.live2d_name);
	cJSON_AddStringToObject(j, "name", t->c.display);
	cJSON_AddBoolToObject(j, "listed", t->c.files_listed);
	cJSON_AddStringToObject(j, "state", cs->state);
	cJSON_AddNumberToObject(j, "files_done", st->files_done);
	cJSON_AddNumberToObject(j, "files_total", st->files_total);
	cJSON_AddNumberToObject(j, "files_failed", st->files_failed);
	cJSON_AddNumberToObject(j, "files_absent", cs->files_absent);
	cJSON_AddNumberToObject(j, "bytes_done", (double)st->bytes_done);
	cJSON_AddNumberToObject(j, "bytes_total", (double)st->bytes_total);
	cJSON_AddItemToObject(j, "failed", file_array(l, file_failed));
	cJSON_AddItemToObject(j, "absent", file_array(l, file_absent));
	cmd_json_line(j);
}

static void print_costume_text(const struct target *t, const struct fetch_costume_status *cs,
			       const struct file_list *l)
{
	const struct idx_costume_status *st = &cs->st;
	char b1[32], b2[32];

	printf("costume: %s%s%s%s\n", t->c.live2d_name, t->c.display[0] ? " (" : "",
	       t->c.display, t->c.display[0] ? ")" : "");
	printf("state:   %s\n", cs->state);
	if (!t->c.files_listed)
		printf("files:   not listed yet (read it through a mount or pull it)\n");
	else
		printf("files:   %d/%d done, %d failed, %d absent\n", st->files_done,
		       st->files_total, st->files_failed, cs->files_absent);
	printf("bytes:   %lld/%lld (%s of %s known)\n", (long long)st->bytes_done,
	       (long long)st->bytes_total, cmd_human_size(st->bytes_done, b1),
	       cmd_human_size(st->bytes_total, b2));
	for (size_t i = 0; i < l->n; i++)
		if (file_failed(&l->v[i]))
			printf("failed:  %s: %s\n", l->v[i].rel, l->v[i].a.error);
	for (size_t i = 0; i < l->n; i++)
		if (file_absent(&l->v[i]))
			printf("absent:  %s (not on the origin)\n", l->v[i].rel);
}

static int print_costume_status(struct cli_env *env, const struct target *t, int json)
{
	struct fetch_costume_status cs;
	struct file_list l = { 0 };
	int rc = fetch_costume_status(env->idx, t->c.id, &cs);

	if (rc == 0)
		rc = costume_files(env, t->c.id, &l);
	if (rc == 0 && json)
		print_costume_json(t, &cs, &l);
	else if (rc == 0)
		print_costume_text(t, &cs, &l);
	free(l.v);
	return rc;
}

static const char status_usage[] =
	"usage: l2dfs status [-o OPTIONS] [--json] PATH|COSTUME\n"
	"\n"
	"What the index knows, from the cache alone (no network; a mount may run\n"
	"or not). PATH is a file or costume folder inside a mount\n"
	"(.../costumes/<costume>/<file>, .../characters/<name>/<costume>/<file>; only\n"
	"its last components count, so the mount need not be there), or COSTUME/<file>.\n"
	"  a file:    state (pending|downloading|completed|failed), progress 0-100,\n"
	"             size, cache_path, sha256, error, url (the origin or mirror)\n"
	"  a costume: state (completed: every file the origin has is cached, failed:\n"
	"             some failed, partial: some cached, pending: none), files\n"
	"             done/total, bytes done/total, each failed file and why, each\n"
	"             absent one (an optional physics or icon the origin lacks)\n"
	"--json prints one object. Exit status: 0, or 1 if the index knows no such\n"
	"costume or file.\n";

int cli_cmd_status(int argc, char **argv)
{
	int json = 0;
	const struct cmd_switch sw[] = { { "--json", &json }, { NULL, NULL } };
	const struct cmd_spec spec = { status_usage, sw, NULL, NULL, NULL, 1, 1 };
	struct cli_settings s;
	struct cli_env env;
	struct target t;
	char *pos[1];
	int npos, rc = cmd_start(argc, argv, &spec, &s, pos, &npos, &env, 0);

	if (rc >= 0)
		return rc;
	rc = CLI_OK;
	if (find_target(&env, &s, pos[0], &t) < 0)
		rc = CLI_USAGE;
	else if ((t.is_file ? print_file_status(&env, &t, json)
			    : print_costume_status(&env, &t, json)) < 0)
		rc = CLI_CACHE;
	cli_env_close(&env);
	return rc;
}

/* ---- retry ---- */

struct retry_item {
	char what[IDX_BUNDLE_MAX + IDX_NAME_MAX + 32];
	int64_t asset_id;
	int err; /* the outcome: 0, or a negative errno */
	char error[IDX_TEXT_MAX + 1];
};

struct retry {
	struct cli_env *env;
	struct retry_item *v;
	size_t n, cap;
	int json, cancelled;
	pthread_mutex_t lock;
};

static int retry_add(struct retry *r, const char *what, int64_t asset_id)
{
	for (size_t i = 0; i < r->n; i++)
		if (r->v[i].asset_id == asset_id)
			return 0;
	if (util_grow(&r->v, &r->cap, r->n + 1, sizeof(*r->v)) < 0)
		return -ENOMEM;
	struct retry_item *x = &r->v[r->n++];
	memset(x, 0, sizeof(*x));
	snprintf(x->what, sizeof(x->what), "%s", what);
	x->asset_id = asset_id;
	return 0;
}

static int add_failed_asset(void *arg, const struct idx_asset *a)
{
	char what[IDX_BUNDLE_MAX + IDX_NAME_MAX + 2];
	snprintf(what, sizeof(what), "%s/%s", a->bundle, a->file);
	return retry_add(arg, what, a->id);
}

/* The failed files of one costume (or the one file named). */
static int add_failed_of(struct retry *r, const struct target *t)
{
	struct file_list l = { 0 };
	char what[PATH_MAX];
	int rc = costume_files(r->env, t->c.id, &l);

	for (size_t i = 0; rc == 0 && i < l.n; i++) {
		if (!file_failed(&l.v[i]) || (t->is_file && strcmp(l.v[i].rel, t->rel) != 0))
			continue;
		snprintf(what, sizeof(what), "%s/%s", t->c.live2d_name, l.v[i].rel);
		rc = retry_add(r, what, l.v[i].asset_id);
	}
	free(l.v);
	return rc;
}

static int retry_one(void *arg, size_t i)
{
	struct retry *r = arg;
	struct retry_item *x = &r->v[i];
	struct idx_asset a;
	int fd = -1;

	/* Pending first: a file last seen missing is asked for again at once. */
	idx_asset_mark_pending(r->env->idx, x->asset_id);
	x->err = fetch_asset_open(r->env->lib, x->asset_id, &fd);
	if (fd >= 0)
		close(fd);
	if (x->err == -ECANCELED)
		return 1;
	if (x->err < 0 && idx_asset_get(r->env->idx, x->asset_id, &a) == 0)
		snprintf(x->error, sizeof(x->error), "%s", a.error);
	if (x->err < 0 && !x->error[0])
		snprintf(x->error, sizeof(x->error), "%s", strerror(-x->err));
	const char *status = x->err == 0 ? "ok" : x->err == -ENOENT ? "missing" : "failed";
	pthread_mutex_lock(&r->lock);
	if (r->json) {
		cJSON *j = cJSON_CreateObject();
		cJSON_AddStringToObject(j, "event", "retried");
		cJSON_AddStringToObject(j, "file", x->what);
		cJSON_AddStringToObject(j, "status", status);
		if (x->err < 0)
			cJSON_AddStringToObject(j, "error", x->error);
		cmd_json_line(j);
	} else if (x->err == 0) {
		printf("ok       %s\n", x->what);
	} else {
		printf("%-8s %s: %s\n", status, x->what,
		       x->err == -ENOENT ? "not on the origin" : x->error);
	}
	fflush(stdout);
	pthread_mutex_unlock(&r->lock);
	return 0;
}

static int retry_tick(void *arg)
{
	struct retry *r = arg;

	if (cmd_interrupted && !r->cancelled) {
		r->cancelled = 1;
		cmd_cancel_downloads(r->env);
	}
	return r->cancelled;
}

static const char retry_usage[] =
	"usage: l2dfs retry [-o OPTIONS] [-j N] [--json] [COSTUME|PATH]\n"
	"\n"
	"Download again the files whose download failed: every failed file of the\n"
	"server, or those of COSTUME (a live2d name, COSTUME/<file>, or a path inside\n"
	"a mount as `l2dfs status` takes it). One line per file: ok, failed (with\n"
	"why) or missing (not on the origin). -j N: downloads at once (default 10).\n"
	"--json prints {\"event\": \"retried\", \"file\", \"status\", \"error\"} lines and a\n"
	"final {\"event\": \"done\", ...}.\n"
	"Exit status: 0 when every file came (or is known missing on the origin),\n"
	"5 if some still fail, 130 interrupted.\n";

/* The summary of a retry (a JSON line or a sentence); returns how many
 * files failed again. */
static int retry_report(const struct retry *r)
{
	int ok = 0, failed = 0, missing = 0;

	for (size_t i = 0; i < r->n; i++) {
		ok += r->v[i].err == 0;
		missing += r->v[i].err == -ENOENT;
		failed += r->v[i].err < 0 && r->v[i].err != -ENOENT && r->v[i].err != -ECANCELED;
	}
	if (r->json) {
		cJSON *j = cJSON_CreateObject();
		cJSON_AddStringToObject(j, "event", "done");
		cJSON_AddNumberToObject(j, "retried", (double)r->n);
		cJSON_AddNumberToObject(j, "ok", ok);
		cJSON_AddNumberToObject(j, "failed", failed);
		cJSON_AddNumberToObject(j, "missing", missing);
		cJSON_AddBoolToObject(j, "interrupted", r->cancelled);
		cmd_json_line(j);
	} else if (!r->n) {
		fprintf(stderr, "l2dfs retry: nothing failed, nothing to retry\n");
	} else {
		fprintf(stderr, "l2dfs retry: %zu retried: %d downloaded, %d failed, %d not on the"
				" origin%s\n",
			r->n, ok, failed, missing, r->cancelled ? " (interrupted)" : "");
	}
	return failed;
}

int cli_cmd_retry(int argc, char **argv)
{
	static const char *const value_flags[] = { "-j", "--jobs", NULL };
	struct retry r = { .lock = PTHREAD_MUTEX_INITIALIZER };
	const struct cmd_switch sw[] = { { "--json", &r.json }, { NULL, NULL } };
	long jobs = 10;
	const struct cmd_spec spec = { retry_usage, sw, value_flags, retry_flag, &jobs, 0, 1 };
	struct cli_settings s;
	struct cli_env env;
	struct target t;
	char *pos[1];
	int npos, rc = cmd_start(argc, argv, &spec, &s, pos, &npos, &env, 1);

	if (rc >= 0)
		return rc;
	r.env = &env;
	cmd_signals_install();
	if (npos) {
		if (find_target(&env, &s, pos[0], &t) < 0) {
			rc = CLI_USAGE;
			goto out;
		}
		rc = fetch_costume_ensure(env.lib, t.c.id);
		if (rc == 0)
			rc = add_failed_of(&r, &t);
	} else {
		rc = idx_asset_list(env.idx, s.server, IDX_FAILED, add_failed_asset, &r);
	}
	if (rc < 0) {
		fprintf(stderr, "l2dfs retry: cannot list the failed files: %s\n", strerror(-rc));
		rc = CLI_FAILED;
		goto out;
	}
	cmd_pool_run(r.n, (int)jobs, retry_one, retry_tick, &r);
	r.cancelled |= cmd_interrupted;
	int failed = retry_report(&r);
	rc = r.cancelled ? CLI_INTERRUPTED : failed ? CLI_FAILED : CLI_OK;
out:
	cli_env_close(&env);
	free(r.v);
	return rc;
}
