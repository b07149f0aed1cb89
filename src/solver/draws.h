/* draws.h - the draws of the fitted mixture as the user reads them (src/solver/draws.c,
 * resample.c, posterior_nc.c): samples.csv (z), draws.csv (the model's named quantities,
 * lp__ and lq__), draws_psis.csv (the same resampled by their PSIS weights) and
 * posterior.nc (ArviZ's InferenceData layout).  Rank 0 only, not collective, except
 * gfv_draws_make_streamed (every rank). */
#ifndef GFLOWVI_DRAWS_H
#define GFLOWVI_DRAWS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "gflowvi/psis.h"
#include "solver/solver_impl.h"

typedef struct {
  size_t N, m, cols;    /* rows; model outputs; cols = m + 2 (the outputs, lp__, lq__) */
  double *v;            /* N x cols */
  char **names;         /* m output names */
  int *groups;          /* m: 0 parameter, 1 transformed parameter, 2 generated quantity */
  size_t not_computed;  /* rows whose outputs the model could not compute (NaN) */
} gfv_draws;

/* --out-samples draws of the fitted mixture: writes samples.csv (z) to samples and
 * draws.csv to csv, and keeps the rows of draws.csv in *out.  Candidate r is row r of the
 * stream (seed, 0, GFV_PURPOSE_SAMPLES_CSV) (gfv_stream_mixture_row); its model outputs
 * get the seed word 0 of (r, 0) of (seed, 0, GFV_PURPOSE_DRAWS).  With restrict_ (a bounded
 * support: the final evaluation saw draws outside it) a candidate where the target is -inf
 * is dropped, and the next one takes its place. */
int gfv_draws_make(gfv_solver *s, int restrict_, FILE *samples, FILE *csv, gfv_draws *out);
/* The same rows beyond the gather budget, collective, without the whole mixture: the
 * weights gathered (full_logw), each draw made by its component's owner and log q at the
 * draws summed over the mixture's blocks as they pass round the ring (lq__ agrees with the
 * gathered path's to rounding, the rest bitwise).  samples and csv: rank 0's; out is
 * filled on rank 0 only. */
int gfv_draws_make_streamed(gfv_solver *s, int restrict_, FILE *samples, FILE *csv, gfv_draws *out);
void gfv_draws_free(gfv_draws *d);

/* draws.csv's header line and one row (NaN written as NaN; names with a comma or a double
 * quote quoted as in RFC 4180). */
void gfv_draws_csv_header(const gfv_draws *d, FILE *f);
void gfv_draws_csv_row(const gfv_draws *d, size_t i, FILE *f);

/* draws_psis.csv: N draws with replacement, row i with probability proportional to its
 * Pareto-smoothed importance weight exp(lp__ - lq__) (psis.h); row i of the file picks
 * with word i of the sequence (0, 0) of the stream (seed, 0, GFV_PURPOSE_RESAMPLE).
 * *res: the PSIS diagnostics of the weights; *distinct: the number of different rows. */
int gfv_draws_resample_psis(const gfv_draws *d, uint64_t seed, FILE *f, gfv_psis_result *res,
                            size_t *distinct);

/* posterior.nc, built in memory and written to out (the caller renames it with the other
 * outputs): root and groups "posterior" (one variable per named quantity; names
 * "theta[1]".."theta[8]" become theta with dims (chain, draw, theta_dim_0)) and
 * "sample_stats" (lp, lq), dims chain (1) and draw (N), integer coordinates, and the
 * attributes created_at, inference_library, inference_library_version, target. */
typedef struct {
  const char *target, *version;
} gfv_nc_meta;
int gfv_posterior_nc_write(const gfv_draws *d, const char *path, const gfv_nc_meta *meta, FILE *out);

/* The variables of posterior.nc, from the output names (exposed for the tests). */
#define GFV_NC_MAXDIM 8
typedef struct {
  char *name;           /* a valid, unique netCDF name */
  int ndim;
  size_t shape[GFV_NC_MAXDIM];
  size_t size;          /* product of shape */
  size_t *cols;         /* size: the column of each element, row-major */
  int group;
} gfv_nc_var;
int gfv_nc_layout(size_t m, char *const *names, const int *groups, gfv_nc_var **vars, size_t *nvars);
void gfv_nc_layout_free(gfv_nc_var *vars, size_t nvars);

#endif
