/* phases.h - the two mixture phases of one estimate (solver.c, mixture_terms), done in
 * blocks of particles that a timing-only simulated run samples (src/comm/sim.h).  In any
 * other run there is one block: the same kernel calls, on the same arrays, as one call. */
#ifndef GFLOWVI_PHASES_H
#define GFLOWVI_PHASES_H

#include "solver/solver_impl.h"

/* Blocks of particles per phase in timing-only mode: the unit SMPI benchmarks.  At most 64
 * blocks, of at least 2048 points each, so that a block is long (many DGEMM rows) next to
 * the per-call set-up of the kernel, and a few of them (GFV_SMPI_SAMPLE) stand for all. */
#define GFV_SIM_PHASE_BLOCKS 64
#define GFV_SIM_BLOCK_MIN_POINTS 2048

/* Phase A: this rank's components at all n points: s->A and the local log-sum-exp in
 * s->logq. */
int gfv_solver_phase_a(gfv_solver *s, const gfv_mix_view *v);
/* Phase B: zeroes the sums, adds this rank's share of the gradient (and Hessian) sums at all
 * points, and packs them by destination rank into s->send. */
int gfv_solver_phase_b(gfv_solver *s, const gfv_mix_view *v);
/* After the reduce-scatter, timing-only mode only: log q and the received sums set to
 * neutral values (0), off the simulated clock; see sim.h. */
void gfv_solver_phases_neutral(gfv_solver *s);

#endif
