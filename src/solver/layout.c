/* layout.c - which layout a run uses (--layout; docs/method.md section 9), and the rule
 * behind --layout=auto.
 *
 * The two layouts compute the same K S K component-sample pairs per iteration; they differ
 * in what moves and in the work that every rank repeats:
 *   samples  all-gather the K S d sample coordinates, a log-sum-exp all-reduce of K S
 *            values, a reduce-scatter of K S d (+ K ps, hessian estimator) sums; every rank
 *            also repeats the per-point part of the kernel (features, log-sum-exp, the
 *            per-group calls) for all K S points;
 *   params   all-gather K (d + ps + 1) numbers (means, precisions, log-constants) in three
 *            collectives; the per-point work is done once, by the point's owner.  Beyond
 *            the gather budget (params_stream.c) the numbers go round a ring twice instead,
 *            in blocks of cap components: 2 (P - 1) ceil(ceil(K/P) / cap) messages and twice
 *            an all-gather's volume.  Its second pass of the log terms is left out: the
 *            samples layout's phase B makes the same second pass.
 * auto estimates the seconds per iteration of each with tools/perfmodel.py's formulas and
 * takes the faster (params on a tie, which is every one-rank run):
 *   allgather(m bytes)       ceil(log2 P) alpha + (P-1)/P m beta
 *   allreduce(m), lse op     min(ceil(log2 P)(alpha + m beta + m/8 g_lse),
 *                                2 ceil(log2 P) alpha + (P-1)/P (2 m beta + m/8 g_lse))
 *   reduce-scatter(m)        ceil(log2 P) alpha + (P-1)/P m (beta + g_sum/8)
 *   repeated per-point work  K S (1 - 1/P) t_point(d),  t_point(d) = 5 ns + 0.45 ns d^2
 * with the model's network for predictions at scale (alpha = 2 us, beta = 0.1 ns per byte:
 * perfmodel.py --network ib) and the reduction costs and per-point cost calibrated on the
 * machine of docs/cluster.md (docs/scaling/calibration.json: gamma_lse 7.5 ns and gamma_sum 0.25 ns
 * per double; t_point the per-point terms b of the fitted a + b/k pair costs of phases A and
 * B, 0.14 us at d = 16 and 1.5 us at d = 64).  The fused kernel of the params layout is
 * also faster per pair on one rank; the rule leaves that out, so it leans to samples.
 * Where it picks samples: few points and wide precisions with the stein estimator (the
 * params layout then moves d^2 numbers per particle against S d), e.g. K = 64, S = 1,
 * d = 256 on 64 ranks. */
#include <math.h>
#include <string.h>

#include "core/optdef.h"
#include "solver/solver_impl.h"

#define NET_ALPHA 2e-6    /* seconds per message */
#define NET_BETA 1e-10    /* seconds per byte */
#define GAMMA_LSE 7.5e-9  /* seconds per double through the log-sum-exp reduction */
#define GAMMA_SUM 2.5e-10 /* seconds per double through a sum */

static double lg(double P) { return P > 1 ? ceil(log2(P)) : 0; }

static double t_allgather(double m, double P) {
  return P > 1 ? lg(P) * NET_ALPHA + (P - 1) / P * m * NET_BETA : 0;
}

static double t_allreduce_lse(double m, double P) {
  if (P <= 1) return 0;
  double rd = lg(P) * (NET_ALPHA + m * NET_BETA + m / 8 * GAMMA_LSE);
  double rab = 2 * lg(P) * NET_ALPHA + (P - 1) / P * (2 * m * NET_BETA + m / 8 * GAMMA_LSE);
  return fmin(rd, rab);
}

static double t_reduce_scatter(double m, double P) {
  return P > 1 ? lg(P) * NET_ALPHA + (P - 1) / P * m * (NET_BETA + GAMMA_SUM / 8) : 0;
}

double gfv_layout_seconds(int layout, double K, double S, double d, double ps, int hessian,
                          double P) {
  const double n = K * S;
  const double cap = (double)gfv_params_stream_cap((size_t)K, (int)P, (size_t)d, (size_t)ps);
  if (layout == GFV_LAYOUT_PARAMS && cap > 0) /* streamed: a ring, twice */
    return 2 * (P - 1) * ceil(ceil(K / P) / cap) * NET_ALPHA + 2 * (P - 1) / P * 8 * K * (d + ps + 1) * NET_BETA;
  if (layout == GFV_LAYOUT_PARAMS)
    return 2 * lg(P) * NET_ALPHA + t_allgather(8 * K * (d + ps + 1), P);
  double t_point = 5e-9 + 0.45e-9 * d * d;
  return t_allgather(8 * n * d, P) + t_allreduce_lse(8 * n, P) +
         t_reduce_scatter(8 * (n * d + (hessian ? K * ps : 0)), P) + n * (1 - 1 / P) * t_point;
}

int gfv_layout_choose(const char *option, size_t K, size_t S, size_t d, int diag, int hessian,
                      int ranks) {
  if (strcmp(option, "params") == 0) return GFV_LAYOUT_PARAMS;
  if (strcmp(option, "samples") == 0) return GFV_LAYOUT_SAMPLES;
  const double ps = diag ? (double)d : (double)d * (double)d;
  double tp = gfv_layout_seconds(GFV_LAYOUT_PARAMS, (double)K, (double)S, (double)d, ps, hessian, ranks);
  double ts = gfv_layout_seconds(GFV_LAYOUT_SAMPLES, (double)K, (double)S, (double)d, ps, hessian, ranks);
  return tp <= ts ? GFV_LAYOUT_PARAMS : GFV_LAYOUT_SAMPLES;
}

const char *gfv_layout_name(int layout) { return layout == GFV_LAYOUT_PARAMS ? "params" : "samples"; }

/* ---- options (rows: src/core/optdef.h; order: src/core/option_registry.c) -- */

static const char *const layout_choices[] = {"auto", "params", "samples", NULL};
static const char *const prune_choices[] = {"on", "off", NULL};
static const gfv_option layout_options[] = {
    /* ROLE_RUN: both layouts evaluate the same sums over the same samples, in another order,
     * so the answer differs by rounding only (tests/mpi/test_rank_agreement.sh). */
    {.name = "layout", .type = OPT_CHOICE, OPT_FIELD(layout), .def = "auto",
     .choices = layout_choices,
     .role = ROLE_RUN,
     .help = "what the ranks exchange each iteration: params = every particle's parameters, each "
             "rank evaluating the whole mixture at its own samples; samples = every sample, each "
             "rank evaluating its own components at all of them; auto = the one the performance "
             "model says is faster for this K, S, d and rank count"},
    /* ROLE_RUN: pruning skips only terms below the sums' rounding (docs/pruning.md). */
    {.name = "prune", .type = OPT_CHOICE, OPT_FIELD(prune), .def = "on", .choices = prune_choices,
     .role = ROLE_RUN,
     .help = "params layout, full family: skip (point, component) pairs whose terms a bound shows "
             "to lie below the rounding of the sums (exact; saves most of the work on a "
             "spread-out mixture); off = evaluate every pair"},
};
GFV_OPTION_TABLE(gfv_options_layout, layout_options);
