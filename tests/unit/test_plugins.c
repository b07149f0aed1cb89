/* test_plugins.c - the plugin ABI (include/gflowvi/plugin.h) round trip with the example
 * plugin tools/plugins/ring.c, built by the Makefile into BUILD/plugins/ (BUILD from the
 * environment variable GFV_BUILD that tests/run_all.sh sets, else "build"):
 *  - loading, the arguments, dimension, flags, log density against the closed form,
 *    gradient and Hessian against finite differences, normalisation by quadrature;
 *  - a fit through the solver API: a mixture covers the ring (KL < 0.05);
 *  - every failure: missing file, not a shared object, missing symbol, ABI mismatch,
 *    dimension mismatch with --dim, a failing init, an empty path; and a plugin returning
 *    NaN: a clear numerical error from the solver and one warning naming the plugin;
 *  - the ELF checks before dlopen, on damaged copies of ring.so: cut short at several
 *    places (a truncated file made dlopen die of SIGBUS), another machine, word size,
 *    byte order or ELF type, headers past any file, a directory, a device, and a PIE
 *    program, which passes them and is refused by dlopen;
 *  - the plugin's own lines (gfv_plugin_set_log) reach the caller's log callback. */
#include <elf.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gflowvi/comm.h"
#include "gflowvi/config.h"
#include "gflowvi/error.h"
#include "gflowvi/log.h"
#include "gflowvi/solver.h"
#include "gflowvi/target.h"
#include "fit_run.h"
#include "harness.h"

static char plugdir[1024], tmpdir[256];

static void config(gfv_config *cfg, const char *so, const char *args) {
  gfv_config_defaults(cfg);
  snprintf(cfg->target, sizeof cfg->target, "plugin:%s/%s", plugdir, so);
  snprintf(cfg->plugin_arg, sizeof cfg->plugin_arg, "%s", args);
}

static gfv_target *make(const gfv_config *cfg) {
  gfv_target *t = NULL;
  gfv_error_clear();
  int st = gfv_target_create_from_config(cfg, &t);
  CHECK(st == GFV_OK && t, "creating %s: status %d: %s", cfg->target, st, gfv_error_message());
  return st == GFV_OK ? t : NULL;
}

static double ring_logp(double x, double y, double R, double w) {
  double a = R / w, e = hypot(x, y) - R;
  double C = 2 * M_PI * w * (w * exp(-0.5 * a * a) + R * sqrt(2 * M_PI) * 0.5 * erfc(-a / sqrt(2.0)));
  return -0.5 * e * e / (w * w) - log(C);
}

static void test_round_trip(void) {
  gfv_config cfg;
  config(&cfg, "ring.so", "radius=2,width=0.5");
  gfv_target *t = make(&cfg);
  if (!t) return;
  CHECK(t->dim == 2 && t->has_hessian && t->normalized && strcmp(t->name, "plugin") == 0,
        "flags: d %zu hess %d norm %d name %s", t->dim, t->has_hessian, t->normalized, t->name);
  double z[8] = {0.3, -1.9, 2.5, 0.4, -1.0, -1.0, 0.05, 0.02}, lp[4], g[8], H[16];
  CHECK(gfv_target_eval(t, 4, z, lp, g, H) == GFV_OK, "eval");
  const double h = 1e-5;
  for (int i = 0; i < 4; i++) {
    CHECK_REL(lp[i], ring_logp(z[2 * i], z[2 * i + 1], 2, 0.5), 1e-13, 1.0, "logp closed form");
    for (int a = 0; a < 2; a++) {
      double zp[2] = {z[2 * i], z[2 * i + 1]}, l1, l2, g1[2], g2[2];
      zp[a] += h;
      gfv_target_eval(t, 1, zp, &l1, g1, NULL);
      zp[a] -= 2 * h;
      gfv_target_eval(t, 1, zp, &l2, g2, NULL);
      CHECK_REL((l1 - l2) / (2 * h), g[2 * i + a], 1e-6, 1.0, "gradient vs FD");
      for (int b = 0; b < 2; b++)
        CHECK_REL((g1[b] - g2[b]) / (2 * h), H[4 * i + 2 * b + a], 1e-5, 1.0, "Hessian vs FD");
    }
  }
  /* logp without a gradient buffer (the final evaluation's call) */
  double lp2[4];
  CHECK(gfv_target_eval(t, 4, z, lp2, NULL, NULL) == GFV_OK, "eval without grad");
  for (int i = 0; i < 4; i++) CHECK(lp2[i] == lp[i], "same logp");
  /* normalised: the midpoint rule on [-6, 6]^2 with h = 0.01 (outside, the density is
   * below e^{-32}; the rule's error is tiny for this smooth integrand, apart from the
   * cone at the centre, where the density is e^{-8} and flat to O(h^2)) */
  double sum = 0, zz[2 * 1200], ll[1200];
  for (int ix = 0; ix < 1200; ix++) {
    for (int iy = 0; iy < 1200; iy++)
      zz[2 * iy] = -6 + 0.01 * (ix + 0.5), zz[2 * iy + 1] = -6 + 0.01 * (iy + 0.5);
    gfv_target_eval(t, 1200, zz, ll, NULL, NULL);
    for (int iy = 0; iy < 1200; iy++) sum += exp(ll[iy]) * 1e-4;
  }
  CHECK_NEAR(sum, 1.0, 1e-6, "integral of the plugin's density");
  gfv_target_free(t);
  /* defaults (no arguments) and the variant without a Hessian */
  config(&cfg, "ring_nohess.so", "");
  t = make(&cfg);
  if (t) {
    CHECK(!t->has_hessian, "no gfv_plugin_hessian: has_hessian 0");
    double l;
    gfv_target_eval(t, 1, z, &l, g, NULL);
    CHECK_REL(l, ring_logp(z[0], z[1], 2, 0.25), 1e-13, 1.0, "default radius 2, width 0.25");
    gfv_target_free(t);
  }
  /* without the configuration: no arguments */
  char spec[1200];
  snprintf(spec, sizeof spec, "plugin:%s/ring.so", plugdir);
  CHECK(gfv_target_create(spec, 2, &t) == GFV_OK && t && t->dim == 2, "gfv_target_create: %s",
        gfv_error_message());
  gfv_target_free(t);
}

