/*
 * Unit tests of fetch/library's orchestration against a fake engine
 * (fake_engine.c): single flight, waking waiters, cancel tokens, back-off,
 * pins and eviction. No mount, no network.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../fetch/library/library_int.h"
#include "fake_engine.h"

static char dir[] = "/tmp/l2dfs-test-library-XXXXXX";

struct world {
	struct idx *idx;
	struct cache *cache;
	struct http_engine *engine;
	struct fetch_library *lib;
	int64_t assets[3]; /* a.moc, b.png, c.png of one costume */
};

static struct world w;

static int64_t asset_of(int64_t costume, const char *name)
{
	struct idx_file f;
	assert_int_equal(idx_file_find(w.idx, costume, IDX_DIR_ROOT, name, &f), 0);
	return f.asset_id;
}

static void world_open(int64_t cache_max)
{
	const struct idx_character_in ch[] = { { 1, { "c", NULL, NULL, NULL, NULL } } };
	const struct idx_costume_in co[] = { { "001_a", 1, 10, { NULL }, 0 } };
	const struct idx_file_in files[] = {
		{ IDX_DIR_ROOT, "a.moc", IDX_KIND_MODEL, "live2d/chara/001_a", "a.moc", 0 },
		{ IDX_DIR_ROOT, "b.png", IDX_KIND_TEXTURE, "live2d/chara/001_a", "b.png", 0 },
		{ IDX_DIR_ROOT, "c.png", IDX_KIND_TEXTURE, "live2d/chara/001_a", "c.png", 0 },
	};
	struct fetch_library_config cfg = { .server = "jp", .cache_max = cache_max };
	char path[256];
	struct idx_costume c;

	strcpy(dir, "/tmp/l2dfs-test-library-XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/index.db", dir);
	assert_int_equal(idx_open(&w.idx, path, NULL), 0);
	assert_int_equal(cache_open(&w.cache, dir), 0);
	assert_int_equal(http_engine_new(&w.engine, NULL), 0);
	assert_int_equal(idx_catalogue_store(w.idx, "jp", ch, 1, co, 1), 0);
	assert_int_equal(idx_costume_find(w.idx, "jp", 0, -1, "001_a", &c), 0);
	assert_int_equal(idx_costume_files_store(w.idx, c.id, files, 3), 0);
	w.assets[0] = asset_of(c.id, "a.moc");
	w.assets[1] = asset_of(c.id, "b.png");
	w.assets[2] = asset_of(c.id, "c.png");
	fake_reset();
	assert_int_equal(fetch_library_new(&w.lib, &cfg, w.engine, w.idx, w.cache), 0);
}

static int setup(void **state)
{
	(void)state;
	world_open(0);
	return 0;
}

static int setup_budget(void **state)
{
	(void)state;
	world_open(1000);
	return 0;
}

static int teardown(void **state)
{
	char cmd[300];
	(void)state;
	/* As a mount ends: stop, free the engine (it cancels what is left). */
	fetch_library_stop(w.lib);
	http_engine_free(w.engine);
	fetch_library_free(w.lib);
	cache_close(w.cache);
	idx_close(w.idx);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd);
}

/* One reader on its own thread: fetch_asset_open(), optionally with a
 * cancel token; the bytes it read. */
struct reader {
	pthread_t th;
	int64_t asset_id;
	struct fetch_cancel cancel;
	int cancellable;
	int early; /* fetch_asset_read() */
	int rc;
	char data[64];
	volatile int finished;
};

static void *reader_run(void *arg)
{
	struct reader *r = arg;
	int fd = -1;

	if (r->cancellable)
		fetch_cancel_enter(&r->cancel);
	r->rc = r->early ? fetch_asset_read(w.lib, r->asset_id, &fd)
			 : fetch_asset_open(w.lib, r->asset_id, &fd);
	fetch_cancel_enter(NULL);
	if (fd >= 0) {
		ssize_t n = read(fd, r->data, sizeof(r->data) - 1);
		r->data[n > 0 ? n : 0] = '\0';
		close(fd);
	}
	r->finished = 1;
	return NULL;
}

