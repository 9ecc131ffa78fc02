/*
 * cmd_search.c: `l2dfs search` and `l2dfs costumes`, and the fuzzy name
 * matching `pull` shares (rapidfuzz's partial_ratio, as the Python
 * downloader used).
 */
#include "cmd_common.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

/* ---- partial_ratio ---- */

/* Code points of s after NFKC and case folding; *out is malloc'd. */
static int normalize(const char *s, int32_t **out, size_t *n)
{
	utf8proc_uint8_t *mapped = NULL;
	utf8proc_ssize_t len = utf8proc_map((const utf8proc_uint8_t *)s, 0, &mapped,
					    UTF8PROC_NULLTERM | UTF8PROC_STABLE |
						    UTF8PROC_COMPOSE | UTF8PROC_COMPAT |
						    UTF8PROC_CASEFOLD);
	size_t k = 0;

	if (len < 0)
		return -EINVAL;
	*out = malloc(((size_t)len + 1) * sizeof(**out));
	if (!*out) {
		free(mapped);
		return -ENOMEM;
	}
	for (utf8proc_ssize_t i = 0; i < len;) {
		utf8proc_int32_t c;
		utf8proc_ssize_t step = utf8proc_iterate(mapped + i, len - i, &c);
		if (step <= 0)
			break;
		(*out)[k++] = c;
		i += step;
	}
	free(mapped);
	*n = k;
	return 0;
}

/* Length of the longest common subsequence of a[0..na) and b[0..nb); row
 * holds nb + 1 entries. */
static size_t lcs(const int32_t *a, size_t na, const int32_t *b, size_t nb, size_t *row)
{
	memset(row, 0, (nb + 1) * sizeof(*row));
	for (size_t i = 0; i < na; i++) {
		size_t diag = 0;
		for (size_t j = 0; j < nb; j++) {
			size_t up = row[j + 1];
			row[j + 1] = a[i] == b[j] ? diag + 1 : (up > row[j] ? up : row[j]);
			diag = up;
		}
	}
	return row[nb];
}

/*
 * rapidfuzz's partial_ratio of needle (n) in hay (m >= n): the best indel
 * ratio 200 * LCS / (n + w) over the windows w of hay that rapidfuzz
 * scores: every window of length n, and the prefixes and suffixes of hay
 * shorter than n (the windows overhanging either end).
 */
static double slide(const int32_t *needle, size_t n, const int32_t *hay, size_t m, size_t *row)
{
	double best = 0;
	for (size_t w = 1; w < n; w++) {
		size_t pre = lcs(needle, n, hay, w, row), suf = lcs(needle, n, hay + m - w, w, row);
		double r = 200.0 * (double)(pre > suf ? pre : suf) / (double)(n + w);
		best = r > best ? r : best;
	}
	for (size_t off = 0; off + n <= m && best < 100; off++) {
		double r = 200.0 * (double)lcs(needle, n, hay + off, n, row) / (double)(2 * n);
		best = r > best ? r : best;
	}
	return best;
}

double cmd_partial_ratio(const char *a, const char *b)
{
	int32_t *x = NULL, *y = NULL;
	size_t nx = 0, ny = 0, *row = NULL;
	double best = 0;

	if (normalize(a, &x, &nx) == 0 && normalize(b, &y, &ny) == 0 && nx && ny &&
	    (row = malloc(((nx > ny ? nx : ny) + 1) * sizeof(*row)))) {
		/* The shorter one slides along the longer; of equal lengths,
		 * each along the other, as rapidfuzz does. */
		if (nx <= ny)
			best = slide(x, nx, y, ny, row);
		if (ny <= nx && best < 100) {
			double r = slide(y, ny, x, nx, row);
			best = r > best ? r : best;
		}
	}
	free(row);
	free(x);
	free(y);
	return best;
}

/* ---- scoring the catalogue ---- */

struct matches {
	const char *query;
	struct cmd_match *v;
	size_t n, cap;
};

