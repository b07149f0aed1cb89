/* bench.c - gflowvi-bench: the speed of one NGFlow-VI configuration on the gauss target.
 *
 *   gflowvi-bench --dim=D --particles=K --samples=S [--family=full|diag] [--layout=L] [--step=0.2]
 *                 [--warmup=W] [--reps=R] [--block=B] [--seed=1] [--init-scale=1] [--init-var=1]
 *                 [--eval-samples=N] [--square=2000] [--replicates=1] [--dump=FILE] [--breakdown]
 *                 [--prune=on|off]
 *   gflowvi-bench --machine
 *
 * Runs the solver exactly as the program does (gfv_solver_create / gfv_solver_iterate,
 * NGFlow-VI with the retraction, --estimator=auto: hessian for the full family, stein for
 * diag above d = 64, --trust-region=0: the paper's plain steps, which the NumPy baseline takes) for W warm-up iterations and R timed repetitions of
 * B iterations each; every figure is the median over the R repetitions (the machine is
 * shared and noisy).  Prints one JSON object on rank 0 (tools/bench/run_bench.sh collects
 * them into the table):
 *
 *   pairs_per_s_rank   K S K component-sample pairs per iteration / seconds per iteration /
 *                      ranks: the figure of merit
 *   layout             the layout (--layout=samples|params|auto, as the program's option)
 *   mix_gflops         the mixture-term phase (timer GFV_PHASE_MIXTURE, which excludes the
 *                      collectives) at the flop count of its kernel: mix_flops_full() or
 *                      mix_flops_diag() (samples layout), mix_flops_fused() (params layout;
 *                      diag: mix_flops_diag over all K components at the rank's points)
 *   mix_flops_samples  the samples layout's count for the same pairs (mix_flops_full), and
 *   mix_to_square_samples  the ratio at that count: what the kernel achieves in the samples
 *                      kernel's terms (equal to mix_to_square in the samples layout)
 *   dgemm_match_gflops the DGEMM that the kernel issues, same shape, timed alone
 *   dgemm_square_gflops a DGEMM of --square^3 (2000 by default), timed alone
 *                      (both DGEMMs are timed right after each timed repetition, so that
 *                      they see the same machine; medians)
 *   mix_to_square      median over the repetitions of mixture GFLOP/s / square DGEMM GFLOP/s
 *   peak_rss_mib       getrusage maxrss after the warm-up (the solver allocates nothing per
 *                      iteration; read before the DGEMM matrices exist), the largest over the
 *                      ranks; base_rss_mib the same before the solver was created (MPI, BLAS,
 *                      the program itself)
 *   kl, kl_se          KL(q || p) of the final mixture from --eval-samples fresh samples
 *                      (the gauss target is normalised: KL = -ELBO)
 *   kl_replicates      the same for --replicates trajectories from the same initial particles
 *                      that differ only in their samples (the first is the timed one), with
 *                      their mean and standard deviation: the Monte Carlo spread of the result
 *
 * --dump=FILE writes, for tools/bench/ngflow_numpy.py: the initial particles (so the NumPy
 * baseline starts from the same state) and, for the last warm-up iteration of the last
 * replicate, the particles, the samples of their estimate, the ELBO, the step and the
 * updated particles (so the baseline can recompute that exact step and compare).
 * --breakdown (full family) times the kernel's two phases (params layout: the fused kernel)
 * alone and their BLAS calls alone on the final particles: where the time goes.  In the
 * params layout it also times the fused kernel with its pruning on and off (docs/pruning.md)
 * on the same particles and points, one after the other per repetition (medians), and the
 * fraction of pairs pruned: "prune": {"fraction", "on_sec", "off_sec", "speedup"}.
 *
 * One OpenBLAS thread per rank, set here as in the program. */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "gflowvi/comm.h"
#include "gflowvi/config.h"
#include "gflowvi/error.h"
#include "gflowvi/mixture.h"
#include "gflowvi/solver.h"
#include "gflowvi/target.h"
#include "solver/solver_impl.h"

#ifndef GFV_BENCH_CFLAGS
#define GFV_BENCH_CFLAGS "unknown"
#endif

/* Must match GFV_MIX_BLOCK_BYTES in src/mixture/kernel.c: the kernel's block of points. */
#define KERNEL_BLOCK_BYTES ((size_t)4 << 20)

typedef struct {
  long d, K, S, warmup, reps, block, seed, eval_samples, square, replicates;
  double step, init_scale, init_var;
  const char *dump, *family, *layout, *prune;
  int breakdown, machine;
} bench_opts;