static void reader_start(struct reader *r, int64_t asset_id, int cancellable)
{
	memset(r, 0, sizeof(*r));
	r->asset_id = asset_id;
	r->cancellable = cancellable;
	fetch_cancel_init(&r->cancel, w.lib);
	assert_int_equal(pthread_create(&r->th, NULL, reader_run, r), 0);
}

static int64_t ms_since(const struct timespec *t0)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) * 1000 + (t.tv_nsec - t0->tv_nsec) / 1000000;
}

static void settle(void)
{
	usleep(100 * 1000); /* let the readers reach their wait */
}

static void test_single_flight(void **state)
{
	struct reader a, b;

	(void)state;
	reader_start(&a, w.assets[0], 0);
	reader_start(&b, w.assets[0], 0);
	assert_int_equal(fake_wait_submitted(1), 0);
	settle();
	assert_int_equal(fake_submitted(), 1);
	assert_false(a.finished || b.finished);
	assert_int_equal(fake_answer(0, "moc bytes", 0, 0), 0);
	pthread_join(a.th, NULL);
	pthread_join(b.th, NULL);
	assert_int_equal(a.rc, 0);
	assert_int_equal(b.rc, 0);
	assert_string_equal(a.data, "moc bytes");
	assert_string_equal(b.data, "moc bytes");
	assert_int_equal(fake_submitted(), 1);
}

static void test_waiters_get_the_failure(void **state)
{
	struct reader a, b;
	struct idx_asset row;

	(void)state;
	reader_start(&a, w.assets[1], 0);
	reader_start(&b, w.assets[1], 0);
	assert_int_equal(fake_wait_submitted(1), 0);
	settle();
	fake_answer(0, NULL, -EIO, 0);
	pthread_join(a.th, NULL);
	pthread_join(b.th, NULL);
	assert_int_equal(a.rc, -EIO);
	assert_int_equal(b.rc, -EIO);
	assert_int_equal(idx_asset_get(w.idx, w.assets[1], &row), 0);
	assert_int_equal(row.state, IDX_FAILED);
	assert_non_null(strstr(row.error, "HTTP 503"));
	assert_int_equal(row.failures, 1);
}

static void test_cancel_one_waiter(void **state)
{
	struct reader a, b;
	struct timespec t0;

	(void)state;
	reader_start(&a, w.assets[0], 1);
	reader_start(&b, w.assets[0], 0);
	assert_int_equal(fake_wait_submitted(1), 0);
	settle();
	clock_gettime(CLOCK_MONOTONIC, &t0);
	fetch_cancel_fire(&a.cancel);
	pthread_join(a.th, NULL);
	assert_int_equal(a.rc, -EINTR);
	assert_true(ms_since(&t0) < 500);
	settle();
	assert_false(b.finished); /* the other reader keeps waiting */
	/* It still wants the bytes: the transfer was not stopped. */
	assert_int_equal(fake_answer(0, "moc bytes", 0, 0), 0);
	pthread_join(b.th, NULL);
	assert_int_equal(b.rc, 0);
	assert_string_equal(b.data, "moc bytes");
	assert_int_equal(fake_submitted(), 1);
}

static void test_cancel_last_waiter_stops_the_transfer(void **state)
{
	struct reader a, b;

	(void)state;
	reader_start(&a, w.assets[0], 1);
	assert_int_equal(fake_wait_submitted(1), 0);
	settle();
	fetch_cancel_fire(&a.cancel);
	pthread_join(a.th, NULL);
	assert_int_equal(a.rc, -EINTR);
	/* No one wants it: the next bytes are refused. */
	assert_int_equal(fake_answer(0, "moc bytes", 0, 0), -ECANCELED);
	/* A later reader starts it again. */
	reader_start(&b, w.assets[0], 0);
	assert_int_equal(fake_wait_submitted(2), 0);
	assert_int_equal(fake_answer(1, "moc bytes", 0, 0), 0);
	pthread_join(b.th, NULL);
	assert_int_equal(b.rc, 0);
	assert_string_equal(b.data, "moc bytes");
}

