/* comm.c - the only file of gflowvi that includes mpi.h (see comm.h).
 *
 * Two implementations behind one object: a duplicate of MPI_COMM_WORLD (or of the caller's
 * communicator, comm_mpi.h) with MPI_ERRORS_RETURN, so MPI failures come back as statuses
 * instead of killing the job silently; and a one-rank
 * "self" communicator that never touches MPI, for unit tests and tools. */
#include "gflowvi/comm.h"
#include "gflowvi/comm_mpi.h"

#include <limits.h>
#include <math.h>
#include <mpi.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gflowvi/error.h"
#include "linalg/linalg.h"

struct gfv_comm {
  int is_mpi;
  int owns_mpi; /* we called MPI_Init, so we call MPI_Finalize */
  MPI_Comm comm;
  int rank, size;
  MPI_Op lse_op;
  double bytes_sent;
  int *icounts, *idispls; /* size entries: int copies of size_t counts for MPI */
};

/* Sanitizer builds (make SAN=1 defines GFV_SANITIZE): MPI_Init and MPI_Finalize wrapped
 * through MPI's profiling interface, for every MPI program linked with libgflowvi.a
 * (gflowvi, the tools).  LeakSanitizer ignores what MPI_Init allocates (Open MPI's own
 * state, some of which it drops) and checks for leaks at the start of MPI_Finalize, while
 * the rest of Open MPI's state is still reachable.  At exit, after MPI_Finalize has
 * dlclose'd its components, thousands of Open MPI allocations would be reported from
 * unknown modules, beyond any suppression (tests/sanitizers/lsan.supp). */
#ifdef GFV_SANITIZE
#include <sanitizer/lsan_interface.h>
int MPI_Init(int *argc, char ***argv) {
  __lsan_disable();
  int rc = PMPI_Init(argc, argv);
  __lsan_enable();
  return rc;
}
int MPI_Init_thread(int *argc, char ***argv, int required, int *provided) {
  __lsan_disable();
  int rc = PMPI_Init_thread(argc, argv, required, provided);
  __lsan_enable();
  return rc;
}
int MPI_Finalize(void) {
  __lsan_do_leak_check();
  return PMPI_Finalize();
}
#endif

static int mpi_check(int rc, const char *what) {
  if (rc == MPI_SUCCESS) return GFV_OK;
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, msg, &len);
  GFV_ERROR(GFV_ERR_MPI, "MPI %s failed: %s", what, msg);
}
#undef MPI_CALL /* SimGrid's mpi.h (make smpi) has a macro of that name, for its own use */
#define MPI_CALL(call, what) GFV_CALL(mpi_check((call), (what)))

static void lse_reduce(void *in, void *inout, int *len, MPI_Datatype *type) {
  (void)type;
  const double *a = in;
  double *b = inout;
  for (int i = 0; i < *len; i++) b[i] = gfv_logaddexp(a[i], b[i]);
}

static int to_int(size_t n, int *out) {
  GFV_CHECK(n <= (size_t)INT_MAX, GFV_ERR_MPI, "message of %zu elements exceeds MPI's int count", n);
  *out = (int)n;
  return GFV_OK;
}

/* Copies size_t counts/displacements into the int arrays MPI wants. */
static int int_counts(gfv_comm *c, const size_t *counts, const size_t *displs) {
  for (int r = 0; r < c->size; r++) {
    GFV_CALL(to_int(counts[r], &c->icounts[r]));
    if (displs) GFV_CALL(to_int(displs[r], &c->idispls[r]));
  }
  return GFV_OK;
}

static int comm_alloc(gfv_comm **out, int size) {
  gfv_comm *c;
  GFV_ALLOC(c, 1);
  int st;
  GFV_CALL_GOTO(st, gfv_calloc(&c->icounts, (size_t)size, sizeof(int)), fail);
  GFV_CALL_GOTO(st, gfv_calloc(&c->idispls, (size_t)size, sizeof(int)), fail);
  c->size = size;
  *out = c;
  return GFV_OK;
fail:
  free(c->icounts);
  free(c);
  return st;
}