static int parse(int argc, char **argv, bench_opts *o) {
  *o = (bench_opts){.d = 16, .K = 64, .S = 8, .warmup = 2, .reps = 5, .block = 4, .seed = 1,
                    .eval_samples = 20000, .square = 2000, .replicates = 1, .step = 0.2, .init_scale = 1.0,
                    .init_var = 1.0, .family = "full", .layout = "auto",
                    .prune = "on"};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *eq = strchr(a, '=');
    const char *v = eq ? eq + 1 : "";
    size_t n = eq ? (size_t)(eq - a) : strlen(a);
#define IS(name) (n == strlen(name) && strncmp(a, name, n) == 0)
    if (IS("--dim")) o->d = atol(v);
    else if (IS("--particles")) o->K = atol(v);
    else if (IS("--samples")) o->S = atol(v);
    else if (IS("--warmup")) o->warmup = atol(v);
    else if (IS("--reps")) o->reps = atol(v);
    else if (IS("--block")) o->block = atol(v);
    else if (IS("--seed")) o->seed = atol(v);
    else if (IS("--eval-samples")) o->eval_samples = atol(v);
    else if (IS("--square")) o->square = atol(v);
    else if (IS("--replicates")) o->replicates = atol(v);
    else if (IS("--step")) o->step = atof(v);
    else if (IS("--init-scale")) o->init_scale = atof(v);
    else if (IS("--init-var")) o->init_var = atof(v);
    else if (IS("--dump")) o->dump = v;
    else if (IS("--family")) o->family = v;
    else if (IS("--layout")) o->layout = v;
    else if (IS("--prune")) o->prune = v;
    else if (IS("--breakdown")) o->breakdown = 1;
    else if (IS("--machine")) o->machine = 1;
    else GFV_ERROR(GFV_ERR_USAGE, "unknown option '%s' (see tools/bench/bench.c)", a);
#undef IS
  }
  GFV_CHECK(o->d >= 1 && o->K >= 1 && o->S >= 1 && o->warmup >= 1 && o->reps >= 1 && o->block >= 1 &&
                o->square >= 1 && o->replicates >= 1,
            GFV_ERR_USAGE, "bench: every size must be positive (warmup >= 1)");
  return GFV_OK;
}

static double peak_rss_mib(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_maxrss / 1024.0; /* Linux: KiB */
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(size_t n, const double *x) {
  double *t = malloc(n * sizeof *t);
  if (!t) return NAN;
  memcpy(t, x, n * sizeof *t);
  qsort(t, n, sizeof *t, cmp_double);
  double m = n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
  free(t);
  return m;
}

/* The kernel's block of points (gfv_mix_work_alloc in kernel.c, and _diag in kernel_diag.c):
 * groups of S points, as many as fit in KERNEL_BLOCK_BYTES of per-point scratch (k x d
 * gradients; diag: 7 d + 2 k + 1 numbers), at least one, never more than n. */
static size_t kernel_chunk(size_t n, size_t k, size_t d, size_t S, int diag) {
  size_t per_point = (diag ? 7 * d + 2 * k + 1 : k * d) * sizeof(double);
  size_t groups = KERNEL_BLOCK_BYTES / (per_point * S);
  if (groups < 1) groups = 1;
  size_t c = groups * S;
  return c < n ? c : n;
}

/* Floating-point operations of one iteration's mixture terms on a rank that owns k of the
 * components, at all n = K S points, read off src/mixture/kernel.c (one multiply or add =
 * 1 flop; exp, log and sqrt are not counted):
 *   phase A  prepare: k DSYMV                                   2 k d^2
 *            DGEMM  n x (k d) x d  (points x [P_1 .. P_k])      2 n k d^2
 *            Mahalanobis (z - mu).(row - b): 4 flops per coordinate, then logc - m/2
 *                                                               n k (4 d + 2)
 *            log-sum-exp over k (max, subtract, add)            3 n k
 *   phase B  prepare again                                      2 k d^2
 *            DGEMM again                                        2 n k d^2
 *            g = b - row, gbar += r g, row = sqrt(r) g: 4 per coordinate, + sum r
 *                                                               n k (4 d + 1)
 *            DSYRK per group of S points (S k rows, lower triangle with diagonal)
 *                                                               n k d (d + 1)
 *            DGEMM (n/S) x d^2 x k for the -sum r P_j part      2 (n / S) k d^2
 * Total ~ n k (5 d^2 + 9 d + 6) + 2 (n/S) k d^2 + 4 k d^2, i.e. ~5 K^2 S d^2 on one rank. */
static double mix_flops_full(double n, double k, double d, double S) {
  double a = 2 * k * d * d + 2 * n * k * d * d + n * k * (4 * d + 2) + 3 * n * k;
  double b = 2 * k * d * d + 2 * n * k * d * d + n * k * (4 * d + 1) + n * k * d * (d + 1) +
             2 * (n / S) * k * d * d;
  return a + b;
}

/* The same for the diagonal family, from src/mixture/kernel_diag.c (hess: the hessian
 * estimator's diagonal Hessian sums are wanted, else only the gradients):
 *   phase A  prepare: 12 per (component, coordinate)            12 k d
 *            [y^2, y] rows, y = z - centre                       2 n d
 *            DGEMM  n x k x 2d                                   4 n k d
 *            maha + b_j, clamp, logc - m/2; log-sum-exp          6 n k
 *   phase B  prepare again                                       12 k d
 *            r = exp(a - log q)                                  1 n k
 *            DGEMM  n x (5d or 2d) x k                           10 n k d or 4 n k d
 *            gbar (4 per coordinate), Hessian diagonal (8)       4 n d (+ 8 n d)
 * Total 14 n k d (hessian) or 8 n k d (stein) + O(n k + n d + k d). */
static double mix_flops_diag(double n, double k, double d, int hess) {
  double a = 12 * k * d + 2 * n * d + 4 * n * k * d + 6 * n * k;
  double b = 12 * k * d + n * k + (hess ? 10 : 4) * n * k * d + (hess ? 12 : 4) * n * d;
  return a + b;
}

/* The params layout's fused kernel (src/mixture/kernel_fused.c, one pass: all K components
 * fit a block) on a rank with m of the points, against all K components:
 *   prepare: centre, K DSYMV                                    K d + 2 K d^2
 *   shifted points                                              m d
 *   DGEMM  m x (K d) x d  (points x [P_1 .. P_K])               2 m K d^2
 *   g = b - row and (mu - z).g: 4 flops per coordinate, then logc - m/2 (2)
 *                                                               m K (4 d + 2)
 *   log-sum-exp: max, exp(a - max), sum, scale by 1/sum         4 m K
 *   gbar += r g (2 per coordinate); hessian: row *= sqrt(r) (1), sum r (1)
 *                                                               m K 2 d  [+ m K (d + 1)]
 *   hessian: DSYRK per group of S points                        m K d (d + 1)
 *            DGEMM (m/S) x d^2 x K for the -sum r P part        2 (m / S) K d^2
 * In two passes (K too large for one block) the log-sum-exp pass adds the quadratic-feature
 * DGEMM, 2 m K (d (d+1)/2 + d + 1), and its coefficients per block; not counted here.
 * Total ~ m K (3 d^2 + 8 d + 7) (hessian), i.e. ~3 K^2 S d^2 on one rank. */
static double mix_flops_fused(double m, double K, double d, double S, int hess) {
  double f = K * d + 2 * K * d * d + m * d + 2 * m * K * d * d + m * K * (4 * d + 2) + 4 * m * K +
             2 * m * K * d;
  if (hess) f += m * K * (d + 1) + m * K * d * (d + 1) + 2 * (m / S) * K * d * d;
  return f;
}

/* Fills a with deterministic values in [-1, 1). */
static void fill(size_t n, double *a, unsigned seed) {
  unsigned long long x = seed * 2654435761ULL + 1;
  for (size_t i = 0; i < n; i++) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    a[i] = (double)(x >> 11) / 9007199254740992.0 * 2.0 - 1.0;
  }
}

