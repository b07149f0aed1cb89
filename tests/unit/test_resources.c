/* test_resources.c - the readers of the memory limits (fake /proc and cgroup trees), the
 * memory estimate against what a created solver really allocates, the byte formatter, and
 * the clearing of an old output directory. */
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/limits.h"
#include "gflowvi/comm.h"
#include "gflowvi/error.h"
#include "gflowvi/mixture.h"
#include "gflowvi/solver.h"
#include "gflowvi/target.h"
#include "harness.h"
#include "solver/footprint.h"
#include "solver/solver_impl.h"

static char tmpdir[64];

/* tmpdir/rel in a rotating static buffer. */
static const char *at(const char *rel) {
  static char buf[8][512];
  static int slot;
  slot = (slot + 1) % 8;
  snprintf(buf[slot], sizeof buf[slot], "%s/%s", tmpdir, rel);
  return buf[slot];
}

/* Writes text to tmpdir/rel, creating its directories. */
static void put(const char *rel, const char *text) {
  char path[512];
  snprintf(path, sizeof path, "%s", at(rel));
  for (char *p = path + strlen(tmpdir) + 1; *p; p++)
    if (*p == '/') {
      *p = '\0';
      mkdir(path, 0777);
      *p = '/';
    }
  FILE *f = fopen(path, "w");
  if (!f) return;
  fputs(text, f);
  fclose(f);
}

static int exists(const char *rel) {
  struct stat sb;
  return lstat(at(rel), &sb) == 0;
}

/* ---- /proc-style "Key: N kB" files ----------------------------------------------------- */

static void test_kb_fields(void) {
  put("meminfo", "MemTotal:       24683652 kB\nMemFree:         1000 kB\n"
                 "MemAvailable:   24287036 kB\nHugePages_Total:       7\n");
  double v = -1;
  CHECK(gfv_read_kb_field(at("meminfo"), "MemAvailable", &v) == 0 && v == 24287036.0 * 1024,
        "MemAvailable %g", v);
  CHECK(gfv_read_kb_field(at("meminfo"), "HugePages_Total", &v) == 0 && v == 7, "count %g", v);
  /* A key is a whole name: "Mem" is no key, "MemFree" is not "MemFreeX". */
  CHECK(gfv_read_kb_field(at("meminfo"), "Mem", &v) == -1, "prefix matched");
  CHECK(gfv_read_kb_field(at("meminfo"), "SwapFree", &v) == -1, "missing key found");
  CHECK(gfv_read_kb_field(at("none"), "MemAvailable", &v) == -1, "missing file read");
  put("status", "Name:\tgflowvi\nVmSize:\t  423200 kB\nVmData:\t  nonsense kB\n");
  CHECK(gfv_read_kb_field(at("status"), "VmSize", &v) == 0 && v == 423200.0 * 1024, "VmSize %g", v);
  CHECK(gfv_read_kb_field(at("status"), "VmData", &v) == -1, "malformed value accepted");
}

/* ---- cgroups ------------------------------------------------------------------------ */

/* A mountinfo with a cgroup v2 mount at tmpdir/cg2 and a v1 memory mount at tmpdir/cg1
 * whose root is /docker/abc (a container's view), plus unrelated mounts. */
static void fake_mounts(void) {
  char text[2048];
  snprintf(text, sizeof text,
           "22 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw\n"
           "30 22 0:26 / %s/cg2 rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate\n"
           "31 22 0:27 / %s/cpu rw - cgroup cgroup rw,cpu,cpuacct\n"
           "40 22 0:35 /docker/abc %s/cg1 rw master:9 - cgroup cgroup rw,memory\n",
           tmpdir, tmpdir, tmpdir);
  put("mountinfo", text);
}

