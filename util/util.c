#include "util.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int util_grow(void *array, size_t *cap, size_t need, size_t elem)
{
	void **v = array;
	size_t more = *cap ? *cap : 16;

	if (need <= *cap)
		return 0;
	while (more < need) {
		if (more > SIZE_MAX / 2)
			return -ENOMEM;
		more *= 2;
	}
	if (elem && more > SIZE_MAX / elem)
		return -ENOMEM;
	void *p = realloc(*v, more * elem);
	if (!p)
		return -ENOMEM;
	*v = p;
	*cap = more;
	return 0;
}

int util_ends_with(const char *s, const char *suffix, int nocase)
{
	size_t n = strlen(s), m = strlen(suffix);

	if (m > n)
		return 0;
	return nocase ? strcasecmp(s + n - m, suffix) == 0 : strcmp(s + n - m, suffix) == 0;
}
