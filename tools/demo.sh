#!/bin/bash
# demo.sh - on a fresh Debian 12 machine (as root): install, build, mount a caiofs demo,
# run a short workload through it, print what the backend did, unmount.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

if [ "${CAIOFS_DEMO_NO_INSTALL:-}" != 1 ]; then
	bash tools/install-deps.sh
fi
test -x configure || autoreconf -fi
mkdir -p build-demo
cd build-demo
test -f Makefile || ../configure -q
make -j"$(nproc)" >/dev/null
build=$PWD

echo "== libcaio: copy a file with every backend"
CAIO_CP=$build/examples/caio-cp bash "$top/examples/demo.sh" 32

work=$(mktemp -d /var/tmp/caiofs-demo.XXXXXX)
src=$work/src
mnt=$work/mnt
mkdir "$src" "$mnt"
cleanup() {
	if mountpoint -q "$mnt"; then
		fusermount3 -u "$mnt" 2>/dev/null || fusermount3 -uz "$mnt"
	fi
	rm -rf "$work"
}
trap cleanup EXIT

echo
echo "== caiofs: $src mounted at $mnt"
head -c $((16 << 20)) /dev/urandom >"$src/random.bin"
"$build/caiofs" -o "backend=${CAIOFS_BACKEND:-auto}" "$src" "$mnt"
mountpoint -q "$mnt"

echo "-- workload: untar /usr/include/linux, copy, checksum, random O_DIRECT reads, remove"
tar -C /usr/include -cf - linux | tar -C "$mnt" -xf -
cp "$mnt/random.bin" "$mnt/copy.bin"
sync "$mnt/copy.bin"
cmp "$src/random.bin" "$mnt/copy.bin"
find "$mnt/linux" -type f | wc -l | sed 's/^/files through the mount: /'
fio --name=demo --filename="$mnt/random.bin" --rw=randread --bs=4k --direct=1 \
	--ioengine=libaio --iodepth=32 --runtime=3 --time_based --minimal |
	awk -F';' '{ printf "fio 4 KiB random read O_DIRECT QD32 through caiofs: %d IOPS\n", $8 }'
rm -rf "$mnt/linux" "$mnt/copy.bin"

echo
echo "-- what the backend did (caiofs-stat $mnt)"
"$build/caiofs-stat" "$mnt"
fusermount3 -u "$mnt"
echo "unmounted $mnt"