static void test_cgroup_v2_parent_limit(void) {
  fake_mounts();
  put("cgroup", "0::/job/step\n");
  put("cg2/job/memory.max", "1000000000\n");
  put("cg2/job/memory.current", "600000000\n");
  put("cg2/job/memory.stat", "anon 400000000\nfile 200000000\ninactive_file 100000000\n");
  put("cg2/job/step/memory.max", "max\n");
  put("cg2/job/step/memory.current", "300000000\n");
  gfv_mem_limit l;
  gfv_cgroup_memory_limit(at("cgroup"), at("mountinfo"), &l);
  /* The parent's limit applies; its reclaimable page cache does not count as used. */
  CHECK(l.free == 1e9 - (6e8 - 1e8) && l.limit == 1e9, "free %g limit %g", l.free, l.limit);
  CHECK(strstr(l.name, "cg2/job") && !strstr(l.name, "step"), "name %s", l.name);
  /* A tighter limit below wins. */
  put("cg2/job/step/memory.max", "400000000\n");
  gfv_cgroup_memory_limit(at("cgroup"), at("mountinfo"), &l);
  CHECK(l.free == 1e8 && strstr(l.name, "cg2/job/step"), "free %g name %s", l.free, l.name);
  /* Usage beyond the limit leaves nothing, not a negative amount. */
  put("cg2/job/step/memory.current", "500000000\n");
  gfv_cgroup_memory_limit(at("cgroup"), at("mountinfo"), &l);
  CHECK(l.free == 0, "free %g", l.free);
}

static void test_cgroup_v1_container_and_none(void) {
  fake_mounts();
  /* The path is the host's; the mount shows the subtree /docker/abc at tmpdir/cg1. */
  put("cgroup", "12:pids:/docker/abc\n5:memory:/docker/abc\n0::/\n");
  put("cg1/memory.limit_in_bytes", "2000000000\n");
  put("cg1/memory.usage_in_bytes", "1000000000\n");
  put("cg1/memory.stat", "cache 600000000\ntotal_inactive_file 500000000\n");
  gfv_mem_limit l;
  gfv_cgroup_memory_limit(at("cgroup"), at("mountinfo"), &l);
  CHECK(l.free == 1.5e9 && l.limit == 2e9, "free %g limit %g", l.free, l.limit);
  CHECK(strstr(l.name, "cg1"), "name %s", l.name);
  /* v1's "unlimited" is 2^63 rounded down to a page. */
  put("cg1/memory.limit_in_bytes", "9223372036854771712\n");
  gfv_cgroup_memory_limit(at("cgroup"), at("mountinfo"), &l);
  CHECK(isinf(l.free) && l.name[0] == '\0', "free %g name %s", l.free, l.name);
  /* No cgroup file at all: no limit. */
  gfv_cgroup_memory_limit(at("none"), at("mountinfo"), &l);
  CHECK(isinf(l.free), "free %g", l.free);
}

static void test_node_limit_meminfo(void) {
  fake_mounts();
  put("cgroup", "0::/job\n");
  put("cg2/job/memory.max", "8000000000\n");
  put("cg2/job/memory.current", "0\n");
  put("meminfo", "MemAvailable:   1000000 kB\n");
  gfv_mem_limit l;
  gfv_node_memory_limit(at("meminfo"), at("cgroup"), at("mountinfo"), &l);
  CHECK(l.free == 1024e6 && strcmp(l.name, "MemAvailable") == 0, "free %g name %s", l.free, l.name);
  put("meminfo", "MemAvailable:   100000000 kB\n");
  gfv_node_memory_limit(at("meminfo"), at("cgroup"), at("mountinfo"), &l);
  CHECK(l.free == 8e9 && strstr(l.name, "memory cgroup"), "free %g name %s", l.free, l.name);
}

/* RLIMIT_AS lowered in this process: what is left is the limit less VmSize. */
static void test_process_limit(void) {
  struct rlimit old;
  getrlimit(RLIMIT_AS, &old);
  double vm = 0;
  CHECK(gfv_read_kb_field(GFV_PROC_STATUS, "VmSize", &vm) == 0 && vm > 0, "VmSize %g", vm);
  struct rlimit rl = old;
  rl.rlim_cur = (rlim_t)(vm + 1e9);
  CHECK(setrlimit(RLIMIT_AS, &rl) == 0, "setrlimit");
  gfv_mem_limit l;
  gfv_process_memory_limit(GFV_PROC_STATUS, &l);
  setrlimit(RLIMIT_AS, &old);
  CHECK(fabs(l.free - 1e9) < 5e6 && strstr(l.name, "RLIMIT_AS"), "free %g name %s", l.free, l.name);
}

static void test_format_bytes(void) {
  static const struct {
    double bytes;
    const char *text;
  } cases[] = {{480e9, "480 GB"}, {1.5e6, "1.5 MB"}, {999, "999 bytes"}, {12.3e9, "12 GB"},
               {1.9e12, "1.9 TB"}, {64e3, "64 kB"},  {9.96e6, "10 MB"}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char buf[32];
    gfv_format_bytes(cases[i].bytes, buf, sizeof buf);
    CHECK(strcmp(buf, cases[i].text) == 0, "%g: '%s', expected '%s'", cases[i].bytes, buf,
          cases[i].text);
  }
}

