/*
 * sanitize-longjmp.c: LD_PRELOADed into postgres by scripts/sanitize.sh.
 *
 * ASan is loaded with the extension, after libc, so its interceptors do
 * not see postgres's own siglongjmp() (every ereport(ERROR) is one): the
 * redzones of the stack frames a longjmp abandons would stay poisoned and
 * the next frames on that stack would report false stack-buffer-overflows.
 * These wrappers tell ASan (__asan_handle_no_return(), when ASan is
 * loaded) before jumping, as its own interceptor does.
 */
#define _GNU_SOURCE
#include <dlfcn.h>

#include <stddef.h>

typedef void (*jmp_fn) (void *, int);

static void
handle_no_return(void)
{
	static void (*fn) (void) = NULL;
	static int looked = 0;

	if (!looked)
	{
		fn = (void (*) (void)) dlsym(RTLD_DEFAULT, "__asan_handle_no_return");
		looked = fn != NULL;
	}
	if (fn)
		fn();
}

#define SHIM(name) \
void name(void *env, int val) \
{ \
	static jmp_fn real = NULL; \
	if (real == NULL) \
		real = (jmp_fn) dlsym(RTLD_NEXT, #name); \
	handle_no_return(); \
	real(env, val); \
	__builtin_unreachable(); \
}
SHIM(siglongjmp)
SHIM(longjmp)
SHIM(_longjmp)
SHIM(__longjmp_chk)			/* what postgres calls: built with _FORTIFY_SOURCE */