static int match_add(struct matches *m, int64_t id, const char *name, int is_costume)
{
	if (util_grow(&m->v, &m->cap, m->n + 1, sizeof(*m->v)) < 0)
		return -ENOMEM;
	struct cmd_match *x = &m->v[m->n++];
	x->id = id;
	snprintf(x->name, sizeof(x->name), "%s", name);
	x->score = cmd_partial_ratio(m->query, name);
	x->is_costume = is_costume;
	return 0;
}

static int add_character(void *arg, int64_t id, const char *display)
{
	return match_add(arg, id, display, 0);
}

static int add_costume(void *arg, const struct idx_costume *c)
{
	return match_add(arg, c->id, c->live2d_name, 1);
}

static int match_cmp(const void *x, const void *y)
{
	const struct cmd_match *a = x, *b = y;
	if (a->score != b->score)
		return a->score > b->score ? -1 : 1;
	if (a->is_costume != b->is_costume)
		return a->is_costume - b->is_costume;
	return a->id < b->id ? -1 : a->id > b->id;
}

int cmd_character_matches(struct cli_env *env, const struct cli_settings *s, const char *query,
			  int all_langs, struct cmd_match **out, size_t *n)
{
	struct matches m = { query, NULL, 0, 0 };
	int rc = idx_character_list(env->idx, s->server, s->lang, add_character, &m);

	/* The other names are read once the listing (which holds the index) is over. */
	for (size_t i = 0; rc == 0 && all_langs && i < m.n; i++) {
		char *names[IDX_LANGS];
		if (idx_character_names(env->idx, m.v[i].id, names) < 0)
			continue;
		for (int l = 0; l < IDX_LANGS; l++) {
			double sc = names[l] ? cmd_partial_ratio(query, names[l]) : 0;
			if (sc > m.v[i].score)
				m.v[i].score = sc;
			free(names[l]);
		}
	}
	if (rc < 0) {
		free(m.v);
		return rc;
	}
	if (m.n) /* m.v may be NULL */
		qsort(m.v, m.n, sizeof(*m.v), match_cmp);
	*out = m.v;
	*n = m.n;
	return 0;
}

/* Characters matching arg fuzzily, best first; *ntop: how many share the
 * best score, 0 when it is under CMD_MATCH_THRESHOLD. */
static int best_matches(struct cli_env *env, const struct cli_settings *s, const char *arg,
			struct cmd_match **m, size_t *n, size_t *ntop)
{
	int rc = cmd_character_matches(env, s, arg, 0, m, n);

	*ntop = 0;
	if (rc == 0 && *n && (*m)[0].score >= CMD_MATCH_THRESHOLD)
		while (*ntop < *n && (*m)[*ntop].score == (*m)[0].score)
			(*ntop)++;
	return rc;
}

struct by_id {
	int64_t id;
	char *display;
	size_t len;
};

static int find_id(void *arg, int64_t id, const char *display)
{
	struct by_id *b = arg;
	if (id != b->id)
		return 0;
	snprintf(b->display, b->len, "%s", display);
	return 1;
}

/* arg all digits: the listed character with that id. -ENOENT if none. */
static int resolve_id(struct cli_env *env, const struct cli_settings *s, const char *arg,
		      int64_t *id, char display[IDX_TEXT_MAX + 1])
{
	struct by_id b = { 0, display, IDX_TEXT_MAX + 1 };

	if (!*arg || strspn(arg, "0123456789") != strlen(arg) || strlen(arg) > 18)
		return -ENOENT;
	b.id = strtoll(arg, NULL, 10);
	int rc = idx_character_list(env->idx, s->server, s->lang, find_id, &b);
	if (rc == 1)
		*id = b.id;
	return rc == 1 ? 0 : rc < 0 ? rc : -ENOENT;
}

