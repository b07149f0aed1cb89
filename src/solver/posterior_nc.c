/* posterior_nc.c - posterior.nc: the draws in ArviZ's InferenceData layout, for
 * arviz.from_netcdf (and xarray.open_dataset(path, group=...)).
 *
 * netCDF-4 (HDF5 underneath, through Debian's Open MPI build of netCDF, loaded at run time:
 * io/netcdf_dl.h) written in memory (nc_create_mem)
 * and handed over as a file image, so it is renamed with the other outputs like
 * mixture.h5 and a failure leaves no file.  Groups "posterior" and "sample_stats", each
 * with dims chain (1) and draw (N) and their integer coordinates, as ArviZ writes them; a
 * quantity named with indices ("theta[1]".."theta[8]", "Sigma[1,1]".."Sigma[2,2]") is one
 * variable with one more dim per index, theta_dim_0 (0-based coordinates), as ArviZ makes
 * of Stan's output. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gflowvi/error.h"
#include "io/netcdf_dl.h"
#include "solver/draws.h"

/* ---- names to variables --------------------------------------------------------------- */

/* "base[i,j]" -> base length and the 1-based indices; 0 when name has no valid indices. */
static int parse_indexed(const char *name, size_t *baselen, int *ndim, size_t *idx) {
  const char *br = strchr(name, '[');
  size_t n = strlen(name);
  if (!br || br == name || n < 3 || name[n - 1] != ']') return 0;
  *baselen = (size_t)(br - name);
  *ndim = 0;
  for (const char *p = br + 1;;) {
    char *end;
    if (*p < '0' || *p > '9' || *ndim == GFV_NC_MAXDIM) return 0;
    unsigned long v = strtoul(p, &end, 10);
    if (v < 1 || v > 100000000UL) return 0;
    idx[(*ndim)++] = v;
    if (*end == ']') return end == name + n - 1;
    if (*end != ',') return 0;
    p = end + 1;
    while (*p == ' ') p++;
  }
}

/* A valid netCDF-4 name for s: no '/', no control characters, no trailing blank, a first
 * character that is a letter, a digit, '_' or a UTF-8 multibyte one (netCDF's own rule). */
static char *nc_name(const char *s, size_t len) {
  char *o = malloc(len + 2), *p = o;
  if (!o) return NULL;
  unsigned char first = len ? (unsigned char)s[0] : 0;
  if (!(first >= 0x80 || first == '_' || (first >= '0' && first <= '9') ||
        ((first | 0x20) >= 'a' && (first | 0x20) <= 'z')))
    *p++ = '_';
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    *p++ = c == '/' || c < 0x20 || c == 0x7f ? '_' : (char)c;
  }
  for (char *q = p; q > o + 1 && q[-1] == ' '; q--) q[-1] = '_'; /* trailing blanks */
  *p = '\0';
  if (strlen(o) > NC_MAX_NAME) o[NC_MAX_NAME] = '\0';
  return o;
}

/* Whether name is "<base>_dim_<k>". */
static int is_dim_of(const char *name, const char *base) {
  size_t l = strlen(base);
  return !strncmp(name, base, l) && !strncmp(name + l, "_dim_", 5);
}

/* Whether name, for a variable with ndim dims, is taken by a variable or by a dim or
 * coordinate of the group, or would give a coordinate the name of a variable. */
static int taken(const gfv_nc_var *v, size_t n, const char *name, int ndim) {
  if (!strcmp(name, "chain") || !strcmp(name, "draw")) return 1;
  for (size_t i = 0; i < n; i++) {
    if (!strcmp(v[i].name, name)) return 1;
    if (v[i].ndim && is_dim_of(name, v[i].name)) return 1;
    if (ndim && is_dim_of(v[i].name, name)) return 1;
  }
  return 0;
}

