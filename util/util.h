/*
 * util: small helpers every module may use. No state, no I/O.
 */
#ifndef L2DFS_UTIL_H
#define L2DFS_UTIL_H

#include <stddef.h>

/*
 * Make room for at least need elements of elem bytes in the array *array
 * points to, whose capacity is *cap elements. The capacity doubles (from 16),
 * so n appends cost O(n) copying in all. Returns 0, or -ENOMEM with the
 * array and *cap unchanged.
 *
 *     if (util_grow(&v, &cap, n + 1, sizeof(*v)) < 0) return -ENOMEM;
 *     v[n++] = x;
 */
int util_grow(void *array, size_t *cap, size_t need, size_t elem);

/* 1 if s ends with suffix (compared case-insensitively for ASCII if nocase). */
int util_ends_with(const char *s, const char *suffix, int nocase);

#endif