int cmd_resolve_character(struct cli_env *env, const struct cli_settings *s, const char *arg,
			  int64_t *id, char display[IDX_TEXT_MAX + 1])
{
	struct cmd_match *m;
	size_t n, ntop;
	char *nfc = (char *)utf8proc_NFC((const utf8proc_uint8_t *)arg);
	int rc;

	display[0] = '\0';
	rc = resolve_id(env, s, arg, id, display);
	if (rc == -ENOENT)
		rc = nfc ? idx_character_find(env->idx, s->server, s->lang, nfc, id) : -ENOMEM;
	if (rc == 0 && display[0] == '\0')
		snprintf(display, IDX_TEXT_MAX + 1, "%s", nfc);
	free(nfc);
	if (rc != -ENOENT)
		return rc;
	rc = best_matches(env, s, arg, &m, &n, &ntop);
	if (rc < 0)
		return rc;
	rc = ntop == 0 ? -ENOENT : ntop > 1 ? -ENOTUNIQ : 0;
	if (rc == 0) {
		*id = m[0].id;
		snprintf(display, IDX_TEXT_MAX + 1, "%s", m[0].name);
	}
	free(m);
	return rc;
}

void cmd_print_candidates(struct cli_env *env, const struct cli_settings *s, const char *arg)
{
	struct cmd_match *m = NULL;
	size_t n = 0, ntop = 0;

	best_matches(env, s, arg, &m, &n, &ntop);
	fprintf(stderr, "l2dfs: '%s' names %zu characters on server %s; give one by id or name:\n",
		arg, ntop, s->server);
	for (size_t i = 0; i < ntop; i++)
		fprintf(stderr, "  %lld\t%s\n", (long long)m[i].id, m[i].name);
	free(m);
}

void cmd_print_nearest(struct cli_env *env, const struct cli_settings *s, const char *what,
		       const char *arg)
{
	struct matches m = { arg, NULL, 0, 0 };
	size_t shown = 0;

	if (idx_character_list(env->idx, s->server, s->lang, add_character, &m) == 0 &&
	    idx_costume_list(env->idx, s->server, s->lang, -1, add_costume, &m) == 0 && m.n)
		qsort(m.v, m.n, sizeof(*m.v), match_cmp);
	while (shown < m.n && shown < 5 && m.v[shown].score > 0)
		shown++;
	fprintf(stderr, "l2dfs: no %s '%s' on server %s%s\n", what, arg, s->server,
		shown ? "; the nearest:" : "");
	for (size_t i = 0; i < shown; i++)
		fprintf(stderr, "  %s\t(%s, %.1f)\n", m.v[i].name,
			m.v[i].is_costume ? "costume" : "character", m.v[i].score);
	free(m.v);
}

/* ---- the commands ---- */

struct list_opts {
	int all_langs, json, no_live_event, all;
	double min_score; /* search: the lowest score printed */
	long id;          /* costumes: the character by id (0: by name) */
};

/* A character's five names as a JSON array (null where missing). */
static cJSON *names_json(struct cli_env *env, int64_t id)
{
	char *names[IDX_LANGS];
	cJSON *a = cJSON_CreateArray();

	if (idx_character_names(env->idx, id, names) < 0)
		return a;
	for (int l = 0; l < IDX_LANGS; l++) {
		cJSON_AddItemToArray(a, names[l] ? cJSON_CreateString(names[l]) : cJSON_CreateNull());
		free(names[l]);
	}
	return a;
}

static int search_flag(void *arg, const char *name, const char *value)
{
	struct list_opts *o = arg;
	long n;

	if (cmd_parse_int(name, value, 0, 100, &n) < 0)
		return -EINVAL;
	o->min_score = (double)n;
	return 0;
}

