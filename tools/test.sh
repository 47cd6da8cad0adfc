#!/bin/bash
# test.sh - on a fresh Debian 12 machine (as root): install, build from scratch, run every test.
# The build uses AddressSanitizer + UBSan, so leaks and memory errors fail the tests.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

# make check in a fresh build directory $1, configured with the rest.
# CHECK_ARGS: variables for make check.  A failure shows the failed logs.
check_build() {
	local dir=$1
	shift
	rm -rf "$top/$dir"
	mkdir "$top/$dir"
	cd "$top/$dir"
	../configure "$@"
	make -j"$(nproc)"
	if ! make -j"$(nproc)" check ${CHECK_ARGS:-}; then
		find . -name '*.log' -path '*tests*' -newer config.status -print0 |
			xargs -0 -r grep -l -E '^(FAIL|ERROR)' | while read -r log; do
				echo "==== $log"; tail -n 80 "$log"; done
		exit 1
	fi
	cd "$top"
}

bash tools/install-deps.sh
autoreconf -fi
check_build build-check --enable-sanitizers

# Without liburing and libaio everything must still build, and the library,
# the binding and caiofs work on the thread and sync backends.  Of the caiofs
# suite only the daemon tests run here (backend selection, refusals): the
# rest ran on these two backends in the build above.
CHECK_ARGS='CAIOFS_PYTEST_ARGS=-kdaemon' check_build build-minimal --without-liburing --without-libaio
