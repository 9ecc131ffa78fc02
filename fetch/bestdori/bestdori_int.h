/*
 * Parser helpers shared by catalogue.c, which defines them (each contract
 * is at its definition), and model_json.c.
 */
#ifndef L2DFS_FETCH_BESTDORI_INT_H
#define L2DFS_FETCH_BESTDORI_INT_H

#include <cJSON.h>

#include "../../cache/cache.h"  /* the rules for safe names */
#include "../../index/index.h"  /* the lengths a name may have */
#include "../../util/util.h"
#include "bestdori.h"

int bd_json_parse(const char *text, size_t len, cJSON **out);
int bd_utf8_valid(const char *s);
int bd_json_array(const cJSON *v, const char *where, struct bd_rejects *r);
int bd_reject(struct bd_rejects *r, const char *name, const char *why, const char *fmt,
		 ...) __attribute__((format(printf, 4, 5)));
int bd_drop_duplicates(void *arr, size_t size, size_t *n,
			  int (*cmp)(const void *a, const void *b),
			  int (*drop)(void *item, struct bd_rejects *r), struct bd_rejects *r);

#endif
