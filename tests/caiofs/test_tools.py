# test_tools.py - legacy programs run unchanged on the mount: tar, cp --reflink=auto, git, rsync, a compiler, exec, ACL tools.
import filecmp
import os
import shutil
import stat
import subprocess

import pytest

from cfsutil import errname, errno_of
from test_ops import read_file, write_file


# A make run by the tests must not inherit the flags of a make that runs the
# suite (make -s check would silence its "up to date").
CLEAN_ENV = {k: v for k, v in os.environ.items()
	     if k not in ('MAKEFLAGS', 'MFLAGS', 'MAKELEVEL', 'MAKEOVERRIDES')}


def run(cmd, cwd=None, timeout=120):
	res = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout,
			     env=CLEAN_ENV)
	assert res.returncode == 0, '%s failed (%d):\n%s%s' % (' '.join(cmd), res.returncode,
							    res.stdout[-2000:], res.stderr[-2000:])
	return res.stdout


def needs(program):
	if shutil.which(program) is None:
		pytest.skip('%s is not installed' % program)


def same_tree(a, b):
	"""Recursively equal names, types, modes and file contents."""
	cmp = filecmp.dircmp(a, b)
	assert not cmp.left_only and not cmp.right_only and not cmp.funny_files, \
		(a, cmp.left_only, cmp.right_only, cmp.funny_files)
	match, mismatch, errors = filecmp.cmpfiles(a, b, cmp.common_files, shallow=False)
	assert not mismatch and not errors, (a, mismatch, errors)
	for name in cmp.common:
		sa, sb = os.lstat(os.path.join(a, name)), os.lstat(os.path.join(b, name))
		assert sa.st_mode == sb.st_mode, (a, name)
		if stat.S_ISLNK(sa.st_mode):
			assert os.readlink(os.path.join(a, name)) == os.readlink(os.path.join(b, name))
	for name in cmp.common_dirs:
		same_tree(os.path.join(a, name), os.path.join(b, name))


def make_sample_tree(root):
	os.makedirs(os.path.join(root, 'a', 'b', 'c'))
	for i in range(40):
		write_file(os.path.join(root, 'a', 'f%d' % i), os.urandom(i * 997))
	write_file(os.path.join(root, 'a', 'b', 'big'), os.urandom(3 << 20))
	os.symlink('../f1', os.path.join(root, 'a', 'b', 'link'))
	os.link(os.path.join(root, 'a', 'f2'), os.path.join(root, 'a', 'b', 'c', 'hard'))
	os.chmod(os.path.join(root, 'a', 'f3'), 0o751)
	with open(os.path.join(root, 'a', 'sparse'), 'wb') as f:
		f.truncate(8 << 20)
		f.seek(4 << 20)
		f.write(b'island')


@pytest.mark.one_backend
def test_tar_roundtrip(mnt, workdir):
	orig = os.path.join(workdir, 'orig')
	make_sample_tree(orig)
	tarball = os.path.join(workdir, 't.tar')
	run(['tar', '-cf', tarball, '-C', orig, '.'])
	run(['tar', '-xf', tarball, '-C', mnt.path()])
	same_tree(orig, mnt.path())
	same_tree(orig, mnt.spath())
	assert os.stat(mnt.path('a', 'f2')).st_nlink == 2
	again = os.path.join(workdir, 't2.tar')
	run(['tar', '--sparse', '-cf', again, '-C', mnt.path(), '.'])
	out = os.path.join(workdir, 'out')
	os.mkdir(out)
	run(['tar', '-xf', again, '-C', out])
	same_tree(orig, out)


@pytest.mark.one_backend
def test_cp_reflink_auto_and_archive(mnt, workdir):
	data = os.urandom(5 << 20)
	write_file(mnt.path('src.bin'), data)
	run(['cp', '--reflink=auto', mnt.path('src.bin'), mnt.path('copy.bin')])
	assert read_file(mnt.spath('copy.bin')) == data
	orig = os.path.join(workdir, 'orig')
	make_sample_tree(orig)
	run(['cp', '-a', orig, mnt.path('tree')])
	same_tree(orig, mnt.path('tree'))
	run(['cp', '-a', mnt.path('tree'), os.path.join(workdir, 'back')])
	same_tree(orig, os.path.join(workdir, 'back'))


@pytest.mark.one_backend
def test_git_repository(mnt):
	needs('git')
	env_args = ['-c', 'user.name=t', '-c', 'user.email=t@example.invalid',
		    '-c', 'init.defaultBranch=main', '-c', 'gc.auto=0']
	repo = mnt.path('repo')
	run(['git'] + env_args + ['init', '-q', repo])
	for i in range(30):
		write_file(os.path.join(repo, 'file%d.txt' % i), b'line %d\n' % i * (i + 1))
	run(['git'] + env_args + ['add', '.'], cwd=repo)
	run(['git'] + env_args + ['commit', '-q', '-m', 'first'], cwd=repo)
	write_file(os.path.join(repo, 'file3.txt'), b'changed\n')
	os.rename(os.path.join(repo, 'file4.txt'), os.path.join(repo, 'renamed.txt'))
	run(['git'] + env_args + ['commit', '-qam', 'second'], cwd=repo)
	run(['git'] + env_args + ['add', '-A'], cwd=repo)
	run(['git'] + env_args + ['commit', '-qm', 'third'], cwd=repo)
	run(['git'] + env_args + ['gc', '-q', '--aggressive'], cwd=repo)
	assert run(['git', 'fsck', '--strict'], cwd=repo) == ''
	assert run(['git', 'status', '--porcelain'], cwd=repo) == ''
	clone = mnt.path('clone')
	run(['git', 'clone', '-q', repo, clone])
	assert read_file(os.path.join(clone, 'file3.txt')) == b'changed\n'
	assert run(['git', 'rev-list', '--count', 'HEAD'], cwd=clone).strip() == '3'


