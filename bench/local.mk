# bench/local.mk - benchmarks: built, never installed nor run by make check; one block per benchmark.

# caio-bench drives one libcaio backend like a fio job; caio-vs-fio.sh runs it against fio.
noinst_PROGRAMS += bench/caio-bench
bench_caio_bench_SOURCES = bench/caio-bench.c
bench_caio_bench_LDADD = libcaio.la
EXTRA_DIST += bench/caio-vs-fio.sh
