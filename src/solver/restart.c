/* restart.c - the configuration of a restarted run (--restart=FILE).
 *
 * A checkpoint stores its run's options as config-file text (attribute config_text) and
 * checksums of the files that define the problem (data_checksum, target_file_checksum).
 * Before the target is created (it comes from the options), rank 0 reads them and
 * broadcasts the text; every rank parses it with the config-file reader and completes the
 * command line's options with it (gfv_config_merge_restart: options not given take the
 * checkpoint's values, a changed problem option is refused).  Rank 0 then compares the
 * checksums of the input files as they are now with the stored ones, so that a data file
 * edited under the same name is refused too. */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/optdef.h"
#include "gflowvi/error.h"
#include "io/h5file.h"
#include "solver/solver_impl.h"

const char *const gfv_input_attr[GFV_NINPUTS] = {"data_checksum", "target_file_checksum"};

/* Input i of cfg: the option that names it, its value as given, and the file ("" = none). */
static const char *input_file(const gfv_config *cfg, int i, const char **option,
                              const char **value) {
  if (i == GFV_INPUT_DATA) {
    *option = "data", *value = cfg->data;
    return cfg->data;
  }
  *option = "target", *value = cfg->target;
  if (strncmp(cfg->target, "gmm:", 4) == 0) return cfg->target + 4;
  if (strncmp(cfg->target, "plugin:", 7) == 0) return cfg->target + 7;
  if (strncmp(cfg->target, "stan:", 5) == 0) return cfg->target + 5;
  return "";
}

static int file_checksum(const char *path, const char *option, const char *value,
                         char out[GFV_SUM_CHARS]) {
  FILE *f = fopen(path, "rb");
  GFV_CHECK(f, GFV_ERR_INPUT, "cannot read --%s=%s: %s", option, value, strerror(errno));
  unsigned char buf[1 << 16];
  uint64_t h = GFV_FNV_INIT;
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) h = gfv_fnv1a(h, buf, n);
  int bad = ferror(f);
  fclose(f);
  GFV_CHECK(!bad, GFV_ERR_INPUT, "cannot read --%s=%s (read error)", option, value);
  snprintf(out, GFV_SUM_CHARS, "%016" PRIx64, h);
  return GFV_OK;
}

int gfv_input_checksums(const gfv_config *cfg, gfv_input_sums sums) {
  for (int i = 0; i < GFV_NINPUTS; i++) {
    const char *option, *value, *path = input_file(cfg, i, &option, &value);
    sums[i][0] = '\0';
    if (path[0]) GFV_CALL(file_checksum(path, option, value, sums[i]));
  }
  return GFV_OK;
}

/* Rank 0: the input files as they are now against the checksums stored in the checkpoint. */
static int check_inputs(const gfv_config *cfg, gfv_input_sums stored) {
  gfv_input_sums now;
  GFV_CALL(gfv_input_checksums(cfg, now));
  for (int i = 0; i < GFV_NINPUTS; i++) {
    const char *option, *value;
    input_file(cfg, i, &option, &value);
    GFV_CHECK(!stored[i][0] || strcmp(now[i], stored[i]) == 0, GFV_ERR_INPUT,
              "--%s=%s changed since the checkpoint was written (checksum %s, checkpoint: %s); "
              "restore that file or start a new run without --restart",
              option, value, now[i], stored[i]);
  }
  return GFV_OK;
}

/* Every rank: the checkpoint's text parsed and merged into cfg. */
static int merge_text(gfv_config *cfg, const char *text) {
  gfv_config ck;
  char name[GFV_PATH_MAX + 32];
  gfv_config_defaults(&ck);
  snprintf(name, sizeof name, "checkpoint '%s', config_text", cfg->restart);
  /* The text passed its checksum: a line this build cannot read comes from another
   * version of gflowvi, an input problem rather than a usage one. */
  if (gfv_config_read_text(&ck, text, name)) return GFV_ERR_INPUT;
  GFV_CALL(gfv_config_merge_restart(cfg, &ck, cfg->restart));
  return GFV_OK;
}

int gfv_restart_configure(gfv_comm *comm, gfv_config *cfg) {
  if (!cfg->restart[0]) return GFV_OK;
  const int rank = gfv_comm_rank(comm);
  char *text = NULL;
  gfv_input_sums stored;
  memset(stored, 0, sizeof stored);
  int st = rank == 0 ? gfv_checkpoint_read_config(cfg->restart, &text, stored) : GFV_OK;
  st = gfv_comm_agree(comm, st, NULL);
  /* The text's length (0: an older checkpoint without it), then the text. */
  uint64_t len = text ? strlen(text) + 1 : 0;
  if (!st) st = gfv_comm_bcast(comm, &len, sizeof len, 0);
  if (!st && len > 0 && rank != 0) st = gfv_calloc(&text, (size_t)len, 1);
  st = gfv_comm_agree(comm, st, NULL);
  if (!st && len > 0) st = gfv_comm_bcast(comm, text, (size_t)len, 0);
  if (!st && len > 0) st = gfv_comm_agree(comm, merge_text(cfg, text), NULL);
  if (!st && len > 0) st = gfv_comm_agree(comm, rank == 0 ? check_inputs(cfg, stored) : 0, NULL);
  free(text);
  return st;
}

/* ---- options (rows: src/core/optdef.h; order: src/core/option_registry.c) -- */

static const gfv_option restart_options[] = {
    {.name = "restart", .type = OPT_STRING, OPT_FIELD(restart), .metavar = "FILE", .def = "",
     .role = ROLE_NONE,
     .help = "continue the run saved in this checkpoint (any rank count); options not given "
             "take the checkpoint's values, those that define the problem cannot change"},
};
GFV_OPTION_TABLE(gfv_options_restart, restart_options);
