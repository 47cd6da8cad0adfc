#!/bin/sh
# conformance-uring.sh - the libcaio conformance suite against the uring backend (skips if unavailable).
exec "${top_builddir:-.}/tests/core/conformance" uring "$@"