@pytest.mark.one_backend
def test_rsync(mnt, workdir):
	needs('rsync')
	orig = os.path.join(workdir, 'orig')
	make_sample_tree(orig)
	run(['rsync', '-aHS', orig + '/', mnt.path('copy') + '/'])
	same_tree(orig, mnt.path('copy'))
	assert os.stat(mnt.path('copy', 'a', 'f2')).st_ino == \
		os.stat(mnt.path('copy', 'a', 'b', 'c', 'hard')).st_ino
	write_file(os.path.join(orig, 'a', 'f5'), b'updated')
	os.unlink(os.path.join(orig, 'a', 'f6'))
	out = run(['rsync', '-aHS', '--delete', '--itemize-changes', orig + '/', mnt.path('copy') + '/'])
	assert 'f5' in out and 'f6' in out
	same_tree(orig, mnt.spath('copy'))
	# a second run with checksums finds nothing to do
	assert run(['rsync', '-aHSc', '--itemize-changes', orig + '/', mnt.path('copy') + '/']).strip() == ''


def test_compile_and_exec(mnt):
	"""A compiler writes an executable on the mount; it runs from there (mmap PROT_EXEC)."""
	needs('gcc')
	write_file(mnt.path('hello.c'), b'#include <stdio.h>\nint main(void)'
		   b'{ puts("hello from caiofs"); return 7; }\n')
	run(['gcc', '-O1', '-o', mnt.path('hello'), mnt.path('hello.c')])
	res = subprocess.run([mnt.path('hello')], capture_output=True, text=True, timeout=30)
	assert (res.returncode, res.stdout) == (7, 'hello from caiofs\n')
	shutil.copy2('/bin/true', mnt.path('true'))
	assert subprocess.run([mnt.path('true')], timeout=30).returncode == 0
	# writing to a running executable fails (or not) exactly as on the source fs
	outcomes = []
	for path in (mnt.spath('sleep-raw'), mnt.path('sleep-mnt')):
		shutil.copy2('/bin/sleep', path)
		sleeper = subprocess.Popen([path, '30'])
		try:
			outcomes.append(errno_of(lambda: os.close(os.open(path, os.O_WRONLY))))
		finally:
			sleeper.kill()
			sleeper.wait()
	assert outcomes[1] == outcomes[0], 'open for writing of a running program: ' \
		'source %s, mount %s' % (errname(outcomes[0]), errname(outcomes[1]))


@pytest.mark.one_backend
def test_make_builds_incrementally(mnt):
	"""make relies on mtimes seen through the mount."""
	needs('make')
	needs('gcc')
	write_file(mnt.path('a.c'), b'int a(void) { return 1; }\n')
	write_file(mnt.path('main.c'), b'int a(void);\nint main(void) { return a(); }\n')
	write_file(mnt.path('Makefile'), b'prog: a.o main.o\n\tgcc -o $@ a.o main.o\n')
	run(['make', '-s'], cwd=mnt.path())
	assert subprocess.run([mnt.path('prog')]).returncode == 1
	assert 'up to date' in run(['make'], cwd=mnt.path())
	os.utime(mnt.path('a.o'), ns=(10 ** 18, 10 ** 18))	# far future: newer than a.c
	write_file(mnt.path('a.c'), b'int a(void) { return 2; }\n')
	os.utime(mnt.path('a.c'), ns=(2 * 10 ** 18, 2 * 10 ** 18))
	run(['make', '-s'], cwd=mnt.path())
	assert subprocess.run([mnt.path('prog')]).returncode == 2


def test_acl_tools(mnt):
	needs('setfacl')
	write_file(mnt.path('f'), b'acl', 0o600)
	run(['setfacl', '-m', 'u:65534:r,g:4242:rw', mnt.path('f')])
	src_acl = run(['getfacl', '-cpn', mnt.spath('f')])
	assert 'user:65534:r--' in src_acl and 'group:4242:rw-' in src_acl
	assert run(['getfacl', '-cpn', mnt.path('f')]) == src_acl
	# the ACL mask is the group bits of the mode: both views agree at once
	assert os.stat(mnt.path('f')).st_mode == os.stat(mnt.spath('f')).st_mode
	run(['setfacl', '-b', mnt.path('f')])
	assert 'user:65534' not in run(['getfacl', '-cpn', mnt.spath('f')])
	os.mkdir(mnt.path('d'))
	run(['setfacl', '-d', '-m', 'u:65534:rwx', mnt.path('d')])
	write_file(mnt.path('d', 'inherits'), b'')
	assert 'user:65534:rwx' in run(['getfacl', '-cpn', mnt.spath('d', 'inherits')])