/* ---- the memory estimate against a created solver -------------------------------------- */

#ifndef GFV_SANITIZE /* ASan's allocator is not glibc's: mallinfo2 does not see its heap */
static double heap_bytes(void) {
  struct mallinfo2 mi = mallinfo2();
  return (double)mi.uordblks + (double)mi.hblkhd;
}

/* gfv_solver_create allocates what the estimate's persistent part says, to within 5%:
 * the estimate mirrors every allocation of allocate() at its size; what it leaves out is
 * malloc's own 16 bytes a block and the target's transient buffers during the first
 * estimate, both far below 5% at these sizes (a few MB to a few hundred MB; 0.1% is what
 * was measured).  Each case has a different dominant term. */
typedef struct {
  const char *target, *family, *estimator, *layout;
  long dim, particles, samples, iters, out_samples;
  int dominant;
} alloc_case;

static void test_estimate_matches_allocation(void) {
  static const alloc_case cases[] = {
      {"gauss", "full", "auto", "auto", 3, 20, 10, 2000000, 10000, GFV_MEM_TRACE},
      /* n x kloc = 320 MB of phase-A terms: held in ranges of 268 MB (GFV_SAMPLES_A_BUDGET) */
      {"gmm4", "full", "auto", "samples", 0, 2000, 10, 10, 10000, GFV_MEM_MIXTURE},
      {"gmm4", "full", "auto", "samples", 0, 1000, 10, 10, 10000, GFV_MEM_MIXTURE},
      /* the same in the params layout: no K^2 S term, the particles dominate */
      {"gmm4", "full", "auto", "params", 0, 2000, 10, 10, 10000, GFV_MEM_PARTICLES},
      {"gauss", "full", "hessian", "params", 60, 20, 400, 10, 10000, GFV_MEM_HESSIANS},
      {"gauss", "full", "hessian", "samples", 60, 20, 400, 10, 10000, GFV_MEM_HESSIANS},
      {"funnel", "diag", "stein", "samples", 500, 40, 100, 10, 1000, GFV_MEM_SAMPLES},
      /* (draws.csv's 4096-row scratch at d = 500 nearly matches the params layout's samples) */
      {"funnel", "diag", "stein", "params", 500, 40, 100, 10, 100, GFV_MEM_SAMPLES},
      {"gauss", "full", "stein", "params", 40, 1500, 1, 10, 10000, GFV_MEM_PARTICLES},
      {"gauss", "full", "stein", "samples", 40, 1500, 1, 10, 10000, GFV_MEM_PARTICLES},
      {"gauss", "diag", "stein", "auto", 100, 4, 10, 10, 1000000, GFV_MEM_DRAWS},
  };
  /* The params layout with its mixture streamed (a 500 kB gather budget: blocks of 4 and
   * of 2 components, in place of the gathered mixture: 19.7 MB in the first case). */
  static const alloc_case streamed[] = {
      {"gauss", "full", "stein", "params", 40, 1500, 1, 10, 10000, GFV_MEM_PARTICLES},
      {"gauss", "full", "hessian", "params", 60, 20, 400, 10, 10000, GFV_MEM_HESSIANS},
      /* the samples layout's Hessian sums in chunks of 17 particles, no send buffer */
      {"gauss", "full", "hessian", "samples", 60, 20, 400, 10, 10000, GFV_MEM_HESSIANS},
  };
  const size_t ncases = sizeof cases / sizeof cases[0], nstreamed = sizeof streamed / sizeof streamed[0];
  gfv_comm *comm = NULL;
  gfv_comm_self(&comm);
  for (size_t i = 0; i < ncases + nstreamed; i++) {
    const alloc_case *c = i < ncases ? cases + i : streamed + (i - ncases);
    if (i == ncases) setenv(GFV_PARAMS_GATHER_ENV, "500000", 1);
    gfv_config cfg;
    gfv_config_defaults(&cfg);
    snprintf(cfg.target, sizeof cfg.target, "%s", c->target);
    snprintf(cfg.family, sizeof cfg.family, "%s", c->family);
    snprintf(cfg.estimator, sizeof cfg.estimator, "%s", c->estimator);
    snprintf(cfg.layout, sizeof cfg.layout, "%s", c->layout);
    cfg.dim = c->dim, cfg.particles = c->particles, cfg.samples = c->samples;
    cfg.iters = c->iters, cfg.quiet = 1, cfg.init_scale = 0.1;
    cfg.out_samples = c->out_samples;
    gfv_target *t = NULL;
    gfv_solver *s = NULL;
    if (gfv_target_create_from_config(&cfg, &t)) {
      CHECK(0, "case %zu: target: %s", i, gfv_error_message());
      continue;
    }
    gfv_mem_estimate e;
    gfv_memory_estimate(&cfg, t, 1, 0, &e);
    double before = heap_bytes();
    int st = gfv_solver_create(&cfg, t, comm, &s);
    double got = heap_bytes() - before;
    CHECK(st == 0, "case %zu: %s", i, gfv_error_message());
    CHECK_REL(e.persistent, got, 0.05, 1.0, "persistent estimate vs allocated");
    printf("# case %zu: estimate %.0f allocated %.0f ratio %.4f peak %.0f\n", i, e.persistent, got, e.persistent / got, e.peak);
    CHECK(gfv_mem_dominant(&e) == c->dominant, "case %zu: dominant term %s", i,
          gfv_mem_term_what(gfv_mem_dominant(&e)));
    CHECK(e.peak >= e.persistent, "case %zu: peak %g < persistent %g", i, e.peak, e.persistent);
    if (i >= ncases)
      CHECK(s->stream_cap > 0 || s->h_rows < s->K, "case %zu: nothing streams or goes in chunks", i);
    gfv_solver_free(s);
    gfv_target_free(t);
  }
  unsetenv(GFV_PARAMS_GATHER_ENV);
  gfv_comm_free(comm);
}