/* Adds variable n: name (made unique with trailing '_'), its columns. */
static int add_var(gfv_nc_var *v, size_t n, char *name, int ndim, const size_t *shape, int group) {
  while (taken(v, n, name, ndim) && strlen(name) < NC_MAX_NAME) {
    size_t l = strlen(name);
    char *longer = realloc(name, l + 2);
    if (!longer) break;
    name = longer;
    name[l] = '_', name[l + 1] = '\0';
  }
  gfv_nc_var *x = &v[n];
  x->name = name, x->ndim = ndim, x->group = group, x->size = 1;
  for (int k = 0; k < ndim; k++) x->shape[k] = shape[k], x->size *= shape[k];
  GFV_CALL(gfv_calloc(&x->cols, x->size, sizeof(size_t)));
  for (size_t e = 0; e < x->size; e++) x->cols[e] = SIZE_MAX;
  return GFV_OK;
}

/* Columns j0.. with the same base as j0 and a valid index each, filling a complete array
 * exactly once; 0 otherwise (then every column stays a scalar of its own). */
static int try_array(size_t m, char *const *names, size_t j0, const unsigned char *used,
                     size_t *shape, int *ndim) {
  size_t bl, idx[GFV_NC_MAXDIM], cells = 1, count = 0;
  if (!parse_indexed(names[j0], &bl, ndim, idx)) return 0;
  for (int k = 0; k < *ndim; k++) shape[k] = 0;
  for (size_t j = j0; j < m; j++) {
    if (used[j] || strncmp(names[j], names[j0], bl) != 0) continue;
    size_t bl2, id2[GFV_NC_MAXDIM];
    int nd2;
    if (names[j][bl] == '\0') return 0; /* the base alone is also a name */
    if (!parse_indexed(names[j], &bl2, &nd2, id2) || bl2 != bl) continue;
    if (nd2 != *ndim) return 0;
    for (int k = 0; k < nd2; k++) shape[k] = id2[k] > shape[k] ? id2[k] : shape[k];
    count++;
  }
  for (int k = 0; k < *ndim; k++) cells *= shape[k];
  return cells == count && cells <= 100000000;
}

static size_t flat_index(int ndim, const size_t *shape, const size_t *idx) {
  size_t e = 0;
  for (int k = 0; k < ndim; k++) e = e * shape[k] + (idx[k] - 1);
  return e;
}

int gfv_nc_layout(size_t m, char *const *names, const int *groups, gfv_nc_var **vars, size_t *nvars) {
  gfv_nc_var *v = NULL;
  unsigned char *used = NULL;
  size_t n = 0;
  int st = GFV_OK;
  *vars = NULL, *nvars = 0;
  GFV_CALL_GOTO(st, gfv_calloc(&v, m + 1, sizeof *v), fail);
  GFV_CALL_GOTO(st, gfv_calloc(&used, m + 1, 1), fail);
  for (size_t j0 = 0; j0 < m; j0++) {
    if (used[j0]) continue;
    size_t shape[GFV_NC_MAXDIM], bl, idx[GFV_NC_MAXDIM];
    int ndim = 0;
    if (try_array(m, names, j0, used, shape, &ndim)) {
      parse_indexed(names[j0], &bl, &ndim, idx);
      char *nm = nc_name(names[j0], bl);
      if (!nm) GFV_ERROR_GOTO(st, fail, GFV_ERR_MEMORY, "out of memory naming the variables");
      GFV_CALL_GOTO(st, add_var(v, n, nm, ndim, shape, groups ? groups[j0] : 0), fail);
      for (size_t j = j0; j < m; j++) {
        size_t bl2;
        int nd2;
        if (used[j] || strncmp(names[j], names[j0], bl) != 0 ||
            !parse_indexed(names[j], &bl2, &nd2, idx) || bl2 != bl)
          continue;
        v[n].cols[flat_index(ndim, shape, idx)] = j;
        used[j] = 1;
      }
      n++;
      continue;
    }
    char *nm = nc_name(names[j0], strlen(names[j0]));
    if (!nm) GFV_ERROR_GOTO(st, fail, GFV_ERR_MEMORY, "out of memory naming the variables");
    GFV_CALL_GOTO(st, add_var(v, n, nm, 0, shape, groups ? groups[j0] : 0), fail);
    v[n++].cols[0] = j0;
    used[j0] = 1;
  }
  free(used);
  *vars = v, *nvars = n;
  return GFV_OK;
fail:
  free(used);
  gfv_nc_layout_free(v, n + 1);
  return st;
}

