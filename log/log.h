/*
 * log: one line per event, to stderr in the foreground and to syslog when
 * daemonized. Modules return errors; they log only facts the user must see
 * (a skipped unsafe name, a failed download with its reason).
 */
#ifndef L2DFS_LOG_H
#define L2DFS_LOG_H

enum log_level { LOG_LVL_ERROR = 0, LOG_LVL_WARN = 1, LOG_LVL_INFO = 2, LOG_LVL_DEBUG = 3 };

/* Parse "error|warn|info|debug". Returns 0 and sets *out, or -EINVAL. */
int log_parse_level(const char *s, enum log_level *out);

/* Set the threshold (default LOG_LVL_INFO) and the sink. to_syslog != 0
 * switches to syslog(3) with ident "l2dfs". Call before threads start. */
void log_setup(enum log_level level, int to_syslog);

/* Thread-safe; appends a newline. */
void log_msg(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)

#endif
