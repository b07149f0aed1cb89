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
HDF5_INC ?= -I/usr/include/hdf5/openmpi
HDF5_LIB ?= -lhdf5_openmpi
# netCDF-4 for posterior.nc (ArviZ reads netCDF-4 groups): Debian's Open MPI build
# (libnetcdf-mpi-dev), which uses the same HDF5 as ours; its headers are under its prefix.
# gflowvi loads the library at run time (src/io/netcdf_dl.h says why); only the test that
# reads posterior.nc back links it.
NETCDF_INC := -I$(shell pkg-config --variable=prefix netcdf-mpi 2>/dev/null)/include
override CFLAGS += -std=c11 -D_DEFAULT_SOURCE -Iinclude -Isrc $(HDF5_INC) $(NETCDF_INC) $(WARN)
# GSL with OpenBLAS's CBLAS, never GSL's slow reference CBLAS (-lgslcblas).
LDLIBS   := $(HDF5_LIB) -lgsl -llapacke -lopenblas -lm -ldl

# Checked builds (tools/check.sh uses all three; see README, "Reliability"):
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
HEADERS  := $(wildcard include/gflowvi/*.h) $(wildcard src/*/*.h)
FUZZ_BIN := $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(sort $(wildcard tests/fuzz/fuzz_*.c)))

.PHONY: all lib tests check check-asan fuzz fuzzers plugins demo clean
all: $(BUILD)/bin/gflowvi tests $(BUILD)/bin/calibrate

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

$(BUILD)/tests/test_draws: LDLIBS += -lnetcdf_mpi
$(BUILD)/tests/%: tests/unit/%.c tests/unit/harness.h $(BUILD)/libgflowvi.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit $< $(BUILD)/libgflowvi.a -o $@ $(LDLIBS)

# MPI programs that tests/mpi/*.sh run under mpirun (not in run_all's test_* glob).
MPI_TEST_BIN := $(patsubst tests/mpi/%.c,$(BUILD)/tests/mpi/%,$(sort $(wildcard tests/mpi/*.c)))
$(BUILD)/tests/mpi/%: tests/mpi/%.c $(BUILD)/libgflowvi.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< $(BUILD)/libgflowvi.a -o $@ $(LDLIBS)

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

# The benchmark (README, "Performance"; not part of `make check`): gflowvi-bench and the
# NumPy baseline tools/bench/ngflow_numpy.py on the same configurations, one table.
.PHONY: bench
$(BUILD)/bin/gflowvi-bench: tools/bench/bench.c $(BUILD)/libgflowvi.a $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -DGFV_BENCH_CFLAGS='"$(CFLAGS)"' $< $(BUILD)/libgflowvi.a -o $@ $(LDLIBS)

bench: $(BUILD)/bin/gflowvi-bench
	bash tools/bench/run_bench.sh $(BUILD)

# The machine constants of the performance model tools/perfmodel.py (README, "Clusters:
# Slurm jobs, scaling, performance model"): tools/mpirun.sh 2 build/bin/calibrate.  Built
# by `all` so that CI compiles it; run by hand or by tests/mpi/test_scaling_tools.sh.
.PHONY: calibrate
calibrate: $(BUILD)/bin/calibrate
$(BUILD)/bin/calibrate: tools/bench/calibrate.c $(BUILD)/libgflowvi.a $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< $(BUILD)/libgflowvi.a -o $@ $(LDLIBS)

# Stan models (--target=stan:MODEL.stan; README, "Stan models"): the Stan compiler (stanc
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

clean:
	rm -rf $(BUILD)
