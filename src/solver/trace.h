/* trace.h - one row of the run's trace (trace.csv, and the checkpoint's /trace): what every
 * accepted iteration records.  Its own header so that the modules that recompute their state
 * from the trace (convergence.h, schedule.h) need not include the solver's state. */
#ifndef GFLOWVI_TRACE_H
#define GFLOWVI_TRACE_H

typedef struct {
  long iteration;
  double elbo, elbo_se, step_norm, step_size, seconds;
} gfv_trace_row;

#endif