static const char search_usage[] =
	"usage: l2dfs search [-o OPTIONS] [--all] [--all-languages] [--min-score N] [--json] NAME\n"
	"\n"
	"Characters whose name matches NAME (fuzzy: partial ratio >= 75 on\n"
	"NFKC-normalized, case-folded text), best first, one per line:\n"
	"<id> TAB <display name> TAB <score>. Names are matched in -o lang=\n"
	"(default zh-hans), or in all five languages with --all-languages.\n"
	"--min-score N prints matches scoring at least N (0..100) instead of 75.\n"
	"--json prints {\"id\", \"name\", \"score\"} objects, one per line, with\n"
	"\"names\" (the five names, ja en zh-hant zh-hans ko, null where missing)\n"
	"under --all-languages.\n"
	"--all searches every entry of the site's roster, also characters with no\n"
	"costume (named in lang, else in Japanese), and --json always has \"names\".\n"
	"Exit status: 0 if something matched, 5 if nothing did.\n";

static void print_match(struct cli_env *env, const struct list_opts *o, const struct cmd_match *m)
{
	if (!o->json) {
		printf("%lld\t%s\t%.1f\n", (long long)m->id, m->name, m->score);
		return;
	}
	cJSON *j = cJSON_CreateObject();
	cJSON_AddNumberToObject(j, "id", (double)m->id);
	cJSON_AddStringToObject(j, "name", m->name);
	cJSON_AddNumberToObject(j, "score", m->score);
	if (o->all_langs)
		cJSON_AddItemToObject(j, "names", names_json(env, m->id));
	cmd_json_line(j);
}

/* A roster entry's name in lang, else Japanese, else the first it has; NULL
 * if it has none. */
static const char *roster_name(const cJSON *names, int lang)
{
	const cJSON *x = cJSON_GetArrayItem(names, lang);

	if (!cJSON_IsString(x))
		x = cJSON_GetArrayItem(names, 0);
	for (int l = 0; !cJSON_IsString(x) && l < IDX_LANGS; l++)
		x = cJSON_GetArrayItem(names, l);
	return cJSON_IsString(x) ? x->valuestring : NULL;
}

struct roster_match {
	struct cmd_match m; /* first: match_cmp sorts these */
	const cJSON *names;
};

/*
 * --all: every entry of the stored roster document, in roster order, not
 * only the characters with a costume (the Python downloader searched
 * these). A name missing in the language scores 0; ties go to the lower id,
 * which is the roster's order. Prints the matches; the number in *shown.
 */
static int roster_search(struct cli_env *env, const struct cli_settings *s,
			 const struct list_opts *o, const char *query, size_t *shown)
{
	struct roster_match *v = NULL;
	size_t n = 0, cap = 0, len;
	char *body = NULL;
	cJSON *doc = NULL, *e;
	int rc = fetch_catalogue_document(env->lib, "/characters/all.2.json", &body, &len);

	if (rc == 0 && !(doc = cJSON_ParseWithLength(body, len)))
		rc = -EINVAL;
	cJSON_ArrayForEach(e, doc)
	{
		const cJSON *names = cJSON_GetObjectItemCaseSensitive(e, "characterName");
		const char *display = roster_name(names, s->lang);
		char *end;
		long long id = strtoll(e->string, &end, 10);

		if (!display || *end || !*e->string)
			continue;
		if (util_grow(&v, &cap, n + 1, sizeof(*v)) < 0) {
			rc = -ENOMEM;
			break;
		}
		struct roster_match *r = &v[n++];
		r->names = names;
		r->m.id = id;
		r->m.is_costume = 0;
		snprintf(r->m.name, sizeof(r->m.name), "%s", display);
		r->m.score = 0;
		for (int l = 0; l < IDX_LANGS; l++) {
			const cJSON *x = cJSON_GetArrayItem(names, l);
			double sc = (o->all_langs || l == s->lang) && cJSON_IsString(x)
					    ? cmd_partial_ratio(query, x->valuestring)
					    : 0;
			r->m.score = sc > r->m.score ? sc : r->m.score;
		}
	}
	if (n)
		qsort(v, n, sizeof(*v), match_cmp);
	for (*shown = 0; rc == 0 && *shown < n && v[*shown].m.score >= o->min_score; (*shown)++) {
		const struct roster_match *r = &v[*shown];
		if (!o->json) {
			printf("%lld\t%s\t%.1f\n", (long long)r->m.id, r->m.name, r->m.score);
			continue;
		}
		cJSON *j = cJSON_CreateObject();
		cJSON_AddNumberToObject(j, "id", (double)r->m.id);
		cJSON_AddStringToObject(j, "name", r->m.name);
		cJSON_AddNumberToObject(j, "score", r->m.score);
		cJSON_AddItemToObject(j, "names", cJSON_Duplicate(r->names, 1));
		cmd_json_line(j);
	}
	free(v);
	cJSON_Delete(doc);
	free(body);
	return rc;
}

