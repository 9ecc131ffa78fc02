/*
 * cmd_serve.c: `l2dfs serve`: the catalogue over HTTP (serve/), in the
 * foreground until SIGTERM or SIGINT.
 */
#include "cmd_common.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../serve/serve.h"

static const char serve_usage[] =
	"usage: l2dfs serve [-o OPTIONS] [--listen ADDR:PORT] [--cors ORIGIN|none]\n"
	"                   [--cubism-core URL] [--pixi URL] [--pixi-live2d URL]\n"
	"\n"
	"Serves the mount's tree (/characters/..., /costumes/...), the origin's layout\n"
	"(/assets/..., /api/...), a JSON API (/download, /status, /retry) and a gallery\n"
	"at / over HTTP, through the same cache. Listens on 127.0.0.1:7621 unless\n"
	"--listen says otherwise (port 0: any free port). --cors sets\n"
	"Access-Control-Allow-Origin (default *). --cubism-core gives the gallery's\n"
	"preview the Cubism 2 core (not shipped); --pixi and --pixi-live2d replace the\n"
	"CDN copies of pixi.js 6 and pixi-live2d-display's cubism2 build.\n"
	"Runs until SIGTERM or SIGINT.\n";

struct serve_args {
	char addr[64];
	long port;
	const char *cors, *core, *pixi, *live2d;
};

/* "127.0.0.1:7621", "[::1]:7621", "0.0.0.0" (the default port). */
static int parse_listen(const char *v, struct serve_args *a)
{
	const char *port = NULL;
	size_t n;

	if (v[0] == '[') {
		const char *close = strchr(v, ']');
		if (!close || (close[1] && close[1] != ':'))
			return -EINVAL;
		n = (size_t)(close - v - 1), v++;
		port = close[1] ? close + 2 : NULL;
	} else {
		const char *colon = strrchr(v, ':');
		if (colon && strchr(v, ':') != colon)
			colon = NULL; /* a bare IPv6 address */
		n = colon ? (size_t)(colon - v) : strlen(v);
		port = colon ? colon + 1 : NULL;
	}
	if (n == 0 || n >= sizeof(a->addr))
		return -EINVAL;
	memcpy(a->addr, v, n);
	a->addr[n] = '\0';
	return port ? cmd_parse_int("--listen port", port, 0, 65535, &a->port) : 0;
}

static int serve_flag(void *arg, const char *name, const char *value)
{
	struct serve_args *a = arg;

	if (strcmp(name, "--listen") == 0) {
		if (parse_listen(value, a) < 0) {
			fprintf(stderr, "l2dfs serve: bad --listen '%s' (ADDR:PORT)\n", value);
			return -EINVAL;
		}
	} else if (strcmp(name, "--cors") == 0) {
		a->cors = strcmp(value, "none") == 0 ? NULL : value;
	} else if (strcmp(name, "--cubism-core") == 0) {
		a->core = value;
	} else if (strcmp(name, "--pixi") == 0) {
		a->pixi = value;
	} else {
		a->live2d = value;
	}
	return 0;
}

int cli_cmd_serve(int argc, char **argv)
{
	static const char *const value_flags[] = { "--listen",	    "--cors", "--cubism-core",
						   "--pixi",	    "--pixi-live2d", NULL };
	struct serve_args a = { "127.0.0.1", SERVE_DEFAULT_PORT, "*", NULL, NULL, NULL };
	const struct cmd_spec spec = { serve_usage, NULL, value_flags, serve_flag, &a, 0, 0 };
	struct cli_settings s;
	struct cli_env env;
	struct serve *srv = NULL;
	char *pos[1];
	int npos, rc = cmd_start(argc, argv, &spec, &s, pos, &npos, &env, 1);

	if (rc >= 0)
		return rc;
	struct serve_config cfg = {
		.addr = a.addr, .port = (int)a.port, .cors = a.cors, .cubism_core_url = a.core,
		.pixi_url = a.pixi, .live2d_url = a.live2d, .server = s.server, .lang = s.lang,
	};
	if (!serve_addr_loopback(a.addr))
		fprintf(stderr, "l2dfs serve: warning: listening on %s: other machines can reach"
				" this server and make it download\n", a.addr);
	cmd_signals_install();
	rc = serve_start(&srv, &cfg, env.lib, env.idx);
	if (rc < 0) {
		fprintf(stderr, "l2dfs serve: cannot listen on %s:%ld: %s\n", a.addr, a.port,
			rc == -EINVAL ? "not a numeric address" : "address in use or not local");
		cli_env_close(&env);
		return CLI_USAGE;
	}
	fprintf(stderr, "l2dfs serve: listening on http://%s%s%s:%d/\n",
		strchr(a.addr, ':') ? "[" : "", a.addr, strchr(a.addr, ':') ? "]" : "",
		serve_port(srv));
	while (!cmd_interrupted)
		usleep(100 * 1000);
	/* Waiting readers first let go, then the connections' threads end. */
	fetch_library_stop(env.lib);
	serve_stop(srv);
	cli_env_close(&env);
	return CLI_OK;
}
