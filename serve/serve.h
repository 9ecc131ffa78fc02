/*
 * serve: the mount's tree, the origin's layout, a JSON API and a gallery
 * over HTTP (libmicrohttpd), through the same library as the mount: same
 * cache, index, single flight and back-off (DESIGN §14).
 *
 * Paths served (GET and HEAD; OPTIONS answers CORS preflights):
 *   /characters/<name>/<costume>/<file>, /costumes/<costume>/<file>
 *   /assets/<server>/<bundle>_rip/<file>, /api/<catalogue document>
 *   POST /download/<costume>[/<file>], POST /retry/<costume>[/<file>],
 *   GET /status/<costume>[/<file>], GET /gallery/..., and the gallery at /.
 *
 * Every function returns 0 or a negative errno.
 */
#ifndef L2DFS_SERVE_H
#define L2DFS_SERVE_H

#include <stdint.h>

#include "../fetch/library/library.h"

#define SERVE_DEFAULT_PORT 7621

struct serve_config {
	const char *addr;     /* numeric IPv4 or IPv6 address */
	int port;             /* 0: any free port (serve_port() tells which) */
	const char *cors;     /* Access-Control-Allow-Origin; NULL or "": no CORS */
	const char *cubism_core_url; /* the gallery's Cubism 2 core; NULL: no preview */
	const char *pixi_url, *live2d_url; /* pixi.js 6, pixi-live2d-display's cubism2
					    * build; NULL: their CDN copies */
	const char *server;   /* the library's game server */
	int lang;             /* 0..4 */
	unsigned max_connections; /* 0: SERVE_MAX_CONNECTIONS */
	unsigned timeout_s;       /* idle connections closed after; 0: SERVE_TIMEOUT_S */
};

#define SERVE_MAX_CONNECTIONS 256
#define SERVE_TIMEOUT_S 30

struct serve;

/* Start answering on cfg->addr:port (one thread per connection, at most
 * max_connections). lib and idx must outlive it. */
int serve_start(struct serve **out, const struct serve_config *cfg, struct fetch_library *lib,
		struct idx *idx);
/* The port listened on. */
int serve_port(const struct serve *s);
/* Stop listening, wait for the connections' threads to end. Call
 * fetch_library_stop() first so that none waits for a download. */
void serve_stop(struct serve *s);

/* 1 if addr is a loopback address (127.0.0.0/8, ::1). */
int serve_addr_loopback(const char *addr);

#endif
