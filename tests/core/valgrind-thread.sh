#!/bin/sh
# valgrind-thread.sh - the conformance suite on the thread backend under valgrind memcheck, leaks included.
# Only the thread backend: valgrind cannot see the kernel fill buffers through io_uring or Linux AIO.
# The fork case's child is checked too: destroy in a child must free the child's memory.
builddir=${top_builddir:-.}
prog=$builddir/tests/core/conformance

if ! command -v valgrind >/dev/null 2>&1; then
	echo "SKIP: valgrind is not installed"
	exit 77
fi
if "$prog" --sanitized; then
	echo "SKIP: this is a sanitizer build; valgrind cannot run it"
	exit 77
fi
CAIO_TEST_TIME_SCALE=10 exec "$builddir/libtool" --mode=execute \
	valgrind -q --error-exitcode=1 --leak-check=full \
	--show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect \
	"$prog" thread "$@"