/* Wraps a duplicate of base: the duplicate gets MPI_ERRORS_RETURN, so MPI failures come
 * back as statuses, while base (the caller's, or MPI_COMM_WORLD) keeps its own handler and
 * none of gflowvi's messages can match a message of the caller's on it. */
static int wrap_mpi(MPI_Comm base, int owns_mpi, gfv_comm **out) {
  MPI_Comm dup = MPI_COMM_NULL;
  int size = 1, st;
  /* Under base's own handler: a failing duplication does what the caller asked for. */
  MPI_CALL(MPI_Comm_dup(base, &dup), "MPI_Comm_dup");
  MPI_Comm_set_errhandler(dup, MPI_ERRORS_RETURN);
  MPI_Comm_size(dup, &size);
  GFV_CALL_GOTO(st, comm_alloc(out, size), fail);
  gfv_comm *c = *out;
  c->is_mpi = 1;
  c->owns_mpi = owns_mpi;
  c->comm = dup;
  MPI_Comm_rank(c->comm, &c->rank);
  GFV_CALL_GOTO(st, mpi_check(MPI_Op_create(lse_reduce, 1, &c->lse_op), "MPI_Op_create"), fail_c);
  return GFV_OK;
fail_c:
  free(c->icounts), free(c->idispls), free(c);
  *out = NULL;
fail:
  MPI_Comm_free(&dup);
  return st;
}

int gfv_comm_init_mpi(int *argc, char ***argv, gfv_comm **out) {
  int inited = 0;
  MPI_Initialized(&inited);
  if (!inited) MPI_CALL(MPI_Init(argc, argv), "MPI_Init");
  GFV_CALL(wrap_mpi(MPI_COMM_WORLD, !inited, out));
  return GFV_OK;
}

int gfv_comm_create_from_mpi(MPI_Comm comm, gfv_comm **out) {
  *out = NULL;
  int inited = 0, finalized = 0;
  MPI_Initialized(&inited);
  MPI_Finalized(&finalized);
  GFV_CHECK(inited && !finalized, GFV_ERR_USAGE,
            "gfv_comm_create_from_mpi: MPI is not initialised (call MPI_Init first)");
  GFV_CHECK(comm != MPI_COMM_NULL, GFV_ERR_USAGE, "gfv_comm_create_from_mpi: MPI_COMM_NULL given");
  GFV_CALL(wrap_mpi(comm, 0, out));
  return GFV_OK;
}

int gfv_comm_self(gfv_comm **out) {
  GFV_CALL(comm_alloc(out, 1));
  (*out)->rank = 0;
  return GFV_OK;
}

void gfv_comm_free(gfv_comm *c) {
  if (!c) return;
  if (c->is_mpi) {
    MPI_Op_free(&c->lse_op);
    MPI_Comm_free(&c->comm);
    if (c->owns_mpi) MPI_Finalize();
  }
  free(c->icounts);
  free(c->idispls);
  free(c);
}

int gfv_comm_rank(const gfv_comm *c) { return c->rank; }
int gfv_comm_size(const gfv_comm *c) { return c->size; }
double gfv_comm_bytes_sent(const gfv_comm *c) { return c->bytes_sent; }

