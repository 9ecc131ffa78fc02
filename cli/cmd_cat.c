/*
 * cmd_cat.c: `l2dfs cat COSTUME/PATH`: one file of a costume folder on
 * stdout, as the mount would serve it, for programs that want one file
 * (an icon, a name) without a mount or a whole pull.
 */
#include "cmd_common.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const dir_names[IDX_NDIRS] = { "", "textures", "motions", "expressions" };

static const char cat_usage[] =
	"usage: l2dfs cat [-o OPTIONS] COSTUME/PATH\n"
	"       l2dfs cat [-o OPTIONS] --doc roster|assets|costumes|character:ID|COSTUME\n"
	"       l2dfs cat [-o OPTIONS] --asset BUNDLE/FILE\n"
	"       l2dfs cat [-o OPTIONS] --build-data FILE|- [--model-json]\n"
	"\n"
	"Writes one file of a costume folder (model.json, name.txt, icon.png, the\n"
	".moc, textures/..., motions/..., expressions/...) to stdout as it is\n"
	"downloaded into the cache. COSTUME is a live2d name.\n"
	"--doc writes a catalogue document as stored (the origin's JSON): the\n"
	"character roster, the asset index, the costume index, character ID's\n"
	"detail document, or COSTUME's buildData.asset.\n"
	"--asset writes a file of a bundle (live2d/chara/036_general/idle01.mtn)\n"
	"that a costume's buildData named, the same way.\n"
	"--build-data lists the files a buildData.asset (FILE, or - for stdin)\n"
	"gives a costume folder, one JSON object per line: {\"rel_path\", \"kind\",\n"
	"\"optional\", \"bundle\", \"file\"}; nothing is downloaded. With --model-json,\n"
	"the model.json those files give (every one taken as present) instead.\n"
	"Exit status: 0; 1 no such costume or file, or the origin lacks it;\n"
	"5 the download failed.\n";