void gfv_nc_layout_free(gfv_nc_var *vars, size_t nvars) {
  if (!vars) return;
  for (size_t i = 0; i < nvars; i++) free(vars[i].name), free(vars[i].cols);
  free(vars);
}

/* ---- writing -------------------------------------------------------------------------- */

static const gfv_netcdf *NC; /* set by gfv_posterior_nc_write */

#define NC_TRY(expr)                                                                         \
  do {                                                                                       \
    int nc_rc_ = (expr);                                                                     \
    if (nc_rc_ != NC_NOERR)                                                                  \
      GFV_ERROR(GFV_ERR_IO, "cannot write '%s': %s (%s)", path, NC->strerror_(nc_rc_), #expr); \
  } while (0)

static int put_text(int id, int var, const char *name, const char *value, const char *path) {
  NC_TRY(NC->put_att_text(id, var, name, strlen(value), value));
  return GFV_OK;
}

/* ArviZ's attributes, on the root and on each group. */
static int put_attrs(int id, const gfv_nc_meta *meta, const char *created, const char *path) {
  GFV_CALL(put_text(id, NC_GLOBAL, "created_at", created, path));
  GFV_CALL(put_text(id, NC_GLOBAL, "inference_library", "gflowvi", path));
  GFV_CALL(put_text(id, NC_GLOBAL, "inference_library_version", meta->version, path));
  GFV_CALL(put_text(id, NC_GLOBAL, "target", meta->target, path));
  return GFV_OK;
}

/* An integer coordinate 0..n-1 over dim. */
static int put_coord(int g, const char *name, int dim, size_t n, const char *path) {
  int var;
  NC_TRY(NC->def_var(g, name, NC_INT64, 1, &dim, &var));
  if (n == 0) return GFV_OK;
  long long *c = NULL;
  GFV_CALL(gfv_calloc(&c, n, sizeof *c));
  for (size_t i = 0; i < n; i++) c[i] = (long long)i;
  int rc = NC->put_var_longlong(g, var, c);
  free(c);
  NC_TRY(rc);
  return GFV_OK;
}

/* Variable x of group g over (chain, draw, x's dims): column x->cols[e] of every row. */
static int put_var(int g, const int *cd, const gfv_nc_var *x, const gfv_draws *d, double *buf,
                   const char *path) {
  static const char *const kinds[] = {"parameter", "transformed parameter", "generated quantity"};
  int dims[GFV_NC_MAXDIM + 2] = {cd[0], cd[1]}, var;
  for (int k = 0; k < x->ndim; k++) {
    char dn[NC_MAX_NAME + 32];
    snprintf(dn, sizeof dn, "%.*s_dim_%d", NC_MAX_NAME - 12, x->name, k);
    NC_TRY(NC->def_dim(g, dn, x->shape[k], &dims[2 + k]));
    GFV_CALL(put_coord(g, dn, dims[2 + k], x->shape[k], path));
  }
  NC_TRY(NC->def_var(g, x->name, NC_DOUBLE, 2 + x->ndim, dims, &var));
  if (x->group >= 0 && x->group <= 2) GFV_CALL(put_text(g, var, "kind", kinds[x->group], path));
  if (d->N == 0) return GFV_OK;
  for (size_t i = 0; i < d->N; i++)
    for (size_t e = 0; e < x->size; e++) buf[i * x->size + e] = d->v[i * d->cols + x->cols[e]];
  NC_TRY(NC->put_var_double(g, var, buf));
  return GFV_OK;
}

/* A group with dims chain and draw and their coordinates; cd receives the two dim ids. */
static int open_group(int nc, const char *name, size_t N, const gfv_nc_meta *meta, const char *created,
                      int *g, int *cd, const char *path) {
  NC_TRY(NC->def_grp(nc, name, g));
  NC_TRY(NC->def_dim(*g, "chain", 1, &cd[0]));
  /* N = 0 (--out-samples=0): a fixed dim cannot have length 0, an unlimited one can */
  NC_TRY(NC->def_dim(*g, "draw", N ? N : NC_UNLIMITED, &cd[1]));
  GFV_CALL(put_coord(*g, "chain", cd[0], 1, path));
  GFV_CALL(put_coord(*g, "draw", cd[1], N, path));
  GFV_CALL(put_attrs(*g, meta, created, path));
  return GFV_OK;
}

static int write_groups(int nc, const gfv_draws *d, const gfv_nc_var *vars, size_t nvars,
                        const gfv_nc_meta *meta, double *buf, const char *path) {
  char created[64];
  time_t now = time(NULL);
  struct tm tm;
  strftime(created, sizeof created, "%Y-%m-%dT%H:%M:%S.000000", gmtime_r(&now, &tm));
  int g, cd[2];
  GFV_CALL(put_attrs(nc, meta, created, path));
  GFV_CALL(open_group(nc, "posterior", d->N, meta, created, &g, cd, path));
  for (size_t i = 0; i < nvars; i++) GFV_CALL(put_var(g, cd, &vars[i], d, buf, path));
  GFV_CALL(open_group(nc, "sample_stats", d->N, meta, created, &g, cd, path));
  static const char *const stats[2] = {"lp", "lq"};
  for (int k = 0; k < 2; k++) {
    size_t col = d->m + (size_t)k;
    gfv_nc_var x = {.name = (char *)(uintptr_t)stats[k], .size = 1, .cols = &col, .group = -1};
    GFV_CALL(put_var(g, cd, &x, d, buf, path));
  }
  return GFV_OK;
}

int gfv_posterior_nc_write(const gfv_draws *d, const char *path, const gfv_nc_meta *meta, FILE *out) {
  gfv_nc_var *vars = NULL;
  size_t nvars = 0, most = 1;
  double *buf = NULL;
  int nc = -1, st = GFV_OK;
  GFV_CALL(gfv_netcdf_load(&NC));
  GFV_CALL(gfv_nc_layout(d->m, d->names, d->groups, &vars, &nvars));
  for (size_t i = 0; i < nvars; i++) most = vars[i].size > most ? vars[i].size : most;
  GFV_CALL_GOTO(st, gfv_calloc(&buf, d->N * most + 1, sizeof(double)), done);
  int rc = NC->create_mem(path, NC_NETCDF4, 1 << 16, &nc);
  if (rc != NC_NOERR)
    GFV_ERROR_GOTO(st, done, GFV_ERR_IO, "cannot create '%s' in memory: %s", path, NC->strerror_(rc));
  GFV_CALL_GOTO(st, write_groups(nc, d, vars, nvars, meta, buf, path), done);
  NC_memio mem = {0};
  rc = NC->close_memio(nc, &mem);
  nc = -1;
  if (rc != NC_NOERR)
    GFV_ERROR_GOTO(st, done, GFV_ERR_IO, "cannot write '%s': %s", path, NC->strerror_(rc));
  errno = 0;
  size_t written = fwrite(mem.memory, 1, mem.size, out);
  int err = errno ? errno : EIO; /* a full disk shows here when the stream flushes */
  free(mem.memory);
  if (written != mem.size) GFV_ERROR_GOTO(st, done, GFV_ERR_IO, "cannot write '%s': %s", path, strerror(err));
done:
  if (nc >= 0) NC->abort_(nc);
  free(buf);
  gfv_nc_layout_free(vars, nvars);
  return st;
}