static void test_cancel_before_waiting(void **state)
{
	struct reader a;

	(void)state;
	reader_start(&a, w.assets[2], 1);
	fetch_cancel_fire(&a.cancel); /* may come before the wait begins */
	assert_int_equal(fake_wait_submitted(1), 0);
	pthread_join(a.th, NULL);
	assert_int_equal(a.rc, -EINTR);
}

/* One answer for a file's state: fetch_asset_status() over rows. */
static void test_asset_status(void **state)
{
	struct idx_asset a = { .state = IDX_FAILED, .err = ENOENT, .size = -1 };
	struct fetch_asset_status st;

	(void)state;
	a.updated_at = idx_now();
	fetch_asset_status(&a, 1, &st);
	assert_string_equal(st.state, "failed");
	assert_true(st.missing && st.absent && !st.backing_off);
	fetch_asset_status(&a, 0, &st);
	assert_true(st.missing && !st.absent);
	a = (struct idx_asset){ .state = IDX_FAILED, .err = EIO, .retry_at = fetch_now_ms() + 60000 };
	fetch_asset_status(&a, 0, &st);
	assert_true(st.backing_off && !st.missing && st.progress == 0);
	a = (struct idx_asset){ .state = IDX_DOWNLOADING, .size = 200, .bytes_done = 50 };
	fetch_asset_status(&a, 0, &st);
	assert_string_equal(st.state, "downloading");
	assert_int_equal(st.progress, 25);
	a.state = IDX_COMPLETED;
	fetch_asset_status(&a, 0, &st);
	assert_int_equal(st.progress, 100);
}

static void test_backoff(void **state)
{
	struct reader a;
	struct idx_asset row;
	int fd = -1;

	(void)state;
	reader_start(&a, w.assets[1], 0);
	assert_int_equal(fake_wait_submitted(1), 0);
	fake_answer(0, NULL, -EIO, 30);
	pthread_join(a.th, NULL);
	assert_int_equal(a.rc, -EIO);
	assert_int_equal(idx_asset_get(w.idx, w.assets[1], &row), 0);
	assert_true(fetch_asset_backing_off(&row));
	/* Retry-After: 30 is honoured: at least 30 s from now. */
	assert_true(row.retry_at - (int64_t)time(NULL) * 1000 >= 29000);
	/* Within the back-off: EIO at once, no request. */
	for (int i = 0; i < 10; i++)
		assert_int_equal(fetch_asset_open(w.lib, w.assets[1], &fd), -EIO);
	assert_int_equal(fake_submitted(), 1);
	fetch_asset_queue(w.lib, w.assets[1], HTTP_BACKGROUND);
	assert_int_equal(fake_submitted(), 1);
	/* Cleared: asked again at once. */
	assert_int_equal(fetch_library_clear_backoff(w.lib), 0);
	reader_start(&a, w.assets[1], 0);
	assert_int_equal(fake_wait_submitted(2), 0);
	fake_answer(1, "png", 0, 0);
	pthread_join(a.th, NULL);
	assert_int_equal(a.rc, 0);
	assert_int_equal(idx_asset_get(w.idx, w.assets[1], &row), 0);
	assert_int_equal(row.failures, 0);
}

/* Download asset i with body (600 bytes) and wait for its commit. */
static void download(int i, size_t n)
{
	char *body = malloc(n + 1);
	struct reader r;
	size_t k = fake_submitted();

	memset(body, 'a' + i, n);
	body[n] = '\0';
	reader_start(&r, w.assets[i], 0);
	assert_int_equal(fake_wait_submitted(k + 1), 0);
	fake_answer(k, body, 0, 0);
	pthread_join(r.th, NULL);
	assert_int_equal(r.rc, 0);
	free(body);
}

static enum idx_state state_of(int i)
{
	struct idx_asset a;
	assert_int_equal(idx_asset_get(w.idx, w.assets[i], &a), 0);
	return a.state;
}

/* The eviction pass a commit runs ends after its readers are answered:
 * wait until one has run since trigger was read. */