/* A DGEMM C (m x n) = A (m x k) B (k x n), row-major as kernel.c calls it, timed in short
 * bursts between the timed repetitions of the solver, so that both see the same machine
 * (shared and noisy: on this 2-vCPU machine a busy second vCPU slows a DGEMM by ~1.5x). */
typedef struct {
  size_t m, n, k;
  long calls; /* per burst: about min_seconds of work */
  double *A, *B, *C;
} gemm_probe;

static void probe_call(const gemm_probe *g) {
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)g->m, (int)g->n, (int)g->k, 1.0, g->A,
              (int)g->k, g->B, (int)g->n, 0.0, g->C, (int)g->n);
}

static int probe_alloc(gemm_probe *g, size_t m, size_t n, size_t k, double min_seconds) {
  *g = (gemm_probe){.m = m, .n = n, .k = k};
  GFV_ALLOC(g->A, m * k);
  GFV_ALLOC(g->B, k * n);
  GFV_ALLOC(g->C, m * n);
  fill(m * k, g->A, 1), fill(k * n, g->B, 2);
  probe_call(g); /* warm-up */
  double t0 = gfv_comm_wtime();
  probe_call(g);
  double once = gfv_comm_wtime() - t0;
  g->calls = once > 0 ? (long)ceil(min_seconds / once) : 1000;
  if (g->calls < 1) g->calls = 1;
  return GFV_OK;
}

/* GFLOP/s of one burst. */
static double probe_run(const gemm_probe *g) {
  double t0 = gfv_comm_wtime();
  for (long c = 0; c < g->calls; c++) probe_call(g);
  double t = (gfv_comm_wtime() - t0) / (double)g->calls;
  return 2.0 * (double)g->m * (double)g->n * (double)g->k / t * 1e-9;
}

static void probe_free(gemm_probe *g) { free(g->A), free(g->B), free(g->C); }

static void print_machine(void) {
  char model[256] = "unknown", line[512];
  FILE *f = fopen("/proc/cpuinfo", "r");
  if (f) {
    while (fgets(line, sizeof line, f))
      if (strncmp(line, "model name", 10) == 0) {
        char *p = strchr(line, ':');
        if (p) {
          p++;
          while (*p == ' ') p++;
          snprintf(model, sizeof model, "%s", p);
          model[strcspn(model, "\n")] = '\0';
        }
        break;
      }
    fclose(f);
  }
  const char *ct = getenv("OPENBLAS_CORETYPE");
  char load[64] = "unknown";
  f = fopen("/proc/loadavg", "r");
  if (f) {
    if (fgets(load, sizeof load, f)) {
      char *sp = strchr(load, ' '); /* the 1-minute average */
      if (sp) *sp = '\0';
    }
    fclose(f);
  }
  printf("{\"cpu\": \"%s\", \"cores\": %ld, \"openblas_config\": \"%s\", \"openblas_core\": \"%s\", "
         "\"openblas_threads\": %d, \"openblas_coretype_env\": \"%s\", \"compiler\": \"gcc %s\", "
         "\"cflags\": \"%s\", \"loadavg\": \"%s\"}\n",
         model, sysconf(_SC_NPROCESSORS_ONLN), openblas_get_config(), openblas_get_corename(),
         openblas_get_num_threads(), ct ? ct : "", __VERSION__, GFV_BENCH_CFLAGS, load);
}

