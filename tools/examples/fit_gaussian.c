/* fit_gaussian.c - libgflowvi from a C program (docs/library.md): fits one Gaussian to a
 * density given as a function, N(m, S) with m = (1, -2), S = [[2, 0.6], [0.6, 1]], on one
 * process without MPI, through the public life cycle only (docs/api.md), and prints the
 * fitted mean and covariance.  Build it against an installed gflowvi:
 *   cc fit_gaussian.c $(pkg-config --cflags --libs gflowvi) */
#include <stdio.h>

#include <gflowvi/comm.h>
#include <gflowvi/error.h>
#include <gflowvi/solver.h>
#include <gflowvi/version.h>

/* l(z) = -1/2 (z - m)^T S^-1 (z - m) + const, with S^-1 = [[1, -0.6], [-0.6, 2]] / 1.64. */
static int logp(void *ctx, size_t n, size_t d, const double *z, double *lp, double *grad,
                double *hess) {
  (void)ctx, (void)hess;
  for (size_t i = 0; i < n; i++) {
    double x = z[i * d] - 1.0, y = z[i * d + 1] + 2.0;
    grad[i * d] = -(x - 0.6 * y) / 1.64, grad[i * d + 1] = -(-0.6 * x + 2.0 * y) / 1.64;
    lp[i] = 0.5 * (x * grad[i * d] + y * grad[i * d + 1]);
  }
  return 0;
}

int main(void) {
  int major;
  printf("gflowvi %s (header %s)\n", gfv_version(&major, NULL, NULL), GFV_VERSION_STRING);
  if (major != GFV_VERSION_MAJOR) return 1;
  gfv_comm *comm = NULL;
  gfv_target *t = NULL;
  gfv_solver *s = NULL;
  double w, mu[2], S[4];
  int st = gfv_comm_self(&comm);
  if (!st) st = gfv_target_create_callback(2, logp, NULL, 0, &t);
  if (!st) st = gfv_solver_create_empty(comm, &s);
  if (!st) st = gfv_solver_set_option(s, "particles", "1"); /* the options of gflowvi --help */
  if (!st) st = gfv_solver_set_option(s, "quiet", "true");
  if (!st) st = gfv_solver_set_target(s, t);
  if (!st) st = gfv_solver_solve(s);
  if (!st) st = gfv_solver_gather_covariances(s, &w, mu, S); /* weights, means, covariances */
  if (st) /* a failed call on s is recorded in s; before s exists, in the thread */
    fprintf(stderr, "error %d (%s): %s\n", st, gfv_status_name(st),
            s ? gfv_solver_error_message(s) : gfv_error_message());
  else
    printf("iterations %ld\nmean %.4f %.4f\ncov %.4f %.4f %.4f %.4f\n", gfv_solver_iteration(s),
           mu[0], mu[1], S[0], S[1], S[2], S[3]);
  gfv_solver_free(s);
  gfv_target_free(t);
  gfv_comm_free(comm);
  return st;
}