static void wait_pass(int64_t trigger)
{
	for (int i = 0; i < 200; i++) {
		lib_lock(w.lib);
		int ran = w.lib->care_trigger != trigger && !w.lib->care_running;
		lib_unlock(w.lib);
		if (ran)
			return;
		usleep(10 * 1000);
	}
	fail_msg("no eviction pass");
}

static void test_pins_spare_eviction(void **state)
{
	(void)state;
	download(0, 600);
	fetch_budget_pin(w.lib, w.assets[0], 1);
	download(1, 600); /* 1200 > 1000: a pass, but a.moc is pinned */
	wait_pass(1000);
	assert_int_equal(state_of(0), IDX_COMPLETED);
	assert_int_equal(state_of(1), IDX_COMPLETED);
	fetch_budget_pin(w.lib, w.assets[0], 0);
	sleep(1); /* least recently used: a.moc, by the index's clock */
	lib_lock(w.lib);
	int64_t trigger = w.lib->care_trigger;
	lib_unlock(w.lib);
	download(2, 600); /* unpinned, the oldest goes */
	wait_pass(trigger);
	assert_int_equal(state_of(0), IDX_PENDING);
	assert_int_equal(state_of(2), IDX_COMPLETED);
}

static void test_probe_wait_is_interruptible(void **state)
{
	struct fetch_cancel c;
	struct idx_costume co;
	struct timespec t0;

	(void)state;
	assert_int_equal(idx_costume_find(w.idx, "jp", 0, -1, "001_a", &co), 0);
	fake_stall_heads(1);
	fetch_cancel_init(&c, w.lib);
	fetch_cancel_fire(&c);
	fetch_cancel_enter(&c);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(fetch_costume_probe(w.lib, co.id, 0), -EINTR);
	fetch_cancel_enter(NULL);
	assert_true(ms_since(&t0) < 500);
	for (int i = 0; i < 200 && fake_heads() == 0; i++)
		usleep(10 * 1000);
	assert_true(fake_heads() > 0); /* the probe was asked, and is stalled */
	fake_stall_heads(0);
	/* Without a token the same probe waits for its answer. */
	assert_int_equal(fetch_costume_probe(w.lib, co.id, 0), 0);
}

/* fetch_asset_stat() on its own thread. */
struct stat_call {
	pthread_t th;
	int64_t costume, asset_id;
	struct idx_asset a;
	int rc;
	volatile int finished;
};

static void *stat_run(void *arg)
{
	struct stat_call *c = arg;
	c->rc = fetch_asset_stat(w.lib, c->costume, c->asset_id, &c->a);
	c->finished = 1;
	return NULL;
}

static void test_stat_hears_the_download(void **state)
{
	struct stat_call c = { 0 };
	struct idx_costume co;
	struct idx_asset row;

	(void)state;
	assert_int_equal(idx_costume_find(w.idx, "jp", 0, -1, "001_a", &co), 0);
	fetch_asset_queue(w.lib, w.assets[1], HTTP_BACKGROUND);
	assert_int_equal(fake_wait_submitted(1), 0);
	assert_int_equal(fake_prio(0), HTTP_BACKGROUND);
	c.costume = co.id, c.asset_id = w.assets[1];
	assert_int_equal(pthread_create(&c.th, NULL, stat_run, &c), 0);
	settle();
	/* Raised ahead of prefetch and the budget; waiting for its headers. */
	assert_int_equal(fake_prio(0), HTTP_FOREGROUND);
	assert_false(c.finished);
	assert_int_equal(fake_begin(0, 1234), 0);
	pthread_join(c.th, NULL);
	assert_int_equal(c.rc, 0);
	assert_int_equal(c.a.size, 1234);
	assert_int_equal(fake_heads(), 0); /* no HEAD for a file being fetched */
	assert_int_equal(idx_asset_get(w.idx, w.assets[1], &row), 0);
	assert_int_equal(row.state, IDX_DOWNLOADING); /* the body did not come */
	/* A file nobody fetches is probed. */
	c = (struct stat_call){ .costume = co.id, .asset_id = w.assets[2] };
	stat_run(&c);
	assert_int_equal(c.rc, 0);
	assert_int_equal(c.a.size, 100);
	assert_true(fake_heads() > 0);
	assert_int_equal(fake_submitted(), 1);
}

