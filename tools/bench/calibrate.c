/* calibrate.c - measures the machine constants of tools/perfmodel.py.
 *
 *   make calibrate
 *   tools/mpirun.sh 2 build/bin/calibrate [--out=FILE] [--quick]
 *
 * Everything is timed on the code gflowvi really runs (linked from libgflowvi.a), so the
 * constants are "achieved" rates, not peak ones:
 *   - the mixture kernel's shapes: phase A's DGEMM of quadratic features (c x mq) x (mq x k),
 *     mq = d (d + 1) / 2 + d + 1, phase B's DGEMM (c x d) x (d x k d), the per-group DSYRK
 *     of the Hessian sums, and the whole phase A / phase B kernels (full family), for
 *     d in {2, ..., 64} and k (components on the rank) in {1, 4, 16, 64}; the part of the
 *     kernel that is not BLAS (Mahalanobis terms, exp, responsibilities) is the
 *     remainder, per (point, component) pair;
 *   - per particle: sampling, the ngflow and gflow updates, the hessian and stein
 *     estimators (at two sample counts, so the model can separate the O(S d^2) part);
 *     per point: the gauss target with its Hessian;
 *   - the reduction operators' arithmetic per double (sum, and the log-sum-exp operator);
 *   - with 2 or more ranks: ping-pong half round-trip times by message size (the alpha
 *     and beta of the alpha-beta model), and MPI_Allreduce (sum and log-sum-exp),
 *     MPI_Allgather and MPI_Reduce_scatter_block at this rank count, for validation.
 * Compute is timed on every rank at once (as in a run, where all cores are busy) and
 * averaged over ranks; each timing is the best of several repetitions.  Rank 0 writes
 * one JSON document (default build/calibration.json) and a short summary on stdout.
 * Takes about 15 s on 2 ranks (--quick: about 3 s, fewer shapes). */
#include <cblas.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flows/flow.h"
#include "gflowvi/mixture.h"
#include "gflowvi/target.h"
#include "linalg/linalg.h"
#include "mixture/family.h"
#include "solver/particles.h"

#define NDIM 6
#define NK 4
static const int dims[NDIM] = {2, 4, 8, 16, 32, 64};
static const int ks[NK] = {1, 4, 16, 64};
#define GROUP 10 /* samples per particle in the phase-B benchmark (the default --samples) */
#define BLOCK_BYTES ((size_t)4 << 20) /* as in src/mixture/kernel.c */

static int rank, size, quick;
static double target_seconds = 0.02; /* aim for this much work per timed call */

static void die(const char *what) {
  fprintf(stderr, "calibrate: %s\n", what);
  MPI_Abort(MPI_COMM_WORLD, 1);
}

static void *xcalloc(size_t n, size_t s) {
  void *p = calloc(n ? n : 1, s);
  if (!p) die("out of memory");
  return p;
}

/* Deterministic values in [-1, 1). */
static unsigned long long lcg_state = 88172645463325252ULL;
static double urand(void) {
  lcg_state = lcg_state * 6364136223846793005ULL + 1442695040888963407ULL;
  return (double)(lcg_state >> 11) / 9007199254740992.0 * 2.0 - 1.0;
}
static void fill(double *x, size_t n, double scale) {
  for (size_t i = 0; i < n; i++) x[i] = scale * urand();
}

/* k random well-conditioned components: P = I + 0.1 A A^T / d, L its Cholesky factor. */
static void make_components(size_t d, size_t k, double *mu, double *P, double *L, double *logc) {
  double *A = xcalloc(d * d, sizeof(double)), *logw = xcalloc(k, sizeof(double));
  fill(mu, k * d, 2.0);
  for (size_t j = 0; j < k; j++) {
    double *Pj = P + j * d * d, *Lj = L + j * d * d;
    fill(A, d * d, 1.0);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)d, (int)d, (int)d, 0.1 / (double)d, A,
                (int)d, A, (int)d, 0.0, Pj, (int)d);
    for (size_t t = 0; t < d; t++) Pj[t * d + t] += 1.0;
    gfv_symmetrize(d, Pj);
    memcpy(Lj, Pj, d * d * sizeof(double));
    if (gfv_chol(d, Lj)) die("benchmark matrix not positive definite");
    logw[j] = -log((double)k);
  }
  gfv_mix_log_const(d, k, logw, L, logc);
  free(A), free(logw);
}

