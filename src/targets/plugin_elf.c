/* plugin_elf.c - the plugin file's ELF headers, checked before dlopen (see plugin_elf.h).
 *
 * dlopen's own diagnostics for a bad file are poor or fatal: a shared object cut short
 * (an interrupted copy or build) is mapped beyond its end and the dynamic loader dies of
 * SIGBUS touching it; a plugin built for another architecture reads "No such file or
 * directory" on some systems.  Reading the ELF header and the program headers ourselves
 * catches these with a message that says what is wrong.  The checks: a regular, readable
 * file; the ELF magic; this program's word size (class), byte order and machine; type
 * ET_DYN; and the program-header table, the section-header table and every PT_LOAD
 * segment's file bytes inside the file. */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gflowvi/error.h"
#include "targets/plugin_elf.h"

/* This program's own ELF identity, from the compiler's view of the target. */
#define SELF_CLASS (__ELF_NATIVE_CLASS == 64 ? ELFCLASS64 : ELFCLASS32)
#define SELF_DATA (__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ ? ELFDATA2LSB : ELFDATA2MSB)
#if defined(__x86_64__)
#define SELF_MACHINE EM_X86_64
#elif defined(__aarch64__)
#define SELF_MACHINE EM_AARCH64
#elif defined(__powerpc64__)
#define SELF_MACHINE EM_PPC64
#elif defined(__riscv)
#define SELF_MACHINE EM_RISCV
#elif defined(__s390x__)
#define SELF_MACHINE EM_S390
#elif defined(__i386__)
#define SELF_MACHINE EM_386
#elif defined(__arm__)
#define SELF_MACHINE EM_ARM
#else
#define SELF_MACHINE EM_NONE /* unknown: the machine is left to dlopen */
#endif

static const char *machine_name(unsigned m, char *buf, size_t cap) {
  switch (m) {
  case EM_X86_64: return "x86-64";
  case EM_AARCH64: return "aarch64";
  case EM_PPC64: return "ppc64";
  case EM_RISCV: return "riscv";
  case EM_S390: return "s390x";
  case EM_386: return "i386";
  case EM_ARM: return "arm";
  default: snprintf(buf, cap, "ELF machine %u", m); return buf;
  }
}

static const char *type_name(unsigned t) {
  switch (t) {
  case ET_REL: return "REL, an object file: link it with -shared";
  case ET_EXEC: return "EXEC, a program";
  case ET_CORE: return "CORE, a core dump";
  default: return "unknown";
  }
}

/* off + len, or UINT64_MAX when it overflows (so it exceeds any file size). */
static uint64_t end_of(uint64_t off, uint64_t len) { return off > UINT64_MAX - len ? UINT64_MAX : off + len; }

/* Reads exactly n bytes at off; 0 when the file has fewer. */
static int read_at(int fd, void *buf, size_t n, uint64_t off) {
  return pread(fd, buf, n, (off_t)off) == (ssize_t)n;
}

