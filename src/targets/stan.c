/* stan.c - the "stan:MODEL.stan" target: a Stan program, compiled into a plugin.
 *
 * tools/stan/gflowvi-stan does the work: it rewrites current Stan syntax into the Stan 2.21
 * that Debian's StanHeaders parses, runs stanc, compiles the C++ with the shim
 * src/bindings/stan/gfv_stan_plugin.cpp into model.so, and keeps it in a cache keyed by a
 * hash of the translated model, the shim and the toolchain (a later run finds it in about
 * 0.1 s).  This file runs the tool and loads its result through the plugin loader with
 * the arguments data=--data (Stan JSON) and seed=--seed (the transformed data block's
 * random numbers).
 *
 * gfv_target_stan_prepare is called on rank 0 alone, before the ranks create the target
 * (src/cli/main.c), so that one process compiles while the others wait at the agreement
 * that follows; a model that does not compile then stops every rank with status 3 and
 * stanc's message (file:line:column) printed once.  gfv_target_stan_create runs the tool
 * again on every rank: normally it just finds the model, but a rank that cannot see rank
 * 0's cache (another node, a cache outside the shared file system) builds its own copy,
 * and a program that never called prepare (a test, a library user) gets a working target
 * too.  The tool holds a file lock per model, so concurrent builds compile once.
 *
 * The tool is found next to this program: BUILD/bin/gflowvi (or BUILD/tests/x) ->
 * ../../tools/stan/gflowvi-stan, or $GFV_STAN_TOOL.
 *
 * The model's Hessian (central differences of gradients, 2d gradients per point) is
 * offered to the solver only with --estimator=hessian: by default the stein estimator
 * (gradients only) is used, which costs one gradient per sample. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/log.h"
#include "gflowvi/error.h"
#include "gflowvi/interrupt.h"
#include "targets/models.h"
#include "targets/registry.h"
#include "targets/targets_impl.h"

extern char **environ;

#define STAN_LINE_MAX 8192

/* The path of tools/stan/gflowvi-stan. */
static int find_tool(char *out, size_t cap) {
  const char *env = getenv("GFV_STAN_TOOL");
  if (env && env[0]) {
    GFV_CHECK(strlen(env) < cap, GFV_ERR_USAGE, "GFV_STAN_TOOL is too long");
    snprintf(out, cap, "%s", env);
  } else {
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    GFV_CHECK(n > 0, GFV_ERR_INPUT, "cannot find this program's path (/proc/self/exe): %s; set "
              "GFV_STAN_TOOL to tools/stan/gflowvi-stan", strerror(errno));
    exe[n] = '\0';
    for (int up = 0; up < 3; up++) { /* BUILD/bin/gflowvi -> the source tree */
      char *slash = strrchr(exe, '/');
      if (slash) *slash = '\0';
    }
    int w = snprintf(out, cap, "%s/tools/stan/gflowvi-stan", exe);
    GFV_CHECK(w > 0 && (size_t)w < cap, GFV_ERR_USAGE, "path of tools/stan/gflowvi-stan too long");
  }
  GFV_CHECK(access(out, X_OK) == 0, GFV_ERR_INPUT,
            "--target=stan needs the tool tools/stan/gflowvi-stan of gflowvi's source tree, "
            "not found at %s (%s); set GFV_STAN_TOOL to its path", out, strerror(errno));
  return GFV_OK;
}

/* Reads the tool's output line by line: progress lines go to the log (stderr by default)
 * when show is set, the last line is kept in last. */
static int read_lines(int fd, int show, char *last, size_t cap, pid_t pid) {
  char buf[STAN_LINE_MAX];
  size_t len = 0;
  last[0] = '\0';
  for (;;) {
    ssize_t n = read(fd, buf + len, sizeof buf - 1 - len);
    if (n < 0 && errno == EINTR) {
      if (gfv_interrupt_signal()) {
        kill(pid, SIGTERM);
        return GFV_STOPPED;
      }
      continue;
    }
    if (n <= 0) break;
    len += (size_t)n;
    buf[len] = '\0';
    char *nl;
    while ((nl = strchr(buf, '\n')) != NULL) {
      *nl = '\0';
      if (strncmp(buf, "ok ", 3) == 0 || strncmp(buf, "error ", 6) == 0) {
        snprintf(last, cap, "%s", buf);
      } else if (show && buf[0]) {
        gfv_log_line(GFV_LOG_NOTE, "%s", buf);
      }
      len -= (size_t)(nl + 1 - buf);
      memmove(buf, nl + 1, len + 1);
    }
    if (len == sizeof buf - 1) len = 0; /* a line longer than the buffer: dropped */
  }
  return GFV_OK;
}

