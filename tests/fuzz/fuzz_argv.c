/* fuzz_argv.c - the command line (gfv_config_parse): the input, split at NUL bytes, is
 * argv[1..] (at most 64 arguments).  On success the configuration is printed as text and
 * JSON.  --config is left out (it would read whatever file the input names; the config
 * file has its own harness), and so is target creation (fuzz_mixture covers gmm:FILE). */
#include "fuzz.h" /* first: it defines _GNU_SOURCE */

#include "gflowvi/config.h"

#define MAX_ARGS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_init();
  /* A NUL-terminated copy: every argument is then a C string inside it. */
  char *buf = malloc(size + 1);
  FUZZ_ASSERT(buf, "out of memory");
  memcpy(buf, data, size);
  buf[size] = '\0';
  char *argv[MAX_ARGS + 2];
  int argc = 0;
  argv[argc++] = "gflowvi";
  for (char *p = buf; p <= buf + size && argc <= MAX_ARGS; p += strlen(p) + 1) {
    if (strncmp(p, "--config", 8) == 0) goto done;
    argv[argc++] = p;
  }
  argv[argc] = NULL;
  gfv_config cfg;
  int help = 0;
  int st = gfv_config_parse(&cfg, argc, argv, &help);
  if (st == GFV_OK && !help) {
    FUZZ_ASSERT(cfg.particles >= 1 && cfg.samples >= 1 && cfg.step > 0, "a bad value passed");
    FUZZ_ASSERT(cfg.target[0] && cfg.out[0], "an empty --target or --out passed");
    gfv_config_print(fuzz_null_stream(), &cfg, "# ");
    gfv_config_print_json(fuzz_null_stream(), &cfg, 4);
  }
  fuzz_check_status(st);
done:
  free(buf);
  return 0;
}