#endif

/* Rank 0 gathers every log ratio of the final evaluation (32 bytes each, with PSIS's
 * copies); the others keep only their own; rank counts split the samples layout's K^2 S
 * terms; the params layout has none (the same bounded workspace on every rank). */
static void test_estimate_ranks(void) {
  gfv_config cfg;
  gfv_config_defaults(&cfg);
  snprintf(cfg.target, sizeof cfg.target, "gmm4");
  cfg.particles = 1500, cfg.samples = 10, cfg.eval_samples = 300000000, cfg.iters = 10;
  gfv_target *t = NULL;
  CHECK(gfv_target_create_from_config(&cfg, &t) == 0, "target");
  gfv_mem_estimate r0, r1, one;
  snprintf(cfg.layout, sizeof cfg.layout, "samples");
  gfv_memory_estimate(&cfg, t, 3, 0, &r0);
  gfv_memory_estimate(&cfg, t, 3, 1, &r1);
  gfv_memory_estimate(&cfg, t, 1, 0, &one);
  CHECK_REL(r0.term[GFV_MEM_EVAL] - r1.term[GFV_MEM_EVAL], 32.0 * 3e8, 0.01, 1, "rank 0's PSIS share");
  CHECK(gfv_mem_dominant(&r0) == GFV_MEM_EVAL, "rank 0: %s", gfv_mem_term_what(gfv_mem_dominant(&r0)));
  /* The phase-A terms split; each rank's kernel workspace does not. */
  const double ws1 = gfv_mix_work_bytes(2, 500, 10, 0), ws = gfv_mix_work_bytes(2, 1500, 10, 0);
  CHECK_REL((r1.term[GFV_MEM_MIXTURE] - ws1) * 3, one.term[GFV_MEM_MIXTURE] - ws, 1e-6, 1, "K^2 S split");
  /* Twice the particles: n x kloc = 720 MB on one rank, held in ranges under the budget
   * (and as many numbers again for a range's own log-sum-exps). */
  cfg.particles = 3000;
  gfv_memory_estimate(&cfg, t, 1, 0, &one);
  double a = one.term[GFV_MEM_MIXTURE] - gfv_mix_work_bytes(2, 3000, 10, 0);
  CHECK(a <= GFV_SAMPLES_A_BUDGET * (1 + 1.0 / 3000) && a > 0.99 * GFV_SAMPLES_A_BUDGET,
        "samples: %g bytes of phase-A terms", a);
  gfv_memory_estimate(&cfg, t, 3, 1, &r1);
  snprintf(cfg.layout, sizeof cfg.layout, "params");
  gfv_mem_estimate p1, p3;
  gfv_memory_estimate(&cfg, t, 1, 0, &p1);
  gfv_memory_estimate(&cfg, t, 3, 1, &p3);
  CHECK(p1.term[GFV_MEM_MIXTURE] == p3.term[GFV_MEM_MIXTURE], "params: the workspace depends on the rank count");
  CHECK(p3.term[GFV_MEM_MIXTURE] < 0.05 * r1.term[GFV_MEM_MIXTURE], "params: %g bytes of mixture terms, samples %g",
        p3.term[GFV_MEM_MIXTURE], r1.term[GFV_MEM_MIXTURE]);
  gfv_target_free(t);
}

