# tests/core/local.mk - libcaio tests: one conformance run per backend, backend selection, valgrind.
check_PROGRAMS += tests/core/conformance tests/core/selection

tests_core_conformance_SOURCES = tests/core/conformance.c \
	tests/core/harness.c tests/core/harness.h
tests_core_conformance_LDADD = libcaio.la -lpthread
tests_core_selection_SOURCES = tests/core/selection.c \
	tests/core/harness.c tests/core/harness.h
tests_core_selection_LDADD = libcaio.la

# One line per backend in the test report; each skips (77) when its
# backend is unavailable here and says why in its .log.  One case by hand:
#   tests/core/conformance uring eventfd      tests/core/selection probe-hook
core_conformance_tests = \
	tests/core/conformance-uring.sh \
	tests/core/conformance-linux.sh \
	tests/core/conformance-thread.sh \
	tests/core/conformance-sync.sh

TESTS += $(core_conformance_tests) tests/core/selection tests/core/valgrind-thread.sh
EXTRA_DIST += $(core_conformance_tests) tests/core/valgrind-thread.sh
