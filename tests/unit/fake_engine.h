/* A stand-in for fetch/http (http.h) in unit tests: requests wait in a list
 * until the test answers them. */
#ifndef L2DFS_FAKE_ENGINE_H
#define L2DFS_FAKE_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "../../fetch/http/http.h"

/* GET requests submitted so far (answered or not). */
size_t fake_submitted(void);
/* Wait up to 5 s until at least n GETs were submitted; 0 or -ETIMEDOUT. */
int fake_wait_submitted(size_t n);
/* Answer the i-th GET as the engine thread would: the body through the
 * sink (unless err), then the done callback. Returns the sink's error, if
 * it refused the body, else 0. */
int fake_answer(size_t i, const char *body, int err, long retry_after_s);
/* The i-th GET's answer headers only: its sink's begin(content_length). */
int fake_begin(size_t i, int64_t content_length);
/* More of the i-th GET's body through its sink (after fake_begin()); end
 * it with fake_answer(i, NULL, err, 0). */
int fake_write(size_t i, const char *bytes);
/* The i-th GET's priority, as submitted or raised by http_promote(). */
enum http_priority fake_prio(size_t i);
/* HEAD requests are held unanswered while this is set; clearing it
 * answers them. Every HEAD answers size 100 (a conditional one: 304). */
void fake_stall_heads(int on);
/* HEAD requests asked so far. */
size_t fake_heads(void);
/* Forget every request (between tests). */
void fake_reset(void);

#endif
