# bench/local.mk - benchmarks: caio-bench (one backend, fio-like job) and the caio vs fio table
noinst_PROGRAMS += bench/caio-bench
bench_caio_bench_SOURCES = bench/caio-bench.c
bench_caio_bench_LDADD = libcaio.la
EXTRA_DIST += bench/caio-vs-fio.sh
