/* harness.h - a minimal deterministic unit-test harness.
 *
 * Each test is a void function; RUN(fn) runs it and prints "PASS name" or, for every
 * failed check, "FAIL name: file:line: message".  harness_report() prints the totals and
 * returns the exit status (0 when everything passed).  tests/run_all.sh counts the
 * PASS/FAIL lines of every test program. */
#ifndef GFV_TEST_HARNESS_H
#define GFV_TEST_HARNESS_H

#include <math.h>
#include <stdio.h>

static int harness_failed_checks;  /* failed checks in the current test */
static int harness_tests_passed, harness_tests_failed;
static const char *harness_current = "";

#define CHECK(cond, ...)                                                                           \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      harness_failed_checks++;                                                                     \
      printf("FAIL %s: %s:%d: ", harness_current, __FILE__, __LINE__);                           \
      printf(__VA_ARGS__);                                                                         \
      printf("\n");                                                                                \
    }                                                                                              \
  } while (0)

/* |a - b| <= tol, and both finite. */
#define CHECK_NEAR(a, b, tol, what)                                                                \
  do {                                                                                             \
    double ha_ = (a), hb_ = (b), ht_ = (tol);                                                      \
    CHECK(isfinite(ha_) && isfinite(hb_) && fabs(ha_ - hb_) <= ht_,                                \
          "%s: %.12g vs %.12g (|diff| %.3g > tol %.3g)", (what), ha_, hb_, fabs(ha_ - hb_), ht_); \
  } while (0)

/* |a - b| <= rtol * max(|a|, |b|, floor) */
#define CHECK_REL(a, b, rtol, floor_, what)                                                        \
  do {                                                                                             \
    double ha_ = (a), hb_ = (b);                                                                   \
    double hs_ = fmax(fmax(fabs(ha_), fabs(hb_)), (floor_));                                       \
    CHECK(isfinite(ha_) && isfinite(hb_) && fabs(ha_ - hb_) <= (rtol) * hs_,                       \
          "%s: %.12g vs %.12g (rel diff %.3g > %.3g)", (what), ha_, hb_,                           \
          fabs(ha_ - hb_) / hs_, (double)(rtol));                                                  \
  } while (0)

#define RUN(fn)                                                                                    \
  do {                                                                                             \
    harness_current = #fn;                                                                         \
    harness_failed_checks = 0;                                                                     \
    fn();                                                                                          \
    if (harness_failed_checks) harness_tests_failed++;                                             \
    else {                                                                                         \
      harness_tests_passed++;                                                                      \
      printf("PASS %s\n", #fn);                                                                    \
    }                                                                                              \
    fflush(stdout);                                                                                \
  } while (0)

static inline int harness_report(void) {
  printf("# %d passed, %d failed\n", harness_tests_passed, harness_tests_failed);
  return harness_tests_failed ? 1 : 0;
}

#endif
