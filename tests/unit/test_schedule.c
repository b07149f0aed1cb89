/* test_schedule.c - the step-size schedules (src/solver/schedule.c):
 *  - constant: the step, halved for good by a rejection (the solver's old behaviour);
 *  - decay: eta_c = eta0 / (1 + c) exactly, times the rejections' halvings, floored;
 *  - adaptive: grows by 1.5 per chunk on an improving sequence up to the cap, halves on a
 *    worsening one down to the floor, halves at once and at the chunk end after a
 *    rejection, and keeps the step when the change is within the noise (z_up / z_down);
 *  - the defaults: cap max(1, --step), floor --step / 100 raised to the solver's retry floor;
 *  - replaying a trace reproduces the live state bitwise (checkpoint / restart), and a
 *    restart with other step options continues from the rescaled step;
 *  - the argument checks. */
#include <string.h>

#include "gflowvi/error.h"
#include "harness.h"
#include "solver/schedule.h"

static gfv_schedule_params params(gfv_schedule_kind kind, double step) {
  gfv_schedule_params p = {kind, step, 20 * step, step / 1024, GFV_SCHEDULE_CHUNK,
                           GFV_SCHEDULE_Z_UP, GFV_SCHEDULE_Z_DOWN};
  return p;
}

static void constant_keeps_halvings(void) {
  gfv_schedule s;
  gfv_schedule_params p = params(GFV_SCHEDULE_CONSTANT, 0.05);
  CHECK(gfv_schedule_init(&s, &p) == GFV_OK, "init");
  double eta = gfv_schedule_first_step(&s);
  CHECK(eta == 0.05, "first %g", eta);
  for (long t = 1; t <= 100; t++) {
    double used = t == 40 ? eta / 4 : eta; /* two halvings in iteration 40 */
    eta = gfv_schedule_step(&s, t, -100.0 + t, 0.1, used);
    CHECK(eta == (t < 40 ? 0.05 : 0.0125), "iteration %ld: %g", t, eta);
  }
}

static void decay_exact(void) {
  gfv_schedule s;
  gfv_schedule_params p = params(GFV_SCHEDULE_DECAY, 1.0);
  p.step_min = 0.1;
  CHECK(gfv_schedule_init(&s, &p) == GFV_OK, "init");
  double eta = gfv_schedule_first_step(&s);
  int bad = 0;
  for (long t = 1; t <= 400; t++) {
    /* iteration t ran in chunk (t - 1) / 25 with 1 / (1 + c) (floored at 0.1), halved from
     * iteration 60 on by the rejection there */
    long c = (t - 1) / 25;
    double want = fmax(1.0 / (double)(1 + c), 0.1) * (t > 60 ? 0.5 : 1.0);
    double used = t == 60 ? eta / 2 : eta;
    if (t == 60) want = eta;
    bad += eta != want;
    if (eta != want) printf("# iteration %ld: step %.17g, expected %.17g\n", t, eta, want);
    eta = gfv_schedule_step(&s, t, -100.0, 0.1, used);
  }
  CHECK(!bad, "%d steps differ from eta0 / (1 + c)", bad);
  CHECK(eta == 0.05, "floor 0.1 times the halving: %g", eta);
}

/* Runs n iterations of the adaptive schedule on elbo(t), recording the step of each chunk;
 * rejected_at: an iteration whose step is halved by the solver (0: none). */
static double run_adaptive(gfv_schedule *s, long n, double (*elbo)(long), long rejected_at,
                           double *chunk_steps) {
  double eta = gfv_schedule_first_step(s);
  for (long t = 1; t <= n; t++) {
    if ((t - 1) % s->p.chunk == 0) chunk_steps[(t - 1) / s->p.chunk] = eta;
    double used = t == rejected_at ? eta / 2 : eta;
    eta = gfv_schedule_step(s, t, elbo(t), 0.1, used);
    if (t == rejected_at) CHECK(eta == used, "the rejection halves the step at once: %g", eta);
  }
  return eta;
}

static double improving(long t) { return -100.0 + 0.5 * (double)t; }
static double worsening(long t) { return -100.0 - 0.5 * (double)t; }

/* Adaptive from 0.1 on elbo(t): the step of each of 16 chunks grows by 1.5 up to the cap
 * (improving) or halves down to the floor (worsening; the first chunk has nothing to
 * compare with and grows, as in the experiment). */
static void expect_chunks(double (*elbo)(long), int improves, double step_max, double step_min) {
  gfv_schedule s;
  gfv_schedule_params p = params(GFV_SCHEDULE_ADAPTIVE, 0.1);
  p.step_max = step_max, p.step_min = step_min;
  CHECK(gfv_schedule_init(&s, &p) == GFV_OK, "init");
  double steps[16];
  run_adaptive(&s, 400, elbo, 0, steps);
  double want = 0.1;
  for (int c = 0; c < 16; c++) {
    CHECK(steps[c] == want, "chunk %d: %.17g, expected %.17g", c, steps[c], want);
    want = improves || c == 0 ? fmin(want * 1.5, step_max) : fmax(want * 0.5, step_min);
  }
  double end = improves ? step_max : step_min;
  CHECK(steps[15] == end && s.last_decision == (improves ? 1 : -1), "chunk 15 at %g, not %g",
        steps[15], end);
}

static void adaptive_grows_to_cap(void) { expect_chunks(improving, 1, 1.0, 0.1 / 1024); }
static void adaptive_shrinks_to_floor(void) { expect_chunks(worsening, 0, 2.0, 0.01); }

static void adaptive_halves_after_rejection(void) {
  gfv_schedule s;
  gfv_schedule_params p = params(GFV_SCHEDULE_ADAPTIVE, 0.1);
  CHECK(gfv_schedule_init(&s, &p) == GFV_OK, "init");
  double steps[8];
  /* chunk 0 grows to 0.15; in chunk 1 (iterations 26-50) iteration 30 is rejected: 0.075 for
   * the rest of the chunk, then chunk 2 starts at min(0.15 / 2, 0.075) although the ELBO
   * improved; chunk 3 grows again. */
  run_adaptive(&s, 100, improving, 30, steps);
  const double g = 0.1 * 1.5; /* not the literal 0.15: the products are exact in the code */
  CHECK(steps[0] == 0.1 && steps[1] == g, "chunks 0-1: %g %g", steps[0], steps[1]);
  CHECK(steps[2] == g / 2, "after the rejection: %g", steps[2]);
  CHECK(steps[3] == g / 2 * 1.5, "improving again: %g", steps[3]);
  /* A rejection at the floor is not undone by the floor: halvings persist. */
  gfv_schedule_params q = params(GFV_SCHEDULE_ADAPTIVE, 0.1);
  q.step_min = 0.1;
  CHECK(gfv_schedule_init(&s, &q) == GFV_OK, "init");
  run_adaptive(&s, 100, worsening, 60, steps);
  CHECK(steps[1] == g && steps[2] == 0.1 && steps[3] == 0.05, "chunks: %g %g %g", steps[1],
        steps[2], steps[3]);
}

/* Two half-chunks of constant values, the second delta above the first, se 1 per value:
 * se of a half mean sqrt(12) / 12 = 0.289, se(delta) 0.408.  Returns the decision. */
static int decide(double z_up, double z_down, double delta) {
  gfv_schedule s;
  gfv_schedule_params p = params(GFV_SCHEDULE_ADAPTIVE, 0.1);
  p.z_up = z_up, p.z_down = z_down;
  CHECK(gfv_schedule_init(&s, &p) == GFV_OK, "init");
  double eta = gfv_schedule_first_step(&s);
  for (long t = 1; t <= 50; t++) eta = gfv_schedule_step(&s, t, t <= 25 ? -100.0 : -100.0 + delta, 1.0, eta);
  CHECK_NEAR(s.last_se_delta, sqrt(2.0 / 12.0), 1e-12, "se(delta)");
  const double g = 0.1 * 1.5; /* chunk 0 always grows */
  double want = s.last_decision > 0 ? g * 1.5 : s.last_decision < 0 ? g * 0.5 : g;
  CHECK(eta == want, "decision %d, step %g", s.last_decision, eta);
  return s.last_decision;
}