/* Timing helpers: the best of `reps` calls, averaged over ranks (all ranks run at once). */
typedef void (*bench_fn)(void *arg);
static double best_of(bench_fn f, void *arg, int reps) {
  double best = INFINITY;
  f(arg); /* warm-up: page faults, BLAS thread set-up */
  for (int r = 0; r < reps; r++) {
    double t0 = MPI_Wtime();
    f(arg);
    double t = MPI_Wtime() - t0;
    if (t < best) best = t;
  }
  return best;
}
static double rank_mean(double x) {
  double s = 0;
  MPI_Allreduce(&x, &s, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
  return s / size;
}
static double timed(bench_fn f, void *arg) {
  MPI_Barrier(MPI_COMM_WORLD);
  return rank_mean(best_of(f, arg, quick ? 2 : 4));
}

/* ---- the mixture kernel ---- */
typedef struct {
  size_t d, k, n, chunk, chunk_a, mq;
  double *mu, *P, *L, *logc, *z, *A, *lse, *gbar, *H, *Pcat, *buf, *F, *W;
  gfv_mix_work *w;
} kern;

static void run_gemm_a(void *arg) {
  kern *b = arg;
  const int mq = (int)b->mq, k = (int)b->k;
  for (size_t i0 = 0; i0 < b->n; i0 += b->chunk_a) {
    size_t c = b->n - i0 < b->chunk_a ? b->n - i0 : b->chunk_a;
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)c, k, mq, 1.0, b->F, mq, b->W, k, 0.0,
                b->A + i0 * b->k, k);
  }
}

static void run_gemm(void *arg) {
  kern *b = arg;
  const int d = (int)b->d, kd = (int)(b->k * b->d);
  for (size_t i0 = 0; i0 < b->n; i0 += b->chunk) {
    size_t c = b->n - i0 < b->chunk ? b->n - i0 : b->chunk;
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)c, kd, d, 1.0, b->z + i0 * b->d, d,
                b->Pcat, kd, 0.0, b->buf, kd);
  }
}
static void run_syrk(void *arg) {
  kern *b = arg;
  const size_t d = b->d, gk = GROUP * b->k;
  for (size_t g = 0; g < b->n / GROUP; g++) {
    size_t off = (g * gk * d) % (b->chunk * b->k * d - gk * d + 1);
    cblas_dsyrk(CblasRowMajor, CblasLower, CblasTrans, (int)d, (int)gk, 1.0, b->buf + off, (int)d, 1.0,
                b->H, (int)d);
  }
}
static void run_phase_a(void *arg) {
  kern *b = arg;
  gfv_mix_view v = {b->d, b->k, b->mu, b->P, b->L, b->logc, 0, 0};
  if (gfv_mix_log_terms(&v, b->n, b->z, b->A, b->lse, b->w)) die("phase A failed");
}
static void run_phase_b(void *arg) {
  kern *b = arg;
  gfv_mix_view v = {b->d, b->k, b->mu, b->P, b->L, b->logc, 0, 0};
  memset(b->gbar, 0, b->n * b->d * sizeof(double));
  if (gfv_mix_grad_terms(&v, b->n, b->z, b->A, b->lse, GROUP, b->gbar, NULL, b->w))
    die("phase B failed");
}
static void run_phase_bh(void *arg) {
  kern *b = arg;
  gfv_mix_view v = {b->d, b->k, b->mu, b->P, b->L, b->logc, 0, 0};
  memset(b->gbar, 0, b->n * b->d * sizeof(double));
  memset(b->H, 0, b->n / GROUP * b->d * b->d * sizeof(double));
  if (gfv_mix_grad_terms(&v, b->n, b->z, b->A, b->lse, GROUP, b->gbar, b->H, b->w))
    die("phase B (Hessian) failed");
}

typedef struct {
  double gemm_a_rate, gemm_rate, syrk_rate; /* flop/s */
  double a_pair, b_pair, bh_pair;           /* s per (point, component) pair */
} kern_result;

