# chatd — build, run and test. `make run` and `make test` are the two
# commands of the README; both install missing dependencies first.

CC      ?= cc
BUILD   ?= build
PKGS    := libevent libevent_openssl jansson openssl sqlite3 libargon2 zlib \
	   libpq hiredis
OPT     ?= -O2 -g
SAN     ?=
CFLAGS  += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror $(OPT) $(SAN) -I. \
	   $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDFLAGS += $(SAN)
LDLIBS  += $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lm -lpthread

LIB_SRC := $(sort $(filter-out chatd/main.c,$(wildcard chatd/*.c)) \
	   $(wildcard storage/*.c))
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/gen/migrations.o \
	   $(BUILD)/obj/gen/pg_migrations.o
MIGRATIONS := $(sort $(wildcard migrations/sqlite/*.sql))
PG_MIGRATIONS := $(sort $(wildcard migrations/postgres/*.sql))
UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
TOOL_SRC := $(sort $(wildcard tests/tools/*.c))
TOOL_BIN := $(TOOL_SRC:tests/tools/%.c=$(BUILD)/tests/%)

PORT    ?= 8080
DB      ?= ./chat.db

# make install: the binary, the web files and the systemd unit.
PREFIX  ?= /usr/local
DESTDIR ?=
UNITDIR ?= $(PREFIX)/lib/systemd/system

# Keep object files of tests and tools between runs.
.SECONDARY:

.PHONY: all deps deps-test run test test-unit test-asan fuzz clean format bench FORCE

all: $(BUILD)/chatd $(UNIT_BIN) $(TOOL_BIN)

deps:
	@scripts/deps.sh

deps-test:
	@scripts/deps.sh test

$(BUILD)/obj/%.o: %.c $(wildcard chatd/*.h storage/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

# The numbered migrations of both dialects are compiled into chatd. The
# list of their names is a file rewritten only when it changes, so that
# removing or renaming one rebuilds the embedded set too (timestamps
# alone can't).
$(BUILD)/gen/migrations.list: FORCE
	@mkdir -p $(dir $@)
	@echo '$(MIGRATIONS) $(PG_MIGRATIONS)' | cmp -s - $@ || \
		echo '$(MIGRATIONS) $(PG_MIGRATIONS)' > $@

$(BUILD)/gen/migrations.c: $(MIGRATIONS) $(BUILD)/gen/migrations.list \
		scripts/embed-migrations.sh
	@mkdir -p $(dir $@)
	scripts/embed-migrations.sh $@ sqlite $(MIGRATIONS)

$(BUILD)/gen/pg_migrations.c: $(PG_MIGRATIONS) $(BUILD)/gen/migrations.list \
		scripts/embed-migrations.sh
	@mkdir -p $(dir $@)
	scripts/embed-migrations.sh $@ postgres $(PG_MIGRATIONS)

$(BUILD)/obj/gen/%.o: $(BUILD)/gen/%.c storage/db.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/libchatd.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/chatd: $(BUILD)/obj/chatd/main.o $(BUILD)/libchatd.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/test_%: $(BUILD)/obj/tests/unit/test_%.o $(BUILD)/libchatd.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcmocka

$(BUILD)/tests/%: $(BUILD)/obj/tests/tools/%.o $(BUILD)/libchatd.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

run: deps $(BUILD)/chatd
	$(BUILD)/chatd --listen 127.0.0.1:$(PORT) --db $(DB) --web web

test: deps-test all
	@scripts/test.sh $(BUILD)

# The same suite under AddressSanitizer and UndefinedBehaviorSanitizer.
test-asan: deps-test
	$(MAKE) BUILD=build-asan OPT="-O1 -g -fno-omit-frame-pointer" \
		SAN="-fsanitize=address,undefined -fno-sanitize-recover=all" all
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	 scripts/test.sh build-asan

fuzz: deps-test
	@scripts/fuzz.sh all 30

bench: deps all
	@scripts/bench.sh $(BUILD)

.PHONY: install
install: $(BUILD)/chatd
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/chatd \
		$(DESTDIR)$(UNITDIR)
	install -m 755 $(BUILD)/chatd $(DESTDIR)$(PREFIX)/bin/chatd
	rm -rf $(DESTDIR)$(PREFIX)/share/chatd/web
	cp -R web $(DESTDIR)$(PREFIX)/share/chatd/web
	chmod -R u=rwX,go=rX $(DESTDIR)$(PREFIX)/share/chatd/web
	sed 's|/usr/local|$(PREFIX)|g' scripts/chatd.service \
		> $(DESTDIR)$(UNITDIR)/chatd.service
	chmod 644 $(DESTDIR)$(UNITDIR)/chatd.service

format:
	clang-format -i chatd/*.[ch] storage/*.[ch] tests/unit/*.c tests/tools/*.c

clean:
	rm -rf build build-asan build-fuzz

FORCE:
