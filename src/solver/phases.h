/* phases.h - the mixture phases of one estimate (solver.c, mixture_terms_samples and
 * mixture_terms_params), done in blocks of particles that a timing-only simulated run
 * samples (src/comm/sim.h).  In any other run the blocks are the ranges the layout uses
 * anyway: one block (the same kernel calls, on the same arrays, as one call), or in the
 * samples layout the ranges of a_rows points when n x kloc terms exceed its budget. */
#ifndef GFLOWVI_PHASES_H
#define GFLOWVI_PHASES_H

#include "solver/solver_impl.h"

/* Blocks of particles per phase in timing-only mode: the unit SMPI benchmarks.  At most 64
 * blocks, of at least 2048 points each, so that a block is long (many DGEMM rows) next to
 * the per-call set-up of the kernel, and a few of them (GFV_SMPI_SAMPLE) stand for all. */
#define GFV_SIM_PHASE_BLOCKS 64
#define GFV_SIM_BLOCK_MIN_POINTS 2048

/* Samples layout, phase A: this rank's components at all n points: s->A (all n rows, or
 * the block's when a_rows < n) and the local log-sum-exp in s->logq. */
int gfv_solver_phase_a(gfv_solver *s, const gfv_mix_view *v);
/* Samples layout, phase B: zeroes the sums, adds this rank's share of the gradient (and
 * Hessian) sums at all points (recomputing the block's phase-A terms first when a_rows <
 * n), and packs them by destination rank into s->send; with the Hessian sums in chunks
 * (h_rows < K), reduce-scatters each chunk's into s->recv instead, packing nothing. */
int gfv_solver_phase_b(gfv_solver *s, const gfv_mix_view *v);
/* Params layout: the whole mixture v at this rank's own samples, the fused kernel, into
 * s->logq and s->recv (gradient sums, then the local particles' Hessian sums). */
int gfv_solver_phase_fused(gfv_solver *s, const gfv_mix_view *v);
/* After the exchange, timing-only mode only: log q and the received sums set to neutral
 * values (0), off the simulated clock; see sim.h. */
void gfv_solver_phases_neutral(gfv_solver *s);

#endif
