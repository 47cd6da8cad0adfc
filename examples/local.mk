# examples/local.mk - example programs using libcaio, the README's demonstration and their test
bin_PROGRAMS += examples/caio-cp
examples_caio_cp_SOURCES = examples/caio-cp.c
examples_caio_cp_LDADD = libcaio.la

TESTS += examples/test-caio-cp.sh
EXTRA_DIST += examples/demo.sh examples/test-caio-cp.sh