/* "key n" then n numbers, one per line (read by ngflow_numpy.py's read_dump). */
static void dump_array(FILE *f, const char *key, size_t n, const double *x) {
  fprintf(f, "%s %zu\n", key, n);
  for (size_t i = 0; i < n; i++) fprintf(f, "%.17g\n", x[i]);
}

typedef struct {
  double *w, *mu, *P;
} full_state;

static int gather_state(gfv_solver *s, full_state *fs) {
  const size_t K = s->K, d = s->d;
  if (!fs->w) {
    GFV_ALLOC(fs->w, K);
    GFV_ALLOC(fs->mu, K * d);
    GFV_ALLOC(fs->P, K * s->psize);
  }
  GFV_CALL(gfv_solver_gather(s, fs->w, fs->mu, fs->P));
  return GFV_OK;
}

static void free_state(full_state *fs) { free(fs->w), free(fs->mu), free(fs->P); }

/* The warm-up, writing the --dump file around its last iteration. */
static int warm_up(gfv_solver *s, long warmup, const char *dump, int rank) {
  const size_t K = s->K, d = s->d, n = s->n, ps = s->psize;
  full_state init = {0}, before = {0}, after = {0};
  double *logw = NULL, *z = NULL;
  int st = GFV_OK;
  FILE *f = NULL;
  if (dump) {
    GFV_CALL_GOTO(st, gather_state(s, &init), done);
    GFV_CALL_GOTO(st, gfv_calloc(&logw, K, sizeof(double)), done);
    for (size_t k = 0; k < K; k++) logw[k] = log(init.w[k]);
  }
  for (long it = 0; it < warmup; it++) {
    int last = it == warmup - 1;
    double elbo0 = 0;
    if (dump && last) { /* the samples of the current estimate drive the next update */
      GFV_CALL_GOTO(st, gather_state(s, &before), done);
      if (s->size > 1 && s->layout == GFV_LAYOUT_PARAMS)
        GFV_ERROR_GOTO(st, done, GFV_ERR_USAGE, "--dump: one rank, or the samples layout (it writes every sample)");
      GFV_CALL_GOTO(st, gfv_calloc(&z, n * d, sizeof(double)), done);
      memcpy(z, s->zall, n * d * sizeof(double));
      elbo0 = gfv_solver_elbo(s, NULL);
    }
    GFV_CALL_GOTO(st, gfv_solver_iterate(s), done);
    if (dump && last) {
      GFV_CALL_GOTO(st, gather_state(s, &after), done);
      if (rank == 0) {
        f = fopen(dump, "w");
        if (!f) GFV_ERROR_GOTO(st, done, GFV_ERR_IO, "cannot write %s", dump);
        double dims[3] = {(double)d, (double)K, (double)s->S};
        dump_array(f, "d", 1, dims), dump_array(f, "K", 1, dims + 1), dump_array(f, "S", 1, dims + 2);
        dump_array(f, "logw0", K, logw);
        double fam[2] = {(double)s->fam->diag, strcmp(s->est->name, "stein") == 0};
        dump_array(f, "diag", 1, fam), dump_array(f, "stein", 1, fam + 1);
        dump_array(f, "init_mu", K * d, init.mu), dump_array(f, "init_P", K * ps, init.P);
        dump_array(f, "mu0", K * d, before.mu), dump_array(f, "P0", K * ps, before.P);
        dump_array(f, "z0", n * d, z);
        dump_array(f, "elbo0", 1, &elbo0);
        dump_array(f, "eta", 1, &s->eta); /* the step actually taken (after any halving) */
        dump_array(f, "mu1", K * d, after.mu), dump_array(f, "P1", K * ps, after.P);
        int bad = fclose(f);
        f = NULL;
        if (bad) GFV_ERROR_GOTO(st, done, GFV_ERR_IO, "cannot write %s", dump);
      }
    }
  }
done:
  if (f) fclose(f);
  free_state(&init), free_state(&before), free_state(&after);
  free(logw), free(z);
  return st;
}

/* --breakdown: the two kernel phases alone, and their BLAS calls alone with the same shapes,
 * on this rank's final particles and the last iteration's points.  Seconds per iteration. */
typedef struct {
  double phase_a, phase_b, gemm, syrk, gemm_p; /* gemm: the block DGEMMs of one phase */
  double prune_on, prune_off, pruned;         /* params layout: the kernel both ways */
} breakdown;

static double now(void) { return gfv_comm_wtime(); }

/* The same for the params layout: the fused kernel alone, and its BLAS calls alone with its
 * shapes (per block of c points: the DGEMM with the transposed precisions, one DSYRK per
 * group of S points over S K rows; per cwcap groups, the -sum r P DGEMM).  phase_a holds
 * the whole kernel, phase_b 0. */
