#!/bin/sh
# conformance-thread.sh - the libcaio conformance suite against the thread backend (skips if unavailable).
exec "${top_builddir:-.}/tests/core/conformance" thread "$@"
