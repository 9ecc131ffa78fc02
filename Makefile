# l2dfs — see README.md. `make` builds build/l2dfs (the release binary: no
# test hooks, asserts off) and build/l2dfs-test (-DL2DFS_TEST_HOOKS: the
# test switches and asserts, what the tests run); `make check` runs every test.

PKGS      := fuse3 libcurl libcjson sqlite3 libcrypto libutf8proc libmicrohttpd zlib
PREFIX    ?= /usr/local
BUILD     ?= build
CC        ?= cc
PYTEST    ?= /usr/bin/python3 -m pytest
VERSION   := 0.1.0

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

CFLAGS  ?= -O2 -g
override CFLAGS += -std=gnu11 -Wall -Wextra -Werror -D_GNU_SOURCE -DL2DFS_VERSION='"$(VERSION)"' $(PKG_CFLAGS)
LDLIBS  += $(PKG_LIBS) -lpthread

MODULES  := util log cache index recover fetch/http fetch/bestdori fetch/care fetch/library fs serve
LIB_SRC  := $(foreach m,$(MODULES),$(wildcard $(m)/*.c))
CLI_SRC  := $(wildcard cli/*.c)
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/%.o)
# The same sources built for tests: the test switches (L2DFS_TEST_*,
# L2DFS_TIME_OFFSET) and the asserts of locks and states.
HOOKS    := $(BUILD)/hooks
HLIB_OBJ := $(LIB_SRC:%.c=$(HOOKS)/%.o)
HCLI_OBJ := $(CLI_SRC:%.c=$(HOOKS)/%.o)
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

.PHONY: all check unit integration asan tsan fuzz fuzz-smoke demo demo-stop bench install uninstall clean deps

all: $(BUILD)/l2dfs $(BUILD)/l2dfs-test

HEADERS  := $(wildcard */*.h */*/*.h)

$(BUILD)/%.o: %.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -DNDEBUG -c -o $@ $<

$(HOOKS)/%.o: %.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -DL2DFS_TEST_HOOKS -c -o $@ $<

$(BUILD)/libl2dfs.a: $(LIB_OBJ)
	$(AR) rcs $@ $^

$(BUILD)/l2dfs: $(CLI_OBJ) $(BUILD)/libl2dfs.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(HOOKS)/libl2dfs.a: $(HLIB_OBJ)
	$(AR) rcs $@ $^

$(BUILD)/l2dfs-test: $(HCLI_OBJ) $(HOOKS)/libl2dfs.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c $(HOOKS)/libl2dfs.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -DL2DFS_TEST_HOOKS $(LDFLAGS) -o $@ $< $(HOOKS)/libl2dfs.a $(LDLIBS) -lcmocka

# The library's orchestration against a fake engine (tests/unit/fake_engine.c):
# every library object but fetch/http's engine (its memory sink is shared).
HTTP_OBJ := $(filter-out $(HOOKS)/fetch/http/membuf.o,$(filter $(HOOKS)/fetch/http/%,$(HLIB_OBJ)))
$(BUILD)/tests/test_library: tests/unit/test_library.c tests/unit/fake_engine.c \
		$(filter-out $(HTTP_OBJ),$(HLIB_OBJ))
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -DL2DFS_TEST_HOOKS $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcmocka

deps:
	scripts/install-deps.sh

unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; $$t; done

integration: $(BUILD)/l2dfs $(BUILD)/l2dfs-test
	L2DFS_BIN=$(abspath $(BUILD)/l2dfs-test) L2DFS_RELEASE_BIN=$(abspath $(BUILD)/l2dfs) $(PYTEST) -q tests/integration $(PYTEST_ARGS)

# Dependencies first (quick when installed), then a fresh make: the package
# flags above are read when make starts.
check: deps
	$(MAKE) all unit integration fuzz-smoke

# The whole suite again under AddressSanitizer+UBSan / ThreadSanitizer.
asan:
	$(MAKE) BUILD=build-asan CC=clang CFLAGS="-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all" \
		LDFLAGS="-fsanitize=address,undefined" unit integration
tsan:
	$(MAKE) BUILD=build-tsan CC=clang CFLAGS="-O1 -g -fsanitize=thread" LDFLAGS="-fsanitize=thread" unit integration

FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN := $(FUZZ_SRC:tests/fuzz/%.c=build-fuzz/%)
FUZZ_SECONDS ?= 10
build-fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(LIB_SRC) $(HEADERS)
	@mkdir -p build-fuzz
	clang -std=gnu11 -O1 -g -D_GNU_SOURCE -DL2DFS_VERSION='"$(VERSION)"' $(PKG_CFLAGS) \
		-fsanitize=fuzzer,address,undefined -o $@ $< $(LIB_SRC) $(PKG_LIBS) -lpthread
fuzz-smoke: $(FUZZ_BIN)
	@set -e; for f in $(FUZZ_BIN); do scripts/run-fuzz.sh $$f $(FUZZ_SECONDS); done
fuzz: $(FUZZ_BIN)
	@set -e; for f in $(FUZZ_BIN); do scripts/run-fuzz.sh $$f 300; done

demo:
	scripts/demo.sh start
demo-stop:
	scripts/demo.sh stop

bench: all
	scripts/bench.sh

# mount(8) strips PATH before running mount.fuse3, which then finds "l2dfs"
# in /bin/sh's default PATH (/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:
# /sbin:/bin): `mount -t fuse.l2dfs` and /etc/fstab need PREFIX /usr/local or
# /usr; no mount.fuse.l2dfs helper is needed. DESTDIR stages for packaging.
BINDIR      ?= $(PREFIX)/bin
MAN1DIR     ?= $(PREFIX)/share/man/man1
USERUNITDIR ?= $(PREFIX)/lib/systemd/user
EXAMPLEDIR  ?= $(PREFIX)/share/doc/l2dfs/examples
# The live2d_download Python package (python/), copied where Debian's
# python3 looks for packages of PREFIX (/usr/lib/python3/dist-packages for
# /usr, PREFIX/lib/python3.X/dist-packages otherwise); it runs l2dfs through
# PATH (or L2DFS_BIN).
PYTHON3     ?= /usr/bin/python3
PYTHONDIR   ?= $(if $(filter /usr,$(PREFIX)),/usr/lib/python3/dist-packages,$(PREFIX)/lib/python$(shell \
		$(PYTHON3) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || echo 3)/dist-packages)
PYPKG       := $(wildcard python/live2d_download/*.py)

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MAN1DIR) $(DESTDIR)$(USERUNITDIR) $(DESTDIR)$(EXAMPLEDIR)
	install -m 0755 $(BUILD)/l2dfs $(DESTDIR)$(BINDIR)/l2dfs
	install -m 0644 doc/l2dfs.1 $(DESTDIR)$(MAN1DIR)/l2dfs.1
	sed 's|/usr/local/bin/l2dfs|$(BINDIR)/l2dfs|' contrib/l2dfs@.service > $(BUILD)/l2dfs@.service
	install -m 0644 $(BUILD)/l2dfs@.service $(DESTDIR)$(USERUNITDIR)/l2dfs@.service
	sed 's|/usr/local/bin/l2dfs|$(BINDIR)/l2dfs|' contrib/l2dfs-serve.service > $(BUILD)/l2dfs-serve.service
	install -m 0644 $(BUILD)/l2dfs-serve.service $(DESTDIR)$(USERUNITDIR)/l2dfs-serve.service
	install -m 0644 contrib/nginx-l2dfs-cache.conf $(DESTDIR)$(EXAMPLEDIR)/nginx-l2dfs-cache.conf
	install -d $(DESTDIR)$(PYTHONDIR)/live2d_download
	install -m 0644 $(PYPKG) $(DESTDIR)$(PYTHONDIR)/live2d_download/
uninstall:
	rm -f $(DESTDIR)$(BINDIR)/l2dfs $(DESTDIR)$(MAN1DIR)/l2dfs.1 \
		$(DESTDIR)$(USERUNITDIR)/l2dfs@.service $(DESTDIR)$(USERUNITDIR)/l2dfs-serve.service \
		$(DESTDIR)$(EXAMPLEDIR)/nginx-l2dfs-cache.conf
	rm -rf $(DESTDIR)$(PYTHONDIR)/live2d_download
	rmdir $(DESTDIR)$(EXAMPLEDIR) $(DESTDIR)$(PREFIX)/share/doc/l2dfs 2>/dev/null || true

clean:
	rm -rf build build-asan build-tsan build-fuzz
