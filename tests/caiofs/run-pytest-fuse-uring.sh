#!/bin/sh
# run-pytest-fuse-uring.sh - make check entry: the caiofs suite again, every mount with -o fuse_uring.
# FUSE over io_uring is off in the kernel unless root turns it on; this turns it on for the run
# and puts the old value back.  Skips (77) where the kernel or the build cannot have it.
srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
builddir=${top_builddir:-$(pwd)}
param=/sys/module/fuse/parameters/enable_uring

skip() { echo "SKIP: $*"; exit 77; }
test "$(id -u)" = 0 || skip "needs root"
test -w "$param" || skip "the kernel has no FUSE over io_uring ($param; Linux 6.14+, CONFIG_FUSE_IO_URING)"
grep -q '^#define HAVE_LIBURING 1' "$builddir/config.h" 2>/dev/null || skip "caiofs was built without liburing"

old=$(cat "$param")
restore() { echo "$old" > "$param"; }
trap restore EXIT
trap 'exit 99' HUP INT TERM
echo 1 > "$param" || skip "cannot turn on $param"

CAIOFS_TEST_OPTIONS=fuse_uring sh "$srcdir/tests/caiofs/run-pytest.sh"
