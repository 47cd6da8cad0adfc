#!/bin/sh
# run-pytest.sh - make check entry for the caiofs suite: skips (77) when FUSE or caiofs is unavailable.
srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
builddir=${top_builddir:-$(pwd)}
PYTHON=${PYTHON:-/usr/bin/python3}
export top_srcdir="$srcdir" top_builddir="$builddir"

skip() { echo "SKIP: $*"; exit 77; }
test -c /dev/fuse || skip "/dev/fuse is missing"
test "$(id -u)" = 0 || skip "needs root (mounts, uid switching, tmpfs sources)"
command -v fusermount3 >/dev/null 2>&1 || skip "fusermount3 is missing (apt-get install fuse3)"
test -x "${CAIOFS:-$builddir/caiofs}" || skip "caiofs was not built (${CAIOFS:-$builddir/caiofs})"
"$PYTHON" -c 'import pytest, pytest_timeout' 2>/dev/null ||
	skip "$PYTHON lacks pytest or pytest-timeout (apt-get install python3-pytest python3-pytest-timeout)"

# Private scratch space; whatever a killed run leaves mounted there is unmounted.
scratch=$(mktemp -d "${TMPDIR:-/tmp}/caiofs-pytest.XXXXXX") || exit 99
chmod 755 "$scratch"	# tests switch to other uids, which must reach their mounts
cleanup() {
	awk -v d="$scratch" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo |
		sort -r | while read -r m; do
			fusermount3 -uz "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
		done
	rm -rf "$scratch"
}
trap cleanup EXIT
trap 'exit 99' HUP INT TERM

export CAIOFS_TEST_TMPDIR="$scratch" PYTHONDONTWRITEBYTECODE=1
# Each test has its own limit; this one catches a hang outside any test.
timeout --kill-after=30 "${CAIOFS_SUITE_TIMEOUT:-1800}" \
"$PYTHON" -m pytest -p no:cacheprovider -p no:asyncio -c "$srcdir/tests/caiofs/pytest.ini" \
	--rootdir="$srcdir/tests/caiofs" --timeout="${CAIOFS_TEST_TIMEOUT:-120}" \
	--junitxml="$scratch/junit.xml" -ra ${CAIOFS_PYTEST_ARGS} "$srcdir/tests/caiofs"
rc=$?
case $rc in
0)	# all skipped (no usable backend) is a skip, not a pass
	"$PYTHON" - "$scratch/junit.xml" <<'PY' || rc=77
import sys, xml.etree.ElementTree as ET
suite = ET.parse(sys.argv[1]).getroot()
suite = suite if suite.tag == 'testsuite' else suite.find('testsuite')
sys.exit(1 if int(suite.get('tests')) == int(suite.get('skipped')) else 0)
PY
	;;
1)	;;			# some test failed
5)	echo "FAIL: pytest collected no tests"; rc=99 ;;
124|137) echo "ERROR: the suite overran ${CAIOFS_SUITE_TIMEOUT:-1800} s"; rc=99 ;;
*)	echo "ERROR: pytest exited with $rc"; rc=99 ;;
esac
exit $rc
