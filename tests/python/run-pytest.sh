#!/bin/sh
# run-pytest.sh - run the caio binding's pytest suite against the build tree (an Automake test).
# Exit: 0 pass, 77 skip (binding not built), 1 tests failed, 99 hard error.
: "${PYTHON:=/usr/bin/python3}"
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_builddir:=$(pwd)}"
pydir=$top_builddir/python

if ! test -f "$pydir/caio/__init__.py"; then
	echo "SKIP: the caio binding was not built in $pydir (configure --enable-python=yes)"
	exit 77
fi
if ! "$PYTHON" -c 'import pytest, pytest_timeout' 2>/dev/null; then
	echo "SKIP: $PYTHON lacks pytest or pytest-timeout (apt-get install python3-pytest python3-pytest-timeout)"
	exit 77
fi
# Under --enable-sanitizers the extension needs the sanitizer runtimes preloaded.
if test -f "$pydir/pyenv.sh"; then
	. "$pydir/pyenv.sh"
fi

PYTHONPATH=$pydir
CAIO_TEST_PYTHONDIR=$pydir		# conftest.py refuses a caio imported from elsewhere
PYTHONDONTWRITEBYTECODE=1		# the source tree may be read-only (distcheck)
export PYTHONPATH CAIO_TEST_PYTHONDIR PYTHONDONTWRITEBYTECODE top_srcdir top_builddir
unset CAIO_IMPL CAIO_DEFAULT_IMPLEMENTATION CAIO_TEST_PROBE_FAIL

cd "$top_srcdir" || exit 99
# pytest-timeout bounds each test; this bounds a hang pytest cannot interrupt.
timeout -k 30 3600 "$PYTHON" -m pytest -p no:cacheprovider -ra tests/python "$@"
status=$?
case $status in
0|1)	exit $status ;;
5)	echo "FAIL: pytest collected no tests"; exit 99 ;;
124)	echo "FAIL: the suite did not finish within an hour"; exit 99 ;;
*)	echo "FAIL: pytest exited with status $status"; exit 99 ;;
esac
