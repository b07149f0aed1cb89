/* interrupt.h - asking a run to stop, from a signal handler, in any phase.
 *
 * The program's handler for SIGTERM / SIGUSR1 / SIGINT stores the signal number in a flag;
 * every long loop of the library (the iteration, the initialisation, the final evaluation,
 * the output writing) polls gfv_interrupt_signal() at its next safe point and returns
 * GFV_STOPPED, which the collective that follows spreads to every rank.  Where there is
 * state to keep, the caller then writes a checkpoint (gfv_solver_stop).  Process-global,
 * like the signal itself. */
#ifndef GFLOWVI_INTERRUPT_H
#define GFLOWVI_INTERRUPT_H

/* Exported from libgflowvi.so (built with -fvisibility=hidden): docs/library.md. */
#pragma GCC visibility push(default)

#include <signal.h>

/* The flag a signal handler sets (to the signal number); NULL stops watching. */
void gfv_interrupt_watch(volatile sig_atomic_t *flag);

/* The signal that asked for a stop, or 0. */
int gfv_interrupt_signal(void);

/* "SIGTERM", "SIGUSR1", "SIGINT", or "a stop signal". */
const char *gfv_interrupt_name(int sig);

#pragma GCC visibility pop

#endif
