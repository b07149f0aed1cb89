# gflowvi - build, test, demo.  `make` builds build/bin/gflowvi and build/libgflowvi.a.
# The README's two commands (tools/demo.sh, tools/check.sh) install what is missing and
# then call the targets below.

CC       ?= mpicc
ifeq ($(origin CC),default)
CC       := mpicc
endif
OPT      ?= -O2
CFLAGS   ?= $(OPT) -g
WARN     := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 \
            -Wundef -Wvla -Wpointer-arith -Wcast-qual -Wnull-dereference -Wold-style-definition
ifeq ($(filter 1,$(FUZZ) $(SAN)),)
WARN     += -Wduplicated-cond -Wlogical-op # GCC only (SAN=1 and FUZZ=1 build with clang)
endif
# _DEFAULT_SOURCE: POSIX 2008 (fsync, mkdir, getline) plus M_PI from math.h.
# HDF5: Debian's Open MPI build (libhdf5-openmpi-dev), for checkpoints and mixture.h5;
# overridable (`make smpi` links the serial build, which SMPI can load).
# Found through pkg-config (Debian's hdf5-openmpi.pc); the fixed paths are the fallback
# for a pkg-config without that file.
HDF5_PC  := $(shell pkg-config --exists hdf5-openmpi 2>/dev/null && echo hdf5-openmpi)
ifeq ($(origin HDF5_INC),undefined)
HDF5_INC := $(if $(HDF5_PC),$(shell pkg-config --cflags $(HDF5_PC)),-I/usr/include/hdf5/openmpi)
endif
ifeq ($(origin HDF5_LIB),undefined)
HDF5_LIB := $(if $(HDF5_PC),$(shell pkg-config --libs $(HDF5_PC)),-lhdf5_openmpi)
endif
# netCDF-4 for posterior.nc (ArviZ reads netCDF-4 groups): Debian's Open MPI build
# (libnetcdf-mpi-dev), which uses the same HDF5 as ours; its headers are under its prefix.
# gflowvi loads the library at run time (src/io/netcdf_dl.h says why); only the test that
# reads posterior.nc back links it.
NETCDF_INC := -I$(shell pkg-config --variable=prefix netcdf-mpi 2>/dev/null)/include
override CFLAGS += -std=c11 -D_DEFAULT_SOURCE -Iinclude -Isrc $(HDF5_INC) $(NETCDF_INC) $(WARN)
# GSL with OpenBLAS's CBLAS, never GSL's slow reference CBLAS (-lgslcblas).
LIBS_NOHDF5 := -lgsl -llapacke -lopenblas -lm -ldl
LDLIBS   := $(HDF5_LIB) $(LIBS_NOHDF5)

# Checked builds (tools/check.sh uses all three; see docs/developer.md, "Reliability"):
#   make WERROR=1                  warnings are errors (CI)
#   make BUILD=build-asan SAN=1    everything with AddressSanitizer + UBSan (clang), in its
#                                  own dir; clang's runtime writes UBSan's reports to
#                                  log_path too (gcc's, combined with ASan, only to stderr)
#   make fuzz                      libFuzzer harnesses (clang) into build-fuzz/fuzz/
ifeq ($(WERROR),1)
override CFLAGS += -Werror
endif
ifeq ($(SAN),1)
export OMPI_CC := clang
override CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all \
                   -DGFV_SANITIZE
# libstdc++ loaded at start-up: ASan resolves its __cxa_throw interceptor once, at start, and a
# C program has no libstdc++ then; a Stan model (C++, dlopen'd) that throws -- as it does for
# every bad data file, caught inside the model -- would stop at ASan's CHECK(real___cxa_throw).
LDLIBS += -Wl,--no-as-needed -lstdc++ -Wl,--as-needed
endif
# FUZZ=1 (set by `make fuzz`): mpicc runs clang, with libFuzzer's coverage instrumentation;
# tests/fuzz/*.c then link against libFuzzer's main instead of tests/fuzz/replay_main.c.
FUZZ_MAIN := tests/fuzz/replay_main.c
FUZZ_LINK :=
ifeq ($(FUZZ),1)
export OMPI_CC := clang
override CFLAGS += -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer
FUZZ_MAIN :=
FUZZ_LINK := -fsanitize=fuzzer
endif

# SMPI=1 (set by `make smpi`): the build for SimGrid's simulated cluster, with its hooks
# (src/comm/sim.h).
ifeq ($(SMPI),1)
override CFLAGS += -DGFV_SMPI
endif

