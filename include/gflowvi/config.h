/* config.h - the resolved run configuration and the option table behind it.
 *
 * One table (src/cli/options.c) of name, type, default and help drives parsing of the
 * command line and of config files, --help, the echo of the resolved configuration at
 * start, and the copy stored in summary.json.  Option names on the command line are
 * --name=value (or --name value); in a config file, "name = value" lines, '#' comments. */
#ifndef GFLOWVI_CONFIG_H
#define GFLOWVI_CONFIG_H

/* Exported from libgflowvi.so (built with -fvisibility=hidden): docs/library.md. */
#pragma GCC visibility push(default)

#include <stdio.h>

#define GFV_PATH_MAX 4096
#define GFV_NAME_MAX 64
#define GFV_OPTIONS_MAX 128 /* options, at most (checked by gfv_config_check) */
/* The default of --init (prior | mode | FILE): one place, so it can change after measuring. */
#define GFV_INIT_DEFAULT "prior"

typedef struct {
  char config[GFV_PATH_MAX];   /* config file that was read ("" if none) */
  char target[GFV_PATH_MAX];   /* target spec (gflowvi --help, "Targets") */
  long dim;                    /* dimension; 0 = the target's own default */
  char flow[GFV_NAME_MAX];     /* ngflow | gflow */
  char estimator[GFV_NAME_MAX];/* auto | hessian | stein */
  char update[GFV_NAME_MAX];   /* retraction | plain (ablation only) */
  char family[GFV_NAME_MAX];   /* full | diag: dense or diagonal covariances */
  long particles;              /* K, number of mixture components */
  long samples;                /* S, Monte Carlo samples per particle per iteration */
  char layout[GFV_NAME_MAX];   /* params | samples | auto: what the ranks exchange (layout.c) */
  char prune[GFV_NAME_MAX];    /* on | off: exact pruning of negligible pairs (docs/pruning.md) */
  double step;                 /* eta */
  double weight_step;          /* eta_w of the weight flow; 0 = equal weights (the paper) */
  double trust_region;         /* bound on KL(new || old) of each component per step; 0 = none */
  long iters;                  /* maximum number of iterations */
  double tol;                  /* stop when the windowed ELBO test holds (convergence.h); 0 = never */
  double tol_update;           /* stop when the relative update norm falls below this; 0 = never */
  long conv_window;            /* iterations per window of the convergence test */
  char step_schedule[GFV_NAME_MAX]; /* constant | decay | adaptive */
  double step_max;             /* adaptive: largest step; 0 = max(1, step) */
  double step_min;             /* decay, adaptive: smallest scheduled step; 0 = step / 100 */
  long seed;                   /* master seed; particle k's stream derives from (seed, k) */
  double init_scale;           /* initial means ~ N(0, init_scale^2 I); mode: Laplace sds */
  double init_var;             /* initial covariances init_var * I; mode: x Laplace cov */
  char init[GFV_PATH_MAX];      /* prior | mode | FILE (warm start from a mixture.csv) */
  long init_starts;            /* --init=mode: L-BFGS starts, spread over the ranks */
  char out[GFV_PATH_MAX];      /* output directory */
  long out_samples;            /* rows of samples.csv */
  long eval_samples;           /* fresh samples for the final ELBO / KL */
  long progress_every;         /* progress line every N iterations; 0 = none */
  long max_retries;            /* halvings of the step allowed when a step is rejected */
  char checkpoint[GFV_PATH_MAX]; /* checkpoint file; "" = OUT/checkpoint.h5 */
  long checkpoint_every;       /* iterations between checkpoints; 0 = never */
  double checkpoint_seconds;   /* seconds between checkpoints; 0 = never */
  char restart[GFV_PATH_MAX];  /* checkpoint to continue from ("" = a fresh run) */
  /* Data models (logreg, bnn) and plugins; see src/targets/models.h. */
  char data[GFV_PATH_MAX];      /* training data CSV (logreg, bnn) */
  char test_data[GFV_PATH_MAX]; /* held-out CSV for the report ("" = none) */
  long label_col;              /* 1-based label/response column; negative counts from the end */
  char standardize[GFV_NAME_MAX]; /* auto | scale | center-scale | none */
  int intercept;               /* logreg: add a column of ones */
  double prior_scale;          /* logreg: prior N(0, prior_scale^2 I) on the weights */
  long hidden;                 /* bnn: hidden units */
  long batch_size;             /* bnn: rows per minibatch; 0 = all */
  double dev_fraction;         /* bnn: training rows held out as a development set; 0 = none */
  long split_seed;             /* random train/test split of --data; 0 = no split */
  double test_fraction;        /* fraction of rows held out when split-seed > 0 */
  char plugin_arg[GFV_PATH_MAX]; /* plugin: comma-separated arguments for gfv_plugin_init */
  int quiet;                   /* suppress the configuration echo and progress lines */
  int strict;                  /* an unreliable fit exits with status 12 (GFV_UNRELIABLE) */
  char resample[GFV_NAME_MAX]; /* none | psis: also write draws_psis.csv */
  char predict[GFV_PATH_MAX];  /* logreg, bnn: feature rows to predict ("" = none) */
  int check_target;            /* compare the target's derivatives with finite differences */
  /* Not an option: given[i] is 1 when option i (gfv_option_at, src/core/optdef.h) was set on the command line
   * or in the --config file (or by gfv_config_set), 0 when it holds its default.  A restart
   * takes the checkpoint's value for every option not given.  See gfv_config_given. */
  unsigned char given[GFV_OPTIONS_MAX];
} gfv_config;