static void adaptive_noise_band(void) {
  /* the default: grow on a resolved improvement, halve on any decrease, else keep */
  CHECK(GFV_SCHEDULE_Z_UP == 1.0 && GFV_SCHEDULE_Z_DOWN == 0.0, "defaults");
  CHECK(decide(GFV_SCHEDULE_Z_UP, GFV_SCHEDULE_Z_DOWN, 0.1) == 0, "+0.1 is noise: keep");
  CHECK(decide(GFV_SCHEDULE_Z_UP, GFV_SCHEDULE_Z_DOWN, 1.0) == 1, "+1 is an improvement");
  CHECK(decide(GFV_SCHEDULE_Z_UP, GFV_SCHEDULE_Z_DOWN, -0.1) == -1, "-0.1 halves");
  /* dead band: within 1 se(delta) the step stays either way */
  CHECK(decide(1, -1, -0.1) == 0, "dead band: -0.1 is noise");
  CHECK(decide(1, -1, -1.0) == -1, "dead band: -1 is a worsening");
  /* the experiment's rule: any increase grows, anything else halves */
  CHECK(decide(0, 0, 0.1) == 1, "z=0: +0.1 grows");
  CHECK(decide(0, 0, -0.1) == -1, "z=0: -0.1 halves");
  /* resolved growth, else halve */
  CHECK(decide(1, 1, 0.1) == -1, "z=1/1: +0.1 halves");
  CHECK(decide(1, 1, 1.0) == 1, "z=1/1: +1 grows");
}

/* Only each chunk's second half counts (its first iterations are the transient after a change
 * of step): chunk 2 starts far above chunk 1 but ends below it, so the step halves. */
static void adaptive_second_halves(void) {
  gfv_schedule s;
  gfv_schedule_params p = params(GFV_SCHEDULE_ADAPTIVE, 0.1);
  CHECK(gfv_schedule_init(&s, &p) == GFV_OK, "init");
  double eta = gfv_schedule_first_step(&s);
  for (long t = 1; t <= 50; t++) {
    double v = t <= 25 ? -100.0 : (t <= 37 ? -50.0 : -110.0); /* iterations 38-50: 2nd half */
    eta = gfv_schedule_step(&s, t, v, 0.1, eta);
  }
  CHECK(s.last_decision == -1 && eta == 0.1 * 1.5 * 0.5, "decision %d step %g", s.last_decision, eta);
  CHECK_NEAR(s.last_delta, -10.0, 1e-12, "delta of the second halves");
}

static double wavy(long t) { return -50.0 + 10.0 * sin(0.05 * (double)t) + 0.3 * cos(1.7 * (double)t); }

/* A restart replays the checkpoint's trace: state bitwise equal to the live one, from a cut
 * in the middle of a chunk, and equal steps as both continue. */