/* The checks on an open file of size bytes; *need receives the size its headers imply. */
static int check_headers(const char *path, int fd, uint64_t size, uint64_t *need) {
  ElfW(Ehdr) eh;
  memset(&eh, 0, sizeof eh);
  ssize_t got = pread(fd, &eh, sizeof eh, 0);
  GFV_CHECK(got >= 0, GFV_ERR_INPUT, "cannot read plugin '%s': %s", path, strerror(errno));
  GFV_CHECK(size > 0, GFV_ERR_INPUT, "plugin '%s' is empty (a copy or a build was cut short?)", path);
  GFV_CHECK(got >= SELFMAG && memcmp(eh.e_ident, ELFMAG, SELFMAG) == 0, GFV_ERR_INPUT,
            "plugin '%s' is not an ELF file (a plugin is a shared object: cc -shared -fPIC)", path);
  *need = sizeof eh;
  if (got < EI_NIDENT) return GFV_OK; /* truncated: reported by the caller */
  unsigned cls = eh.e_ident[EI_CLASS], data = eh.e_ident[EI_DATA];
  GFV_CHECK(cls == ELFCLASS32 || cls == ELFCLASS64, GFV_ERR_INPUT,
            "plugin '%s' is a damaged ELF file (class %u)", path, cls);
  GFV_CHECK(cls == SELF_CLASS, GFV_ERR_INPUT, "plugin '%s' is a %d-bit ELF file, this gflowvi is %d-bit",
            path, cls == ELFCLASS32 ? 32 : 64, __ELF_NATIVE_CLASS);
  GFV_CHECK(data == ELFDATA2LSB || data == ELFDATA2MSB, GFV_ERR_INPUT,
            "plugin '%s' is a damaged ELF file (byte order %u)", path, data);
  GFV_CHECK(data == SELF_DATA, GFV_ERR_INPUT, "plugin '%s' is %s, this gflowvi is %s", path,
            data == ELFDATA2LSB ? "little-endian" : "big-endian",
            SELF_DATA == ELFDATA2LSB ? "little-endian" : "big-endian");
  if ((size_t)got < sizeof eh) return GFV_OK;
  char b1[32], b2[32];
  GFV_CHECK(SELF_MACHINE == EM_NONE || eh.e_machine == SELF_MACHINE, GFV_ERR_INPUT,
            "plugin '%s' is built for %s, this gflowvi runs on %s", path,
            machine_name(eh.e_machine, b1, sizeof b1), machine_name(SELF_MACHINE, b2, sizeof b2));
  GFV_CHECK(eh.e_type == ET_DYN, GFV_ERR_INPUT,
            "plugin '%s' is not a shared object (ELF type %s); build it with cc -shared -fPIC", path,
            type_name(eh.e_type));
  GFV_CHECK(eh.e_phnum == 0 || eh.e_phentsize == sizeof(ElfW(Phdr)), GFV_ERR_INPUT,
            "plugin '%s' is damaged: program headers of %u bytes", path, (unsigned)eh.e_phentsize);
  uint64_t ph_end = end_of(eh.e_phoff, (uint64_t)eh.e_phnum * eh.e_phentsize);
  if (ph_end > *need) *need = ph_end;
  if (eh.e_shnum > 0) {
    uint64_t sh_end = end_of(eh.e_shoff, (uint64_t)eh.e_shnum * eh.e_shentsize);
    if (sh_end > *need) *need = sh_end;
  }
  if (ph_end > size) return GFV_OK; /* the segments cannot be read: truncated already */
  for (unsigned i = 0; i < eh.e_phnum; i++) {
    ElfW(Phdr) ph;
    GFV_CHECK(read_at(fd, &ph, sizeof ph, eh.e_phoff + (uint64_t)i * sizeof ph), GFV_ERR_INPUT,
              "cannot read plugin '%s': %s", path, strerror(errno ? errno : EIO));
    uint64_t seg_end = end_of(ph.p_offset, ph.p_filesz);
    if (ph.p_type == PT_LOAD && seg_end > *need) *need = seg_end;
  }
  return GFV_OK;
}

int gfv_plugin_elf_check(const char *path) {
  struct stat sb;
  GFV_CHECK(stat(path, &sb) == 0, GFV_ERR_INPUT, "cannot open plugin '%s': %s", path, strerror(errno));
  GFV_CHECK(!S_ISDIR(sb.st_mode), GFV_ERR_INPUT, "plugin '%s' is a directory, not a shared object", path);
  GFV_CHECK(S_ISREG(sb.st_mode), GFV_ERR_INPUT, "plugin '%s' is not a regular file", path);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  GFV_CHECK(fd >= 0, GFV_ERR_INPUT, "cannot open plugin '%s': %s", path, strerror(errno));
  uint64_t size = (uint64_t)sb.st_size, need = 0;
  errno = 0;
  int st = check_headers(path, fd, size, &need);
  close(fd);
  GFV_CALL(st);
  GFV_CHECK(need != UINT64_MAX, GFV_ERR_INPUT, "plugin '%s' is damaged: its headers point past any file",
            path);
  GFV_CHECK(need <= size, GFV_ERR_INPUT,
            "plugin '%s' is truncated: %llu of %llu bytes (a copy or a build was cut short?)", path,
            (unsigned long long)size, (unsigned long long)need);
  return GFV_OK;
}