/* 12 components with the weight flow cover a ring of radius 2 and width 0.5: KL 0.003 at
 * seed 1 (one Gaussian: 1.14); the check allows 0.05, the standard error is 3e-4. */
static void test_fit(void) {
  gfv_config cfg;
  config(&cfg, "ring.so", "radius=2,width=0.5");
  gfv_target *t = make(&cfg);
  if (!t) return;
  cfg.particles = 12, cfg.weight_step = 0.05, cfg.iters = 500, cfg.eval_samples = 20000;
  gfv_eval_result res;
  CHECK(test_run_fit(&cfg, t, &res, NULL, NULL, NULL) == GFV_OK, "fit: %s", gfv_error_message());
  CHECK(res.kl < 0.05 && res.kl > -0.01, "KL %g +- %g", res.kl, res.kl_se);
  gfv_target_free(t);
}

static void expect_fail(gfv_config *cfg, int status, const char *fragment) {
  gfv_target *t = NULL;
  gfv_error_clear();
  int st = gfv_target_create_from_config(cfg, &t);
  CHECK(st == status && t == NULL, "%s: status %d (want %d): %s", fragment, st, status,
        gfv_error_message());
  CHECK(strstr(gfv_error_message(), fragment), "message '%s' lacks '%s'", gfv_error_message(), fragment);
  gfv_target_free(t);
}

static void test_errors(void) {
  gfv_config cfg;
  config(&cfg, "nope.so", "");
  expect_fail(&cfg, GFV_ERR_INPUT, "cannot open plugin");
  expect_fail(&cfg, GFV_ERR_INPUT, "nope.so': No such file or directory");
  char text[600];
  snprintf(text, sizeof text, "%s/notelf.so", tmpdir);
  FILE *f = fopen(text, "w");
  fputs("not a shared object\n", f);
  fclose(f);
  gfv_config_defaults(&cfg);
  snprintf(cfg.target, sizeof cfg.target, "plugin:%s", text);
  expect_fail(&cfg, GFV_ERR_INPUT, "notelf.so' is not an ELF file");
  config(&cfg, "ring_nosym.so", "");
  expect_fail(&cfg, GFV_ERR_INPUT, "does not define the required function gfv_plugin_logdensity");
  config(&cfg, "ring_badabi.so", "");
  expect_fail(&cfg, GFV_ERR_INPUT, "was built for plugin ABI version 2, but this gflowvi implements version 1");
  config(&cfg, "ring.so", "");
  cfg.dim = 3;
  expect_fail(&cfg, GFV_ERR_USAGE, "has dimension 2, but --dim=3 was given");
  config(&cfg, "ring.so", "radius=2,bogus");
  expect_fail(&cfg, GFV_ERR_INPUT, "gfv_plugin_init failed: unknown argument 'bogus'");
  config(&cfg, "ring.so", "width=-1");
  expect_fail(&cfg, GFV_ERR_INPUT, "bad value in 'width=-1'");
  gfv_config_defaults(&cfg);
  strcpy(cfg.target, "plugin:");
  expect_fail(&cfg, GFV_ERR_USAGE, "needs a file name");
}