/* Runs `gflowvi-stan build --machine [--quiet] MODEL`; so_path gets the shared object. */
static int build_model(const char *model, int show, char *so_path, size_t cap) {
  char tool[GFV_PATH_MAX];
  GFV_CALL(find_tool(tool, sizeof tool));
  int fds[2];
  GFV_CHECK(pipe(fds) == 0, GFV_ERR_INPUT, "cannot create a pipe: %s", strerror(errno));
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 2);
  posix_spawn_file_actions_addclose(&fa, fds[0]);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", 0, 0);
  char mpath[GFV_PATH_MAX];
  snprintf(mpath, sizeof mpath, "%s", model);
  char *argv[6] = {tool, "build", "--machine", mpath, NULL, NULL};
  if (!show) argv[3] = "--quiet", argv[4] = mpath;
  pid_t pid;
  int rc = posix_spawn(&pid, tool, &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  close(fds[1]);
  if (rc != 0) {
    close(fds[0]);
    GFV_ERROR(GFV_ERR_INPUT, "cannot run %s: %s", tool, strerror(rc));
  }
  char last[STAN_LINE_MAX];
  int st = read_lines(fds[0], show, last, sizeof last, pid);
  close(fds[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (st == GFV_STOPPED) {
    gfv_log_line(GFV_LOG_NOTE, "gflowvi: received %s while compiling the Stan model %s: stopped "
                 "(nothing cached)", gfv_interrupt_name(gfv_interrupt_signal()), model);
    return GFV_STOPPED;
  }
  if (strncmp(last, "error ", 6) == 0) GFV_ERROR(GFV_ERR_INPUT, "%s", last + 6);
  GFV_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0 && strncmp(last, "ok ", 3) == 0,
            GFV_ERR_INPUT, "%s build %s failed (%s %d) without a message; run it by hand to see why",
            tool, model, WIFEXITED(status) ? "exit status" : "signal",
            WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
  GFV_CHECK(strlen(last + 3) < cap, GFV_ERR_INPUT, "model path too long: %s", last + 3);
  snprintf(so_path, cap, "%s", last + 3);
  return GFV_OK;
}

static int check_spec(const char *model) {
  GFV_CHECK(model[0], GFV_ERR_USAGE, "target stan:FILE needs a Stan program, as in stan:model.stan");
  return GFV_OK;
}

int gfv_target_stan_prepare(const gfv_config *cfg) {
  char so[GFV_PATH_MAX];
  const char *model = cfg->target + 5;
  GFV_CALL(check_spec(model));
  GFV_CALL(build_model(model, !cfg->quiet, so, sizeof so));
  return GFV_OK;
}

int gfv_target_stan_create(const char *model, const gfv_config *cfg, gfv_target **out) {
  *out = NULL;
  GFV_CALL(check_spec(model));
  GFV_CHECK(cfg, GFV_ERR_USAGE, "target stan:%s reads its data from the configuration (--data); "
            "create it with gfv_target_create_from_config", model);
  GFV_CHECK(!cfg->plugin_arg[0], GFV_ERR_USAGE,
            "--plugin-arg is for --target=plugin:FILE.so; a Stan model takes its data from "
            "--data=FILE.json");
  char so[GFV_PATH_MAX];
  GFV_CALL(build_model(model, 0, so, sizeof so));
  char data[GFV_PATH_MAX + 8], seed[64], label[GFV_PATH_MAX + 16];
  snprintf(data, sizeof data, "data=%s", cfg->data);
  snprintf(seed, sizeof seed, "seed=%lu", (unsigned long)cfg->seed);
  snprintf(label, sizeof label, "Stan model %s", model);
  const char *argv[3] = {seed, data, NULL};
  int argc = cfg->data[0] ? 2 : 1;
  if (!cfg->data[0]) argv[1] = NULL;
  GFV_CALL(gfv_target_plugin_create_args(so, label, argc, argv, out));
  gfv_target *t = *out;
  snprintf(t->name, sizeof t->name, "stan");
  t->has_hessian = t->has_hessian && strcmp(cfg->estimator, "hessian") == 0;
  return GFV_OK;
}

/* ---- the type (src/targets/registry.h; listed in target_list.h) ---- */

static int create_stan(const char *model, size_t dim, const gfv_config *cfg, gfv_target **out) {
  (void)dim;
  return gfv_target_stan_create(model, cfg, out);
}

const gfv_target_type gfv_target_type_stan = {
    .name = "stan:", .synopsis = "stan:FILE.stan",
    .help = "a Stan program FILE.stan (data: --data=FILE.json), compiled once into a cached plugin",
    .needs_config = 1, .create = create_stan, .prepare = gfv_target_stan_prepare};
