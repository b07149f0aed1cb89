/* io.h - files in and out: atomic output files, numeric CSV tables, JSON values.
 *
 * Outputs are never written in place: gfv_ofile_open writes to "<path>.tmp.<pid>" and
 * gfv_ofile_commit flushes it to disk and renames it over path, so a reader sees either
 * the old file or the complete new one, never a partial one.  Not collective: the caller
 * decides which rank writes. */
#ifndef GFLOWVI_IO_H
#define GFLOWVI_IO_H

/* Exported from libgflowvi.so (built with -fvisibility=hidden): docs/library.md. */
#pragma GCC visibility push(default)

#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

typedef struct gfv_ofile gfv_ofile;

/* Opens the temporary file for path. */
int gfv_ofile_open(const char *path, gfv_ofile **out);
/* The stream to write to. */
FILE *gfv_ofile_stream(gfv_ofile *f);
/* Checks the stream for write errors, flushes, fsyncs and closes it, keeping the temporary
 * name; on failure removes the temporary file and returns GFV_ERR_IO.  f stays allocated
 * (commit or abort it).  Lets a caller finish a whole set of files before renaming any. */
int gfv_ofile_finish(gfv_ofile *f);
/* Finishes f (if not done yet) and renames the temporary file over path; on any failure
 * removes the temporary file and returns GFV_ERR_IO.  Frees f in every case. */
int gfv_ofile_commit(gfv_ofile *f);
/* Closes and removes the temporary file; frees f.  NULL is allowed. */
void gfv_ofile_abort(gfv_ofile *f);

/* Creates dir and its parents as needed (mode 0777 & umask). */
int gfv_mkdir_p(const char *dir);
/* Creates dir if needed and proves it writable by creating and removing a probe file;
 * GFV_ERR_IO with a message naming dir otherwise.  Run it before long work. */
int gfv_dir_check_writable(const char *dir);

/* A dense numeric table read from a CSV file. */
typedef struct {
  size_t rows, cols;
  double *v;            /* rows x cols, row-major */
  int has_header;       /* the first line was a header (not numeric) */
  char **header;        /* with has_header: the cols column names (trimmed, a pair of
                           surrounding double quotes removed), NULL-terminated; else NULL */
} gfv_table;

/* Reads a CSV of numbers: comma-separated (spaces around fields allowed), one optional
 * header line (detected as a first line that does not parse as numbers), blank lines and
 * lines starting with '#' skipped.  Every data row must have the same number of columns
 * and every field must be a finite number.  Errors are GFV_ERR_INPUT and name the file,
 * the line and the problem ("data.csv:12: expected 31 columns, found 30"). */
int gfv_table_read_csv(const char *path, gfv_table *t);
/* The same from an open stream; name stands for the file in messages.  f stays open. */
int gfv_table_read_csv_stream(FILE *f, const char *name, gfv_table *t);

/* One line, as getline reads it, into *line (*cap bytes), except that a NUL byte ends it
 * too (a reader refuses such a line; /dev/zero has no newline); *len is its length, or -1
 * at the end of the file.  A read error -- including one getline reports only in errno, such as its
 * own ENOMEM, and a last line cut short by a failed read -- is GFV_ERR_INPUT with the
 * message "cannot read <kind>'<name>' after line <lineno>: <reason>" (lineno: the lines
 * read so far; kind: "" or a word and a space, as in "config file "). */
int gfv_read_line(FILE *f, char **line, size_t *cap, ssize_t *len, const char *kind,
                  const char *name, long lineno);
void gfv_table_free(gfv_table *t);

/* JSON helpers for hand-written JSON: a quoted, escaped string; a number with 17
 * significant digits ("null" when not finite, so the file stays valid JSON). */
void gfv_json_string(FILE *f, const char *s);
void gfv_json_number(FILE *f, double x);

#pragma GCC visibility pop

#endif
