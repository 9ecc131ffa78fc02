/*
 * cmd_common.c: what every subcommand does the same way: its command line,
 * JSON lines, Ctrl-C, and a pool of threads.
 */
#include "cmd_common.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int takes_value(const struct cmd_spec *spec, const char *name)
{
	for (const char *const *f = spec->value_flags; f && *f; f++)
		if (strcmp(*f, name) == 0)
			return 1;
	return 0;
}

static int *switch_of(const struct cmd_spec *spec, const char *name)
{
	for (const struct cmd_switch *w = spec->switches; w && w->name; w++)
		if (strcmp(w->name, name) == 0)
			return w->set;
	return NULL;
}

/* "--flag=value" and "-jN": the flag's name into name, and its value or NULL. */
static const char *split_flag(const char *a, char *name, size_t len)
{
	const char *eq;

	if (a[1] == '-' && (eq = strchr(a, '=')) != NULL) {
		snprintf(name, len, "%.*s", (int)(eq - a), a);
		return eq + 1;
	}
	if (a[1] != '-' && a[2]) {
		snprintf(name, len, "%.2s", a);
		return a + 2;
	}
	snprintf(name, len, "%s", a);
	return NULL;
}

static int usage_error(const char *cmd, const struct cmd_spec *spec, const char *fmt,
		       const char *what)
{
	const char *nl = strchr(spec->usage, '\n');
	int len = nl ? (int)(nl - spec->usage) : (int)strlen(spec->usage);

	fprintf(stderr, "l2dfs %s: ", cmd);
	fprintf(stderr, fmt, what);
	fprintf(stderr, "\n%.*s\n(l2dfs %s --help for more)\n", len, spec->usage, cmd);
	return CLI_USAGE;
}

int cmd_parse_args(int argc, char **argv, const struct cmd_spec *spec, struct cli_settings *s,
		   char **pos, int *npos)
{
	const char *cmd = argv[0];
	char why[512] = "", name[64];
	int only_pos = 0, env_rc;

	cli_settings_defaults(s);
	/* Library chatter (each file cached...) would drown the command's own output. */
	s->log_level = LOG_LVL_WARN;
	/* Reported after the loop, so that --help still works. */
	env_rc = cli_settings_from_env(s, why, sizeof(why));
	*npos = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *value;
		if (only_pos || a[0] != '-' || a[1] == '\0') {
			if (*npos >= spec->max_pos)
				return usage_error(cmd, spec, "too many arguments: %s", a);
			pos[(*npos)++] = argv[i];
			continue;
		}
		if (strcmp(a, "--") == 0) {
			only_pos = 1;
			continue;
		}
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			fputs(spec->usage, stdout);
			return CLI_OK;
		}
		if (strncmp(a, "-o", 2) == 0) {
			const char *opts = a[2] ? a + 2 : (i + 1 < argc ? argv[++i] : NULL);
			if (!opts)
				return usage_error(cmd, spec, "%s needs options", "-o");
			if (env_rc == 0 && cli_settings_apply(s, opts, why, sizeof(why)) < 0)
				return usage_error(cmd, spec, "%s", why);
			continue;
		}
		value = split_flag(a, name, sizeof(name));
		int *set = switch_of(spec, name);
		if (set && !value) {
			*set = 1;
			continue;
		}
		if (!takes_value(spec, name))
			return usage_error(cmd, spec, "unknown flag %s", a);
		if (!value && i + 1 >= argc)
			return usage_error(cmd, spec, "%s needs a value", name);
		if (!value)
			value = argv[++i];
		if (spec->flag(spec->arg, name, value) < 0)
			return CLI_USAGE;
	}
	if (env_rc < 0)
		return usage_error(cmd, spec, "%s", why);
	if (*npos < spec->min_pos)
		return usage_error(cmd, spec, "%s", *npos ? "too few arguments" : "missing arguments");
	log_setup(s->log_level, 0);
	return -1;
}

int cmd_start(int argc, char **argv, const struct cmd_spec *spec, struct cli_settings *s,
	      char **pos, int *npos, struct cli_env *env, int with_network)
{
	int rc = cmd_parse_args(argc, argv, spec, s, pos, npos);

	return rc >= 0 ? rc : cmd_open(argv[0], s, env, with_network);
}

int cmd_open(const char *cmd, const struct cli_settings *s, struct cli_env *env, int with_network)
{
	int rc = cli_env_open(env, s, with_network);

	if (rc)
		return rc;
	if (with_network && fetch_catalogue_ensure(env->lib) < 0) {
		fprintf(stderr, "l2dfs %s: cannot get the catalogue from %s\n", cmd, s->api_url);
		cli_env_close(env);
		return CLI_FAILED;
	}
	return -1;
}