static kern_result bench_kernel(size_t d, size_t k) {
  kern b = {0};
  b.d = d, b.k = k;
  /* Pairs (point, component) so that phase A takes about target_seconds at ~1e-8 s/pair
   * for small d; at least one group, a multiple of GROUP points. */
  double pair_cost = 1e-8 + 4.0 * (double)(d * d) / 5e9;
  size_t pairs = (size_t)(target_seconds / pair_cost);
  b.n = pairs / k / GROUP * GROUP;
  if (b.n < 4 * GROUP) b.n = 4 * GROUP;
  size_t groups = BLOCK_BYTES / (k * d * sizeof(double) * GROUP);
  if (groups < 1) groups = 1;
  b.chunk = groups * GROUP;
  b.mq = d * (d + 1) / 2 + d + 1;
  b.chunk_a = BLOCK_BYTES / (b.mq * sizeof(double));
  if (b.chunk_a < 1) b.chunk_a = 1;
  if (b.chunk_a > b.n) b.chunk_a = b.n;
  b.mu = xcalloc(k * d, sizeof(double));
  b.P = xcalloc(k * d * d, sizeof(double));
  b.L = xcalloc(k * d * d, sizeof(double));
  b.logc = xcalloc(k, sizeof(double));
  b.z = xcalloc(b.n * d, sizeof(double));
  b.A = xcalloc(b.n * k, sizeof(double));
  b.lse = xcalloc(b.n, sizeof(double));
  b.gbar = xcalloc(b.n * d, sizeof(double));
  b.H = xcalloc(b.n / GROUP * d * d, sizeof(double));
  b.Pcat = xcalloc(d * k * d, sizeof(double));
  b.buf = xcalloc(b.chunk * k * d, sizeof(double));
  b.F = xcalloc(b.chunk_a * b.mq, sizeof(double));
  b.W = xcalloc(b.mq * k, sizeof(double));
  fill(b.F, b.chunk_a * b.mq, 1.0);
  fill(b.W, b.mq * k, 1.0);
  make_components(d, k, b.mu, b.P, b.L, b.logc);
  fill(b.z, b.n * d, 2.5);
  fill(b.Pcat, d * k * d, 1.0);
  fill(b.buf, b.chunk * k * d, 1.0);
  if (gfv_mix_work_alloc(d, k, GROUP, &b.w)) die("workspace");
  const double n = (double)b.n, pairs_d = n * (double)k;
  kern_result r;
  r.gemm_a_rate = 2.0 * pairs_d * (double)b.mq / timed(run_gemm_a, &b);
  r.gemm_rate = 2.0 * pairs_d * (double)(d * d) / timed(run_gemm, &b);
  r.syrk_rate = pairs_d * (double)(d * (d + 1)) / timed(run_syrk, &b);
  run_phase_a(&b); /* A and lse for phase B */
  r.a_pair = timed(run_phase_a, &b) / pairs_d;
  r.b_pair = timed(run_phase_b, &b) / pairs_d;
  r.bh_pair = timed(run_phase_bh, &b) / pairs_d;
  gfv_mix_work_free(b.w);
  free(b.mu), free(b.P), free(b.L), free(b.logc), free(b.z), free(b.A), free(b.lse);
  free(b.gbar), free(b.H), free(b.Pcat), free(b.buf), free(b.F), free(b.W);
  return r;
}

/* ---- per particle and per point ---- */
typedef struct {
  size_t d, S, reps;
  const gfv_flow_type *flow;
  const gfv_estimator_type *est;
  double *mu, *P, *L, *gh, *G, *mu2, *P2, *L2, *work, *z, *grad, *hess, *gbar, *Hq, *logp;
  gfv_particles parts;
  gfv_target *target;
} part;

static void run_flow(void *arg) {
  part *p = arg;
  gfv_step_info info;
  for (size_t r = 0; r < p->reps; r++)
    if (p->flow->update(p->d, p->mu, p->P, p->L, p->gh, p->G, 0.01, 0, p->mu2, p->P2, p->L2, p->work,
                        &info))
      die("flow update failed");
}
static void run_est(void *arg) {
  part *p = arg;
  gfv_particle_samples ps = {p->d, p->S, p->mu, p->P, p->z, p->grad, p->hess, p->gbar, p->Hq};
  for (size_t r = 0; r < p->reps; r++) p->est->estimate(&ps, p->gh, p->G, p->work);
}
static void run_sample(void *arg) {
  part *p = arg;
  const gfv_stream st = gfv_particles_stream(&p->parts, 0, GFV_PURPOSE_SAMPLE);
  for (size_t r = 0; r < p->reps; r++) gfv_particles_sample(&p->parts, 0, &st, r, 0, p->S, p->z);
}
static void run_target(void *arg) {
  part *p = arg;
  for (size_t r = 0; r < p->reps; r++)
    if (gfv_target_eval(p->target, p->S, p->z, p->logp, p->grad, p->hess)) die("target failed");
}

