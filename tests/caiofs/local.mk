# tests/caiofs/local.mk - the caiofs pytest suite (mounts caiofs per backend) and the caiofs benchmark
TESTS += tests/caiofs/run-pytest.sh tests/caiofs/run-pytest-fuse-uring.sh
# One after the other (test_fuse_uring.py switches the kernel's enable_uring);
# through a variable, since automake owns the rules of the .log files.
caiofs_fuse_uring_log = tests/caiofs/run-pytest-fuse-uring.sh.log
$(caiofs_fuse_uring_log): tests/caiofs/run-pytest.sh.log
EXTRA_DIST += \
	tests/caiofs/run-pytest.sh \
	tests/caiofs/run-pytest-fuse-uring.sh \
	tests/caiofs/pytest.ini \
	tests/caiofs/conftest.py \
	tests/caiofs/cfsutil.py \
	tests/caiofs/test_cache_modes.py \
	tests/caiofs/test_daemon.py \
	tests/caiofs/test_data.py \
	tests/caiofs/test_errors.py \
	tests/caiofs/test_fsx.py \
	tests/caiofs/test_fuse_uring.py \
	tests/caiofs/test_integrity.py \
	tests/caiofs/test_links.py \
	tests/caiofs/test_locks.py \
	tests/caiofs/test_ops.py \
	tests/caiofs/test_permissions.py \
	tests/caiofs/test_posix_diff.py \
	tests/caiofs/test_readdir.py \
	tests/caiofs/test_scale.py \
	tests/caiofs/test_splice.py \
	tests/caiofs/test_stress.py \
	tests/caiofs/test_tools.py \
	bench/caiofs-bench.sh \
	bench/caiofs-bench.py
