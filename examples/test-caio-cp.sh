#!/bin/sh
# test-caio-cp.sh - caio-cp copies files of awkward sizes byte for byte, mode included, with every available backend.
set -u
unset CAIO_IMPL

caio_cp=${top_builddir:-.}/examples/caio-cp
limit="timeout 60"
if [ ! -x "$caio_cp" ]; then
	echo "ERROR: $caio_cp is not built"
	exit 99
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/test-caio-cp.XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT
umask 077	# the copy must carry the source's mode, not the umask's
failures=0

fail() {
	echo "FAIL: $*"
	failures=$((failures + 1))
}

# copy_check BACKEND SIZE MODE [caio-cp options...]
copy_check() {
	backend=$1 size=$2 mode=$3
	shift 3
	src=$tmp/src-$size dst=$tmp/dst-$backend-$size
	head -c "$size" /dev/urandom >"$src" && chmod "$mode" "$src" || exit 99
	# an existing, longer destination must come out truncated
	head -c $((size + 5000)) /dev/zero >"$dst" || exit 99
	if ! $limit "$caio_cp" -b "$backend" "$@" "$src" "$dst" >"$tmp/out" 2>&1; then
		fail "$backend size $size ($*): caio-cp failed: $(cat "$tmp/out")"
		return
	fi
	grep -q "backend=$backend " "$tmp/out" || fail "$backend size $size: stats line: $(cat "$tmp/out")"
	cmp "$src" "$dst" || fail "$backend size $size ($*): contents differ"
	[ "$(stat -c %a "$dst")" = "$(stat -c %a "$src")" ] ||
		fail "$backend size $size: mode $(stat -c %a "$dst"), want $(stat -c %a "$src")"
}

backends=$($limit "$caio_cp" --probe) || { echo "ERROR: caio-cp --probe failed"; exit 99; }
echo "$backends"
available=$(echo "$backends" | awk '$2 == "ok" { print $1 }')
echo "$backends" | grep -v ' ok$' | sed 's/^/SKIP backend /'
case " $(echo $available) " in
*" sync "*) ;;
*) echo "ERROR: the sync backend must always be available"; exit 99 ;;
esac

# O_DIRECT needs a filesystem that supports it (tmpfs does not).
direct=no
dd if=/dev/zero of="$tmp/direct-probe" bs=4096 count=1 oflag=direct 2>/dev/null && direct=yes
echo "O_DIRECT in $tmp: $direct"

for backend in $available; do
	for size in 0 1 4095 4096 $((1048576 + 13)); do
		copy_check "$backend" "$size" 640
		copy_check "$backend" "$size" 751 -q 3 -s 4096
		copy_check "$backend" "$size" 600 -q 1 -s 1000
		[ $direct = yes ] && copy_check "$backend" "$size" 644 -d -q 8 -s 8192
	done
	echo "checked $backend"
done

# Errors: a message with the errno text and exit status 1.
$limit "$caio_cp" -b sync "$tmp/missing" "$tmp/x" >"$tmp/out" 2>&1
status=$?
[ $status -eq 1 ] || fail "missing source: exit $status, want 1"
grep -q "No such file" "$tmp/out" || fail "missing source: message: $(cat "$tmp/out")"
$limit "$caio_cp" -b sync "$tmp/src-1" "$tmp/no-such-dir/x" >"$tmp/out" 2>&1
[ $? -eq 1 ] || fail "unwritable destination: want exit 1"
$limit "$caio_cp" -b no-such-backend "$tmp/src-1" "$tmp/x" >"$tmp/out" 2>&1
[ $? -eq 1 ] || fail "unknown backend: want exit 1"

cp "$tmp/src-4096" "$tmp/same" || exit 99
$limit "$caio_cp" -b sync "$tmp/same" "$tmp/same" >"$tmp/out" 2>&1
[ $? -eq 1 ] || fail "copy onto itself: want exit 1"
cmp -s "$tmp/src-4096" "$tmp/same" || fail "copy onto itself destroyed the file"

[ $failures -eq 0 ] || exit 1
exit 0
