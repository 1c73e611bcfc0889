/*
 * Lets Debian's static libbpf.a live inside a shared object (the .node addon).
 *
 * libbpf.a is built as position-independent *executable* code: every reference is
 * PC-relative, which a shared object accepts, except one to a symbol another library owns:
 * `stderr` (libbpf's default print function, which the addon replaces at load anyway). PIE
 * code reaches such data through a copy relocation, which a shared object cannot have, so the
 * link fails ("relocation R_X86_64_PC32 against symbol `stderr'").
 *
 * A hidden definition here satisfies the reference inside the addon, and a constructor points
 * it at libc's real stream before anything can use it. The file includes no stdio.h so that
 * this definition does not clash with libc's declaration. If a later libbpf.a references
 * another such symbol, the link fails loudly in the same way and it belongs here too.
 */
#define _GNU_SOURCE
#include <dlfcn.h>

struct _IO_FILE;

__attribute__((visibility("hidden"))) struct _IO_FILE *stderr;

__attribute__((constructor)) static void libbpf_static__init_stderr(void)
{
	struct _IO_FILE **libc_stderr = (struct _IO_FILE **)dlsym(RTLD_DEFAULT, "stderr");

	if (libc_stderr)
		stderr = *libc_stderr;
}