/* Rank 0 writes the checkpoint and mixture.csv / mixture.h5 in blocks (output_blocks.h):
 * at K = 65,536, d = 16 on 2 ranks (params layout) its particles term exceeds rank 1's by
 * two checkpoint blocks and one block of covariances (under 100 MB), where four packed
 * copies of all K particles made it 1.7 GB more; the draws' kernel workspace for (d, K, 1)
 * is rank 0's remaining O(K d^2) term. */
static void test_estimate_output_blocks(void) {
  gfv_config cfg;
  gfv_config_defaults(&cfg);
  snprintf(cfg.target, sizeof cfg.target, "gauss");
  cfg.dim = 16, cfg.particles = 65536, cfg.samples = 2, cfg.iters = 2;
  snprintf(cfg.layout, sizeof cfg.layout, "params");
  gfv_target *t = NULL;
  CHECK(gfv_target_create_from_config(&cfg, &t) == 0, "target");
  gfv_mem_estimate r0, r1;
  gfv_memory_estimate(&cfg, t, 2, 0, &r0);
  gfv_memory_estimate(&cfg, t, 2, 1, &r1);
  const double extra = r0.term[GFV_MEM_PARTICLES] - r1.term[GFV_MEM_PARTICLES];
  CHECK(extra >= 0 && extra < 100e6, "rank 0 holds %.0f MB more particle data than rank 1", extra / 1e6);
  CHECK(r0.term[GFV_MEM_PARTICLES] < 1.0e9, "rank 0: %.0f MB of particles", r0.term[GFV_MEM_PARTICLES] / 1e6);
  /* Smaller blocks, the test knob: rank 0's extra shrinks to almost nothing. */
  setenv("GFV_OUTPUT_BLOCK_BYTES", "65536", 1);
  gfv_memory_estimate(&cfg, t, 2, 0, &r0);
  unsetenv("GFV_OUTPUT_BLOCK_BYTES");
  const double small = r0.term[GFV_MEM_PARTICLES] - r1.term[GFV_MEM_PARTICLES];
  CHECK(small < extra && small < 16e6, "with 64 KB blocks rank 0 holds %.1f MB more", small / 1e6);
  gfv_target_free(t);
}

/* Beyond the gather budget the outputs do not gather the whole mixture (outputs.c, draws.c
 * gfv_draws_make_streamed): at K = 65,536, d = 16 on 2 ranks (the mixture streams under
 * the default 64 MiB budget), rank 1's peak holds no O(K d^2) term, where with the budget
 * raised (the gathered path) it holds the whole mixture, 8 K (2 + d + 2 d^2) = 278 MB; a
 * 2-D target keeps the gather for density.csv. */
static void test_estimate_streamed_outputs(void) {
  gfv_config cfg;
  gfv_config_defaults(&cfg);
  snprintf(cfg.target, sizeof cfg.target, "gauss");
  cfg.dim = 16, cfg.particles = 65536, cfg.samples = 2, cfg.iters = 2;
  gfv_target *t = NULL;
  CHECK(gfv_target_create_from_config(&cfg, &t) == 0, "target");
  const double full = 8.0 * 65536 * (2 + 16 + 2 * 256);
  gfv_mem_estimate st1, g1;
  gfv_memory_estimate(&cfg, t, 2, 1, &st1);
  setenv(GFV_PARAMS_GATHER_ENV, "1e12", 1);
  gfv_memory_estimate(&cfg, t, 2, 1, &g1);
  unsetenv(GFV_PARAMS_GATHER_ENV);
  CHECK(g1.peak - st1.peak > 0.9 * full, "gathered peak %.0f MB, streamed %.0f MB", g1.peak / 1e6,
        st1.peak / 1e6);
  /* (what the phases add to the rank's own particles, kept throughout) */
  CHECK(st1.peak - st1.persistent < 0.5 * full, "streamed phases add %.0f MB: the whole mixture is %.0f MB",
        (st1.peak - st1.persistent) / 1e6, full / 1e6);
  gfv_target_free(t);
  /* d = 2: density.csv's grid takes the whole mixture, gathered as before */
  cfg.dim = 2, cfg.particles = 4000000;
  CHECK(gfv_target_create_from_config(&cfg, &t) == 0, "target 2-D");
  gfv_memory_estimate(&cfg, t, 2, 1, &st1);
  CHECK(st1.term[GFV_MEM_PARTICLES] >= 8.0 * 4e6 * (2 + 2 + 2 * 4), "2-D: %.0f MB of particles",
        st1.term[GFV_MEM_PARTICLES] / 1e6);
  gfv_target_free(t);
}

