/*
 * cmd_refresh.c: `l2dfs refresh`: fetch the catalogue now. A mount on the
 * same cache notices the new catalogue within seconds. `l2dfs refresh
 * COSTUME` asks the origin again about one costume (DESIGN §7).
 */
#include "cmd_common.h"

#include <string.h>

static const char refresh_usage[] =
	"usage: l2dfs refresh [-o OPTIONS] [COSTUME]\n"
	"\n"
	"Fetches the catalogue (roster, asset index, costume index) from the origin\n"
	"now, whatever its age, and stores it in the cache's index. A mount on the\n"
	"same cache shows added costumes and hides removed ones within seconds.\n"
	"With COSTUME (a live2d name), asks the origin again about that costume\n"
	"instead: its buildData is fetched now, and each cached file is asked for\n"
	"with a conditional request (If-None-Match with its SHA-256,\n"
	"If-Modified-Since); a file the origin says changed is dropped from the\n"
	"cache and downloaded again when next read. A mount then serves the new\n"
	"bytes under a new inode; readers holding the old file get ESTALE.\n"
	"Exit status: 0 when every document came; 5 when the origin failed (the\n"
	"stored catalogue, if any, stays in use).\n";

/* `l2dfs refresh COSTUME`. */
static int refresh_costume(struct cli_env *env, const struct cli_settings *s, const char *name)
{
	struct idx_costume c;
	int changed = 0, rc = idx_costume_find(env->idx, s->server, s->lang, -1, name, &c);

	if (rc < 0) {
		fprintf(stderr, "l2dfs refresh: %s: no such costume on %s\n", name, s->server);
		return CLI_USAGE;
	}
	rc = fetch_costume_refresh(env->lib, c.id, &changed);
	if (rc < 0) {
		fprintf(stderr, "l2dfs refresh: %s: %s\n", name, strerror(-rc));
		return CLI_FAILED;
	}
	printf("%s: buildData fetched again; %d file%s changed on the origin\n", name, changed,
	       changed == 1 ? "" : "s");
	return CLI_OK;
}

int cli_cmd_refresh(int argc, char **argv)
{
	const struct cmd_spec spec = { refresh_usage, NULL, NULL, NULL, NULL, 0, 1 };
	struct cli_settings s;
	struct cli_env env;
	int64_t generation = 0;
	char *pos[1];
	int npos, present, rc;

	rc = cmd_parse_args(argc, argv, &spec, &s, pos, &npos);
	if (rc >= 0)
		return rc;
	rc = cli_env_open(&env, &s, 1);
	if (rc)
		return rc;
	if (npos) {
		rc = fetch_catalogue_ensure(env.lib) < 0 ? CLI_FAILED
							  : refresh_costume(&env, &s, pos[0]);
		cli_env_close(&env);
		return rc;
	}
	rc = fetch_catalogue_refresh(env.lib, 1);
	present = idx_catalogue_present(env.idx, s.server);
	idx_catalogue_generation(env.idx, &generation);
	cli_env_close(&env);
	if (rc < 0) {
		fprintf(stderr, "l2dfs refresh: the origin did not give the catalogue of %s (%s); %s\n",
			s.server, strerror(-rc),
			present ? "the stored copy stays in use" : "no copy is stored");
		return CLI_FAILED;
	}
	printf("catalogue of %s refreshed (generation %lld)\n", s.server, (long long)generation);
	return CLI_OK;
}
