/* readline.c - getline that tells a read error from the end of the file (see io.h).
 *
 * getline returns -1 both at the end of the file and on an error, and an error does not
 * always set the stream's error flag: its own allocation failure (ENOMEM) only sets
 * errno.  A reader that loops "while (getline(...) != -1)" would then drop the rest of a
 * file under memory pressure or an I/O error and carry on with what it had.  A line
 * returned together with the error flag was cut short by the error (glibc returns the
 * bytes read before the failed read), so it is an error too, not a last line without a
 * newline. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gflowvi/error.h"
#include "gflowvi/io.h"

/* getline's contract, but a NUL byte ends the line too: every reader refuses a line with
 * one (not a text file), and getline on /dev/zero or a large binary file without a newline
 * grew its buffer until the OOM killer ended the run (SIGKILL, no message). */
static ssize_t read_until_newline_or_nul(FILE *f, char **line, size_t *cap) {
  size_t n = 0;
  int c = EOF;
  flockfile(f);
  while ((c = getc_unlocked(f)) != EOF) {
    if (n + 2 > *cap) {
      size_t want = *cap < 128 ? 128 : 2 * *cap;
      char *p = realloc(*line, want);
      if (!p) {
        funlockfile(f);
        errno = ENOMEM;
        return -1;
      }
      *line = p, *cap = want;
    }
    (*line)[n++] = (char)c;
    if (c == '\n' || c == '\0') break;
  }
  funlockfile(f);
  if (n == 0) return -1;
  (*line)[n] = '\0';
  return (ssize_t)n;
}

int gfv_read_line(FILE *f, char **line, size_t *cap, ssize_t *len, const char *kind,
                  const char *name, long lineno) {
  errno = 0;
  *len = read_until_newline_or_nul(f, line, cap);
  int err = errno;
  if (*len >= 0 ? !ferror(f) : !ferror(f) && (err == 0 || feof(f))) return GFV_OK;
  if (*len < 0) *len = -1;
  /* A read error with errno 0 would print "Success"; EIO is what it was. */
  const char *why = strerror(err ? err : EIO);
  if (lineno > 0)
    GFV_ERROR(GFV_ERR_INPUT, "cannot read %s'%s' after line %ld: %s", kind, name, lineno, why);
  GFV_ERROR(GFV_ERR_INPUT, "cannot read %s'%s': %s", kind, name, why);
}