BUILD    ?= build
LIB_SRC  := $(sort $(wildcard src/*/*.c))
LIB_SRC  := $(filter-out src/cli/main.c,$(LIB_SRC))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
TEST_SRC := $(sort $(wildcard tests/unit/test_*.c))
TEST_BIN := $(TEST_SRC:tests/unit/%.c=$(BUILD)/tests/%)
# Programs built from one source file and the library (unit and MPI tests, the bench,
# calibrate) write their header dependencies beside themselves, read at the end.
PROG_DEPFLAGS = -MMD -MP -MF $@.d
FUZZ_BIN := $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(sort $(wildcard tests/fuzz/fuzz_*.c)))

.PHONY: all lib shared install tests check check-asan fuzz fuzzers plugins demo clean
all: $(BUILD)/bin/gflowvi $(BUILD)/lib/libgflowvi.so tests $(BUILD)/bin/calibrate $(BUILD)/bin/gflowvi-bench

lib: $(BUILD)/libgflowvi.a

# Position-independent objects, so that libgflowvi.a and libgflowvi.so are made from the
# same ones; hidden symbols unless a public header (include/gflowvi/, each wrapped in
# `#pragma GCC visibility push(default)`) declares them.  -MMD -MP: each object's header
# dependencies in a .d file beside it (read at the end of this Makefile).
# Not in the SMPI build: SimGrid's privatization dlopen()s the program and looks up its main.
OBJ_CFLAGS := -fPIC $(if $(filter 1,$(SMPI)),,-fvisibility=hidden) -MMD -MP
# The object-level flags (-fPIC, visibility, dependency files) in a file that changes only
# when they do: a build directory made by an older Makefile, whose objects have no -fPIC,
# is recompiled once instead of failing to link the shared library.  Only these: `make
# install` from a test (tests/cli/test_install.sh) must not recompile a build made with
# WERROR=1 or SAN=1 because it was not given those again.
OBJ_FLAGS_FILE := $(BUILD)/obj/.flags
OBJ_FLAGS_NOW := $(OBJ_CFLAGS)
$(OBJ_FLAGS_FILE): FORCE
	@mkdir -p $(dir $@)
	@echo '$(OBJ_FLAGS_NOW)' | cmp -s - $@ || echo '$(OBJ_FLAGS_NOW)' > $@
.PHONY: FORCE
# A recipe that fails leaves no half-written target (ld leaves one on some errors).
.DELETE_ON_ERROR:
FORCE:
$(BUILD)/obj/%.o: %.c $(OBJ_FLAGS_FILE)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(OBJ_CFLAGS) -c $< -o $@

$(BUILD)/libgflowvi.a: $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

# The shared library (docs/library.md): libgflowvi.so.MAJOR.MINOR.PATCH, soname
# libgflowvi.so.MAJOR, and the libgflowvi.so link that -lgflowvi finds; the version numbers
# come from include/gflowvi/version.h.  --no-undefined checks that LDLIBS is complete
# (not under the sanitizers, whose runtime the program that loads the library brings).
version_part = $(shell sed -n 's/^\#define GFV_VERSION_$(1) \([0-9][0-9]*\).*/\1/p' include/gflowvi/version.h)
VERSION_MAJOR := $(call version_part,MAJOR)
VERSION  := $(VERSION_MAJOR).$(call version_part,MINOR).$(call version_part,PATCH)
SONAME   := libgflowvi.so.$(VERSION_MAJOR)
SO_FILE  := $(BUILD)/lib/libgflowvi.so.$(VERSION)
SO_LDFLAGS := -shared -Wl,-soname,$(SONAME) $(if $(filter 1,$(SAN) $(FUZZ)),,-Wl,--no-undefined)
shared: $(BUILD)/lib/libgflowvi.so
$(SO_FILE): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SO_LDFLAGS) $^ -o $@ $(LDLIBS)
$(BUILD)/lib/libgflowvi.so: $(SO_FILE)
	ln -sf $(notdir $(SO_FILE)) $(BUILD)/lib/$(SONAME)
	ln -sf $(SONAME) $@

# The main program links the static library, as the tests do: it runs from the build
# tree and after `make install` without a library path or an rpath.
$(BUILD)/bin/gflowvi: $(BUILD)/obj/src/cli/main.o $(BUILD)/libgflowvi.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS)

$(BUILD)/tests/test_draws: LDLIBS += -lnetcdf_mpi
$(BUILD)/tests/%: tests/unit/%.c tests/unit/harness.h $(BUILD)/libgflowvi.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PROG_DEPFLAGS) -Itests/unit $< $(BUILD)/libgflowvi.a -o $@ $(LDLIBS)