static void test_reader_served_before_commit(void **state)
{
	struct reader r = { .asset_id = 0 };
	struct idx_asset row;
	struct stat st;
	char path[512];

	(void)state;
	w.lib->commit_delay_ms = 2000; /* before any transfer */
	r.asset_id = w.assets[0];
	r.early = 1;
	fetch_cancel_init(&r.cancel, w.lib);
	assert_int_equal(pthread_create(&r.th, NULL, reader_run, &r), 0);
	assert_int_equal(fake_wait_submitted(1), 0);
	assert_int_equal(fake_answer(0, "moc bytes", 0, 0), 0);
	pthread_join(r.th, NULL);
	assert_int_equal(r.rc, 0);
	assert_string_equal(r.data, "moc bytes");
	/* Served while the commit is still to come. */
	snprintf(path, sizeof(path), "%s/live2d/assets/jp/live2d/chara/001_a/a.moc", dir);
	assert_int_equal(idx_asset_get(w.idx, w.assets[0], &row), 0);
	assert_int_equal(row.state, IDX_DOWNLOADING);
	assert_int_equal(stat(path, &st), -1);
	for (int i = 0; i < 500 && row.state != IDX_COMPLETED; i++) {
		usleep(10 * 1000);
		assert_int_equal(idx_asset_get(w.idx, w.assets[0], &row), 0);
	}
	assert_int_equal(row.state, IDX_COMPLETED);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, 9);
}

/* ---- the request state machine, transition by transition ---- */

/* A request of kind made and joined by the test (for a waiter). */
static struct fetch_request *request_made(enum fetch_request_kind kind)
{
	lib_lock(w.lib);
	struct fetch_request *r = fetch_request_new(w.lib, kind, HTTP_PROBE);
	assert_non_null(r);
	fetch_request_join(w.lib, r);
	lib_unlock(w.lib);
	return r;
}

/* Move r (lock held) one transition on from its state, toward DONE. */
static void request_step(struct fetch_request *r)
{
	switch (r->state) {
	case FETCH_REQ_PENDING:
		assert_int_equal(request_submit(w.lib, r), 0);
		break;
	case FETCH_REQ_QUEUED:
		request_heard(w.lib, r);
		break;
	case FETCH_REQ_BODY:
		request_received(w.lib, r);
		break;
	case FETCH_REQ_COMMITTING:
		request_serve(w.lib, r, dup(0));
		break;
	default:
		close(r->body_fd);
		r->body_fd = -1;
		request_end(w.lib, r, 0);
	}
}

static void test_request_transitions(void **state)
{
	static const enum fetch_request_state path[] = {
		FETCH_REQ_QUEUED, FETCH_REQ_BODY, FETCH_REQ_COMMITTING, FETCH_REQ_SERVED,
		FETCH_REQ_DONE,
	};
	struct fetch_request *r = request_made(FETCH_REQ_ASSET);

	(void)state;
	lib_lock(w.lib);
	assert_int_equal(r->state, FETCH_REQ_PENDING);
	for (size_t i = 0; i < sizeof(path) / sizeof(path[0]); i++) {
		request_step(r);
		assert_int_equal(r->state, path[i]);
		/* Each state answers a wait for itself and for the ones before. */
		assert_int_equal(fetch_request_wait(w.lib, r, path[i]), 0);
		assert_int_equal(fetch_request_wait(w.lib, r, FETCH_REQ_QUEUED), 0);
	}
	assert_int_equal(r->err, 0);
	assert_int_equal(w.lib->outstanding, 0);
	fetch_request_leave(w.lib, r);
	lib_unlock(w.lib);
}

static void test_request_failed_and_head_ends(void **state)
{
	struct fetch_request *r = request_made(FETCH_REQ_HEAD);

	(void)state;
	lib_lock(w.lib);
	assert_int_equal(request_submit(w.lib, r), 0);
	request_end(w.lib, r, -EIO); /* a HEAD: QUEUED -> its end */
	assert_int_equal(r->state, FETCH_REQ_FAILED);
	assert_int_equal(r->err, -EIO); /* the outcome is an errno, nothing in-band */
	assert_int_equal(fetch_request_wait(w.lib, r, FETCH_REQ_DONE), 0);
	fetch_request_leave(w.lib, r);
	lib_unlock(w.lib);
}

