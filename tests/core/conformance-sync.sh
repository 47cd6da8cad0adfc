#!/bin/sh
# conformance-sync.sh - the libcaio conformance suite against the sync backend (skips if unavailable).
exec "${top_builddir:-.}/tests/core/conformance" sync "$@"
