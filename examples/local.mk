# examples/local.mk - programs showing libcaio in use, the README's demonstration and their tests.

# caio-cp copies a file through libcaio; demo.sh runs it with every backend.
bin_PROGRAMS += examples/caio-cp
examples_caio_cp_SOURCES = examples/caio-cp.c
examples_caio_cp_LDADD = libcaio.la
TESTS += examples/test-caio-cp.sh
EXTRA_DIST += examples/demo.sh examples/test-caio-cp.sh
