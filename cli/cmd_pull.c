/*
 * cmd_pull.c: `l2dfs pull`: costumes into ordinary folders, file for file
 * what the mount shows, hardlinked from the cache where the filesystem
 * allows.
 *
 * Ctrl-C: the first SIGINT stops handing out files, makes the library
 * refuse new transfers and frees the engine, which cancels the transfers in
 * flight (fetch_library_stop() makes that safe while workers still wait in
 * fetch_asset_open()). The cache writer removes the temporaries of
 * cancelled transfers and their rows go back to pending; every file under
 * DIR lands through a temporary and a rename. So nothing partial stays
 * anywhere, and the next run skips what is there and fetches the rest.
 */
#include "cmd_common.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Workers when -j is not given; the engine bounds what is in flight. */
#define PULL_WORKERS 64

struct pull_costume {
	struct idx_costume c;
	int listed;          /* its file list is known */
	int failed;          /* files that failed: no model.json then (p->lock) */
	int has_name_txt;
	int files_total;     /* files backed by an asset */
	int files_done;
};

struct pull_file {
	struct pull_costume *pc;
	char rel[IDX_NAME_MAX + 16];
	int64_t asset_id;
	enum idx_file_kind kind;
	int optional;
	int64_t reported; /* bytes of its download last reported; -1 when not downloading (p->lock) */
	int queued;          /* its download was started ahead (this run's) */
};

struct pull {
	struct cli_env *env;
	const char *to;
	int root;            /* --to, open: everything lands below it (cache_materialize) */
	enum cache_link_mode link;
	int overwrite, jobs, json, tty, list;
	struct pull_costume *costumes; /* pull_file.pc points here: fixed once listed */
	size_t ncostumes, capcostumes;
	struct pull_file *files;
	size_t nfiles, capfiles;
	double t0;

	pthread_mutex_t lock; /* guards everything below */
	int64_t *claimed;     /* assets whose download this run reports */
	size_t nclaimed;
	int stop;             /* hand out no more files */
	int cancelled;        /* Ctrl-C */
	int exdev;            /* --link hardlink across filesystems */
	int files_done, downloaded, cache_hits, linked, copied, skipped, missing, failed, written;
	int64_t bytes;
};

/* ---- output ---- */

static void file_event(const struct pull *p, const char *event, const char *live2d_name,
		       const char *rel, int64_t done, int64_t total, const char *error)
{
	if (!p->json)
		return;
	cJSON *j = cJSON_CreateObject();
	cJSON_AddStringToObject(j, "event", event);
	cJSON_AddStringToObject(j, "live2d_name", live2d_name);
	cJSON_AddStringToObject(j, "rel_path", rel);
	cJSON_AddNumberToObject(j, "bytes_done", (double)done);
	cJSON_AddNumberToObject(j, "bytes_total", (double)total);
	if (error)
		cJSON_AddStringToObject(j, "error", error);
	cmd_json_line(j);
}

