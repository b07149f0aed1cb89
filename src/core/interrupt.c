/* interrupt.c - the process's stop flag (see interrupt.h). */
#include "gflowvi/interrupt.h"

#include <stddef.h>

static volatile sig_atomic_t *watched;

void gfv_interrupt_watch(volatile sig_atomic_t *flag) { watched = flag; }

int gfv_interrupt_signal(void) { return watched ? (int)*watched : 0; }

const char *gfv_interrupt_name(int sig) {
  return sig == SIGTERM ? "SIGTERM" : sig == SIGUSR1 ? "SIGUSR1" : sig == SIGINT ? "SIGINT" : "a stop signal";
}