# MPI programs that tests/mpi/*.sh run under mpirun (not in run_all's test_* glob).
MPI_TEST_BIN := $(patsubst tests/mpi/%.c,$(BUILD)/tests/mpi/%,$(sort $(wildcard tests/mpi/*.c)))
$(BUILD)/tests/mpi/%: tests/mpi/%.c $(BUILD)/libgflowvi.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PROG_DEPFLAGS) $< $(BUILD)/libgflowvi.a -o $@ $(LDLIBS)

# Fuzz harnesses: here replay programs (each runs its input files once; the suite replays
# the seed corpus and the regression cases), with FUZZ=1 the libFuzzer programs.
$(BUILD)/fuzz/%: tests/fuzz/%.c tests/fuzz/fuzz.h $(FUZZ_MAIN) $(BUILD)/libgflowvi.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(FUZZ_LINK) -Itests/fuzz $< $(FUZZ_MAIN) $(BUILD)/libgflowvi.a -o $@ $(LDLIBS)

# The example plugin (tools/plugins/ring.c, ABI in include/gflowvi/plugin.h) as a shared
# object, and the broken builds of it that the tests load: another ABI version, a missing
# required function, no Hessian, exit(0) in gfv_plugin_init or in a constructor, abort() in
# gfv_plugin_init, a wrong gradient (for --check-target).  A plugin needs nothing but this
# rule: -fPIC -shared.
PLUGINS  := $(addprefix $(BUILD)/plugins/,ring.so ring_badabi.so ring_nosym.so ring_nohess.so \
              ring_exitinit.so ring_exitctor.so ring_abortinit.so ring_badgrad.so)
MODEL_PLUGINS := $(addprefix $(BUILD)/plugins/,eight_schools.so eight_schools_nohess.so)
plugins: $(PLUGINS) $(MODEL_PLUGINS)
$(BUILD)/plugins/ring.so:        PLUGIN_DEFS :=
$(BUILD)/plugins/ring_badabi.so: PLUGIN_DEFS := -DRING_ABI_OFFSET=1
$(BUILD)/plugins/ring_nosym.so:  PLUGIN_DEFS := -DRING_OMIT_LOGDENSITY
$(BUILD)/plugins/ring_nohess.so: PLUGIN_DEFS := -DRING_NO_HESSIAN
$(BUILD)/plugins/ring_exitinit.so: PLUGIN_DEFS := -DRING_EXIT_IN_INIT
$(BUILD)/plugins/ring_exitctor.so: PLUGIN_DEFS := -DRING_EXIT_IN_CONSTRUCTOR
$(BUILD)/plugins/ring_abortinit.so: PLUGIN_DEFS := -DRING_ABORT_IN_INIT
$(BUILD)/plugins/ring_badgrad.so: PLUGIN_DEFS := -DRING_WRONG_GRADIENT
$(PLUGINS): tools/plugins/ring.c include/gflowvi/plugin.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fPIC -shared $(PLUGIN_DEFS) $< -o $@ -lm

# The hierarchical models of the default-settings tests (tests/cli/test_hierarchical.sh),
# with and without the Hessian (gradients only, as a user's first plugin).
$(BUILD)/plugins/%.so: tools/plugins/%.c include/gflowvi/plugin.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fPIC -shared $< -o $@ -lm
$(BUILD)/plugins/eight_schools_nohess.so: tools/plugins/eight_schools.c include/gflowvi/plugin.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fPIC -shared -DHIER_NO_HESSIAN $< -o $@ -lm

tests: $(TEST_BIN) $(FUZZ_BIN) $(PLUGINS) $(MODEL_PLUGINS) $(MPI_TEST_BIN)
fuzzers: $(FUZZ_BIN)

# The whole test suite; ends with the line "N passed, N failed".
check: all
	bash tests/run_all.sh $(BUILD)

# The whole suite again, built with ASan + UBSan (tests/sanitizers/run.sh sets their options).
check-asan:
	$(MAKE) BUILD=build-asan SAN=1 all
	bash tests/sanitizers/run.sh build-asan

# libFuzzer programs in build-fuzz/fuzz/ (tools/fuzz.sh builds and runs them).
fuzz:
	$(MAKE) FUZZ=1 BUILD=build-fuzz OPT=-O1 fuzzers

demo: $(BUILD)/bin/gflowvi
	bash tools/demo.sh --no-install

# The benchmark (docs/performance.md; not part of `make check`, but `all` builds the program
# so that CI compiles it): gflowvi-bench and the
# NumPy baseline tools/bench/ngflow_numpy.py on the same configurations, one table.
.PHONY: bench
$(BUILD)/bin/gflowvi-bench: tools/bench/bench.c $(BUILD)/libgflowvi.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PROG_DEPFLAGS) -DGFV_BENCH_CFLAGS='"$(CFLAGS)"' $< $(BUILD)/libgflowvi.a -o $@ $(LDLIBS)

bench: $(BUILD)/bin/gflowvi-bench
	bash tools/bench/run_bench.sh $(BUILD)

# The machine constants of the performance model tools/perfmodel.py (docs/cluster.md,
# "The performance model"): tools/mpirun.sh 2 build/bin/calibrate.  Built
# by `all` so that CI compiles it; run by hand or by tests/mpi/test_scaling_tools.sh.
.PHONY: calibrate
calibrate: $(BUILD)/bin/calibrate
$(BUILD)/bin/calibrate: tools/bench/calibrate.c $(BUILD)/libgflowvi.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PROG_DEPFLAGS) $< $(BUILD)/libgflowvi.a -o $@ $(LDLIBS)

# Stan models (--target=stan:MODEL.stan; docs/user-guide.md, "Stan models"): the Stan compiler (stanc
# 2.21 from Debian's r-cran-stanheaders) and the plugin shim, built once into the model
# cache by tools/stan/gflowvi-stan (nothing to do when they are there).  Not part of `all`:
# it needs r-cran-stanheaders and a few CPU-minutes; tools/check.sh runs it.  STAN_JOBS
# compilations at a time (about 1 GB each).
.PHONY: stan
STAN_JOBS ?= 1
stan:
	GFV_STAN_JOBS=$(STAN_JOBS) tools/stan/gflowvi-stan stanc
	tools/stan/gflowvi-stan shim

# The simulated cluster (docs/cluster.md): build-smpi/bin/gflowvi, built by SimGrid's smpicc
# (libsimgrid-dev) against the serial HDF5 (libhdf5-dev: SMPI cannot load the Open MPI
# build), and run by smpirun through tools/scaling.py --simulate or tests/mpi/test_smpi.sh.
SMPI_BUILD ?= build-smpi
.PHONY: smpi
smpi:
	$(MAKE) SMPI=1 BUILD=$(SMPI_BUILD) CC=smpicc HDF5_INC="$(shell pkg-config --cflags hdf5-serial)" \
	  HDF5_LIB="$(shell pkg-config --libs hdf5-serial)" $(SMPI_BUILD)/bin/gflowvi $(SMPI_BUILD)/bin/calibrate

# make install PREFIX=/usr/local DESTDIR=: the program, both libraries, the public headers,
# gflowvi.pc (for pkg-config; made here from tools/gflowvi.pc.in, so it names PREFIX) and
# the Python package (PREFIX/lib/python3/dist-packages/gflowvi, docs/python.md).  The
# public headers include nothing from MPI, HDF5 or GSL: Cflags is -I on PREFIX/include;
# a static link (pkg-config --static) takes Libs.private.
PREFIX   ?= /usr/local
DESTDIR  ?=
MPI_LIB  := $(shell pkg-config --libs ompi-c 2>/dev/null)
PC_LIBS_PRIVATE := $(HDF5_LIB) $(filter-out $(HDF5_LIB),$(MPI_LIB)) $(LIBS_NOHDF5)
PYDIR    := lib/python3/dist-packages/gflowvi
install: $(BUILD)/bin/gflowvi $(BUILD)/libgflowvi.a $(BUILD)/lib/libgflowvi.so
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/pkgconfig \
	  $(DESTDIR)$(PREFIX)/include/gflowvi $(DESTDIR)$(PREFIX)/$(PYDIR)
	install -m 755 $(BUILD)/bin/gflowvi $(DESTDIR)$(PREFIX)/bin/
	install -m 644 $(BUILD)/libgflowvi.a $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(SO_FILE) $(DESTDIR)$(PREFIX)/lib/
	ln -sf $(notdir $(SO_FILE)) $(DESTDIR)$(PREFIX)/lib/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(PREFIX)/lib/libgflowvi.so
	install -m 644 include/gflowvi/*.h $(DESTDIR)$(PREFIX)/include/gflowvi/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' \
	  -e 's|@LIBS_PRIVATE@|$(strip $(PC_LIBS_PRIVATE))|' tools/gflowvi.pc.in \
	  > $(DESTDIR)$(PREFIX)/lib/pkgconfig/gflowvi.pc
	install -m 644 src/bindings/python/gflowvi/*.py $(DESTDIR)$(PREFIX)/$(PYDIR)/

clean:
	rm -rf $(BUILD)

# The header dependencies that -MMD wrote (none before the first build).
-include $(LIB_OBJ:.o=.d) $(BUILD)/obj/src/cli/main.d $(TEST_BIN:=.d) $(MPI_TEST_BIN:=.d) \
  $(BUILD)/bin/gflowvi-bench.d $(BUILD)/bin/calibrate.d