typedef struct {
  double ngflow, gflow, hessian_s10, hessian_s40, stein_s10, stein_s40; /* s per particle */
  double sample, target;                                                /* s per point */
} part_result;

static part_result bench_particle(size_t d) {
  part p = {0};
  const size_t dd = d * d, Smax = 40;
  p.d = d;
  p.mu = xcalloc(d, sizeof(double)), p.mu2 = xcalloc(d, sizeof(double));
  p.P = xcalloc(dd, sizeof(double)), p.P2 = xcalloc(dd, sizeof(double));
  p.L = xcalloc(dd, sizeof(double)), p.L2 = xcalloc(dd, sizeof(double));
  p.gh = xcalloc(d, sizeof(double)), p.G = xcalloc(dd, sizeof(double));
  p.Hq = xcalloc(dd, sizeof(double));
  size_t wsize = gfv_flow_work_size(d);
  if (gfv_estimator_work_size(d, Smax) > wsize) wsize = gfv_estimator_work_size(d, Smax);
  p.work = xcalloc(wsize, sizeof(double));
  p.z = xcalloc(Smax * d, sizeof(double)), p.grad = xcalloc(Smax * d, sizeof(double));
  p.gbar = xcalloc(Smax * d, sizeof(double)), p.hess = xcalloc(Smax * dd, sizeof(double));
  p.logp = xcalloc(Smax, sizeof(double));
  double logc;
  make_components(d, 1, p.mu, p.P, p.L, &logc);
  fill(p.gh, d, 0.1);
  fill(p.z, Smax * d, 1.0), fill(p.grad, Smax * d, 1.0), fill(p.gbar, Smax * d, 1.0);
  make_components(d, 1, p.mu2, p.G, p.L2, &logc); /* G: a symmetric positive matrix */
  memcpy(p.Hq, p.G, dd * sizeof(double));
  for (size_t i = 0; i < Smax; i++) memcpy(p.hess + i * dd, p.G, dd * sizeof(double));
  /* Repetitions so one timed call is about target_seconds / 4. */
  double per = 2e-7 + 8.0 * (double)(dd * d) / 2e9;
  p.reps = (size_t)(target_seconds / 4 / per) + 1;
  part_result r;
  p.flow = &gfv_flow_ngflow;
  r.ngflow = timed(run_flow, &p) / (double)p.reps;
  p.flow = &gfv_flow_gflow;
  r.gflow = timed(run_flow, &p) / (double)p.reps;
  p.est = &gfv_estimator_hessian;
  p.S = 10, r.hessian_s10 = timed(run_est, &p) / (double)p.reps;
  p.S = 40, r.hessian_s40 = timed(run_est, &p) / (double)p.reps;
  p.est = &gfv_estimator_stein;
  p.S = 10, r.stein_s10 = timed(run_est, &p) / (double)p.reps;
  p.S = 40, r.stein_s40 = timed(run_est, &p) / (double)p.reps;
  if (gfv_particles_alloc(d, 1, 0, 1, &gfv_family_full, 1, &p.parts)) die("particles");
  gfv_particles_init(&p.parts, 1.0, 1.0);
  p.S = Smax;
  r.sample = timed(run_sample, &p) / (double)(p.reps * Smax);
  if (gfv_target_create("gauss", (long)d, &p.target)) die("gauss target");
  r.target = timed(run_target, &p) / (double)(p.reps * Smax);
  gfv_target_free(p.target);
  gfv_particles_free(&p.parts);
  free(p.mu), free(p.mu2), free(p.P), free(p.P2), free(p.L), free(p.L2), free(p.gh), free(p.G);
  free(p.Hq), free(p.work), free(p.z), free(p.grad), free(p.gbar), free(p.hess), free(p.logp);
  return r;
}

/* ---- reduction arithmetic ---- */
static void lse_op(void *in, void *inout, int *len, MPI_Datatype *type) {
  (void)type;
  const double *a = in;
  double *b = inout;
  for (int i = 0; i < *len; i++) b[i] = gfv_logaddexp(a[i], b[i]);
}
typedef struct {
  size_t n;
  double *a, *b;
  int lse;
} red;
static void run_reduce_local(void *arg) {
  red *r = arg;
  int n = (int)r->n;
  if (r->lse) {
    MPI_Datatype t = MPI_DOUBLE;
    lse_op(r->a, r->b, &n, &t);
  } else {
    for (size_t i = 0; i < r->n; i++) r->b[i] += r->a[i];
  }
}