static int write_all(const char *buf, size_t len)
{
	while (len) {
		ssize_t n = write(STDOUT_FILENO, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -errno;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* The asset's bytes to stdout as they arrive, while its download goes on
 * into the cache: 0, or the error (after a short output when the download
 * failed mid-way: the exit status says the output is not the file). */
static int copy_follow(struct fetch_library *lib, int64_t asset_id)
{
	struct fetch_follow *fl;
	char buf[65536];
	int64_t off = 0, have;
	int rc = fetch_follow_open(lib, asset_id, &fl);

	if (rc < 0)
		return rc;
	while (rc == 0 && (have = fetch_follow_wait(fl, off)) > 0) {
		size_t want = have - off < (int64_t)sizeof(buf) ? (size_t)(have - off) : sizeof(buf);
		ssize_t n = pread(fetch_follow_fd(fl), buf, want, off);
		if (n < 0 && errno != EINTR)
			rc = -errno;
		else if (n > 0 && (rc = write_all(buf, (size_t)n)) == 0)
			off += n;
	}
	if (rc == 0 && have < 0)
		rc = (int)have;
	fetch_follow_close(fl);
	return rc;
}

/* "textures/x.png" -> IDX_DIR_TEXTURES and "x.png"; -ENOENT for other folders. */
static int split_rel(char *rel, enum idx_dir *dir, const char **name)
{
	char *slash = strchr(rel, '/');

	*dir = IDX_DIR_ROOT;
	*name = rel;
	if (!slash)
		return 0;
	*slash = '\0';
	for (int d = 1; d < IDX_NDIRS; d++)
		if (strcmp(rel, dir_names[d]) == 0) {
			*dir = (enum idx_dir)d;
			*name = slash + 1;
			return strchr(*name, '/') ? -ENOENT : 0;
		}
	return -ENOENT;
}

/* The bytes of f to stdout: a cli_exit. */
static int cat_file(struct cli_env *env, const struct idx_file *f, const char *arg)
{
	char *text = NULL;
	size_t len = 0;
	int rc;

	if (f->kind == IDX_KIND_MODEL_JSON || f->kind == IDX_KIND_NAME_TXT) {
		rc = f->kind == IDX_KIND_MODEL_JSON
			     ? fetch_costume_model_json(env->lib, f->costume_id, &text, &len)
			     : fetch_costume_name_txt(env->lib, f->costume_id, &text, &len);
		if (rc == 0)
			rc = write_all(text, len);
		free(text);
	} else {
		rc = copy_follow(env->lib, f->asset_id);
	}
	if (rc == -ENOENT) {
		fprintf(stderr, "l2dfs cat: %s: not on the origin\n", arg);
		return CLI_USAGE;
	}
	if (rc < 0) {
		fprintf(stderr, "l2dfs cat: %s: %s\n", arg, strerror(-rc));
		return CLI_FAILED;
	}
	return CLI_OK;
}

struct cat_opts {
	const char *doc, *asset, *build_data;
};

static int cat_flag(void *arg, const char *name, const char *value)
{
	struct cat_opts *o = arg;

	*(strcmp(name, "--doc") == 0	  ? &o->doc
	  : strcmp(name, "--asset") == 0 ? &o->asset
					  : &o->build_data) = value;
	return 0;
}

/* --build-data FILE: the files that buildData gives a costume, as JSON
 * lines, or (model_json) the model.json they give: a cli_exit. */
static int cat_build_data(const char *path, int model_json)
{
	FILE *in = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	struct bd_costume_files files = { 0 };
	struct bd_rejects rejects = { 0 };
	char *text = NULL;
	size_t len = 0;
	int rc = in ? 0 : -errno;

	if (rc == 0) {
		FILE *mem = open_memstream(&text, &len);
		char buf[65536];
		size_t n;
		while (mem && (n = fread(buf, 1, sizeof(buf), in)) > 0)
			fwrite(buf, 1, n, mem);
		rc = !mem || ferror(in) ? -EIO : 0;
		if (mem)
			fclose(mem);
		if (in != stdin)
			fclose(in);
	}
	if (rc == 0)
		rc = bd_parse_build_data(text, len, &files, &rejects);
	if (rc == 0 && model_json) {
		char *mj = bd_render_model_json(files.files, files.n);
		rc = mj ? write_all(mj, strlen(mj)) : -ENOMEM;
		free(mj);
	}
	for (size_t i = 0; rc == 0 && !model_json && i < files.n; i++) {
		const struct bd_file_spec *f = &files.files[i];
		cJSON *j = cJSON_CreateObject();
		cJSON_AddStringToObject(j, "rel_path", f->rel_path);
		cJSON_AddStringToObject(j, "kind", cmd_kind_name(f->kind));
		cJSON_AddBoolToObject(j, "optional", f->optional);
		cJSON_AddStringToObject(j, "bundle", f->bundle);
		cJSON_AddStringToObject(j, "file", f->file);
		cmd_json_line(j);
	}
	for (size_t i = 0; i < rejects.n; i++)
		fprintf(stderr, "l2dfs cat: --build-data %s: left out %s\n", path, rejects.lines[i]);
	bd_costume_files_free(&files);
	bd_rejects_free(&rejects);
	free(text);
	if (rc < 0) {
		fprintf(stderr, "l2dfs cat: --build-data %s: %s\n", path,
			rc == -EBADMSG ? "not a usable buildData.asset" : strerror(-rc));
		return CLI_USAGE;
	}
	return CLI_OK;
}

/* --asset BUNDLE/FILE: an asset the index knows (a buildData named it),
 * to stdout: a cli_exit. */
static int cat_asset(struct cli_env *env, const struct cli_settings *s, const char *arg)
{
	struct idx_asset a;
	struct idx_file f = { 0 };
	char bundle[PATH_MAX];
	const char *slash = strrchr(arg, '/');

	if (!slash || slash == arg || !slash[1] ||
	    snprintf(bundle, sizeof(bundle), "%.*s", (int)(slash - arg), arg) >= (int)sizeof(bundle) ||
	    idx_asset_find(env->idx, s->server, bundle, slash + 1, &a) < 0) {
		fprintf(stderr, "l2dfs cat: --asset %s: no such file of a known costume\n", arg);
		return CLI_USAGE;
	}
	f.asset_id = a.id;
	return cat_file(env, &f, arg);
}

/* --doc NAME: a stored catalogue document, or a costume's buildData, to
 * stdout: a cli_exit. */
static int cat_doc(struct cli_env *env, const struct cli_settings *s, const char *doc)
{
	static const char *const docs[][2] = { { "roster", "/characters/all.2.json" },
					       { "assets", "/explorer/%s/assets/_info.json" },
					       { "costumes", "/costumes/all.5.json" } };
	struct idx_costume c;
	char path[64], *body = NULL;
	size_t len = 0;
	int rc = -ENOENT, known = 0;

	for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++)
		if (strcmp(doc, docs[i][0]) == 0) {
			snprintf(path, sizeof(path), docs[i][1], s->server);
			rc = fetch_catalogue_document(env->lib, path, &body, &len);
			known = 1;
		}
	if (strncmp(doc, "character:", 10) == 0) {
		char *end;
		errno = 0;
		long long id = strtoll(doc + 10, &end, 10);
		if (doc[10] >= '0' && doc[10] <= '9' && !*end && !errno)
			rc = fetch_character_document(env->lib, id, &body, &len);
		known = 1;
	}
	if (!known && idx_costume_find(env->idx, s->server, s->lang, -1, doc, &c) == 0) {
		rc = fetch_costume_ensure(env->lib, c.id);
		if (rc == 0)
			rc = fetch_costume_build_data(env->lib, c.id, &body, &len);
	}
	if (rc == 0)
		rc = write_all(body, len);
	free(body);
	if (rc == -ENOENT) {
		fprintf(stderr, "l2dfs cat: --doc %s: no such document\n", doc);
		return CLI_USAGE;
	}
	if (rc < 0) {
		fprintf(stderr, "l2dfs cat: --doc %s: %s\n", doc, strerror(-rc));
		return CLI_FAILED;
	}
	return CLI_OK;
}

int cli_cmd_cat(int argc, char **argv)
{
	static const char *const value_flags[] = { "--doc", "--asset", "--build-data", NULL };
	struct cat_opts o = { NULL, NULL, NULL };
	int model_json = 0;
	const struct cmd_switch sw[] = { { "--model-json", &model_json }, { NULL, NULL } };
	const struct cmd_spec spec = { cat_usage, sw, value_flags, cat_flag, &o, 0, 1 };
	struct cli_settings s;
	struct cli_env env;
	struct idx_costume c;
	struct idx_file f;
	enum idx_dir dir;
	const char *name;
	char *pos[1], buf[PATH_MAX];
	int npos, rc = cmd_parse_args(argc, argv, &spec, &s, pos, &npos);

	if (rc >= 0)
		return rc;
	if (npos + !!o.doc + !!o.asset + !!o.build_data != 1) {
		fprintf(stderr,
			"l2dfs cat: give one of COSTUME/PATH, --doc NAME, --asset BUNDLE/FILE,"
			" --build-data FILE\n%s",
			cat_usage);
		return CLI_USAGE;
	}
	/* A buildData given is read without the cache or the network. */
	if (o.build_data)
		return cat_build_data(o.build_data, model_json);
	if (model_json) {
		fprintf(stderr, "l2dfs cat: --model-json goes with --build-data\n%s", cat_usage);
		return CLI_USAGE;
	}
	if ((rc = cmd_open(argv[0], &s, &env, 1)) >= 0)
		return rc;
	if (o.doc || o.asset) {
		rc = o.doc ? cat_doc(&env, &s, o.doc) : cat_asset(&env, &s, o.asset);
		cli_env_close(&env);
		return rc;
	}
	snprintf(buf, sizeof(buf), "%s", pos[0]);
	char *slash = strchr(buf, '/');
	if (slash)
		*slash = '\0';
	if (!slash || split_rel(slash + 1, &dir, &name) < 0 ||
	    idx_costume_find(env.idx, s.server, s.lang, -1, buf, &c) < 0) {
		fprintf(stderr, "l2dfs cat: %s: no such costume file\n", pos[0]);
		rc = CLI_USAGE;
	} else if ((rc = fetch_costume_ensure(env.lib, c.id)) < 0) {
		fprintf(stderr, "l2dfs cat: %s: cannot get its file list: %s\n", c.live2d_name,
			strerror(-rc));
		rc = CLI_FAILED;
	} else if (idx_file_find(env.idx, c.id, dir, name, &f) < 0) {
		fprintf(stderr, "l2dfs cat: %s: no such file in %s\n", pos[0], c.live2d_name);
		rc = CLI_USAGE;
	} else {
		rc = cat_file(&env, &f, pos[0]);
	}
	cli_env_close(&env);
	return rc;
}
