# tests/python/local.mk - the caio binding's pytest suite, run by `make check` as one test.
TESTS += tests/python/run-pytest.sh
EXTRA_DIST += \
	tests/python/run-pytest.sh \
	tests/python/pytest.ini \
	tests/python/conftest.py \
	tests/python/test_api.py \
	tests/python/test_asyncio.py \
	tests/python/test_bench.py \
	tests/python/test_bigio.py \
	tests/python/test_concurrency.py \
	tests/python/test_errors.py \
	tests/python/test_lifecycle.py \
	tests/python/test_odirect.py \
	tests/python/test_pip_install.py \
	tests/python/test_pipes.py \
	tests/python/test_quickstart.py \
	tests/python/test_raw.py \
	tests/python/test_refcounts.py \
	tests/python/test_selection.py
EXTRA_DIST += examples/quickstart.py bench/caio-python-bench.py