int cli_cmd_search(int argc, char **argv)
{
	static const char *const value_flags[] = { "--min-score", NULL };
	struct list_opts o = { .min_score = CMD_MATCH_THRESHOLD };
	const struct cmd_switch sw[] = { { "--all-languages", &o.all_langs },
					 { "--all", &o.all },
					 { "--json", &o.json },
					 { NULL, NULL } };
	const struct cmd_spec spec = { search_usage, sw, value_flags, search_flag, &o, 1, 1 };
	struct cli_settings s;
	struct cli_env env;
	struct cmd_match *m = NULL;
	char *pos[1];
	size_t n = 0, shown = 0;
	int npos, rc = cmd_start(argc, argv, &spec, &s, pos, &npos, &env, 1);

	if (rc >= 0)
		return rc;
	rc = 0;
	if (o.all) {
		rc = roster_search(&env, &s, &o, pos[0], &shown);
		if (rc < 0)
			fprintf(stderr, "l2dfs search: no usable roster: %s\n", strerror(-rc));
	} else if (cmd_character_matches(&env, &s, pos[0], o.all_langs, &m, &n) < 0) {
		fprintf(stderr, "l2dfs search: the index is unusable\n");
		cli_env_close(&env);
		return CLI_CACHE;
	}
	for (size_t i = 0; i < n && m[i].score >= o.min_score; i++, shown++)
		print_match(&env, &o, &m[i]);
	if (rc < 0) {
		cli_env_close(&env);
		return CLI_FAILED;
	}
	if (!shown)
		fprintf(stderr, "l2dfs search: no character matches '%s'%s\n", pos[0],
			o.all_langs ? "" : " (try --all-languages)");
	free(m);
	cli_env_close(&env);
	return shown ? CLI_OK : CLI_FAILED;
}

static const char characters_usage[] =
	"usage: l2dfs characters [-o OPTIONS] [--json]\n"
	"\n"
	"Every character of the server that has a costume (the mount's characters/),\n"
	"by id, one per line: <id> TAB <display name>. --json prints {\"id\", \"name\",\n"
	"\"names\"} lines, names being the five names (ja, en, zh-hant, zh-hans, ko;\n"
	"null where missing).\n";

int cli_cmd_characters(int argc, char **argv)
{
	struct list_opts o = { 0 };
	const struct cmd_switch sw[] = { { "--json", &o.json }, { NULL, NULL } };
	const struct cmd_spec spec = { characters_usage, sw, NULL, NULL, NULL, 0, 0 };
	struct cli_settings s;
	struct cli_env env;
	struct matches m = { "", NULL, 0, 0 };
	int npos, rc = cmd_start(argc, argv, &spec, &s, NULL, &npos, &env, 1);

	if (rc >= 0)
		return rc;
	rc = idx_character_list(env.idx, s.server, s.lang, add_character, &m) < 0 ? CLI_CACHE : CLI_OK;
	if (rc != CLI_OK)
		fprintf(stderr, "l2dfs characters: the index is unusable\n");
	/* The names are read once the listing (which holds the index) is over. */
	for (size_t i = 0; rc == CLI_OK && i < m.n; i++) {
		if (!o.json) {
			printf("%lld\t%s\n", (long long)m.v[i].id, m.v[i].name);
			continue;
		}
		cJSON *j = cJSON_CreateObject();
		cJSON_AddNumberToObject(j, "id", (double)m.v[i].id);
		cJSON_AddStringToObject(j, "name", m.v[i].name);
		cJSON_AddItemToObject(j, "names", names_json(&env, m.v[i].id));
		cmd_json_line(j);
	}
	free(m.v);
	cli_env_close(&env);
	return rc;
}