/* Fills every field with its default. */
void gfv_config_defaults(gfv_config *cfg);
/* For callers that cannot see the struct (a foreign-function interface such as Python's
 * ctypes): a configuration allocated by the library holding every default; GFV_ERR_MEMORY.
 * gfv_config_destroy frees it (NULL allowed). */
int gfv_config_create(gfv_config **out);
void gfv_config_destroy(gfv_config *cfg);

/* Parses argv (argv[0] is the program).  Reads --config=FILE first, then applies the
 * command line on top.  Sets *want_help when --help/-h is present (nothing else is
 * validated then).  Validates every value and the combinations that can be checked
 * without the target.  Not collective: every rank parses the same argv. */
int gfv_config_parse(gfv_config *cfg, int argc, char **argv, int *want_help);

/* Reads "name = value" lines from path into cfg (used by gfv_config_parse). */
int gfv_config_read_file(gfv_config *cfg, const char *path);
/* The same from an open stream; path names it in messages.  f stays open. */
int gfv_config_read_stream(gfv_config *cfg, FILE *f, const char *path);

/* The same, from text in memory; name stands for the file in messages ("name:LINE: ..."). */
int gfv_config_read_text(gfv_config *cfg, const char *text, const char *name);

/* Writes cfg as a config file that gfv_config_read_file reads back to the same values:
 * every option but config and restart, one "name = value" line each, doubles in their
 * shortest exact form, strings quoted when they hold '#' or start or end with a blank.
 * GFV_ERR_USAGE for a string that no config file can hold (a newline, or a double quote
 * in a value that needs quotes); gfv_config_parse refuses those values up front. */
int gfv_config_write(FILE *out, const gfv_config *cfg);

/* 1 when the option called name was given explicitly (see gfv_config.given), else 0. */
int gfv_config_given(const gfv_config *cfg, const char *name);

/* For --restart: completes cfg (parsed from the command line and --config) with ck, the
 * configuration stored in the checkpoint path.  Every option cfg was not given takes ck's
 * value; the initialisation options (--init-*) keep ck's value even if given; an option
 * that defines the problem (target, data, flow, particles, seed, ...) given with another
 * value is refused: GFV_ERR_USAGE, one line naming every such option with both values.
 * Then checks the combinations as gfv_config_parse does. */
int gfv_config_merge_restart(gfv_config *cfg, const gfv_config *ck, const char *path);

/* Checks every field of cfg as gfv_config_set checks a value (choices, numeric bounds,
 * terminated strings) and the combinations gfv_config_parse checks: GFV_ERR_USAGE with one
 * line naming the option and what it allows.  For programs that fill the struct directly;
 * gfv_solver_create calls it. */
int gfv_config_check(const gfv_config *cfg);

/* Sets one option by name from its text value, with validation of the type and range. */
int gfv_config_set(gfv_config *cfg, const char *name, const char *value, const char *origin);

/* Prints --help: usage line, then every option with its default and meaning. */
void gfv_config_print_help(FILE *out, const char *prog);

/* Prints the resolved configuration, one "name = value" line per option, each line
 * prefixed by prefix (for example "# "). */
void gfv_config_print(FILE *out, const gfv_config *cfg, const char *prefix);

/* Writes the configuration as the members of a JSON object (no braces), indent spaces
 * before each line, so the caller can embed it. */
void gfv_config_print_json(FILE *out, const gfv_config *cfg, int indent);

#pragma GCC visibility pop

#endif