/* ---- MPI ---- */
#define NSIZES 11 /* 8 B, 32 B, ..., 8 MiB: powers of 4 */
static size_t msg_bytes(int i) { return (size_t)8 << (2 * i); }
static int reps_for(size_t bytes) {
  int r = (int)(quick ? 2e6 : 8e6) / (int)(bytes < 4096 ? 4096 : bytes > 8e6 ? 8e6 : bytes);
  return r < 3 ? 3 : r > 200 ? 200 : r;
}

/* Rank 0 <-> rank 1 (other ranks idle): half the round-trip time of a ping-pong, or
 * (exchange) the time of one MPI_Sendrecv in both directions at once, which is what the
 * steps of the collectives' algorithms do, so it is the beta the model uses. */
static double pingpong(double *buf, double *buf2, size_t bytes, int exchange) {
  int n = (int)(bytes / sizeof(double)), reps = reps_for(bytes);
  double best = INFINITY;
  for (int rep = 0; rep < 3; rep++) {
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = MPI_Wtime();
    for (int i = 0; i < reps; i++) {
      if (rank > 1) continue;
      if (exchange) {
        MPI_Sendrecv(buf, n, MPI_DOUBLE, 1 - rank, 0, buf2, n, MPI_DOUBLE, 1 - rank, 0, MPI_COMM_WORLD,
                     MPI_STATUS_IGNORE);
        MPI_Sendrecv(buf2, n, MPI_DOUBLE, 1 - rank, 0, buf, n, MPI_DOUBLE, 1 - rank, 0, MPI_COMM_WORLD,
                     MPI_STATUS_IGNORE);
      } else if (rank == 0) {
        MPI_Send(buf, n, MPI_DOUBLE, 1, 0, MPI_COMM_WORLD);
        MPI_Recv(buf, n, MPI_DOUBLE, 1, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
      } else {
        MPI_Recv(buf, n, MPI_DOUBLE, 0, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        MPI_Send(buf, n, MPI_DOUBLE, 0, 0, MPI_COMM_WORLD);
      }
    }
    double t = (MPI_Wtime() - t0) / (2.0 * reps);
    if (t < best) best = t;
  }
  MPI_Bcast(&best, 1, MPI_DOUBLE, 0, MPI_COMM_WORLD);
  return best;
}

enum { C_ALLREDUCE, C_ALLREDUCE_LSE, C_ALLGATHER, C_REDUCE_SCATTER, NCOLL };
static const char *const coll_names[NCOLL] = {"allreduce_sum", "allreduce_lse", "allgather",
                                              "reduce_scatter"};

/* Time of one collective on a vector of `bytes` in all (the result size), max over ranks. */
static double collective(int which, MPI_Op lse, double *a, double *b, size_t bytes) {
  int n = (int)(bytes / sizeof(double)), reps = reps_for(bytes);
  int per = n / size > 0 ? n / size : 1;
  double best = INFINITY;
  for (int rep = 0; rep < 3; rep++) {
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = MPI_Wtime();
    for (int i = 0; i < reps; i++) {
      switch (which) {
        case C_ALLREDUCE: MPI_Allreduce(a, b, n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD); break;
        case C_ALLREDUCE_LSE: MPI_Allreduce(a, b, n, MPI_DOUBLE, lse, MPI_COMM_WORLD); break;
        case C_ALLGATHER: MPI_Allgather(a, per, MPI_DOUBLE, b, per, MPI_DOUBLE, MPI_COMM_WORLD); break;
        default: MPI_Reduce_scatter_block(a, b, per, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD); break;
      }
    }
    double t = (MPI_Wtime() - t0) / reps, tmax;
    MPI_Allreduce(&t, &tmax, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    if (tmax < best) best = tmax;
  }
  return best;
}

/* beta of t = alpha + beta m over the points with m >= mmin, alpha given: least squares
 * in relative error (weights 1/t^2), so the large messages do not decide it alone. */
static double fit_beta(const double *m, const double *t, int n, double mmin, double alpha) {
  double num = 0, den = 0;
  for (int i = 0; i < n; i++) {
    if (m[i] < mmin) continue;
    double w = 1.0 / (t[i] * t[i]);
    num += w * m[i] * (t[i] - alpha), den += w * m[i] * m[i];
  }
  return den > 0 ? num / den : 0;
}

static void json_array(FILE *f, const double *x, int n) {
  fputc('[', f);
  for (int i = 0; i < n; i++) fprintf(f, "%s%.6g", i ? ", " : "", x[i]);
  fputc(']', f);
}

static void cpu_name(char *out, size_t n) {
  snprintf(out, n, "unknown");
  FILE *f = fopen("/proc/cpuinfo", "r");
  if (!f) return;
  char line[512];
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, "model name", 10) == 0) {
      char *p = strchr(line, ':');
      if (p) {
        p += 1 + strspn(p + 1, " \t");
        p[strcspn(p, "\n")] = '\0';
        snprintf(out, n, "%s", p);
      }
      break;
    }
  }
  fclose(f);
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  openblas_set_num_threads(1);
  const char *out = "build/calibration.json";
  for (int i = 1; i < argc; i++) {
    if (strncmp(argv[i], "--out=", 6) == 0) {
      out = argv[i] + 6;
    } else if (strcmp(argv[i], "--quick") == 0) {
      quick = 1, target_seconds = 0.005;
    } else {
      if (rank == 0) fprintf(stderr, "usage: calibrate [--out=FILE] [--quick]\n");
      MPI_Finalize();
      return 2;
    }
  }
  double t_start = MPI_Wtime();
  lcg_state += (unsigned long long)rank; /* different data per rank, same shapes */

  int nd = quick ? 4 : NDIM;
  static kern_result kr[NDIM][NK];
  static part_result pr[NDIM];
  for (int i = 0; i < nd; i++) {
    for (int j = 0; j < NK; j++) kr[i][j] = bench_kernel((size_t)dims[i], (size_t)ks[j]);
    pr[i] = bench_particle((size_t)dims[i]);
  }

  /* Reduction arithmetic, per double. */
  red rd = {1 << 18, NULL, NULL, 0};
  rd.a = xcalloc(rd.n, sizeof(double)), rd.b = xcalloc(rd.n, sizeof(double));
  fill(rd.a, rd.n, 3.0), fill(rd.b, rd.n, 3.0);
  double gamma_sum = timed(run_reduce_local, &rd) / (double)rd.n;
  rd.lse = 1;
  double gamma_lse = timed(run_reduce_local, &rd) / (double)rd.n;
  free(rd.a), free(rd.b);

  /* MPI. */
  double m[NSIZES], pp[NSIZES], ex[NSIZES], coll[NCOLL][NSIZES], alpha = 0, beta = 0;
  if (size >= 2) {
    size_t maxb = msg_bytes(NSIZES - 1);
    double *a = xcalloc(maxb / sizeof(double), sizeof(double));
    double *b = xcalloc(maxb / sizeof(double), sizeof(double));
    fill(a, maxb / sizeof(double), 3.0);
    MPI_Op lse;
    MPI_Op_create(lse_op, 1, &lse);
    for (int i = 0; i < NSIZES; i++) {
      m[i] = (double)msg_bytes(i);
      pp[i] = pingpong(a, b, msg_bytes(i), 0);
      ex[i] = pingpong(a, b, msg_bytes(i), 1) / 2.0;
      for (int c = 0; c < NCOLL; c++) coll[c][i] = collective(c, lse, a, b, msg_bytes(i));
    }
    MPI_Op_free(&lse);
    free(a), free(b);
    alpha = pp[0];
    beta = fit_beta(m, ex, NSIZES, 32768.0, ex[0]);
  }

  if (rank == 0) {
    FILE *f = fopen(out, "w");
    if (!f) die("cannot write the output file");
    char cpu[256];
    cpu_name(cpu, sizeof cpu);
    fprintf(f, "{\n  \"program\": \"gflowvi calibrate\",\n  \"cpu\": \"%s\",\n", cpu);
    fprintf(f, "  \"ranks\": %d,\n  \"quick\": %s,\n  \"group\": %d,\n", size,
            quick ? "true" : "false", GROUP);
    double dv[NDIM], kv[NK];
    for (int i = 0; i < nd; i++) dv[i] = dims[i];
    for (int j = 0; j < NK; j++) kv[j] = ks[j];
    fprintf(f, "  \"d\": "), json_array(f, dv, nd), fprintf(f, ",\n");
    fprintf(f, "  \"k\": "), json_array(f, kv, NK), fprintf(f, ",\n");
    fprintf(f, "  \"kernel\": {\n");
    const char *kn[6] = {"gemm_a_rate", "gemm_rate",    "syrk_rate",
                         "phase_a_pair", "phase_b_pair", "phase_bh_pair"};
    for (int q = 0; q < 6; q++) {
      fprintf(f, "    \"%s\": [", kn[q]);
      for (int i = 0; i < nd; i++) {
        double row[NK];
        for (int j = 0; j < NK; j++) {
          const kern_result *r = &kr[i][j];
          const double v[6] = {r->gemm_a_rate, r->gemm_rate, r->syrk_rate,
                               r->a_pair,      r->b_pair,    r->bh_pair};
          row[j] = v[q];
        }
        fprintf(f, "%s", i ? ", " : ""), json_array(f, row, NK);
      }
      fprintf(f, "]%s\n", q < 5 ? "," : "");
    }
    fprintf(f, "  },\n  \"particle\": {\n");
    const char *pn[8] = {"ngflow", "gflow", "hessian_s10", "hessian_s40", "stein_s10", "stein_s40",
                         "sample_per_point", "gauss_target_per_point"};
    for (int q = 0; q < 8; q++) {
      double row[NDIM];
      for (int i = 0; i < nd; i++) {
        const part_result *r = &pr[i];
        const double v[8] = {r->ngflow, r->gflow, r->hessian_s10, r->hessian_s40,
                             r->stein_s10, r->stein_s40, r->sample, r->target};
        row[i] = v[q];
      }
      fprintf(f, "    \"%s\": ", pn[q]), json_array(f, row, nd), fprintf(f, "%s\n", q < 7 ? "," : "");
    }
    fprintf(f, "  },\n  \"gamma_sum\": %.6g,\n  \"gamma_lse\": %.6g,\n", gamma_sum, gamma_lse);
    if (size >= 2) {
      fprintf(f, "  \"mpi\": {\n    \"alpha\": %.6g,\n    \"beta\": %.6g,\n", alpha, beta);
      fprintf(f, "    \"bytes\": "), json_array(f, m, NSIZES), fprintf(f, ",\n");
      fprintf(f, "    \"pingpong\": "), json_array(f, pp, NSIZES), fprintf(f, ",\n");
      fprintf(f, "    \"exchange\": "), json_array(f, ex, NSIZES), fprintf(f, ",\n");
      for (int c = 0; c < NCOLL; c++) {
        fprintf(f, "    \"%s\": ", coll_names[c]), json_array(f, coll[c], NSIZES);
        fprintf(f, "%s\n", c < NCOLL - 1 ? "," : "");
      }
      fprintf(f, "  },\n");
    } else {
      fprintf(f, "  \"mpi\": null,\n");
    }
    fprintf(f, "  \"seconds\": %.3f\n}\n", MPI_Wtime() - t_start);
    if (fclose(f)) die("cannot write the output file");

    printf("calibrate: %s, %d rank%s, %.1f s -> %s\n", cpu, size, size == 1 ? "" : "s",
           MPI_Wtime() - t_start, out);
    printf("  at k = 16 components per rank:\n");
    printf("  %4s  %12s  %12s  %12s  %16s  %18s\n", "d", "A DGEMM GF/s", "B DGEMM GF/s",
           "DSYRK GF/s", "phase A ns/pair", "phase B+H ns/pair");
    for (int i = 0; i < nd; i++)
      printf("  %4d  %12.2f  %12.2f  %12.2f  %16.2f  %18.2f\n", dims[i], kr[i][2].gemm_a_rate / 1e9,
             kr[i][2].gemm_rate / 1e9, kr[i][2].syrk_rate / 1e9, kr[i][2].a_pair * 1e9,
             kr[i][2].bh_pair * 1e9);
    printf("  reduction arithmetic: sum %.2f ns/double, log-sum-exp %.2f ns/double\n", gamma_sum * 1e9,
           gamma_lse * 1e9);
    if (size >= 2)
      printf("  point to point: alpha %.2f us (ping-pong), beta %.4f ns/byte (%.2f GB/s, both "
             "directions at once)\n",
             alpha * 1e6, beta * 1e9, beta > 0 ? 1e-9 / beta : 0.0);
  }
  MPI_Finalize();
  return 0;
}