static int time_breakdown_fused(gfv_solver *s, breakdown *bd) {
  const size_t d = s->d, K = s->K, n = s->nloc, S = s->S, dd = d * d, kd = K * d;
  size_t c, kb, cwcap;
  gfv_mix_fused_shape(s->mf, &c, &kb, &cwcap);
  gfv_mix_view v = {d, K, s->full_mu, s->full_P, NULL, s->full_logc, 0, 0};
  double *buf = NULL, *cw = NULL, *Hb = NULL;
  int st = GFV_OK;
  const size_t ngb = (c + S - 1) / S;
  GFV_CALL_GOTO(st, gfv_calloc(&buf, c * kb * d, sizeof(double)), done);
  GFV_CALL_GOTO(st, gfv_calloc(&cw, cwcap * K, sizeof(double)), done);
  GFV_CALL_GOTO(st, gfv_calloc(&Hb, (ngb > cwcap ? ngb : cwcap) * dd, sizeof(double)), done);
  fill(c * kb * d, buf, 3), fill(cwcap * K, cw, 4);
  enum { REPS = 5 };
  double t[6][REPS], pairs, pruned;
  gfv_mix_fused_counts(s->mf, &pairs, &pruned, 1);
  for (int r = 0; r < REPS; r++) {
    for (int on = 1; on >= 0; on--) { /* pruning on, then off: the same particles and points */
      gfv_mix_fused_set_prune(s->mf, on);
      double t0 = now();
      GFV_CALL_GOTO(st, gfv_mix_fused_terms(&v, n, s->zloc, s->skip, s->logq, s->recv,
                                            s->hess_l ? s->recv + n * d : NULL, s->mf), done);
      t[4 + on][r] = now() - t0;
      if (on && r == 0) gfv_mix_fused_counts(s->mf, &pairs, &pruned, 1);
    }
    gfv_mix_fused_set_prune(s->mf, strcmp(s->cfg->prune, "off") != 0);
    double t0 = now();
    GFV_CALL_GOTO(st, gfv_mix_fused_terms(&v, n, s->zloc, s->skip, s->logq, s->recv,
                                          s->hess_l ? s->recv + n * d : NULL, s->mf), done);
    double tg = now();
    for (size_t i0 = 0; i0 < n; i0 += c)
      cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)(n - i0 < c ? n - i0 : c), (int)kd, (int)d,
                  1.0, s->zloc + i0 * d, (int)d, s->full_P, (int)d, 0.0, buf, (int)kd);
    double ts = now();
    for (size_t i0 = 0; i0 < n; i0 += c) {
      size_t m = n - i0 < c ? n - i0 : c;
      for (size_t g = 0; g * S < m; g++)
        cblas_dsyrk(CblasRowMajor, CblasLower, CblasTrans, (int)d, (int)((m - g * S < S ? m - g * S : S) * K),
                    1.0, buf + g * S * K * d, (int)d, 1.0, Hb + g * dd, (int)d);
    }
    double tp = now();
    for (size_t g0 = 0; g0 < n / S; g0 += cwcap)
      cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)(n / S - g0 < cwcap ? n / S - g0 : cwcap),
                  (int)dd, (int)K, -1.0, cw, (int)K, s->full_P, (int)dd, 1.0, Hb, (int)dd);
    double te = now();
    t[0][r] = tg - t0, t[1][r] = ts - tg, t[2][r] = tp - ts, t[3][r] = te - tp;
  }
  bd->phase_a = median(REPS, t[0]), bd->phase_b = 0;
  bd->gemm = median(REPS, t[1]), bd->syrk = median(REPS, t[2]), bd->gemm_p = median(REPS, t[3]);
  bd->prune_on = median(REPS, t[5]), bd->prune_off = median(REPS, t[4]);
  bd->pruned = pairs > 0 ? pruned / pairs : 0.0;
done:
  free(buf), free(cw), free(Hb);
  return st;
}

static int time_breakdown(gfv_solver *s, breakdown *bd) {
  if (s->layout == GFV_LAYOUT_PARAMS) return time_breakdown_fused(s, bd);
  const size_t d = s->d, k = s->kloc, n = s->n, S = s->S, dd = d * d, kd = k * d;
  const size_t chunk = kernel_chunk(n, k, d, S, 0);
  gfv_mix_view v = gfv_particles_view(&s->cur);
  double *Pcat = NULL, *buf = NULL, *cw = NULL, *Hb = NULL;
  int st = GFV_OK;
  GFV_CALL_GOTO(st, gfv_calloc(&Pcat, d * kd, sizeof(double)), done);
  GFV_CALL_GOTO(st, gfv_calloc(&buf, chunk * kd, sizeof(double)), done);
  GFV_CALL_GOTO(st, gfv_calloc(&cw, (chunk / S) * k, sizeof(double)), done);
  GFV_CALL_GOTO(st, gfv_calloc(&Hb, (chunk / S) * dd, sizeof(double)), done);
  for (size_t j = 0; j < k; j++)
    for (size_t r = 0; r < d; r++)
      memcpy(Pcat + r * kd + j * d, s->cur.P + j * dd + r * d, d * sizeof(double));
  fill(chunk * kd, buf, 3), fill((chunk / S) * k, cw, 4);
  enum { REPS = 5 };
  double t[5][REPS];
  for (int r = 0; r < REPS; r++) {
    double t0 = now();
    GFV_CALL_GOTO(st, gfv_mix_log_terms(&v, n, s->zall, s->A, s->logq, s->mw), done);
    double t1 = now();
    memset(s->gbar_all, 0, n * d * sizeof(double));
    if (s->H_all) memset(s->H_all, 0, s->K * dd * sizeof(double));
    double t2 = now();
    GFV_CALL_GOTO(st, gfv_mix_grad_terms(&v, n, s->zall, s->A, s->logq, S, s->gbar_all, s->H_all, s->mw),
                  done);
    double t3 = now();
    t[0][r] = t1 - t0, t[1][r] = t3 - t2;
    /* The same BLAS calls alone: the block DGEMMs (each phase makes them once), the DSYRKs,
     * the DGEMM of the P part. */
    double tg = now();
    for (size_t i0 = 0; i0 < n; i0 += chunk) {
      size_t c = n - i0 < chunk ? n - i0 : chunk;
      cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)c, (int)kd, (int)d, 1.0,
                  s->zall + i0 * d, (int)d, Pcat, (int)kd, 0.0, buf, (int)kd);
    }
    double ts = now();
    for (size_t i0 = 0; i0 < n; i0 += chunk) {
      size_t c = n - i0 < chunk ? n - i0 : chunk, ng = c / S;
      for (size_t g = 0; g < ng; g++)
        cblas_dsyrk(CblasRowMajor, CblasLower, CblasTrans, (int)d, (int)(S * k), 1.0,
                    buf + g * S * k * d, (int)d, 1.0, Hb + g * dd, (int)d);
    }
    double tp = now();
    for (size_t i0 = 0; i0 < n; i0 += chunk) {
      size_t c = n - i0 < chunk ? n - i0 : chunk, ng = c / S;
      cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)ng, (int)dd, (int)k, -1.0, cw,
                  (int)k, s->cur.P, (int)dd, 1.0, Hb, (int)dd);
    }
    double te = now();
    t[2][r] = ts - tg, t[3][r] = tp - ts, t[4][r] = te - tp;
  }
  bd->phase_a = median(REPS, t[0]), bd->phase_b = median(REPS, t[1]);
  bd->gemm = median(REPS, t[2]), bd->syrk = median(REPS, t[3]), bd->gemm_p = median(REPS, t[4]);
