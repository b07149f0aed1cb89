/* plugin_elf.h - checks a plugin file before dlopen sees it (src/targets/plugin_elf.c).
 * Not collective. */
#ifndef GFLOWVI_PLUGIN_ELF_H
#define GFLOWVI_PLUGIN_ELF_H

/* GFV_OK when path is a readable, complete ELF shared object for the machine this program
 * runs on; otherwise GFV_ERR_INPUT with a one-line message naming path and the problem
 * (missing, a directory, not ELF, another architecture or word size, not a shared object,
 * truncated). */
int gfv_plugin_elf_check(const char *path);

#endif
