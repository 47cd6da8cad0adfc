# test_cache_modes.py - the data-path cases again under each kernel cache mode (writeback, keep cache, direct_io).
import errno
import os
import time

import pytest

import test_data
import test_links
import test_locks
import test_ops
import test_tools

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
	test_tools.test_acl_tools,
]

MiB = 1 << 20

# writeback_cache with direct I/O for every file: caiofs drops writeback_cache,
# or the kernel would keep an mtime that its direct writes never update.
MODES = [['writeback_cache'], ['cache=always'], ['cache=never'], ['direct_io'],
	 ['writeback_cache', 'cache=always'], ['writeback_cache', 'cache=never'],
	 ['writeback_cache', 'direct_io']]


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


def read_bytes_served(m):
	"""Bytes the daemon has read for the kernel so far."""
	return m.stat_json()['ops'].get('read', {}).get('bytes', 0)


def read_through_mount(m, name):
	with open(m.path(name), 'rb') as f:
		return f.read()


@pytest.mark.one_backend
def test_auto_keeps_cache_of_unchanged_file(mnt):
	"""cache=auto (the default): a second open of a file nobody changed
	reads from the kernel's page cache, not from the daemon."""
	data = os.urandom(4 * MiB)
	with open(mnt.spath('hot'), 'wb') as f:
		f.write(data)
	assert read_through_mount(mnt, 'hot') == data
	before = read_bytes_served(mnt)
	assert read_through_mount(mnt, 'hot') == data
	served = read_bytes_served(mnt) - before
	assert served < MiB, 'the second read of an unchanged file fetched %d bytes again' % served


@pytest.mark.one_backend
@pytest.mark.parametrize('change', ['same_size', 'truncate_and_rewrite', 'through_other_name'])
def test_auto_drops_cache_when_source_changed(mnt, change):
	"""cache=auto: a change made to the source behind the mount's back
	between two opens is seen by the second open, even at the same size."""
	old, new = b'A' * (256 * 1024), b'B' * (256 * 1024)
	with open(mnt.spath('f'), 'wb') as f:
		f.write(old)
	if change == 'through_other_name':
		os.link(mnt.spath('f'), mnt.spath('other'))
	assert read_through_mount(mnt, 'f') == old
	time.sleep(0.05)	# a change time that differs even on coarse clocks
	target = mnt.spath('other' if change == 'through_other_name' else 'f')
	if change == 'truncate_and_rewrite':
		os.truncate(target, 0)
	fd = os.open(target, os.O_WRONLY)
	try:
		os.pwrite(fd, new, 0)
	finally:
		os.close(fd)
	assert read_through_mount(mnt, 'f') == new


@pytest.mark.one_backend
def test_auto_cache_follows_writes_through_mount(mnt):
	"""Writes through the mount go through the kept pages: a reopen reads
	what was written, wherever the previous open left the cache."""
	with open(mnt.path('w'), 'wb') as f:
		f.write(b'1' * 100000)
	assert read_through_mount(mnt, 'w') == b'1' * 100000
	with open(mnt.path('w'), 'r+b') as f:
		f.seek(5000)
		f.write(b'2' * 3000)
	expect = b'1' * 5000 + b'2' * 3000 + b'1' * 92000
	assert read_through_mount(mnt, 'w') == expect
	with open(mnt.spath('w'), 'rb') as f:
		assert f.read() == expect


FUSE_CAP_WRITEBACK_CACHE = 1 << 16


@pytest.mark.one_backend
@pytest.mark.parametrize('direct', ['cache=never', 'direct_io'])
def test_writeback_cache_dropped_with_direct_io(mount_factory, backend, direct):
	"""writeback_cache is negotiated alone, and dropped with a note when every
	file is opened for direct I/O."""
	alone = mount_factory(backend, ['writeback_cache'])
	assert alone.stat_json()['fuse_want'] & FUSE_CAP_WRITEBACK_CACHE
	m = mount_factory(backend, ['writeback_cache', direct])
	assert not m.stat_json()['fuse_want'] & FUSE_CAP_WRITEBACK_CACHE
	assert 'writeback_cache ignored: %s' % direct in m.log()
