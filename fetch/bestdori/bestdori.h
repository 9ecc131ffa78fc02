/*
 * fetch/bestdori: the Bestdori documents and the rules of a costume folder.
 *
 * Pure functions from untrusted JSON to vetted structs (the roster, the
 * asset and costume indexes, buildData.asset), the model.json renderer and
 * the order of costumes: no I/O, no state (DESIGN §3-§4). What the
 * fuzzers exercise.
 *
 * Every function returns 0 or a negative errno unless it says otherwise.
 */
#ifndef L2DFS_FETCH_BESTDORI_H
#define L2DFS_FETCH_BESTDORI_H

#include <stddef.h>
#include <stdint.h>

#include "../../index/index.h" /* the kinds of a costume's files */

#define BD_LANGS 5 /* ja, en, zh-hant, zh-hans, ko: characterName's slots */

/* The game servers, by the name their asset paths use. */
#define BD_NSERVERS 5
extern const char *const bd_server_names[BD_NSERVERS]; /* jp en tw cn kr */

/* "ja|en|zh-hant|zh-hans|ko" -> 0..4; "jp|en|tw|cn|kr" checked. */
int bd_parse_lang(const char *s, int *lang);
int bd_server_is_valid(const char *s); /* 1 if valid, else 0 */

/* Names rejected while parsing, each with a reason, for the caller to log. */
struct bd_rejects {
	char **lines; /* "textures[3] \"../x\": path component '..'" */
	size_t n;
};
void bd_rejects_free(struct bd_rejects *r);

struct bd_character {
	int64_t id;
	/* Display-safe names, NFC (a '/' is replaced by U+FF0F; control bytes,
	 * empty, "." and ".." or over 200 bytes make the slot NULL). */
	char *names[BD_LANGS];
};

struct bd_costume {
	char *live2d_name;     /* a safe bundle name, not ending in "general" */
	/* The costume index's characterId, else the name's first all-digit
	 * '_' field ("036_..." -> 36, "bili_001_collabo_r" -> 1), else -1: in
	 * costumes/ only, under no character ("l2dres00001"). */
	int64_t character_id;
	int64_t costume_id;    /* from the costume index, -1 if absent */
	/* As sent (name.txt's bytes); NULL where absent or not text (control
	 * bytes, empty, "." and "..", over 1000 bytes). */
	char *desc[BD_LANGS];
};

struct bd_catalogue {
	struct bd_character *characters;
	size_t ncharacters;
	struct bd_costume *costumes;
	size_t ncostumes;
};
void bd_catalogue_free(struct bd_catalogue *cat);

/*
 * Build the catalogue from the three documents: the roster
 * (characters/all.2.json), the asset index (explorer/<server>/assets/_info.json,
 * whose live2d.chara maps bundle -> file count) and the costume index
 * (costumes/all.5.json). Costumes come from the asset index (every bundle
 * not ending in "general"); the costume index adds ids, descriptions and
 * characters (DESIGN §4). Character names are NFC; descriptions are kept as
 * sent. -EBADMSG if a document is not the JSON it should be (a wrong type in a field only drops that entry, with a reject).
 */
int bd_parse_catalogue(const char *roster, size_t roster_len, const char *asset_index,
			  size_t asset_index_len, const char *costume_index,
			  size_t costume_index_len, struct bd_catalogue *out,
			  struct bd_rejects *rejects);

struct bd_file_spec {
	enum idx_file_kind kind; /* IDX_KIND_MODEL .. IDX_KIND_EXPRESSION */
	char *rel_path; /* "x.moc", "textures/texture_00.png", "motions/idle01.mtn"... */
	char *bundle;   /* "live2d/chara/001_general" */
	char *file;     /* served name: ".bytes" removed */
	int optional;   /* physics */
};

struct bd_costume_files {
	struct bd_file_spec *files; /* buildData order: model, physics, textures, motions, expressions */
	size_t n;
};
void bd_costume_files_free(struct bd_costume_files *f);

/* buildData.asset -> the costume's files per DESIGN §3. Unsafe names and a
 * file listed again (same path, bundle and file) are left out and reported in
 * rejects; other entries on one rel_path are numbered ("texture_00-2.png",
 * never onto a name an entry has as its own). -EBADMSG if the JSON or
 * Base/model is unusable. */
int bd_parse_build_data(const char *json, size_t len, struct bd_costume_files *out,
			   struct bd_rejects *rejects);

/* More files than any real costume has (the largest lists about 200): such a
 * buildData is refused before it is parsed or any file of it is probed. */
#define BD_COSTUME_FILES_MAX 2000

/* How many entries buildData text lists at most (its "fileName" keys),
 * counted without parsing it: a bound on what parsing would cost. */
size_t bd_build_data_entries(const char *json, size_t len);

/* model.json for the files given (those that exist, buildData order), as
 * DESIGN §3. Returns malloc'd NUL-terminated text, or NULL on ENOMEM. */
char *bd_render_model_json(const struct bd_file_spec *files, size_t n);

/* Order of costumes within a character (DESIGN §4): qsort-style. */
int bd_costume_cmp(const char *a, const char *b);

#endif
