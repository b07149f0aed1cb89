/* comm.h - the communication layer: the only part of gflowvi that knows about MPI.
 *
 * A gfv_comm is either an MPI communicator (gfv_comm_init_mpi) or a single process with
 * no MPI at all (gfv_comm_self), so the numerical core and its unit tests run without
 * mpirun.  Every function marked "collective" must be called by all ranks in the same
 * order.  Counts are size_t here and checked against MPI's int limit inside. */
#ifndef GFLOWVI_COMM_H
#define GFLOWVI_COMM_H

/* Exported from libgflowvi.so (built with -fvisibility=hidden): docs/library.md. */
#pragma GCC visibility push(default)

#include <stddef.h>

typedef struct gfv_comm gfv_comm;

/* Initialises MPI (if not yet) and wraps a duplicate of MPI_COMM_WORLD, with errors returned,
 * not fatal, on the duplicate only (WORLD keeps its handler).  To wrap a communicator of
 * your own, see gflowvi/comm_mpi.h. */
int gfv_comm_init_mpi(int *argc, char ***argv, gfv_comm **out);
/* A one-rank communicator that never calls MPI. */
int gfv_comm_self(gfv_comm **out);
/* Frees the object; finalises MPI if gfv_comm_init_mpi initialised it. */
void gfv_comm_free(gfv_comm *c);

int gfv_comm_rank(const gfv_comm *c);
int gfv_comm_size(const gfv_comm *c);
/* Wall-clock seconds (MPI_Wtime or a monotonic clock). */
double gfv_comm_wtime(void);
/* Bytes this rank has passed to collectives so far (its share of traffic). */
double gfv_comm_bytes_sent(const gfv_comm *c);

/* Collective.  recv gets every rank's block: rank r's counts[r] doubles at displs[r].
 * send may already sit at its place in recv (send == recv + displs[rank]). */
int gfv_comm_allgatherv(gfv_comm *c, const double *send, size_t send_count, double *recv,
                        const size_t *counts, const size_t *displs);
/* Collective, in place: elementwise sum / max over ranks. */
int gfv_comm_allreduce_sum(gfv_comm *c, double *buf, size_t n);
int gfv_comm_allreduce_max(gfv_comm *c, double *buf, size_t n);
/* Collective, in place: buf[i] <- log(sum_r exp(buf_r[i])), computed stably (-inf allowed). */
int gfv_comm_allreduce_logsumexp(gfv_comm *c, double *buf, size_t n);
/* Collective: sums send (the concatenation of every rank's block, counts[r] doubles each)
 * over ranks and delivers rank r's block to its recv. */
int gfv_comm_reduce_scatter_sum(gfv_comm *c, const double *send, double *recv, const size_t *counts);
/* Collective, in place: buf[i] <- the sum of buf[i] over the ranks on this rank's node
 * (those that share its memory); *node_ranks (may be NULL) gets their number. */
int gfv_comm_node_sum(gfv_comm *c, double *buf, size_t n, int *node_ranks);
/* Collective: one step of a ring.  Sends send_count doubles to rank + 1 and receives
 * recv_count doubles from rank - 1 (modulo the size) into recv (not overlapping send); on
 * one rank recv gets send. */
int gfv_comm_ring_shift(gfv_comm *c, const double *send, size_t send_count, double *recv,
                        size_t recv_count);
/* Collective: broadcast of raw bytes from root. */
int gfv_comm_bcast(gfv_comm *c, void *buf, size_t bytes, int root);
/* Collective: scatters variable-length byte blocks from root: rank r receives counts[r]
 * bytes from send + displs[r] (send, counts and displs significant at root only) into recv,
 * `bytes` of them. */
int gfv_comm_scatterv_bytes(gfv_comm *c, const void *send, const size_t *counts,
                            const size_t *displs, void *recv, size_t bytes, int root);
/* Collective: gathers variable-length byte blocks to root (recv significant at root only). */
int gfv_comm_gatherv_bytes(gfv_comm *c, const void *send, size_t bytes, void *recv,
                           const size_t *counts, const size_t *displs, int root);

/* Point to point, blocking: `bytes` bytes to rank dest, and from rank src (which must send
 * exactly that many with the same tag).  For streams that one rank takes in turn from each
 * of the others (checkpoint.c), where a gather would need the whole at once.  MPI only:
 * a one-rank communicator has no other rank (GFV_ERR_INTERNAL). */
int gfv_comm_send_bytes(gfv_comm *c, const void *buf, size_t bytes, int dest, int tag);
int gfv_comm_recv_bytes(gfv_comm *c, void *buf, size_t bytes, int src, int tag);

/* Collective: makes every rank agree on the outcome of a step that may have failed on
 * some ranks.  Returns 0 when all ranks passed 0; otherwise the status of the lowest
 * failing rank, on every rank.  The lowest failing rank keeps its message; the others
 * have GFV_ERR_OTHER_RANK in *is_reporter = 0 so that only one line is printed.
 * is_reporter may be NULL. */
int gfv_comm_agree(gfv_comm *c, int status, int *is_reporter);

/* Ends every rank at once after an unrecoverable error on one rank (MPI_Abort). */
void gfv_comm_abort(gfv_comm *c, int code);

#pragma GCC visibility pop

#endif