/* Writes tmpdir/name: the first keep bytes of ring.so (all for keep < 0) with n bytes at
 * off replaced by patch; cfg's target names it.  Returns ring.so's size. */
static long damaged_copy(gfv_config *cfg, const char *name, long keep, long off, const void *patch,
                         size_t n) {
  char src[1200], dst[600];
  snprintf(src, sizeof src, "%s/ring.so", plugdir);
  snprintf(dst, sizeof dst, "%s/%s", tmpdir, name);
  static char buf[1 << 20];
  FILE *f = fopen(src, "rb");
  size_t size = f ? fread(buf, 1, sizeof buf, f) : 0;
  if (f) fclose(f);
  CHECK(size > 4096 && size < sizeof buf, "reading %s: %zu bytes", src, size);
  if (n && off >= 0 && (size_t)off + n <= size) memcpy(buf + off, patch, n);
  f = fopen(dst, "wb");
  fwrite(buf, 1, keep < 0 || (size_t)keep > size ? size : (size_t)keep, f);
  fclose(f);
  gfv_config_defaults(cfg);
  snprintf(cfg->target, sizeof cfg->target, "plugin:%s", dst);
  return (long)size;
}

static void test_elf_checks(void) {
  gfv_config cfg;
  char want[200];
  long size = damaged_copy(&cfg, "empty.so", 0, 0, NULL, 0);
  expect_fail(&cfg, GFV_ERR_INPUT, "empty.so' is empty");
  damaged_copy(&cfg, "cut40.so", 40, 0, NULL, 0);
  expect_fail(&cfg, GFV_ERR_INPUT, "cut40.so' is truncated: 40 of 64 bytes");
  /* In the program headers, in a loaded segment (dlopen's SIGBUS), in the section headers. */
  long cuts[3] = {200, 4096, size - 1};
  for (int i = 0; i < 3; i++) {
    damaged_copy(&cfg, "cut.so", cuts[i], 0, NULL, 0);
    snprintf(want, sizeof want, "cut.so' is truncated: %ld of %ld bytes (a copy or a build was cut short?)",
             cuts[i], size);
    expect_fail(&cfg, GFV_ERR_INPUT, want);
  }
#ifdef __aarch64__
  const unsigned char machine[2] = {EM_X86_64, 0};
  const char *machine_msg = "machine.so' is built for x86-64, this gflowvi runs on aarch64";
#else
  const unsigned char machine[2] = {EM_AARCH64, 0};
  const char *machine_msg = "machine.so' is built for aarch64, this gflowvi runs on";
#endif
  damaged_copy(&cfg, "machine.so", -1, 18, machine, 2); /* e_machine, little-endian */
  expect_fail(&cfg, GFV_ERR_INPUT, machine_msg);
  const unsigned char c32 = ELFCLASS32, msb = ELFDATA2MSB, exec[2] = {ET_EXEC, 0}, rel[2] = {ET_REL, 0};
  damaged_copy(&cfg, "class.so", -1, EI_CLASS, &c32, 1);
  expect_fail(&cfg, GFV_ERR_INPUT, "class.so' is a 32-bit ELF file, this gflowvi is 64-bit");
  damaged_copy(&cfg, "endian.so", -1, EI_DATA, &msb, 1);
  expect_fail(&cfg, GFV_ERR_INPUT, "endian.so' is big-endian, this gflowvi is little-endian");
  damaged_copy(&cfg, "exec.so", -1, 16, exec, 2);
  expect_fail(&cfg, GFV_ERR_INPUT, "exec.so' is not a shared object (ELF type EXEC");
  damaged_copy(&cfg, "rel.so", -1, 16, rel, 2);
  expect_fail(&cfg, GFV_ERR_INPUT, "rel.so' is not a shared object (ELF type REL");
  const unsigned char far[8] = {0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
  damaged_copy(&cfg, "far.so", -1, 32, far, 8); /* e_phoff */
  expect_fail(&cfg, GFV_ERR_INPUT, "far.so' is damaged: its headers point past any file");
  gfv_config_defaults(&cfg);
  snprintf(cfg.target, sizeof cfg.target, "plugin:%s", tmpdir);
  expect_fail(&cfg, GFV_ERR_INPUT, "' is a directory, not a shared object");
  strcpy(cfg.target, "plugin:/dev/null");
  expect_fail(&cfg, GFV_ERR_INPUT, "plugin '/dev/null' is not a regular file");
  /* A position-independent program (this one, in the usual build) is ET_DYN too: the ELF
   * checks pass and dlopen refuses it. */
  char self[600] = "";
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n > 0) {
    self[n] = '\0';
    snprintf(cfg.target, sizeof cfg.target, "plugin:%s", self);
    gfv_target *t = NULL;
    gfv_error_clear();
    int st = gfv_target_create_from_config(&cfg, &t);
    const char *msg = gfv_error_message();
    CHECK(st == GFV_ERR_INPUT && (strstr(msg, "cannot load plugin") || strstr(msg, "ELF type EXEC")),
          "this program as a plugin: status %d: %s", st, msg);
    gfv_target_free(t);
  }
  /* The undamaged copy loads: the checks refuse nothing good. */
  damaged_copy(&cfg, "copy.so", -1, 0, NULL, 0);
  gfv_target *t = make(&cfg);
  gfv_target_free(t);
}

