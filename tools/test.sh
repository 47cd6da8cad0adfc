#!/bin/bash
# test.sh - on a fresh Debian 12 machine (as root): install, build from scratch, run every test.
# The build uses AddressSanitizer + UBSan, so leaks and memory errors fail the tests.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

bash tools/install-deps.sh
autoreconf -fi
rm -rf build-check
mkdir build-check
cd build-check
../configure --enable-sanitizers
make -j"$(nproc)"
if ! make -j"$(nproc)" check; then
	find . -name '*.log' -path '*tests*' -newer config.status -print0 |
		xargs -0 -r grep -l -E '^(FAIL|ERROR)' | while read -r log; do
			echo "==== $log"; tail -n 80 "$log"; done
	exit 1
fi
