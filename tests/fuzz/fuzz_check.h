/*
 * What every parser output must satisfy, whatever the input: checked by the
 * fuzz targets, which abort() on the first violation.
 */
#ifndef L2DFS_FUZZ_CHECK_H
#define L2DFS_FUZZ_CHECK_H

#include <stdlib.h>
#include <string.h>

#include "../../fetch/bestdori/bestdori_int.h"
#include "../../util/util.h"

#define CHECK(cond)                                                                        \
	do {                                                                               \
		if (!(cond))                                                               \
			abort();                                                           \
	} while (0)

static inline int has_control(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p == 0x7f || (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f))
			return 1;
	return 0;
}

/* A display name: NULL, or shown as it is. */
static inline void check_display_name(const char *s)
{
	if (!s)
		return;
	CHECK(bd_utf8_valid(s) && !has_control(s) && !strchr(s, '/'));
	CHECK(*s && strcmp(s, ".") && strcmp(s, "..") && strlen(s) <= 200);
}

/* A description (name.txt text): NULL, or valid text kept as sent, '/' too. */
static inline void check_text(const char *s)
{
	if (!s)
		return;
	CHECK(bd_utf8_valid(s) && !has_control(s));
	CHECK(*s && strcmp(s, ".") && strcmp(s, "..") && strlen(s) <= 1000);
}

/* Reject lines go to the log: no control bytes, valid UTF-8. */
static inline void check_rejects(struct bd_rejects *r)
{
	for (size_t i = 0; i < r->n; i++)
		CHECK(bd_utf8_valid(r->lines[i]) && !has_control(r->lines[i]));
	bd_rejects_free(r);
}

#endif