/* A plugin that returns NaN: the solver stops with a numerical error at the initial
 * particles, and the first NaN is reported once on stderr, naming the plugin. */
static void test_nan(void) {
  gfv_config cfg;
  config(&cfg, "ring.so", "nan");
  gfv_target *t = make(&cfg);
  if (!t) return;
  char errpath[600];
  snprintf(errpath, sizeof errpath, "%s/stderr.txt", tmpdir);
  fflush(stderr);
  int saved = dup(2);
  FILE *ef = fopen(errpath, "w");
  dup2(fileno(ef), 2);
  gfv_eval_result res;
  gfv_error_clear();
  int st = test_run_fit(&cfg, t, &res, NULL, NULL, NULL);
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  fclose(ef);
  CHECK(st == GFV_ERR_NUMERIC, "status %d: %s", st, gfv_error_message());
  CHECK(strstr(gfv_error_message(), "non-finite"), "message: %s", gfv_error_message());
  char buf[4096] = "";
  ef = fopen(errpath, "r");
  size_t n = fread(buf, 1, sizeof buf - 1, ef);
  buf[n] = '\0';
  fclose(ef);
  CHECK(strstr(buf, "gflowvi: warning: plugin ") && strstr(buf, "ring.so: gfv_plugin_logdensity "
        "returned a non-finite log density (nan) at z = ("), "stderr: %s", buf);
  int lines = 0;
  for (char *p = buf; (p = strstr(p, "warning: plugin")); p++) lines++;
  CHECK(lines == 1, "%d warnings, want one", lines);
  gfv_target_free(t);
}

/* A plugin's own line goes through gflowvi's log (gfv_plugin_set_log): with gfv_set_log
 * installed, ring's "warn" line reaches the callback once, as a warning, and not stderr. */
typedef struct {
  int count, level;
  char text[256];
} log_record;

static void record_line(int level, const char *message, void *ctx) {
  log_record *r = ctx;
  if (!strstr(message, "ring: ")) return; /* only the plugin's line */
  r->count++, r->level = level;
  snprintf(r->text, sizeof r->text, "%s", message);
}

static void test_plugin_log(void) {
  gfv_config cfg;
  config(&cfg, "ring.so", "warn");
  log_record rec = {0};
  gfv_set_log(record_line, &rec);
  gfv_target *t = make(&cfg);
  if (t) {
    double z[4] = {1.0, 0.5, -2.0, 0.1}, lp[2], g[4];
    CHECK(t->eval(t, 2, z, lp, g, NULL) == GFV_OK, "eval failed");
    CHECK(t->eval(t, 2, z, lp, g, NULL) == GFV_OK, "eval failed");
    gfv_target_free(t);
  }
  gfv_set_log(NULL, NULL);
  CHECK(rec.count == 1, "the plugin's line reached the callback %d times, want once", rec.count);
  CHECK(rec.level == GFV_LOG_WARNING, "level %d, want GFV_LOG_WARNING", rec.level);
  CHECK(strstr(rec.text, "the first evaluation"), "line: '%s'", rec.text);
}

int main(void) {
  gfv_error_install_gsl_handler();
  const char *build = getenv("GFV_BUILD");
  snprintf(plugdir, sizeof plugdir, "%s/plugins", build && *build ? build : "build");
  char probe[1100];
  snprintf(probe, sizeof probe, "%s/ring.so", plugdir);
  if (access(probe, R_OK) != 0) {
    printf("FAIL setup: %s not found (make plugins builds it)\n", probe);
    return 1;
  }
  const char *base = getenv("TMPDIR");
  snprintf(tmpdir, sizeof tmpdir, "%s/gfv_test_plugins_XXXXXX", base && *base ? base : "/tmp");
  if (!mkdtemp(tmpdir)) {
    printf("FAIL setup: cannot create a temporary directory\n");
    return 1;
  }
  RUN(test_round_trip);
  RUN(test_fit);
  RUN(test_errors);
  RUN(test_elf_checks);
  RUN(test_nan);
  RUN(test_plugin_log);
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  if (system(cmd) != 0) printf("# could not remove %s\n", tmpdir);
  return harness_report();
}