/* A waiter on its own thread with a cancel token: waits for until, leaves. */
struct waiter {
	pthread_t th;
	struct fetch_request *r;
	enum fetch_request_state until;
	struct fetch_cancel cancel;
	int rc;
};

static void *waiter_run(void *arg)
{
	struct waiter *wt = arg;

	fetch_cancel_enter(&wt->cancel);
	lib_lock(w.lib);
	wt->rc = fetch_request_wait(w.lib, wt->r, wt->until);
	fetch_request_leave(w.lib, wt->r);
	lib_unlock(w.lib);
	fetch_cancel_enter(NULL);
	return NULL;
}

/* Bring a fresh request to state s; a waiter (joined) waits for its end
 * and is cancelled; others (another waiter, prefetch) may want it too. */
static struct fetch_request *cancel_in(enum fetch_request_state s, int others, int keep,
				       int *rc)
{
	struct fetch_request *r = request_made(FETCH_REQ_ASSET);
	struct waiter wt = { .r = r, .until = FETCH_REQ_DONE };

	lib_lock(w.lib);
	r->keep = keep;
	while (r->state < s)
		request_step(r);
	for (int i = 0; i < others; i++)
		fetch_request_join(w.lib, r);
	lib_unlock(w.lib);
	fetch_cancel_init(&wt.cancel, w.lib);
	assert_int_equal(pthread_create(&wt.th, NULL, waiter_run, &wt), 0);
	settle();
	fetch_cancel_fire(&wt.cancel);
	pthread_join(wt.th, NULL);
	*rc = wt.rc;
	return r;
}

static void test_cancel_in_every_state(void **state)
{
	(void)state;
	for (enum fetch_request_state s = FETCH_REQ_PENDING; s <= FETCH_REQ_DONE; s++) {
		int rc;
		struct fetch_request *r = cancel_in(s, 0, 0, &rc);
		/* Ended already: the wait answers; else the waiter leaves. */
		assert_int_equal(rc, s == FETCH_REQ_DONE ? 0 : -EINTR);
		if (s == FETCH_REQ_DONE)
			continue; /* freed as its last waiter left */
		lib_lock(w.lib);
		assert_int_equal(r->waiters, 0);
		/* No one wants it: its sink refuses the next bytes. */
		assert_int_equal(atomic_load(&r->abandoned), 1);
		if (s == FETCH_REQ_PENDING) {
			/* Not even submitted. */
			assert_int_equal(request_submit(w.lib, r), -ECANCELED);
			r->refs++; /* to look at it after its end */
			request_end(w.lib, r, -ECANCELED);
			assert_int_equal(r->state, FETCH_REQ_ABANDONED);
			fetch_request_put(r);
		} else if (s <= FETCH_REQ_BODY) {
			r->dropped = 1; /* what the sink does */
			request_received(w.lib, r);
			request_end(w.lib, r, -ECANCELED);
		} else {
			r->refs++; /* to look at it until its end */
			while (!fetch_request_ended(r))
				request_step(r); /* the commit goes on */
			assert_int_equal(r->state, FETCH_REQ_DONE);
			fetch_request_put(r);
		}
		lib_unlock(w.lib);
	}
	assert_int_equal(w.lib->outstanding, 0);
}

static void test_cancel_leaves_a_wanted_request(void **state)
{
	(void)state;
	for (enum fetch_request_state s = FETCH_REQ_PENDING; s < FETCH_REQ_DONE; s++) {
		for (int keep = 0; keep < 2; keep++) {
			int rc;
			struct fetch_request *r = cancel_in(s, !keep, keep, &rc);
			assert_int_equal(rc, -EINTR);
			lib_lock(w.lib);
			/* Another waiter or prefetch wants it: it goes on. */
			assert_int_equal(atomic_load(&r->abandoned), 0);
			r->refs++; /* to look at it after its end */
			while (!fetch_request_ended(r))
				request_step(r);
			assert_int_equal(r->state, FETCH_REQ_DONE);
			if (!keep)
				fetch_request_leave(w.lib, r);
			fetch_request_put(r);
			lib_unlock(w.lib);
		}
	}
	assert_int_equal(w.lib->outstanding, 0);
}