/* A line on stderr, first wiping the progress bar off a terminal. */
static void __attribute__((format(printf, 2, 3))) say(const struct pull *p, const char *fmt, ...)
{
	va_list ap;

	if (p->tty && !p->json)
		fputs("\r\033[K", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
}

static void draw_bar(struct pull *p)
{
	char b1[32], b2[32], eta[32] = "";
	double el = cmd_now() - p->t0;

	pthread_mutex_lock(&p->lock);
	int done = p->files_done, total = (int)p->nfiles, filled = total ? 20 * done / total : 20;
	int64_t bytes = p->bytes;
	pthread_mutex_unlock(&p->lock);
	if (done && done < total)
		snprintf(eta, sizeof(eta), "  ETA %.0fs", el * (total - done) / done);
	fprintf(stderr, "\r\033[K[%.*s%.*s] %d/%d files  %s  %s/s%s", filled,
		"####################", 20 - filled, "--------------------", done, total,
		cmd_human_size(bytes, b1), cmd_human_size(el > 0 ? (int64_t)(bytes / el) : 0, b2),
		eta);
}

/* ---- one file ---- */

/* 1 the first time asset is asked for (this run reports its download). */
static int claim(struct pull *p, int64_t asset)
{
	for (size_t i = 0; i < p->nclaimed; i++)
		if (p->claimed[i] == asset)
			return 0;
	p->claimed[p->nclaimed++] = asset;
	return 1;
}

static void model_event(const struct pull *p, const struct pull_costume *pc)
{
	if (!p->json)
		return;
	cJSON *j = cJSON_CreateObject();
	cJSON_AddStringToObject(j, "event", "model");
	cJSON_AddStringToObject(j, "live2d_name", pc->c.live2d_name);
	cJSON_AddNumberToObject(j, "files_done", pc->files_done);
	cJSON_AddNumberToObject(j, "files_total", pc->files_total);
	cmd_json_line(j);
}

/* A file is over, whatever became of it; the caller holds p->lock. */
static void file_finished(struct pull *p, struct pull_file *f, int64_t bytes)
{
	struct pull_costume *pc = f->pc;

	p->files_done++;
	p->bytes += bytes;
	pc->files_done++;
	model_event(p, pc);
}

static void file_failed(struct pull *p, struct pull_file *f, const char *why)
{
	pthread_mutex_lock(&p->lock);
	p->failed++;
	f->pc->failed++;
	say(p, "l2dfs pull: %s/%s: %s\n", f->pc->c.live2d_name, f->rel, why);
	file_event(p, "failed", f->pc->c.live2d_name, f->rel, 0, 0, why);
	file_finished(p, f, 0);
	pthread_mutex_unlock(&p->lock);
}

static void set_reported(struct pull *p, struct pull_file *f, int64_t v)
{
	pthread_mutex_lock(&p->lock);
	f->reported = v;
	pthread_mutex_unlock(&p->lock);
}

/* A "download" event for each download in flight that got further. */
static void report_downloads(struct pull *p)
{
	for (size_t i = 0; i < p->nfiles; i++) {
		struct pull_file *f = &p->files[i];
		struct idx_asset a;
		pthread_mutex_lock(&p->lock);
		int64_t last = f->reported;
		pthread_mutex_unlock(&p->lock);
		if (last < 0 || idx_asset_get(p->env->idx, f->asset_id, &a) < 0 ||
		    a.state != IDX_DOWNLOADING || a.bytes_done <= last)
			continue;
		pthread_mutex_lock(&p->lock);
		if (f->reported >= 0 && f->reported < a.bytes_done) {
			f->reported = a.bytes_done;
			file_event(p, "download", f->pc->c.live2d_name, f->rel, a.bytes_done,
				   a.size > 0 ? a.size : 0, NULL);
		}
		pthread_mutex_unlock(&p->lock);
	}
}

/* The file into the cache (download or not), then into DIR. */
/* Record a finished file under p->lock: counter += 1, the event, progress. */
static void file_done(struct pull *p, struct pull_file *f, int *counter, const char *event,
		      int64_t size)
{
	pthread_mutex_lock(&p->lock);
	*counter += 1;
	file_event(p, event, f->pc->c.live2d_name, f->rel, size, size, NULL);
	file_finished(p, f, size);
	pthread_mutex_unlock(&p->lock);
}

/*
 * The file's asset in the cache, downloaded if needed: 0 with *fd open
 * (*mine says this pull downloaded it), 1 when the file is done with
 * (skipped, absent or failed: reported), or -ECANCELED.
 */
static int pull_fetch(struct pull *p, struct pull_file *f, struct idx_asset *a, int *fd,
		      int *mine)
{
	const char *name = f->pc->c.live2d_name;
	struct cli_env *env = p->env;
	char why[IDX_TEXT_MAX + 64];
	struct stat st;

	if (idx_asset_get(env->idx, f->asset_id, a) < 0)
		return file_failed(p, f, "the index is unusable"), 1;
	int cached = a->state == IDX_COMPLETED &&
		     cache_asset_stat(env->cache, a->server, a->bundle, a->file, &st) == 0;
	pthread_mutex_lock(&p->lock);
	*mine = f->queued || (!cached && claim(p, f->asset_id));
	pthread_mutex_unlock(&p->lock);
	if (*mine)
		file_event(p, "download", name, f->rel, 0, a->size > 0 ? a->size : 0, NULL);

	set_reported(p, f, *mine ? 0 : -1);
	int rc = fetch_asset_open(env->lib, f->asset_id, fd);
	set_reported(p, f, -1);
	if (rc == -ECANCELED)
		return rc;
	if (rc == -ENOENT && f->optional)
		return file_done(p, f, &p->missing, "missing_optional", 0), 1;
	if (rc < 0) {
		idx_asset_get(env->idx, f->asset_id, a);
		snprintf(why, sizeof(why), "%s", rc == -ENOENT ? "not on the origin"
						 : a->error[0]	? a->error
								: strerror(-rc));
		return file_failed(p, f, why), 1;
	}
	/* The row as the open left it (a damaged copy was downloaded again). */
	if (idx_asset_get(env->idx, f->asset_id, a) < 0) {
		close(*fd);
		return file_failed(p, f, "the index is unusable"), 1;
	}
	return 0;
}

static int pull_one(void *arg, size_t i)
{
	static const char *const placed[] = { [CACHE_LINKED] = "linked",
					      [CACHE_COPIED] = "copied",
					      [CACHE_SKIPPED] = "skipped" };
	struct pull *p = arg;
	struct pull_file *f = &p->files[i];
	char dest[PATH_MAX * 2], why[IDX_TEXT_MAX + 64];
	struct idx_asset a;
	struct stat st;
	enum cache_outcome out;
	int fd = -1, mine = 0, rc;

	snprintf(dest, sizeof(dest), "%s/%s", f->pc->c.live2d_name, f->rel);
	/* There already: nothing to download either. */
	if (!p->overwrite && cache_dest_stat(p->root, dest, &st) == 0)
		return file_done(p, f, &p->skipped, "skipped", st.st_size), 0;
	rc = pull_fetch(p, f, &a, &fd, &mine);
	if (rc)
		return rc < 0 ? 1 : 0;
	int64_t size = fstat(fd, &st) == 0 ? st.st_size : 0;
	pthread_mutex_lock(&p->lock);
	*(mine ? &p->downloaded : &p->cache_hits) += 1;
	pthread_mutex_unlock(&p->lock);
	file_event(p, mine ? "downloaded" : "cache_hit", f->pc->c.live2d_name, f->rel, size, size,
		   NULL);

	/* fd stays open meanwhile: its lock keeps eviction off the file. */
	rc = cache_materialize(p->env->cache, a.server, a.bundle, a.file, a.size, a.stamp, p->root,
			       dest, p->link, p->overwrite, &out);
	close(fd);
	if (rc == -EXDEV && p->link == CACHE_LINK_HARDLINK) {
		pthread_mutex_lock(&p->lock);
		if (!p->exdev)
			say(p, "l2dfs pull: cannot hardlink into %s: it is on another filesystem"
			       " than the cache %s (EXDEV); use --link copy or --link auto\n",
			    p->to, cache_root(p->env->cache));
		p->exdev = p->stop = 1;
		pthread_mutex_unlock(&p->lock);
		return 1;
	}
	if (rc < 0) {
		snprintf(why, sizeof(why), "writing it under %s: %s", p->to,
			 rc == -ELOOP || rc == -ENOTDIR ? "a symlink or file is in the way (not followed)"
							: strerror(-rc));
		return file_failed(p, f, why), 0;
	}
	int *counter = out == CACHE_LINKED ? &p->linked : out == CACHE_COPIED ? &p->copied
									 : &p->skipped;
	file_done(p, f, counter, placed[out], size);
	return 0;
}

static int pull_tick(void *arg)
{
	struct pull *p = arg;

	if (cmd_interrupted && !p->cancelled) {
		pthread_mutex_lock(&p->lock);
		p->cancelled = p->stop = 1;
		pthread_mutex_unlock(&p->lock);
		cmd_cancel_downloads(p->env);
	}
	if (p->tty && !p->json)
		draw_bar(p);
	if (p->json)
		report_downloads(p);
	pthread_mutex_lock(&p->lock);
	int stop = p->stop;
	pthread_mutex_unlock(&p->lock);
	return stop;
}

/* Without -j: start up to max_transfers downloads at once, more than the
 * workers, so that all go out together (HTTP/2 multiplexes them; over
 * HTTP/1.1 the engine keeps max_connections busy). The workers then wait
 * for them in order. */
static void queue_ahead(struct pull *p, int max_transfers)
{
	struct cli_env *env = p->env;
	char dest[PATH_MAX * 2];
	struct idx_asset a;
	struct stat st;
	int n = 0;

	for (size_t i = 0; i < p->nfiles && n < max_transfers && !cmd_interrupted; i++) {
		struct pull_file *f = &p->files[i];
		snprintf(dest, sizeof(dest), "%s/%s", f->pc->c.live2d_name, f->rel);
		if ((!p->overwrite && cache_dest_stat(p->root, dest, &st) == 0) ||
		    idx_asset_get(env->idx, f->asset_id, &a) < 0 || a.state == IDX_COMPLETED ||
		    fetch_asset_missing(&a) || !claim(p, f->asset_id))
			continue;
		f->queued = 1;
		fetch_asset_queue(env->lib, f->asset_id, HTTP_FOREGROUND);
		n++;
	}
}

/* ---- what to pull ---- */

static int add_costume(void *arg, const struct idx_costume *c)
{
	struct pull *p = arg;
	struct pull_costume *v;

	for (size_t i = 0; i < p->ncostumes; i++)
		if (p->costumes[i].c.id == c->id)
			return 0;
	if (util_grow(&p->costumes, &p->capcostumes, p->ncostumes + 1, sizeof(*v)) < 0)
		return -ENOMEM;
	v = &p->costumes[p->ncostumes++];
	memset(v, 0, sizeof(*v));
	v->c = *c;
	return 0;
}

/* A costume's live2d name, else a character: its costumes. */
static int resolve(struct pull *p, const struct cli_settings *s, const char *arg)
{
	struct cli_env *env = p->env;
	struct idx_costume c;
	char display[IDX_TEXT_MAX + 1];
	int64_t id;
	int rc = idx_costume_find(env->idx, s->server, s->lang, -1, arg, &c);

	if (rc == 0)
		return add_costume(p, &c) < 0 ? CLI_FAILED : CLI_OK;
	rc = cmd_resolve_character(env, s, arg, &id, display);
	if (rc == -ENOENT) {
		cmd_print_nearest(env, s, "costume or character", arg);
		return CLI_USAGE;
	}
	if (rc == -ENOTUNIQ) {
		cmd_print_candidates(env, s, arg);
		return CLI_USAGE;
	}
	if (rc == 0)
		rc = idx_costume_list(env->idx, s->server, s->lang, id, add_costume, p);
	if (rc < 0) {
		fprintf(stderr, "l2dfs pull: the index is unusable: %s\n", strerror(-rc));
		return CLI_CACHE;
	}
	if (strcmp(display, arg) != 0)
		fprintf(stderr, "l2dfs pull: '%s' is the character %s\n", arg, display);
	return CLI_OK;
}

struct list_ctx {
	struct pull *p;
	struct pull_costume *pc;
};

static int add_file(void *arg, const struct idx_file *f)
{
	struct list_ctx *l = arg;
	struct pull *p = l->p;

	if (f->kind == IDX_KIND_NAME_TXT)
		l->pc->has_name_txt = 1;
	if (!f->asset_id)
		return 0;
	if (util_grow(&p->files, &p->capfiles, p->nfiles + 1, sizeof(*p->files)) < 0)
		return -ENOMEM;
	struct pull_file *x = &p->files[p->nfiles++];
	*x = (struct pull_file){ 0 }; /* realloc'd: queued and the rest start at 0 */
	x->pc = l->pc;
	snprintf(x->rel, sizeof(x->rel), "%s%s%s", idx_dir_names[f->dir], f->dir ? "/" : "",
		 f->name);
	x->asset_id = f->asset_id;
	x->kind = f->kind;
	x->optional = f->optional;
	x->reported = -1;
	l->pc->files_total++;
	return 0;
}

/* Every costume's file list (fetching buildData where needed). */
static int list_files(struct pull *p)
{
	for (size_t i = 0; i < p->ncostumes && !cmd_interrupted; i++) {
		struct pull_costume *pc = &p->costumes[i];
		struct list_ctx l = { p, pc };
		int rc = fetch_costume_ensure(p->env->lib, pc->c.id);
		if (rc == 0)
			rc = idx_file_list(p->env->idx, pc->c.id, -1, add_file, &l);
		if (rc < 0) {
			p->failed++;
			say(p, "l2dfs pull: %s: %s\n", pc->c.live2d_name,
			    rc == -ENOENT ? "the origin has no buildData.asset for it"
					  : "cannot get its file list");
			continue;
		}
		pc->listed = 1;
		model_event(p, pc);
	}
	p->claimed = calloc(p->nfiles + 1, sizeof(*p->claimed));
	return p->claimed ? 0 : -ENOMEM;
}

/* name.txt, then model.json, of every costume whose files were listed:
 * model.json last and only when every file is in place, as the Python
 * downloader does (a folder without it is an unfinished one). */
static void write_generated(struct pull *p)
{
	for (size_t i = 0; i < p->ncostumes && !cmd_interrupted; i++) {
		struct pull_costume *pc = &p->costumes[i];
		for (int k = pc->has_name_txt; pc->listed && k >= 0; k--) {
			const char *rel = k ? "name.txt" : "model.json";
			char dest[PATH_MAX * 2], *text = NULL;
			size_t len = 0;
			int skipped = 0, rc;
			if (!k && pc->failed) {
				say(p, "l2dfs pull: %s/model.json: not written, %d file%s failed\n",
				    pc->c.live2d_name, pc->failed, pc->failed == 1 ? "" : "s");
				break;
			}
			rc = k ? fetch_costume_name_txt(p->env->lib, pc->c.id, &text, &len)
			       : fetch_costume_model_json(p->env->lib, pc->c.id, &text, &len);
			snprintf(dest, sizeof(dest), "%s/%s", pc->c.live2d_name, rel);
			if (rc == 0)
				rc = cache_write_file_atomic(p->root, dest, text, len, p->overwrite,
							     &skipped);
			free(text);
			if (rc < 0) {
				p->failed++;
				pc->failed++;
				say(p, "l2dfs pull: %s/%s: %s\n", pc->c.live2d_name, rel,
				    strerror(-rc));
				file_event(p, "failed", pc->c.live2d_name, rel, 0, 0, strerror(-rc));
				continue;
			}
			*(skipped ? &p->skipped : &p->written) += 1;
			file_event(p, skipped ? "skipped" : "written", pc->c.live2d_name, rel,
				   (int64_t)len, (int64_t)len, NULL);
		}
	}
}

/* --list: each file with where it comes from, nothing written. */
static void print_list(const struct pull *p)
{
	for (size_t i = 0; i < p->nfiles; i++) {
		const struct pull_file *f = &p->files[i];
		struct idx_asset a;
		if (idx_asset_get(p->env->idx, f->asset_id, &a) < 0)
			continue;
		if (!p->json) {
			printf("%s/%s\t%s/%s\n", f->pc->c.live2d_name, f->rel, a.bundle, a.file);
			continue;
		}
		cJSON *j = cJSON_CreateObject();
		cJSON_AddStringToObject(j, "event", "file");
		cJSON_AddStringToObject(j, "live2d_name", f->pc->c.live2d_name);
		cJSON_AddStringToObject(j, "rel_path", f->rel);
		cJSON_AddStringToObject(j, "kind", cmd_kind_name(f->kind));
		cJSON_AddBoolToObject(j, "optional", f->optional);
		cJSON_AddStringToObject(j, "bundle", a.bundle);
		cJSON_AddStringToObject(j, "file", a.file);
		cmd_json_line(j);
	}
}

/* ---- the command ---- */

static void summary(struct pull *p, const char *status)
{
	char b[32];
	double el = cmd_now() - p->t0;

	if (p->json) {
		cJSON *j = cJSON_CreateObject();
		cJSON_AddStringToObject(j, "event", "done");
		cJSON_AddStringToObject(j, "status", status);
		cJSON_AddNumberToObject(j, "costumes", (double)p->ncostumes);
		cJSON_AddNumberToObject(j, "files_done", p->files_done);
		cJSON_AddNumberToObject(j, "files_total", (double)p->nfiles);
		cJSON_AddNumberToObject(j, "downloaded", p->downloaded);
		cJSON_AddNumberToObject(j, "cache_hit", p->cache_hits);
		cJSON_AddNumberToObject(j, "linked", p->linked);
		cJSON_AddNumberToObject(j, "copied", p->copied);
		cJSON_AddNumberToObject(j, "skipped", p->skipped);
		cJSON_AddNumberToObject(j, "written", p->written);
		cJSON_AddNumberToObject(j, "missing_optional", p->missing);
		cJSON_AddNumberToObject(j, "failed", p->failed);
		cJSON_AddNumberToObject(j, "bytes", (double)p->bytes);
		cJSON_AddNumberToObject(j, "seconds", el);
		cmd_json_line(j);
		return;
	}
	if (p->tty) {
		draw_bar(p);
		fputc('\n', stderr);
	}
	fprintf(stderr,
		"l2dfs pull: %s: %zu costume%s, %d/%zu files in %s (%d downloaded, %d from the"
		" cache; %d linked, %d copied, %d skipped), %d missing optional, %d failed;"
		" %s in %.1f s\n",
		status, p->ncostumes, p->ncostumes == 1 ? "" : "s", p->files_done, p->nfiles, p->to,
		p->downloaded, p->cache_hits, p->linked, p->copied, p->skipped, p->missing,
		p->failed, cmd_human_size(p->bytes, b), el);
}

/* Where --to would go, or its nearest existing parent, is on the cache's
 * filesystem. */
static int on_cache_filesystem(const char *to, const struct cache *cache)
{
	char path[PATH_MAX];
	struct stat a, b;

	snprintf(path, sizeof(path), "%s", to);
	while (stat(path, &a) < 0) {
		char *slash = strrchr(path, '/');
		if (!slash)
			snprintf(path, sizeof(path), ".");
		else if (slash == path)
			path[1] = '\0';
		else
			*slash = '\0';
	}
	return stat(cache_root(cache), &b) == 0 && a.st_dev == b.st_dev;
}

static int pull_flag(void *arg, const char *name, const char *value)
{
	struct pull *p = arg;
	long n;

	if (strcmp(name, "--to") == 0) {
		p->to = value;
	} else if (strcmp(name, "--link") == 0) {
		if (cache_parse_link_mode(value, &p->link) < 0) {
			fprintf(stderr, "l2dfs pull: bad value for --link: '%s' (auto|hardlink|copy)\n",
				value);
			return -EINVAL;
		}
	} else {
		if (cmd_parse_int(name, value, 1, 64, &n) < 0)
			return -EINVAL;
		p->jobs = (int)n;
	}
	return 0;
}

static const char pull_usage[] =
	"usage: l2dfs pull [-o OPTIONS] COSTUME|CHARACTER... --to DIR [--link auto|hardlink|copy]\n"
	"                  [--overwrite] [-j N] [--json] [--list]\n"
	"\n"
	"Puts each costume at DIR/<live2d name>/ with the files of the mount's costume\n"
	"folder: model.json, name.txt, icon.png, the .moc, physics, textures/, motions/,\n"
	"expressions/ (files the origin lacks are left out, as in the mount).\n"
	"An argument is a costume's live2d name, else a character (its display name\n"
	"in -o lang=, or the best fuzzy match as `l2dfs search` finds it): all its\n"
	"costumes. The options (-o) are the mount's; a mount of the same cache may run.\n"
	"\n"
	"  --to DIR         where the costume folders go (created); a symlink inside\n"
	"                   it is never followed: the file it is in the way of fails\n"
	"  --link MODE      auto: hardlink from the cache, copy where that fails (default);\n"
	"                   hardlink: hardlink or fail (EXDEV across filesystems); copy\n"
	"  --overwrite      replace files already in DIR (default: keep them)\n"
	"  -j N             downloads at once, at most 64 (default: as many as the\n"
	"                   engine allows: max_transfers over HTTP/2, max_connections\n"
	"                   over HTTP/1.1)\n"
	"  --json           one JSON object per line on stdout: {\"event\": download,\n"
	"                   downloaded, cache_hit, linked, copied, skipped, written,\n"
	"                   missing_optional or failed, \"live2d_name\", \"rel_path\",\n"
	"                   \"bytes_done\", \"bytes_total\"}, {\"event\": \"model\",\n"
	"                   \"live2d_name\", \"files_done\", \"files_total\"}, and a final\n"
	"                   {\"event\": \"done\", \"status\", counts...}; \"download\" repeats\n"
	"                   with bytes_done while a download runs, and a \"model\" line\n"
	"                   with files_done 0 opens each costume\n"
	"  --list           download nothing: each file of the costumes, <costume>/<path>\n"
	"                   TAB <bundle>/<file> (with --json: {\"event\": \"file\",\n"
	"                   \"live2d_name\", \"rel_path\", \"kind\", \"optional\", \"bundle\",\n"
	"                   \"file\"}); --to is still required\n"
	"\n"
	"model.json is written last, only when every file of the costume is in\n"
	"place: a folder without it is unfinished. Files linked from the cache are\n"
	"read-only (changing one would change the cache).\n"
	"Ctrl-C stops at once, leaving no partial file; run again to finish.\n"
	"Exit status: 0 done; 1 bad arguments (an unknown name lists the nearest; an\n"
	"empty or unusable --to);\n"
	"5 a file failed (run `l2dfs retry`) or hardlinks are impossible; 130 interrupted.\n";

/* mkdir -p of path (0755). */
static int make_dirs(const char *path)
{
	char buf[PATH_MAX];

	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		return -ENAMETOOLONG;
	for (char *s = buf + 1;; s++) {
		if (*s && *s != '/')
			continue;
		char c = *s;
		*s = '\0';
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return -errno;
		if (!c)
			return 0;
		*s = c;
	}
}

/* Open --to (created if missing), or say why not: a cli_exit. */
static int open_root(struct pull *p)
{
	int err = 0;

	p->root = open(p->to, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (p->root < 0 && errno == ENOENT && (err = make_dirs(p->to)) == 0)
		p->root = open(p->to, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (p->root < 0 && !err)
		err = -errno;
	if (!err && faccessat(p->root, ".", W_OK | X_OK, AT_EACCESS) < 0)
		err = -errno;
	if (err) {
		fprintf(stderr, "l2dfs pull: --to %s: %s\n", p->to, strerror(-err));
		return CLI_USAGE;
	}
	return CLI_OK;
}

/* Resolve, list, download and place; a cli_exit. */
static int pull_run(struct pull *p, const struct cli_settings *s, char **args, int nargs)
{
	struct cli_env *env = p->env;
	int rc;

	/* An empty --to (an unset variable in a script) is never "here" or "/". */
	if (!*p->to) {
		fprintf(stderr, "l2dfs pull: --to is empty: name the folder to put costumes in\n");
		return CLI_USAGE;
	}

	if (p->link == CACHE_LINK_HARDLINK && !on_cache_filesystem(p->to, env->cache)) {
		fprintf(stderr,
			"l2dfs pull: cannot hardlink into %s: it is on another filesystem than the"
			" cache %s (EXDEV); use --link copy or --link auto\n",
			p->to, cache_root(env->cache));
		return CLI_FAILED;
	}
	for (int i = 0; i < nargs; i++) {
		rc = resolve(p, s, args[i]);
		if (rc != CLI_OK)
			return rc;
	}
	/* Only once the names are known good: a typo creates no folder. */
	if (!p->list && (rc = open_root(p)) != CLI_OK)
		return rc;
	if (list_files(p) < 0)
		return CLI_FAILED;
	if (p->list) {
		print_list(p);
		return cmd_interrupted ? CLI_INTERRUPTED : p->failed ? CLI_FAILED : CLI_OK;
	}
	if (!p->jobs)
		queue_ahead(p, s->fetch.max_transfers);
	if (!cmd_interrupted)
		cmd_pool_run(p->nfiles, p->jobs ? p->jobs : PULL_WORKERS, pull_one, pull_tick, p);
	if (!cmd_interrupted && !p->exdev)
		write_generated(p);
	if (cmd_interrupted)
		p->cancelled = 1;
	summary(p, p->cancelled ? "interrupted" : p->exdev || p->failed ? "failed" : "ok");
	return p->cancelled ? CLI_INTERRUPTED : p->exdev || p->failed ? CLI_FAILED : CLI_OK;
}

int cli_cmd_pull(int argc, char **argv)
{
	static const char *const value_flags[] = { "--to", "--link", "-j", "--jobs", NULL };
	struct pull p = { .link = CACHE_LINK_AUTO, .root = -1 };
	const struct cmd_switch sw[] = { { "--overwrite", &p.overwrite },
					 { "--json", &p.json },
					 { "--list", &p.list },
					 { NULL, NULL } };
	const struct cmd_spec spec = { pull_usage, sw, value_flags, pull_flag, &p, 1, argc };
	struct cli_settings s;
	struct cli_env env;
	char **pos = calloc((size_t)argc + 1, sizeof(*pos));
	int npos, rc;

	if (!pos)
		return CLI_FAILED;
	/* Ctrl-C from the start: the catalogue may take a while. */
	cmd_signals_install();
	p.t0 = cmd_now();
	rc = cmd_start(argc, argv, &spec, &s, pos, &npos, &env, 1);
	if (rc < 0 && !p.to) {
		fprintf(stderr, "l2dfs pull: --to DIR is required\n");
		cli_env_close(&env);
		rc = CLI_USAGE;
	}
	if (rc < 0) {
		p.env = &env;
		p.tty = isatty(STDERR_FILENO);
		pthread_mutex_init(&p.lock, NULL);
		rc = cmd_interrupted ? CLI_INTERRUPTED : pull_run(&p, &s, pos, npos);
		cli_env_close(&env);
		if (p.root >= 0)
			close(p.root);
		pthread_mutex_destroy(&p.lock);
	}
	free(p.costumes);
	free(p.files);
	free(p.claimed);
	free(pos);
	return rc;
}