double gfv_comm_wtime(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int gfv_comm_allgatherv(gfv_comm *c, const double *send, size_t send_count, double *recv,
                        const size_t *counts, const size_t *displs) {
  if (!c->is_mpi) {
    memmove(recv + displs[0], send, send_count * sizeof(double));
    return GFV_OK;
  }
  int n = 0;
  GFV_CALL(to_int(send_count, &n));
  GFV_CALL(int_counts(c, counts, displs));
  c->bytes_sent += (double)send_count * sizeof(double);
  /* A rank that wrote its block in place must say so: MPI forbids aliased buffers. */
  const void *src = send == recv + displs[c->rank] ? MPI_IN_PLACE : (const void *)send;
  MPI_CALL(MPI_Allgatherv(src, n, MPI_DOUBLE, recv, c->icounts, c->idispls, MPI_DOUBLE, c->comm),
           "Allgatherv");
  return GFV_OK;
}

static int allreduce(gfv_comm *c, double *buf, size_t n, MPI_Op op, const char *what) {
  if (!c->is_mpi || n == 0) return GFV_OK;
  int in = 0;
  GFV_CALL(to_int(n, &in));
  c->bytes_sent += (double)n * sizeof(double);
  MPI_CALL(MPI_Allreduce(MPI_IN_PLACE, buf, in, MPI_DOUBLE, op, c->comm), what);
  return GFV_OK;
}

int gfv_comm_allreduce_sum(gfv_comm *c, double *buf, size_t n) {
  return allreduce(c, buf, n, MPI_SUM, "Allreduce(sum)");
}
int gfv_comm_allreduce_max(gfv_comm *c, double *buf, size_t n) {
  return allreduce(c, buf, n, MPI_MAX, "Allreduce(max)");
}
int gfv_comm_allreduce_logsumexp(gfv_comm *c, double *buf, size_t n) {
  return c->is_mpi ? allreduce(c, buf, n, c->lse_op, "Allreduce(logsumexp)") : GFV_OK;
}

int gfv_comm_node_sum(gfv_comm *c, double *buf, size_t n, int *node_ranks) {
  if (node_ranks) *node_ranks = 1;
  if (!c->is_mpi) return GFV_OK;
  int in = 0, size = 1, rc;
  GFV_CALL(to_int(n, &in));
  /* The ranks that can share memory are the ones on one node: what a node's memory
   * limits (cgroup, MemAvailable) have to hold together. */
  MPI_Comm node;
  MPI_CALL(MPI_Comm_split_type(c->comm, MPI_COMM_TYPE_SHARED, c->rank, MPI_INFO_NULL, &node),
           "Comm_split_type(shared)");
  MPI_Comm_set_errhandler(node, MPI_ERRORS_RETURN);
  rc = MPI_Allreduce(MPI_IN_PLACE, buf, in, MPI_DOUBLE, MPI_SUM, node);
  if (rc == MPI_SUCCESS) rc = MPI_Comm_size(node, &size);
  MPI_Comm_free(&node);
  MPI_CALL(rc, "Allreduce(node sum)");
  c->bytes_sent += (double)n * sizeof(double);
  if (node_ranks) *node_ranks = size;
  return GFV_OK;
}

int gfv_comm_reduce_scatter_sum(gfv_comm *c, const double *send, double *recv, const size_t *counts) {
  if (!c->is_mpi) {
    memmove(recv, send, counts[0] * sizeof(double));
    return GFV_OK;
  }
  GFV_CALL(int_counts(c, counts, NULL));
  double total = 0;
  for (int r = 0; r < c->size; r++) total += (double)counts[r];
  c->bytes_sent += total * sizeof(double);
  MPI_CALL(MPI_Reduce_scatter(send, recv, c->icounts, MPI_DOUBLE, MPI_SUM, c->comm),
           "Reduce_scatter");
  return GFV_OK;
}

int gfv_comm_ring_shift(gfv_comm *c, const double *send, size_t send_count, double *recv,
                        size_t recv_count) {
  if (!c->is_mpi || c->size == 1) {
    memmove(recv, send, (send_count < recv_count ? send_count : recv_count) * sizeof(double));
    return GFV_OK;
  }
  int ns = 0, nr = 0;
  GFV_CALL(to_int(send_count, &ns));
  GFV_CALL(to_int(recv_count, &nr));
  c->bytes_sent += (double)send_count * sizeof(double);
  const int next = (c->rank + 1) % c->size, prev = (c->rank + c->size - 1) % c->size;
  MPI_CALL(MPI_Sendrecv(send, ns, MPI_DOUBLE, next, 12, recv, nr, MPI_DOUBLE, prev, 12, c->comm,
                        MPI_STATUS_IGNORE),
           "Sendrecv(ring)");
  return GFV_OK;
}

int gfv_comm_bcast(gfv_comm *c, void *buf, size_t bytes, int root) {
  if (!c->is_mpi) return GFV_OK;
  int n = 0;
  GFV_CALL(to_int(bytes, &n));
  if (c->rank == root) c->bytes_sent += (double)bytes;
  MPI_CALL(MPI_Bcast(buf, n, MPI_BYTE, root, c->comm), "Bcast");
  return GFV_OK;
}

int gfv_comm_scatterv_bytes(gfv_comm *c, const void *send, const size_t *counts,
                            const size_t *displs, void *recv, size_t bytes, int root) {
  if (!c->is_mpi) {
    memmove(recv, (const char *)send + displs[0], bytes);
    return GFV_OK;
  }
  int n = 0;
  GFV_CALL(to_int(bytes, &n));
  if (c->rank == root) {
    GFV_CALL(int_counts(c, counts, displs));
    for (int r = 0; r < c->size; r++) c->bytes_sent += r == root ? 0.0 : (double)counts[r];
  }
  MPI_CALL(MPI_Scatterv(send, c->icounts, c->idispls, MPI_BYTE, recv, n, MPI_BYTE, root, c->comm),
           "Scatterv");
  return GFV_OK;
}

int gfv_comm_gatherv_bytes(gfv_comm *c, const void *send, size_t bytes, void *recv,
                           const size_t *counts, const size_t *displs, int root) {
  if (!c->is_mpi) {
    memmove((char *)recv + displs[0], send, bytes);
    return GFV_OK;
  }
  int n = 0;
  GFV_CALL(to_int(bytes, &n));
  GFV_CALL(int_counts(c, counts, displs));
  c->bytes_sent += (double)bytes;
  MPI_CALL(MPI_Gatherv(send, n, MPI_BYTE, recv, c->icounts, c->idispls, MPI_BYTE, root, c->comm),
           "Gatherv");
  return GFV_OK;
}

int gfv_comm_send_bytes(gfv_comm *c, const void *buf, size_t bytes, int dest, int tag) {
  GFV_CHECK(c->is_mpi && dest != c->rank, GFV_ERR_INTERNAL, "gfv_comm_send_bytes: no rank %d to send to", dest);
  int n = 0;
  GFV_CALL(to_int(bytes, &n));
  c->bytes_sent += (double)bytes;
  MPI_CALL(MPI_Send(buf, n, MPI_BYTE, dest, tag, c->comm), "Send");
  return GFV_OK;
}

int gfv_comm_recv_bytes(gfv_comm *c, void *buf, size_t bytes, int src, int tag) {
  GFV_CHECK(c->is_mpi && src != c->rank, GFV_ERR_INTERNAL, "gfv_comm_recv_bytes: no rank %d to receive from", src);
  int n = 0, got = 0;
  GFV_CALL(to_int(bytes, &n));
  MPI_Status status;
  MPI_CALL(MPI_Recv(buf, n, MPI_BYTE, src, tag, c->comm, &status), "Recv");
  MPI_CALL(MPI_Get_count(&status, MPI_BYTE, &got), "Get_count");
  GFV_CHECK(got == n, GFV_ERR_INTERNAL, "rank %d sent %d bytes, %d expected", src, got, n);
  return GFV_OK;
}

int gfv_comm_agree(gfv_comm *c, int status, int *is_reporter) {
  if (is_reporter) *is_reporter = status != 0;
  if (!c->is_mpi) return status;
  /* MINLOC over (failing rank, its status): one collective finds the lowest failing rank
   * and its status at once; ranks without failure offer `size`, which never wins. */
  struct {
    int value, loc;
  } mine = {status ? c->rank : c->size, status}, low;
  int rc = MPI_Allreduce(&mine, &low, 1, MPI_2INT, MPI_MINLOC, c->comm);
  if (rc != MPI_SUCCESS) return mpi_check(rc, "Allreduce(agree)");
  if (low.value == c->size) return GFV_OK;
  if (is_reporter) *is_reporter = low.value == c->rank;
  return low.loc;
}

void gfv_comm_abort(gfv_comm *c, int code) {
  if (c && c->is_mpi) MPI_Abort(c->comm, code);
  exit(code);
}
