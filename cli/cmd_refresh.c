/*
 * cmd_refresh.c: `l2dfs refresh`: fetch the catalogue now. A mount on the
 * same cache notices the new catalogue within seconds.
 */
#include "cmd_common.h"

#include <string.h>

static const char refresh_usage[] =
	"usage: l2dfs refresh [-o OPTIONS]\n"
	"\n"
	"Fetches the catalogue (roster, asset index, costume index) from the origin\n"
	"now, whatever its age, and stores it in the cache's index. A mount on the\n"
	"same cache shows added costumes and hides removed ones within seconds.\n"
	"Exit status: 0 when every document came; 5 when the origin failed (the\n"
	"stored catalogue, if any, stays in use).\n";

int cli_cmd_refresh(int argc, char **argv)
{
	const struct cmd_spec spec = { refresh_usage, NULL, NULL, NULL, NULL, 0, 0 };
	struct cli_settings s;
	struct cli_env env;
	int64_t generation = 0;
	int npos, present, rc = cmd_parse_args(argc, argv, &spec, &s, NULL, &npos);

	if (rc >= 0)
		return rc;
	rc = cli_env_open(&env, &s, 1);
	if (rc)
		return rc;
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