static void replay_equals_live(void) {
  const gfv_schedule_kind kinds[3] = {GFV_SCHEDULE_CONSTANT, GFV_SCHEDULE_DECAY, GFV_SCHEDULE_ADAPTIVE};
  for (int k = 0; k < 3; k++) {
    static gfv_trace_row rows[1001];
    gfv_schedule live, again;
    gfv_schedule_params p = params(kinds[k], 0.2);
    CHECK(gfv_schedule_init(&live, &p) == GFV_OK, "init");
    double eta = gfv_schedule_first_step(&live);
    rows[0] = (gfv_trace_row){0, -1000.0, 5.0, 0, 0, 0};
    const long cut = 613;
    for (long t = 1; t <= 1000; t++) {
      double used = t % 97 == 0 ? eta / 2 : t % 331 == 0 ? eta / 8 : eta;
      rows[t] = (gfv_trace_row){t, wavy(t), 0.2 + 0.01 * (double)(t % 5), 1.0, used, 0};
      if (t == cut) {
        /* what the live run holds after iteration cut - 1 */
        memset(&again, 0xff, sizeof again);
        again.p = p;
        double eta2 = gfv_schedule_replay(&again, rows, (size_t)cut);
        CHECK(eta2 == eta, "%s: replayed step %.17g, live %.17g", gfv_schedule_name(kinds[k]), eta2, eta);
        CHECK(memcmp(&again, &live, sizeof live) == 0, "%s: replayed state differs",
              gfv_schedule_name(kinds[k]));
      }
      eta = gfv_schedule_step(&live, t, rows[t].elbo, rows[t].elbo_se, used);
      if (t >= cut) {
        double eta2 = gfv_schedule_step(&again, t, rows[t].elbo, rows[t].elbo_se, used);
        CHECK(eta2 == eta, "%s: iteration %ld: %g vs %g", gfv_schedule_name(kinds[k]), t, eta2, eta);
      }
    }
    CHECK(memcmp(&again, &live, sizeof live) == 0, "%s: states differ at the end", gfv_schedule_name(kinds[k]));
  }
}

/* A restart with other step options: the schedule goes on from the rescaled step. */
static void continue_after_restart(void) {
  gfv_schedule s;
  gfv_schedule_params p = params(GFV_SCHEDULE_DECAY, 1.0);
  p.step_min = 0.01;
  CHECK(gfv_schedule_init(&s, &p) == GFV_OK, "init");
  gfv_schedule_continue(&s, 60, 0.5 / 3); /* chunk 2 (1/3), with one halving */
  CHECK_REL(s.backoff, 0.5, 1e-15, 0, "decay: the halving is kept");
  double eta = gfv_schedule_step(&s, 61, -1.0, 0.1, 0.5 / 3);
  CHECK_REL(eta, 0.5 / 3, 1e-15, 0, "decay, iteration 62");
  eta = gfv_schedule_step(&s, 75, -1.0, 0.1, eta);
  CHECK_REL(eta, 0.5 / 4, 1e-15, 0, "decay, iteration 76 (chunk 3)");
  p = params(GFV_SCHEDULE_CONSTANT, 0.1);
  CHECK(gfv_schedule_init(&s, &p) == GFV_OK, "init");
  gfv_schedule_continue(&s, 60, 0.025);
  CHECK(gfv_schedule_step(&s, 61, -1.0, 0.1, 0.025) == 0.025, "constant keeps the rescaled step");
  /* Adaptive cut at 74: chunk 3 ends at 75 with one value of its second half: no decision,
   * then chunk 4 (76-100) has no previous chunk and grows, as a first chunk does. */
  p = params(GFV_SCHEDULE_ADAPTIVE, 0.1);
  CHECK(gfv_schedule_init(&s, &p) == GFV_OK, "init");
  gfv_schedule_continue(&s, 74, 0.3);
  eta = gfv_schedule_step(&s, 75, -1.0, 0.1, 0.3);
  CHECK(eta == 0.3 && s.last_decision == 0 && !s.have_prev, "cut chunk: %g, decision %d", eta,
        s.last_decision);
  for (long t = 76; t <= 100; t++) eta = gfv_schedule_step(&s, t, -1.0, 0.1, eta);
  CHECK(eta == fmin(0.3 * 1.5, 2.0) && s.last_decision == 1, "next chunk: %g", eta);
  for (long t = 101; t <= 125; t++) eta = gfv_schedule_step(&s, t, -1.0 - (double)t, 0.1, eta);
  CHECK(eta == 0.3 * 1.5 * 0.5 && isfinite(s.prev_se), "then compares again: %g", eta);
}

