/* fuzz_config_file.c - the config file parser (gfv_config_read_file): any bytes as a
 * config file.  On success the configuration is also printed as text and as JSON, as the
 * program does for the echo and summary.json.  A file with a NUL byte is never accepted. */
#include "fuzz.h" /* first: it defines _GNU_SOURCE */

#include "gflowvi/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_init();
  gfv_config cfg;
  gfv_config_defaults(&cfg);
  int st = gfv_config_read_file(&cfg, fuzz_file(data, size));
  if (st == GFV_OK) {
    FUZZ_ASSERT(cfg.particles >= 1 && cfg.samples >= 1 && cfg.step > 0, "a bad value passed");
    gfv_config_print(fuzz_null_stream(), &cfg, "# ");
    gfv_config_print_json(fuzz_null_stream(), &cfg, 4);
  }
  FUZZ_ASSERT(st != GFV_OK || !memchr(data, '\0', size), "a file with a NUL byte was accepted");
  fuzz_check_status(st);
  return 0;
}
