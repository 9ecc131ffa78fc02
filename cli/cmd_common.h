/*
 * Shared by the subcommands (cli/cmd_*.c); not part of the contract.
 */
#ifndef L2DFS_CMD_COMMON_H
#define L2DFS_CMD_COMMON_H

#include <cJSON.h>
#include <signal.h>
#include <stdio.h>

#include "cli.h"

/* ---- the command line ---- */

/* A flag without a value: set to 1 when given. */
struct cmd_switch {
	const char *name;
	int *set;
};

struct cmd_spec {
	const char *usage;                /* the --help text; its first line also follows errors */
	const struct cmd_switch *switches; /* ended by { NULL, NULL }; may be NULL */
	const char *const *value_flags;   /* flags taking a value ("--to", "-j"); NULL-terminated */
	/* One value flag: 0, or -EINVAL having printed why. */
	int (*flag)(void *arg, const char *name, const char *value);
	void *arg;
	int min_pos, max_pos;             /* positional arguments allowed */
};

/*
 * Parse a subcommand's argv (argv[0] is its name): -o OPTIONS into *s
 * (the defaults first, log level warn), switches, value flags to
 * spec->flag, positional arguments into pos[] (at most spec->max_pos).
 * "--flag=value" and "-jN" forms are taken. Returns -1 when the command
 * should go on, else the cli_exit to return at once (CLI_OK after --help,
 * CLI_USAGE with a message on stderr). Sets up logging to stderr.
 */
int cmd_parse_args(int argc, char **argv, const struct cmd_spec *spec, struct cli_settings *s,
		   char **pos, int *npos);

/*
 * cmd_parse_args(), then cli_env_open(env, s, with_network) and, with the
 * network, the catalogue (fetch_catalogue_ensure()). Returns -1 with env
 * open, or the cli_exit to return at once (env closed).
 */
int cmd_start(int argc, char **argv, const struct cmd_spec *spec, struct cli_settings *s,
	      char **pos, int *npos, struct cli_env *env, int with_network);
/* The second half of cmd_start(), for a command that looks at its
 * arguments first: -1 with env open, or the cli_exit to return. */
int cmd_open(const char *cmd, const struct cli_settings *s, struct cli_env *env, int with_network);

/* "--x N": a whole number in [min, max] into *out, else a message and -EINVAL. */
int cmd_parse_int(const char *flag, const char *value, long min, long max, long *out);

/* ---- output ---- */

/* Print obj as one line on stdout (flushed; safe from several threads), free it. */
void cmd_json_line(cJSON *obj);

/* "model", "texture"...: a file kind as --json output names it. */
const char *cmd_kind_name(enum idx_file_kind kind);

/* "12.3 MiB": a size for people. */
const char *cmd_human_size(int64_t bytes, char buf[32]);

/* Seconds on a monotonic clock. */
double cmd_now(void);

/* ---- Ctrl-C ---- */

/* Set by the first SIGINT/SIGTERM after cmd_signals_install(); a second
 * one ends the process at once (default action). */
extern volatile sig_atomic_t cmd_interrupted;
void cmd_signals_install(void);

/*
 * Cancel the downloads of env now: the library starts no more transfers
 * and the engine is freed, failing those in flight with -ECANCELED (their
 * temporaries are removed, their rows go back to pending). Threads still
 * inside fetch_asset_open() get -ECANCELED; nothing else of the library
 * that uses the network may be called afterwards.
 */
void cmd_cancel_downloads(struct cli_env *env);

/*
 * Run fn(arg, i) for every i in [0, n) on up to nthreads threads; fn
 * returning non-zero stops the handing out of further items. While they
 * run, tick(arg) (may be NULL) is called on this thread about every 100 ms;
 * it too returns non-zero to stop. Returns when every thread has ended.
 */
void cmd_pool_run(size_t n, int nthreads, int (*fn)(void *arg, size_t i),
		  int (*tick)(void *arg), void *arg);

/* ---- names: fuzzy search (cmd_search.c) ---- */

#define CMD_MATCH_THRESHOLD 75.0

/*
 * rapidfuzz's partial_ratio on NFKC-normalized, case-folded code points:
 * the best normalized Indel similarity (x100) of the shorter string against
 * every window of its length in the longer. 0 if either is empty.
 */
double cmd_partial_ratio(const char *a, const char *b);

struct cmd_match {
	int64_t id;      /* character id, or costume row id */
	char name[IDX_TEXT_MAX + 1]; /* display name, or live2d name */
	double score;
	int is_costume;
};

/*
 * Characters of the server scored against query (their display name in
 * s->lang, or each of their five names if all_langs, the best counting),
 * best first (ties by id). *out is the caller's to free.
 */
int cmd_character_matches(struct cli_env *env, const struct cli_settings *s, const char *query,
			  int all_langs, struct cmd_match **out, size_t *n);

/*
 * A CHARACTER argument: a listed character's id (digits only), else the
 * exact display name in s->lang (NFC), else the best fuzzy match scoring at
 * least CMD_MATCH_THRESHOLD. -ENOENT if none; -ENOTUNIQ if several share the
 * best score (never one picked silently). The catalogue must be in the index.
 */
int cmd_resolve_character(struct cli_env *env, const struct cli_settings *s, const char *arg,
			  int64_t *id, char display[IDX_TEXT_MAX + 1]);

/* After -ENOTUNIQ: print the characters arg fits equally, with their ids. */
void cmd_print_candidates(struct cli_env *env, const struct cli_settings *s, const char *arg);

/* Print "<what> 'arg' not found" and the 5 nearest characters and costumes
 * to stderr. */
void cmd_print_nearest(struct cli_env *env, const struct cli_settings *s, const char *what,
		       const char *arg);

#endif