static void resolve_defaults(void) {
  gfv_schedule_params p;
  gfv_schedule_resolve(&p, GFV_SCHEDULE_ADAPTIVE, 0.05, 0, 0, 10);
  CHECK(p.kind == GFV_SCHEDULE_ADAPTIVE && p.step == 0.05 && p.step_max == 1.0, "cap %g", p.step_max);
  CHECK(p.step_min == 0.05 * 0.01 && p.chunk == 25 && p.z_up == 1 && p.z_down == 0, "floor %g",
        p.step_min);
  gfv_schedule_resolve(&p, GFV_SCHEDULE_DECAY, 2.0, 0, 0, 10);
  CHECK(p.step_max == 2.0, "a --step above 1 is its own cap: %g", p.step_max);
  gfv_schedule_resolve(&p, GFV_SCHEDULE_ADAPTIVE, 0.05, 0.5, 1e-4, 3);
  CHECK(p.step_max == 0.5 && p.step_min == 0.05 / 8, "given cap %g; floor %g raised to --step / 2^3",
        p.step_max, p.step_min);
  gfv_schedule s;
  CHECK(gfv_schedule_init(&s, &p) == GFV_OK, "resolved parameters are valid");
}

static void arguments(void) {
  gfv_schedule s;
  gfv_schedule_kind k;
  CHECK(gfv_schedule_parse("adaptive", &k) == GFV_OK && k == GFV_SCHEDULE_ADAPTIVE, "adaptive");
  CHECK(gfv_schedule_parse("decay", &k) == GFV_OK && k == GFV_SCHEDULE_DECAY, "decay");
  CHECK(gfv_schedule_parse("constant", &k) == GFV_OK && k == GFV_SCHEDULE_CONSTANT, "constant");
  CHECK(gfv_schedule_parse("fast", &k) == GFV_ERR_USAGE, "fast");
  CHECK(strstr(gfv_error_message(), "--step-schedule=fast") != NULL, "message: %s", gfv_error_message());
  CHECK(strcmp(gfv_schedule_name(GFV_SCHEDULE_DECAY), "decay") == 0, "name");
  gfv_schedule_params p = params(GFV_SCHEDULE_ADAPTIVE, 0.1);
  p.step_max = 0.05;
  CHECK(gfv_schedule_init(&s, &p) == GFV_ERR_USAGE, "step_max < step");
  CHECK(strstr(gfv_error_message(), "--step-max=0.05") != NULL, "message: %s", gfv_error_message());
  p = params(GFV_SCHEDULE_ADAPTIVE, 0.1);
  p.step_min = 0.2;
  CHECK(gfv_schedule_init(&s, &p) == GFV_ERR_USAGE, "step_min > step");
  p = params(GFV_SCHEDULE_ADAPTIVE, 0.1);
  p.step_min = 0;
  CHECK(gfv_schedule_init(&s, &p) == GFV_ERR_USAGE, "step_min 0");
  p = params(GFV_SCHEDULE_ADAPTIVE, 0.1);
  p.chunk = 3;
  CHECK(gfv_schedule_init(&s, &p) == GFV_ERR_USAGE, "chunk 3");
  p = params(GFV_SCHEDULE_ADAPTIVE, 0.1);
  p.z_up = -1, p.z_down = 1;
  CHECK(gfv_schedule_init(&s, &p) == GFV_ERR_USAGE, "z_down > z_up");
}

int main(void) {
  RUN(constant_keeps_halvings);
  RUN(decay_exact);
  RUN(adaptive_grows_to_cap);
  RUN(adaptive_shrinks_to_floor);
  RUN(adaptive_halves_after_rejection);
  RUN(adaptive_noise_band);
  RUN(adaptive_second_halves);
  RUN(replay_equals_live);
  RUN(continue_after_restart);
  RUN(resolve_defaults);
  RUN(arguments);
  return harness_report();
}