done:
  free(Pcat), free(buf), free(cw), free(Hb);
  return st;
}

/* What the timed trajectory measures, per repetition. */
typedef struct {
  double *wall, *mix;      /* seconds per iteration: all of it, the mixture phase */
  double *gm_match, *gm_sq; /* GFLOP/s of the DGEMM probes right after the repetition */
  double rss[2];           /* peak RSS after the warm-up, and before the solver existed */
} timing;

/* One trajectory of the solver from the initial particles of --seed.  Replicate 0 is the
 * timed one (tm), the last one writes --dump; replicate r > 0 draws its samples, and later its
 * evaluation samples, from the streams of seed + 7919 r instead, so the replicates differ
 * only in their Monte Carlo samples.  cfg must outlive the solver, which the caller frees. */
static int trajectory(gfv_comm *comm, gfv_target *target, const bench_opts *o, long r,
                      gfv_config *cfg, gfv_solver **out, timing *tm) {
  gfv_config_defaults(cfg);
  snprintf(cfg->target, sizeof cfg->target, "gauss");
  cfg->dim = o->d, cfg->particles = o->K, cfg->samples = o->S, cfg->step = o->step;
  cfg->iters = o->warmup + o->reps * o->block, cfg->seed = o->seed;
  cfg->init_scale = o->init_scale, cfg->init_var = o->init_var;
  cfg->eval_samples = o->eval_samples, cfg->progress_every = 0, cfg->quiet = 1;
  /* The paper's plain steps: the NumPy baseline implements that flow, and the exact-step
   * check recomputes one such step.  The trust region's own cost is a KL per component and
   * step (O(K d^3)), measured apart (docs/user-guide.md, "When to trust a fit"). */
  cfg->trust_region = 0;
  GFV_CALL(gfv_config_set(cfg, "family", o->family, NULL));
  GFV_CALL(gfv_config_set(cfg, "layout", o->layout, NULL));
  GFV_CALL(gfv_config_set(cfg, "prune", o->prune, NULL));
  GFV_CALL(gfv_solver_create(cfg, target, comm, out));
  gfv_solver *s = *out;
  if (r > 0) {
    cfg->seed = o->seed + 7919 * r;
    s->cur.seed = s->prev.seed = (uint64_t)cfg->seed; /* the key of the particles' streams */
    int bad = 0;
    GFV_CALL(gfv_solver_estimate(s, &s->est_buf[s->cur_est], &bad));
    GFV_CHECK(!bad, GFV_ERR_NUMERIC, "replicate %ld: non-finite initial estimate", r);
  }
  /* The dump (gathers and copies) runs in the last replicate, after the timed one has read
   * its peak memory. */
  GFV_CALL(warm_up(s, o->warmup, r == o->replicates - 1 ? o->dump : NULL, gfv_comm_rank(comm)));
  gemm_probe match = {0}, square = {0};
  int st = GFV_OK;
  if (tm) {
    /* The solver allocates nothing per iteration: its peak is reached by now.  Read it
     * before the probes allocate their matrices (3 x 30 MiB for 2000^3). */
    tm->rss[0] = peak_rss_mib();
    GFV_CALL(gfv_comm_allreduce_max(comm, tm->rss, 2));
    size_t n = s->n, k = s->kloc, d = s->d, q = (size_t)o->square, c = 0, kb, cw;
    if (s->layout == GFV_LAYOUT_PARAMS) { /* all K components at this rank's blocks of points */
      gfv_mix_fused_shape(s->mf, &c, &kb, &cw);
      k = kb;
    } else {
      c = kernel_chunk(n, k, d, s->S, s->fam->diag);
    }
    if (s->fam->diag) /* phase A's DGEMM: [y^2, y] (c x 2d) times the coefficient columns (2d x k) */
      GFV_CALL_GOTO(st, probe_alloc(&match, c, k, 2 * d, 0.02), done);
    else /* both phases' DGEMM: the points (c x d) times [P_1 .. P_k] (d x k d) */
      GFV_CALL_GOTO(st, probe_alloc(&match, c, k * d, d, 0.02), done);
    GFV_CALL_GOTO(st, probe_alloc(&square, q, q, q, 0.0), done);
  }
  for (long rep = 0; rep < o->reps; rep++) {
    double m0 = s->timers[GFV_PHASE_MIXTURE], t0 = gfv_comm_wtime();
    for (long b = 0; b < o->block; b++) GFV_CALL_GOTO(st, gfv_solver_iterate(s), done);
    double t[4] = {(gfv_comm_wtime() - t0) / (double)o->block,
                   (s->timers[GFV_PHASE_MIXTURE] - m0) / (double)o->block, 0, 0};
    if (!tm) continue;
    /* All ranks at once (on P ranks: each core's rate under the same load); the slowest. */
    t[2] = -probe_run(&match), t[3] = -probe_run(&square);
    GFV_CALL_GOTO(st, gfv_comm_allreduce_max(comm, t, 4), done);
    tm->wall[rep] = t[0], tm->mix[rep] = t[1], tm->gm_match[rep] = -t[2], tm->gm_sq[rep] = -t[3];
  }
done:
  probe_free(&match), probe_free(&square);
  return st;
}