struct costume_print {
	int json, no_live_event;
};

static int print_costume(void *arg, const struct idx_costume *c)
{
	struct costume_print *p = arg;

	if (p->no_live_event && strstr(c->live2d_name, "live_event"))
		return 0;
	if (p->json) {
		cJSON *j = cJSON_CreateObject();
		cJSON_AddStringToObject(j, "live2d_name", c->live2d_name);
		cJSON_AddStringToObject(j, "name", c->display);
		cmd_json_line(j);
	} else {
		printf("%s\t%s\n", c->live2d_name, c->display);
	}
	return 0;
}

static const char costumes_usage[] =
	"usage: l2dfs costumes [-o OPTIONS] [--no-live-event] [--json] CHARACTER|--id N\n"
	"\n"
	"The costumes of CHARACTER (its id, its display name in -o lang=, or the\n"
	"best fuzzy match as `l2dfs search` finds it; a name that fits several\n"
	"characters equally lists them and fails), or of the character with id N,\n"
	"in the mount's order, one per line: <live2d name> TAB <costume name>.\n"
	"--no-live-event leaves out names containing \"live_event\". --json prints\n"
	"{\"live2d_name\", \"name\"} lines.\n"
	"Exit status: 0, or 1 if no character matches.\n";

static int costumes_flag(void *arg, const char *name, const char *value)
{
	struct list_opts *o = arg;

	return cmd_parse_int(name, value, 1, INT32_MAX, &o->id);
}

/* The character named by pos (or --id): 0, or a cli_exit having said why. */
static int costumes_character(struct cli_env *env, const struct cli_settings *s,
			      const struct list_opts *o, char **pos, int npos, int64_t *id)
{
	char display[IDX_TEXT_MAX + 1];
	int rc;

	if ((npos == 0) == (o->id == 0)) {
		fprintf(stderr, "l2dfs costumes: give a CHARACTER or --id N\n%s", costumes_usage);
		return CLI_USAGE;
	}
	if (o->id) {
		*id = o->id;
		return 0;
	}
	rc = cmd_resolve_character(env, s, pos[0], id, display);
	if (rc == -ENOENT) {
		cmd_print_nearest(env, s, "character", pos[0]);
		return CLI_USAGE;
	}
	if (rc == -ENOTUNIQ) {
		cmd_print_candidates(env, s, pos[0]);
		return CLI_USAGE;
	}
	if (rc < 0) {
		fprintf(stderr, "l2dfs costumes: the index is unusable\n");
		return CLI_CACHE;
	}
	return 0;
}

int cli_cmd_costumes(int argc, char **argv)
{
	static const char *const value_flags[] = { "--id", NULL };
	struct list_opts o = { 0 };
	const struct cmd_switch sw[] = { { "--no-live-event", &o.no_live_event },
					 { "--json", &o.json },
					 { NULL, NULL } };
	const struct cmd_spec spec = { costumes_usage, sw, value_flags, costumes_flag, &o, 0, 1 };
	struct cli_settings s;
	struct cli_env env;
	char *pos[1];
	int64_t id;
	int npos, rc = cmd_start(argc, argv, &spec, &s, pos, &npos, &env, 1);

	if (rc >= 0)
		return rc;
	rc = costumes_character(&env, &s, &o, pos, npos, &id);
	if (rc == 0) {
		struct costume_print p = { o.json, o.no_live_event };
		rc = idx_costume_list(env.idx, s.server, s.lang, id, print_costume, &p) < 0
			     ? CLI_CACHE
			     : CLI_OK;
	}
	cli_env_close(&env);
	return rc;
}
