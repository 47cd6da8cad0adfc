#!/bin/sh
# conformance-linux.sh - the libcaio conformance suite against the linux backend (skips if unavailable).
exec "${top_builddir:-.}/tests/core/conformance" linux "$@"
