/* Private to serve/. */
#ifndef L2DFS_SERVE_INT_H
#define L2DFS_SERVE_INT_H

#include <cJSON.h>
#include <microhttpd.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "serve.h"

#define SERVE_URL_MAX 2048 /* longer request targets: 414 */
#define SERVE_PARTS_MAX 16
#define SERVE_BODY_MAX 65536 /* request bodies are read and dropped; larger: 413 */

struct serve {
	struct serve_config cfg; /* strings point into the copies below */
	char addr[64], cors[256], core_url[1024], pixi_url[1024], live2d_url[1024], server[8];
	struct fetch_library *lib;
	struct idx *idx;
	struct MHD_Daemon *mhd;
	int port;
	time_t started;
};

/* One request: its method and its path, percent-decoded and split. */
struct serve_req {
	struct serve *s;
	struct MHD_Connection *conn;
	const char *method;
	int head;                     /* HEAD: headers only (MHD drops the body) */
	char *part[SERVE_PARTS_MAX];  /* decoded components, none empty, "." or ".." */
	int nparts;
	int dir;                      /* the path ended in '/' */
	char path[SERVE_URL_MAX + 1]; /* the components' storage */
};

/* Cache-Control of what is sent. */
enum serve_cache { SERVE_IMMUTABLE, SERVE_SHORT, SERVE_NO_STORE };

/* ---- serve.c: answers (each returns MHD_YES/MHD_NO for the handler) ---- */

/* {"error": msg} with status. */
enum MHD_Result serve_error(struct serve_req *r, unsigned status, const char *msg);
/* An errno from the library as an HTTP status and an error answer. */
enum MHD_Result serve_errno(struct serve_req *r, int err, const char *what);
/* Text in memory (taken: freed by the answer), with an ETag of its SHA-256
 * (conditional requests and Range honoured; gzip for JSON when asked). */
enum MHD_Result serve_text(struct serve_req *r, char *text, size_t len, const char *type,
			   enum serve_cache cache);
/* A cache file (fd taken), with its SHA-256 as ETag and its mtime as
 * Last-Modified; Range and conditional requests honoured. */
enum MHD_Result serve_file(struct serve_req *r, int fd, const char *sha256, const char *type,
			   enum serve_cache cache);
/* cJSON answer (freed), never stored by caches. */
enum MHD_Result serve_json(struct serve_req *r, unsigned status, cJSON *j);
/* Content-Type by a file name's extension. */
const char *serve_type_of(const char *name);

/* ---- tree.c: the mount's tree and the origin's layout ---- */
enum MHD_Result serve_tree(struct serve_req *r);
enum MHD_Result serve_assets(struct serve_req *r);
enum MHD_Result serve_api_docs(struct serve_req *r);
/* The costume named by part[i] (fetching its file list), for tree and API:
 * 0, or an answer already sent (*res) and a negative errno. */
int serve_costume(struct serve_req *r, int i, int64_t character_id, struct idx_costume *c,
		  enum MHD_Result *res);
/* A costume's file by the components part[i..nparts): -ENOENT if none. */
int serve_costume_file(struct serve_req *r, int i, const struct idx_costume *c,
		       struct idx_file *f);
/* "textures/x.png" of a file row into buf. */
const char *serve_rel_path(const struct idx_file *f, char *buf, size_t len);

/* ---- api.c: the JSON API ---- */
enum MHD_Result serve_api(struct serve_req *r);

/* ---- gallery.c: the page at / ---- */
enum MHD_Result serve_gallery(struct serve_req *r);

#endif
