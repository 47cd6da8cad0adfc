#!/bin/sh
# caiofs-bench.sh - benchmark caiofs (every backend) against the raw source, bindfs, mergerfs and passthrough_ll.
#
# usage: bench/caiofs-bench.sh [--quick] [--million] [--dbench] [other caiofs-bench.py options]
# Run as root from the build directory (or set CAIOFS=/path/to/caiofs).
# Example: cd /tmp/build && sudo /path/to/src/bench/caiofs-bench.sh --quick
# Needs fio, fusermount3, gcc, pkg-config, libfuse3-dev (for passthrough_ll),
# and optionally bindfs and mergerfs.  Prints one table on stdout.
here=$(cd "$(dirname "$0")" && pwd)
PYTHON=${PYTHON:-/usr/bin/python3}
if test -z "$CAIOFS"; then
	if test -x ./caiofs; then CAIOFS=$(pwd)/caiofs
	else CAIOFS=$(command -v caiofs); fi
fi
test -x "$CAIOFS" || { echo "caiofs-bench: caiofs not found (set CAIOFS)" >&2; exit 1; }
command -v fio >/dev/null || { echo "caiofs-bench: fio is missing (apt-get install fio)" >&2; exit 1; }
test "$(id -u)" = 0 || { echo "caiofs-bench: run as root" >&2; exit 1; }

scratch=$(mktemp -d /var/tmp/caiofs-bench.XXXXXX) || exit 1
cleanup() {
	# whatever is still mounted below the scratch dir goes, deepest first
	awk -v d="$scratch" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo |
		sort -r | while read -r m; do
			fusermount3 -u "$m" 2>/dev/null || fusermount3 -uz "$m" 2>/dev/null ||
				umount -l "$m"
		done
	# the loop device of the source filesystem, if it is still there
	losetup -j "$scratch/source.img" 2>/dev/null | cut -d: -f1 | while read -r dev; do
		losetup -d "$dev"
	done
	rm -rf "$scratch"
}
trap cleanup EXIT
"$PYTHON" "$here/caiofs-bench.py" --caiofs "$CAIOFS" --workdir "$scratch" "$@" &
child=$!
# the benchmark unmounts what it mounted when it gets SIGTERM
trap 'kill -TERM $child 2>/dev/null; wait $child; exit 130' HUP INT TERM
wait $child