/* ---- clearing an old output directory ------------------------------------------------ */

static void test_outputs_clean(void) {
  static const char *const gone[] = {
      "out/summary.json", "out/mixture.csv", "out/trace.csv", "out/samples.csv",
      "out/density.csv", "out/mixture.h5", "out/density.png", "out/trace.png",
      "out/samples.csv.tmp.123", "out/checkpoint.h5.tmp.99999999", "out/summary.json.tmp.7"};
  static const char *const stay[] = {
      "out/checkpoint.h5", "out/notes.txt", "out/samples.csv.tmp.12a", "out/samples.csv.tmp.",
      "out/trace.png.tmp.5", "out/mine.h5.tmp.5", "out/sub/summary.json", "out/mixture.csv.bak",
      "out/my.csv"};
  for (size_t i = 0; i < sizeof gone / sizeof gone[0]; i++) put(gone[i], "x\n");
  for (size_t i = 0; i < sizeof stay / sizeof stay[0]; i++) put(stay[i], "keep\n");
  mkdir(at("out/mixture.h5.tmp.1"), 0777); /* a directory of that name is not ours */
  size_t count = 0;
  double bytes = 0;
  /* A dry run counts and removes nothing. */
  CHECK(gfv_outputs_clean(at("out"), NULL, 0, 1, &count, &bytes) == 0, "%s", gfv_error_message());
  CHECK(count == 11 && bytes == 22 && exists("out/summary.json"), "dry run: %zu files, %g bytes",
        count, bytes);
  /* An input of the run (here: out/mixture.csv as a gmm:FILE target) stays. */
  const char *keep[] = {NULL, "", at("out/mixture.csv")};
  CHECK(gfv_outputs_clean(at("out"), keep, 3, 0, &count, NULL) == 0, "%s", gfv_error_message());
  CHECK(count == 10, "removed %zu files", count);
  for (size_t i = 0; i < sizeof gone / sizeof gone[0]; i++)
    CHECK(exists(gone[i]) == (strcmp(gone[i], "out/mixture.csv") == 0), "%s", gone[i]);
  for (size_t i = 0; i < sizeof stay / sizeof stay[0]; i++) CHECK(exists(stay[i]), "%s removed", stay[i]);
  CHECK(exists("out/mixture.h5.tmp.1"), "a directory was removed");
  /* An empty or missing directory is nothing to do. */
  CHECK(gfv_outputs_clean(at("nothing"), NULL, 0, 0, &count, NULL) == 0 && count == 0, "missing dir");
}

int main(void) {
  strcpy(tmpdir, "/tmp/gfv-test-resources-XXXXXX");
  if (!mkdtemp(tmpdir)) return 1;
  RUN(test_kb_fields);
  RUN(test_cgroup_v2_parent_limit);
  RUN(test_cgroup_v1_container_and_none);
  RUN(test_node_limit_meminfo);
  RUN(test_process_limit);
  RUN(test_format_bytes);
#ifdef GFV_SANITIZE
  printf("SKIP test_estimate_matches_allocation: mallinfo2 cannot see AddressSanitizer's heap\n");
#else
  RUN(test_estimate_matches_allocation);
#endif
  RUN(test_estimate_ranks);
  RUN(test_estimate_output_blocks);
  RUN(test_estimate_streamed_outputs);
  RUN(test_outputs_clean);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  if (system(cmd) != 0) printf("# could not remove %s\n", tmpdir);
  return harness_report();
}