int cmd_parse_int(const char *flag, const char *value, long min, long max, long *out)
{
	char *end;
	errno = 0;
	long n = strtol(value, &end, 10);

	if (!*value || *end || errno || n < min || n > max) {
		fprintf(stderr, "l2dfs: bad value for %s: '%s' (a whole number, %ld-%ld)\n", flag,
			value, min, max);
		return -EINVAL;
	}
	*out = n;
	return 0;
}

/* ---- output ---- */

static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;

void cmd_json_line(cJSON *obj)
{
	char *text = obj ? cJSON_PrintUnformatted(obj) : NULL;

	if (text) {
		pthread_mutex_lock(&out_lock);
		fputs(text, stdout);
		fputc('\n', stdout);
		fflush(stdout);
		pthread_mutex_unlock(&out_lock);
	}
	free(text);
	cJSON_Delete(obj);
}

const char *cmd_human_size(int64_t bytes, char buf[32])
{
	static const char *const units[] = { "KiB", "MiB", "GiB", "TiB" };
	double v = (double)bytes;
	int u = -1;

	while (v >= 1024 && u < 3) {
		v /= 1024;
		u++;
	}
	if (u < 0)
		snprintf(buf, 32, "%lld B", (long long)bytes);
	else
		snprintf(buf, 32, "%.1f %s", v, units[u]);
	return buf;
}

double cmd_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- Ctrl-C ---- */

volatile sig_atomic_t cmd_interrupted;

static void on_signal(int sig)
{
	(void)sig;
	cmd_interrupted = 1;
}

void cmd_signals_install(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	/* The handler only raises the flag; the next signal acts as usual. */
	sa.sa_flags = SA_RESTART | SA_RESETHAND;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

void cmd_cancel_downloads(struct cli_env *env)
{
	if (!env->engine)
		return;
	if (env->lib)
		fetch_library_stop(env->lib);
	http_engine_free(env->engine);
	env->engine = NULL;
}

/* ---- the pool ---- */

#define POOL_MAX 64

struct pool {
	size_t n, next;
	int stop, running;
	int (*fn)(void *arg, size_t i);
	void *arg;
	pthread_mutex_t lock;
	pthread_cond_t ended;
};

static void *pool_worker(void *arg)
{
	struct pool *p = arg;

	pthread_mutex_lock(&p->lock);
	while (!p->stop && p->next < p->n) {
		size_t i = p->next++;
		pthread_mutex_unlock(&p->lock);
		int stop = p->fn(p->arg, i);
		pthread_mutex_lock(&p->lock);
		if (stop)
			p->stop = 1;
	}
	p->running--;
	pthread_cond_broadcast(&p->ended);
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

void cmd_pool_run(size_t n, int nthreads, int (*fn)(void *arg, size_t i),
		  int (*tick)(void *arg), void *arg)
{
	struct pool p = { n, 0, 0, 0, fn, arg, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER };
	pthread_t threads[POOL_MAX];
	int started = 0;

	if (nthreads < 1)
		nthreads = 1;
	if (nthreads > POOL_MAX)
		nthreads = POOL_MAX;
	if ((size_t)nthreads > n)
		nthreads = (int)n;
	pthread_mutex_lock(&p.lock);
	for (int i = 0; i < nthreads; i++) {
		if (pthread_create(&threads[started], NULL, pool_worker, &p) == 0) {
			started++;
			p.running++;
		}
	}
	if (!started && n) {
		p.running = 1;
		pthread_mutex_unlock(&p.lock);
		pool_worker(&p);
		pthread_mutex_lock(&p.lock);
	}
	while (p.running) {
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += 100 * 1000 * 1000;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&p.ended, &p.lock, &until);
		if (tick && p.running) {
			pthread_mutex_unlock(&p.lock);
			int stop = tick(arg);
			pthread_mutex_lock(&p.lock);
			if (stop)
				p.stop = 1;
		}
	}
	pthread_mutex_unlock(&p.lock);
	for (int i = 0; i < started; i++)
		pthread_join(threads[i], NULL);
	pthread_mutex_destroy(&p.lock);
	pthread_cond_destroy(&p.ended);
}

const char *cmd_kind_name(enum idx_file_kind kind)
{
	static const char *const kinds[] = {
		[IDX_KIND_MODEL] = "model",	    [IDX_KIND_PHYSICS] = "physics",
		[IDX_KIND_TEXTURE] = "texture",	    [IDX_KIND_MOTION] = "motion",
		[IDX_KIND_EXPRESSION] = "expression", [IDX_KIND_ICON] = "icon",
		[IDX_KIND_MODEL_JSON] = "model_json", [IDX_KIND_NAME_TXT] = "name_txt",
	};

	return kinds[kind];
}
