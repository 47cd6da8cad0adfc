# test_cache_modes.py - the data-path cases again under each kernel cache mode (writeback, keep cache, direct_io).
import errno

import pytest

import test_data
import test_links
import test_locks
import test_ops

CASES = [
	test_ops.test_read_write_sizes,
	test_ops.test_open_trunc,
	test_ops.test_open_append,
	test_ops.test_append_after_other_writer_extends,
	test_ops.test_close_flushes_to_source,
	test_ops.test_setattr_through_open_fd,
	test_ops.test_ftruncate_after_chmod_000,
	test_ops.test_fallocate_modes,
	test_ops.test_copy_file_range,
	test_ops.test_seek_data_hole_matches_source,
	test_ops.test_write_updates_mtime,
	test_links.test_hard_link_data_and_size_seen_at_once,
	test_links.test_unlink_while_open,
	test_links.test_rename_over_open_file,
	test_data.test_large_file_offsets,
	test_data.test_o_direct_aligned,
	test_data.test_o_direct_coherent_with_buffered,
	test_data.test_o_direct_short_read_at_eof,
	test_data.test_mmap_shared_write_then_read,
	test_data.test_mmap_written_data_reaches_source_without_msync,
	test_data.test_concurrent_writers_threads,
	test_data.test_concurrent_writers_processes,
	test_locks.test_posix_lock_conflict,
]

MODES = [['writeback_cache'], ['cache=always'], ['cache=never'], ['direct_io'],
	 ['writeback_cache', 'cache=always']]


def uses_shared_mmap(case):
	return 'mmap' in case.__name__


@pytest.mark.one_backend
@pytest.mark.parametrize('options', MODES, ids=lambda o: '+'.join(o))
@pytest.mark.parametrize('case', CASES, ids=lambda c: c.__name__[5:])
def test_under_cache_mode(mount_factory, backend, options, case):
	m = mount_factory(backend, options)
	try:
		case(m)
	except OSError as e:
		# Without FUSE_DIRECT_IO_ALLOW_MMAP the kernel refuses shared
		# mappings of direct_io files: a kernel/libfuse limit, not ours.
		direct = 'cache=never' in options or 'direct_io' in options
		if direct and uses_shared_mmap(case) and e.errno == errno.ENODEV:
			pytest.skip('shared mmap of direct_io files needs FUSE_DIRECT_IO_ALLOW_MMAP')
		raise


@pytest.mark.one_backend
@pytest.mark.parametrize('journal', ['delete', 'wal'])
def test_sqlite_with_writeback_cache(mount_factory, backend, journal):
	test_locks.test_sqlite_two_processes(mount_factory(backend, ['writeback_cache']), journal)


@pytest.mark.one_backend
@pytest.mark.parametrize('journal', ['delete', 'wal'])
def test_sqlite_with_cache_never(mount_factory, backend, journal):
	"""SQLite's WAL index is a shared mapping of the -shm file: it must work
	even when caching is off."""
	test_locks.test_sqlite_two_processes(mount_factory(backend, ['cache=never']), journal)
