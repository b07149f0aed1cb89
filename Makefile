# gflowvi - build, test, demo.  `make` builds build/bin/gflowvi and build/libgflowvi.a.
# The README's two commands (tools/demo.sh, tools/check.sh) install what is missing and
# then call the targets below.

CC       ?= mpicc
ifeq ($(origin CC),default)
CC       := mpicc
endif
OPT      ?= -O2
CFLAGS   ?= $(OPT) -g
WARN     := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2
# _DEFAULT_SOURCE: POSIX 2008 (fsync, mkdir, getline) plus M_PI from math.h.
override CFLAGS += -std=c11 -D_DEFAULT_SOURCE -Iinclude -Isrc $(WARN)
# GSL with OpenBLAS's CBLAS, never GSL's slow reference CBLAS (-lgslcblas).
LDLIBS   := -lgsl -llapacke -lopenblas -lm -ldl

BUILD    ?= build
LIB_SRC  := $(sort $(wildcard src/*/*.c))
LIB_SRC  := $(filter-out src/cli/main.c,$(LIB_SRC))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
TEST_SRC := $(sort $(wildcard tests/unit/test_*.c))
TEST_BIN := $(TEST_SRC:tests/unit/%.c=$(BUILD)/tests/%)
HEADERS  := $(wildcard include/gflowvi/*.h) $(wildcard src/*/*.h)

.PHONY: all lib tests check demo clean
all: $(BUILD)/bin/gflowvi tests

lib: $(BUILD)/libgflowvi.a

$(BUILD)/obj/%.o: %.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/libgflowvi.a: $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/bin/gflowvi: $(BUILD)/obj/src/cli/main.o $(BUILD)/libgflowvi.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c tests/unit/harness.h $(BUILD)/libgflowvi.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit $< $(BUILD)/libgflowvi.a -o $@ $(LDLIBS)

tests: $(TEST_BIN)

# The whole test suite; ends with the line "N passed, N failed".
check: all
	bash tests/run_all.sh $(BUILD)

demo: $(BUILD)/bin/gflowvi
	bash tools/demo.sh --no-install

clean:
	rm -rf $(BUILD)