/* A JSON number, or null when not finite. */
static void json_num(const char *key, double x) {
  if (isfinite(x)) printf(", \"%s\": %.8g", key, x);
  else printf(", \"%s\": null", key);
}

static void json_array(const char *key, long n, const double *x) {
  printf(", \"%s\": [", key);
  for (long i = 0; i < n; i++) printf("%s%.6g", i ? ", " : "", x[i]);
  printf("]");
}

static int bench(gfv_comm *comm, const bench_opts *o) {
  const int rank = gfv_comm_rank(comm), size = gfv_comm_size(comm);
  const size_t R = (size_t)o->reps;
  gfv_config cfg0, cfgr;
  gfv_target *target = NULL;
  gfv_solver *s = NULL, *sr = NULL;
  timing tm = {0};
  double *kl = NULL, *ratio = NULL;
  int st = GFV_OK;
  tm.rss[1] = peak_rss_mib();
  st = gfv_target_create("gauss", o->d, &target);
  GFV_CALL_GOTO(st, gfv_comm_agree(comm, st, NULL), done);
  GFV_CALL_GOTO(st, gfv_calloc(&tm.wall, R, sizeof(double)), done);
  GFV_CALL_GOTO(st, gfv_calloc(&tm.mix, R, sizeof(double)), done);
  GFV_CALL_GOTO(st, gfv_calloc(&tm.gm_match, R, sizeof(double)), done);
  GFV_CALL_GOTO(st, gfv_calloc(&tm.gm_sq, R, sizeof(double)), done);
  GFV_CALL_GOTO(st, gfv_calloc(&ratio, R, sizeof(double)), done);
  GFV_CALL_GOTO(st, gfv_calloc(&kl, (size_t)o->replicates, sizeof(double)), done);

  GFV_CALL_GOTO(st, trajectory(comm, target, o, 0, &cfg0, &s, &tm), done);
  gfv_eval_result res, resr;
  GFV_CALL_GOTO(st, gfv_solver_evaluate(s, &res), done);
  kl[0] = res.kl;
  long rejected = s->rejected;
  for (long r = 1; r < o->replicates; r++) {
    GFV_CALL_GOTO(st, trajectory(comm, target, o, r, &cfgr, &sr, NULL), done);
    GFV_CALL_GOTO(st, gfv_solver_evaluate(sr, &resr), done);
    kl[r] = resr.kl;
    rejected += sr->rejected;
    gfv_solver_free(sr);
    sr = NULL;
  }
  double kl_mean = 0, kl_sd = 0;
  for (long r = 0; r < o->replicates; r++) kl_mean += kl[r] / (double)o->replicates;
  for (long r = 0; r < o->replicates; r++) kl_sd += (kl[r] - kl_mean) * (kl[r] - kl_mean);
  kl_sd = o->replicates > 1 ? sqrt(kl_sd / (double)(o->replicates - 1)) : NAN;

  breakdown bd = {0};
  int do_breakdown = o->breakdown && !s->fam->diag; /* the breakdown follows kernel.c (full) */
  if (do_breakdown) GFV_CALL_GOTO(st, time_breakdown(s, &bd), done);

  const size_t n = s->n, k = s->kloc, d = s->d;
  const int params = s->layout == GFV_LAYOUT_PARAMS, hess = s->hess_l != NULL;
  /* The samples layout's count for this rank's pairs, and the count of the kernel it ran. */
  const double flops_samples = s->fam->diag ? mix_flops_diag((double)n, (double)k, (double)d, hess)
                                       : mix_flops_full((double)n, (double)k, (double)d, (double)s->S);
  const double flops = !params ? flops_samples
                       : s->fam->diag ? mix_flops_diag((double)s->nloc, (double)s->K, (double)d, hess)
                                 : mix_flops_fused((double)s->nloc, (double)s->K, (double)d, (double)s->S, hess);
  double *ratio_s = NULL;
  GFV_CALL_GOTO(st, gfv_calloc(&ratio_s, R, sizeof(double)), done);
  for (size_t r = 0; r < R; r++) {
    ratio[r] = flops / tm.mix[r] * 1e-9 / tm.gm_sq[r];
    ratio_s[r] = flops_samples / tm.mix[r] * 1e-9 / tm.gm_sq[r];
  }
  const double ratio_samples = median(R, ratio_s);
  free(ratio_s);
  size_t mc = 0, mk = 0, mcw = 0; /* the DGEMM probe's shape, as the kernel blocks it */
  if (params) gfv_mix_fused_shape(s->mf, &mc, &mk, &mcw);
  else mc = kernel_chunk(n, k, d, s->S, s->fam->diag), mk = k;
  const double spi = median(R, tm.wall), mpi = median(R, tm.mix);
  if (rank == 0) {
    printf("{\"family\": \"%s\", \"estimator\": \"%s\", \"layout\": \"%s\", "
           "\"d\": %zu, \"K\": %zu, \"S\": %zu, \"ranks\": %d, \"iters\": %ld, \"step\": %g, "
           "\"rejected\": %ld, \"sec_per_iter\": %.6e, \"iters_per_s\": %.6g, "
           "\"pairs_per_s_rank\": %.6g, \"mix_sec_per_iter\": %.6e, \"mix_fraction\": %.4f, "
           "\"mix_flops\": %.6g, \"mix_gflops\": %.4f, \"mix_flops_samples\": %.6g, "
           "\"mix_to_square_samples\": %.4f, \"kernel_chunk\": %zu, "
           "\"dgemm_match_shape\": [%zu, %zu, %zu], \"dgemm_match_gflops\": %.4f, "
           "\"dgemm_square\": %ld, \"dgemm_square_gflops\": %.4f, \"mix_to_square\": %.4f, "
           "\"peak_rss_mib\": %.2f, \"base_rss_mib\": %.2f, \"eval_samples\": %zu",
           s->fam->diag ? "diag" : "full", s->est->name, gfv_layout_name(s->layout), d, s->K, s->S, size,
           gfv_solver_iteration(s), s->eta, rejected, spi, 1.0 / spi,
           (double)s->K * s->S * s->K / spi / size, mpi, mpi / spi, flops, flops / mpi * 1e-9,
           flops_samples, ratio_samples, mc, mc, s->fam->diag ? mk : mk * d, s->fam->diag ? 2 * d : d,
           median(R, tm.gm_match), o->square, median(R, tm.gm_sq), median(R, ratio), tm.rss[0],
           tm.rss[1], res.eval_samples);
    json_array("sec_per_iter_all", o->reps, tm.wall);
    json_array("mix_sec_per_iter_all", o->reps, tm.mix);
    json_array("dgemm_square_gflops_all", o->reps, tm.gm_sq);
    json_num("elbo", res.elbo), json_num("elbo_se", res.elbo_se);
    json_num("kl", res.kl), json_num("kl_se", res.kl_se);
    json_array("kl_replicates", o->replicates, kl);
    json_num("kl_mean", kl_mean), json_num("kl_sd", kl_sd);
    if (do_breakdown) {
      double f_gemm = 2.0 * (double)n * k * d * d, f_syrk = (double)n * k * d * (d + 1);
      if (params) /* the rank's own points against all K components */
        f_gemm = 2.0 * (double)s->nloc * s->K * d * d, f_syrk = (double)s->nloc * s->K * d * (d + 1);
      printf(", \"breakdown\": {\"phase_a\": %.6e, \"phase_b\": %.6e, \"gemm\": %.6e, "
             "\"syrk\": %.6e, \"gemm_p\": %.6e, \"gemm_gflops\": %.4f, \"syrk_gflops\": %.4f}",
             bd.phase_a, bd.phase_b, bd.gemm, bd.syrk, bd.gemm_p, f_gemm / bd.gemm * 1e-9,
             f_syrk / bd.syrk * 1e-9);
    if (params && !s->fam->diag)
      printf(", \"prune\": {\"fraction\": %.6f, \"on_sec\": %.6e, \"off_sec\": %.6e, \"speedup\": %.4f}",
             bd.pruned, bd.prune_on, bd.prune_off, bd.prune_off / bd.prune_on);
    }
    printf("}\n");
    fflush(stdout);
  }
done:
  free(tm.wall), free(tm.mix), free(tm.gm_match), free(tm.gm_sq), free(ratio), free(kl);
  gfv_solver_free(sr);
  gfv_solver_free(s);
  gfv_target_free(target);
  return st;
}

int main(int argc, char **argv) {
  gfv_comm *comm = NULL;
  int st = gfv_comm_init_mpi(&argc, &argv, &comm);
  if (st) {
    fprintf(stderr, "gflowvi-bench: error: %s\n", gfv_error_message());
    return st;
  }
  openblas_set_num_threads(1); /* as the program: one BLAS thread per rank */
  gfv_error_install_gsl_handler();
  bench_opts o;
  st = parse(argc, argv, &o);
  if (!st && o.machine) {
    if (gfv_comm_rank(comm) == 0) print_machine();
  } else if (!st) {
    st = bench(comm, &o);
  }
  st = gfv_comm_agree(comm, st, NULL);
  if (st && gfv_error_message()[0]) fprintf(stderr, "gflowvi-bench: error: %s\n", gfv_error_message());
  gfv_comm_free(comm);
  return st;
}