/* The library stopping ends every wait on a download with -ECANCELED. */
static void test_request_wait_ends_when_stopping(void **state)
{
	struct reader a;

	(void)state;
	reader_start(&a, w.assets[0], 0);
	assert_int_equal(fake_wait_submitted(1), 0);
	settle();
	fetch_library_stop(w.lib);
	pthread_join(a.th, NULL);
	assert_int_equal(a.rc, -ECANCELED);
}

/* The bytes of fl from offset to have, as read from its descriptor. */
static void follow_read(struct fetch_follow *fl, int64_t off, int64_t have, const char *want)
{
	char buf[64] = { 0 };
	assert_int_equal(pread(fetch_follow_fd(fl), buf, (size_t)(have - off), off), have - off);
	assert_string_equal(buf, want);
}

static void test_follow_reads_the_body_as_it_grows(void **state)
{
	struct fetch_follow *fl;

	(void)state;
	assert_int_equal(fetch_follow_open(w.lib, w.assets[0], &fl), 0);
	assert_int_equal(fake_submitted(), 1);
	assert_int_equal(fake_begin(0, 10), 0);
	assert_int_equal(fake_write(0, "hello"), 0);
	assert_int_equal(fetch_follow_wait(fl, 0), 5);
	follow_read(fl, 0, 5, "hello");
	assert_int_equal(fake_write(0, "world"), 0);
	assert_int_equal(fetch_follow_wait(fl, 5), 10);
	follow_read(fl, 5, 10, "world");
	fake_answer(0, NULL, 0, 0);
	/* Its end comes once the length was checked. */
	assert_int_equal(fetch_follow_wait(fl, 10), 0);
	fetch_follow_close(fl);
	/* And it is cached once its commit (which may follow) is done. */
	for (int i = 0; i < 500 && state_of(0) != IDX_COMPLETED; i++)
		usleep(10 * 1000);
	assert_int_equal(state_of(0), IDX_COMPLETED);
	/* A cached file is followed to its end at once. */
	assert_int_equal(fetch_follow_open(w.lib, w.assets[0], &fl), 0);
	assert_int_equal(fetch_follow_wait(fl, 0), 10);
	assert_int_equal(fetch_follow_wait(fl, 10), 0);
	fetch_follow_close(fl);
	assert_int_equal(fake_submitted(), 1);
}

static void test_follow_sees_a_failure(void **state)
{
	struct fetch_follow *fl;

	(void)state;
	assert_int_equal(fetch_follow_open(w.lib, w.assets[1], &fl), 0);
	assert_int_equal(fake_begin(0, 10), 0);
	assert_int_equal(fake_write(0, "hello"), 0);
	assert_int_equal(fetch_follow_wait(fl, 0), 5);
	fake_answer(0, NULL, -EIO, 0);
	/* What was read is not the file. */
	assert_int_equal(fetch_follow_wait(fl, 5), -EIO);
	fetch_follow_close(fl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_single_flight, setup, teardown),
		cmocka_unit_test_setup_teardown(test_waiters_get_the_failure, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel_one_waiter, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel_last_waiter_stops_the_transfer, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_cancel_before_waiting, setup, teardown),
		cmocka_unit_test_setup_teardown(test_backoff, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pins_spare_eviction, setup_budget, teardown),
		cmocka_unit_test_setup_teardown(test_probe_wait_is_interruptible, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stat_hears_the_download, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reader_served_before_commit, setup, teardown),
		cmocka_unit_test(test_asset_status),
		cmocka_unit_test_setup_teardown(test_request_transitions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_request_failed_and_head_ends, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel_in_every_state, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel_leaves_a_wanted_request, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_request_wait_ends_when_stopping, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_follow_reads_the_body_as_it_grows, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_follow_sees_a_failure, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
