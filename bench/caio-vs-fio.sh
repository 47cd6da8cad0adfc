#!/bin/bash
# caio-vs-fio.sh - run the same cells with caio-bench and fio, interleaved, and print the ratio caio/fio per cell.
#
# Usage: bench/caio-vs-fio.sh            (from the build directory, after make)
#
# Environment (all optional):
#   BENCH_DIR    directory for the test file; default a new directory in
#                /var/tmp.  It must be a real filesystem (not tmpfs): the
#                O_DIRECT cells need one.
#   FILE_SIZE    test file size, fio syntax (default 1g)
#   RUNTIME      seconds per run (default 3): 10 cells x 4 backends x 2 runs
#                is about 4 minutes
#   BACKENDS     default "uring linux thread sync"
#   CELLS        cells to run, shell patterns on the cell names (default all):
#                rr4k-qd1-cached rr4k-qd32-cached rr4k-qd128-cached
#                rr4k-qd1-direct rr4k-qd32-direct rr4k-qd128-direct
#                seqread1m-cached seqread1m-direct seqwrite1m-cached seqwrite1m-direct
#   SEQ_QD       queue depth of the 1 MiB sequential cells (default 8)
#   SYNC_SEQ_QD  the sync backend's queue depth in those cells (default 1),
#                see "sync" below
#   THREADS      thread backend pool size (default 8), see below
#   BATCH        requests per kernel submission for uring and linux, on
#                both sides (default 1, fio's iodepth_batch_submit default):
#                caio-bench --batch=BATCH, fio --iodepth_batch_submit=BATCH
#   REPEAT       runs of each pair, alternating which goes first; the best
#                of each is kept (default 1)
#   FIO_OPTS     extra fio options for every fio run
#   CAIO_BENCH, FIO  the programs (default: bench/caio-bench next to this
#                script or in ./bench, and fio)
#   KEEP         keep the work directory (raw JSON) if set
#   FIXED        1: registered buffers on the uring side, caio-bench --fixed
#                against fio --fixedbufs (default 0: neither)
#   HUGEPAGES    1 (default when root): both sides' I/O buffers in huge
#                pages, caio-bench --hugepages and fio --mem=mmaphuge; the
#                script reserves 32 more in /proc/sys/vm/nr_hugepages for
#                the run and gives them back.  0: ordinary 4 KiB pages.
#
# Baselines: each backend runs against the fio engine that does the same thing.
#   uring  -> ioengine=io_uring, iodepth=QD
#   linux  -> ioengine=libaio, iodepth=QD
#   thread -> ioengine=psync, numjobs=min(QD, THREADS), --thread: the pool
#             runs at most THREADS blocking preads at once, each worker like
#             one fio psync job, so the baseline has the same concurrency
#             without the hand-off (the cost of a pool is what the ratio shows).
#             In the sequential cells each job has its own slice of the file.
#             fio's posixaio engine would be a pool too, but glibc's POSIX
#             AIO serialises requests per file descriptor: too weak a baseline.
#   sync   -> ioengine=psync, numjobs=1: one thread doing one syscall at a
#             time is exactly what the sync backend is, whatever its QD.
#             One difference stays: the sync backend reads into QD buffers,
#             fio's job into one.  On this kind of virtual disk that alone
#             costs 1 MiB O_DIRECT reads 20%: a plain loop of preads into
#             huge pages ran 2,480 a second into one buffer, 2,430 cycling
#             through two, 1,930 through eight.  So in the 1 MiB sequential
#             cells, whose depth SEQ_QD is this script's choice, the sync
#             backend runs at SYNC_SEQ_QD=1, the depth its engine really has,
#             into one buffer like fio's job.  The 4 KiB cells keep their
#             depth (QD 32 and 128 is what they measure: the batch of one
#             flush); their buffers share one huge page.
# Both sides submit the same way: fio by default hands each I/O to the kernel
# as soon as it is ready (iodepth_batch_submit=1) and caio-bench then runs
# with --batch=1.  It matters for the direct cells: on this kind of virtual
# disk a 4 KiB QD 32 random read reaches about 130k IOPS with submissions of
# 1 and about 90k with submissions of 32, for fio and caio alike, while the
# page-cached cells gain from large batches (fewer io_uring_enter calls).
# BATCH=32 compares both sides batching.
# fio runs with its defaults plus time_based, invalidate=0 (keep the page
# cache warm, which caio-bench does not touch either), norandommap and
# randrepeat=0 (caio-bench draws offsets uniformly, without a coverage map),
# and lat_percentiles=1 so its p50/p99 are, like caio-bench's, from
# submission to completion.  Page-cached cells warm the cache first
# (cat FILE >/dev/null); write cells fsync the file after each run.
#
# Columns: caio/fio is the IOPS ratio.  "per CPU" divides each side by the
# CPU it used (caio-bench: getrusage(RUSAGE_SELF), all its threads, kernel
# io-wq workers included; fio: its job threads only, summed over numjobs),
# which is steadier on a shared machine for the CPU-bound page-cached cells,
# but flatters fio where io_uring hands work to io-wq (buffered writes).
# Direct cells measure the device: on a shared disk they are noisy, use
# REPEAT=3 and read the ratio with the latencies next to it.
# Why huge pages: a large O_DIRECT request costs this virtio disk per DMA
# segment, one per run of physically contiguous pages in the buffer, and it
# takes at most 254 per request.  In 4 KiB pages a 1 MiB buffer is whatever
# the page allocator handed out: fio's and caio-bench's were both about one
# break every 4 pages, but a few 1 MiB reads into 256 scattered pages were
# split in two, and each side's 1 MiB direct cells moved between 1.3 and
# 2.6 GB/s with that luck.  In huge pages both reach about 4 GB/s, so the
# ratio measures the I/O path, not the buffer.
set -u
set -f	# CELLS holds patterns and options are expanded unquoted: no globbing

RUNTIME=${RUNTIME:-3}
FILE_SIZE=${FILE_SIZE:-1g}
BACKENDS=${BACKENDS:-uring linux thread sync}
CELLS=${CELLS:-*}
SEQ_QD=${SEQ_QD:-8}
SYNC_SEQ_QD=${SYNC_SEQ_QD:-1}
THREADS=${THREADS:-8}
BATCH=${BATCH:-1}
REPEAT=${REPEAT:-1}
FIXED=${FIXED:-0}
fixed_caio= fixed_fio=
[ "$FIXED" = 1 ] && fixed_caio=" --fixed" fixed_fio=" --fixedbufs=1"
HUGEPAGES=${HUGEPAGES:-$([ "$(id -u)" = 0 ] && echo 1 || echo 0)}
FIO=${FIO:-fio}
FIO_OPTS=${FIO_OPTS:-}
PY=/usr/bin/python3

die() {
	echo "caio-vs-fio: $*" >&2
	exit 1
}

find_caio_bench() {
	local here c
	here=$(cd "$(dirname "$0")" && pwd)
	for c in "${CAIO_BENCH:-}" "$here/caio-bench" ./bench/caio-bench; do
		[ -n "$c" ] && [ -x "$c" ] && { echo "$c"; return; }
	done
	die "caio-bench not found: run make, or set CAIO_BENCH"
}

CAIO_BENCH=$(find_caio_bench) || exit 1
command -v "$FIO" >/dev/null || die "fio not found (apt-get install fio)"
[ -x $PY ] || die "$PY is needed to read fio's JSON"

work=$(mktemp -d "${BENCH_DIR:-/var/tmp}/caio-vs-fio.XXXXXX") || die "cannot create a work directory"
huge_before=
cleanup() {
	[ -n "$huge_before" ] && echo "$huge_before" >/proc/sys/vm/nr_hugepages
	if [ -n "${KEEP:-}" ]; then
		echo "raw results kept in $work"
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT
if [ "$HUGEPAGES" = 1 ]; then
	# 32 x 2 MiB: the largest buffer set is fio's 8 psync jobs, one page each
	huge_before=$(cat /proc/sys/vm/nr_hugepages) || die "HUGEPAGES=1 needs /proc/sys/vm/nr_hugepages"
	echo $((huge_before + 32)) >/proc/sys/vm/nr_hugepages 2>/dev/null ||
		die "HUGEPAGES=1: cannot reserve huge pages (not root?); HUGEPAGES=0 runs without"
	free_huge=$(awk '/^HugePages_Free:/ {print $2}' /proc/meminfo)
	[ "${free_huge:-0}" -ge 32 ] ||
		die "HUGEPAGES=1: only ${free_huge:-0} huge pages free (memory too fragmented?); HUGEPAGES=0 runs without"
fi
trap 'exit 130' INT TERM
file=$work/testfile
results=$work/results.tsv

# The cells: name, rw, block size, queue depth, O_DIRECT.
cell_table() {
	cat <<-EOF
	rr4k-qd1-cached randread 4k 1 0
	rr4k-qd32-cached randread 4k 32 0
	rr4k-qd128-cached randread 4k 128 0
	rr4k-qd1-direct randread 4k 1 1
	rr4k-qd32-direct randread 4k 32 1
	rr4k-qd128-direct randread 4k 128 1
	seqread1m-cached read 1m $SEQ_QD 0
	seqread1m-direct read 1m $SEQ_QD 1
	seqwrite1m-cached write 1m $SEQ_QD 0
	seqwrite1m-direct write 1m $SEQ_QD 1
	EOF
}

cell_selected() {
	local pattern
	for pattern in $CELLS; do
		# shellcheck disable=SC2254
		case $1 in $pattern) return 0 ;; esac
	done
	return 1
}

make_test_file() {
	local mib
	mib=$(numfmt --from=iec "${FILE_SIZE^^}") || die "bad FILE_SIZE $FILE_SIZE"
	mib=$((mib / 1048576))
	file_bytes=$((mib * 1048576))
	echo "creating $file ($mib MiB) ..."
	dd if=/dev/urandom of="$file" bs=1M count="$mib" conv=fsync status=none ||
		die "cannot write $file"
	if dd if="$file" of=/dev/null bs=4096 count=1 iflag=direct status=none 2>/dev/null; then
		direct_ok=1
	else
		direct_ok=0
		echo "O_DIRECT does not work in $work ($(stat -f -c %T "$work")): skipping the direct cells" >&2
	fi
}

# fio_engine BACKEND QD: the fio options of the matching engine
fio_engine() {
	local jobs
	case $1 in
	uring) echo "--ioengine=io_uring --iodepth=$2 --iodepth_batch_submit=$BATCH$fixed_fio" ;;
	linux) echo "--ioengine=libaio --iodepth=$2 --iodepth_batch_submit=$BATCH" ;;
	thread)
		jobs=$(($2 < THREADS ? $2 : THREADS))
		echo "--ioengine=psync --numjobs=$jobs --thread" ;;
	sync) echo "--ioengine=psync --numjobs=1" ;;
	esac
}

prepare_run() {	# rw direct
	[ "$2" = 0 ] && cat "$file" >/dev/null
	return 0
}

finish_run() {	# rw
	case $1 in *write) sync "$file" ;; esac
	return 0
}

# run_caio CELL BACKEND RW BS QD DIRECT
run_caio() {
	local out=$work/caio-$1-$2.json extra=
	case $2 in
	thread) extra=--threads=$THREADS ;;
	uring) extra="--batch=$BATCH$fixed_caio" ;;
	linux) extra=--batch=$BATCH ;;
	esac
	[ "$HUGEPAGES" = 1 ] && extra="$extra --hugepages"
	prepare_run "$3" "$6"
	if timeout $((RUNTIME + 120)) "$CAIO_BENCH" --backend="$2" --file="$file" --size="$FILE_SIZE" \
		--rw="$3" --bs="$4" --qd="$5" --direct="$6" --runtime="$RUNTIME" --json $extra \
		>"$out" 2>"$out.err"; then
		$PY - "$out" caio "$1" "$2" >>"$results" <<-'EOF'
		import json, sys
		r = json.load(open(sys.argv[1]))
		print("\t".join(str(x) for x in (sys.argv[3], sys.argv[4], sys.argv[2], r["backend"],
		      r["iops"], r["mib_s"], r["lat_p50_us"], r["lat_p99_us"], r["usr_cpu"] + r["sys_cpu"])))
		EOF
	else
		printf '%s\t%s\tcaio\tfailed: %s\n' "$1" "$2" "$(head -c 200 "$out.err" | tr '\n\t' '  ')" >>"$results"
	fi
	finish_run "$3"
}

# run_fio CELL BACKEND RW BS QD DIRECT
run_fio() {
	local out=$work/fio-$1-$2.json engine more= jobs slice
	engine=$(fio_engine "$2" "$5")
	[ "$HUGEPAGES" = 1 ] && more=--mem=mmaphuge
	# Several psync jobs reading or writing sequentially would each start
	# at offset 0 and move over the same blocks together; give each its
	# own slice, so that together they move over the file once, as
	# caio-bench's one stream does.
	jobs=$(echo "$engine" | sed -n 's/.*--numjobs=\([0-9]*\).*/\1/p')
	case $3 in
	read|write)
		if [ "${jobs:-1}" -gt 1 ]; then
			slice=$((file_bytes / jobs / 1048576 * 1048576))
			more="$more --size=$slice --offset_increment=$slice"
		fi ;;
	esac
	prepare_run "$3" "$6"
	# shellcheck disable=SC2086
	if timeout $((RUNTIME + 120)) "$FIO" --name="$1" --filename="$file" --size="$FILE_SIZE" \
		--rw="$3" --bs="$4" --direct="$6" --runtime="$RUNTIME" --time_based \
		--invalidate=0 --norandommap --randrepeat=0 --lat_percentiles=1 \
		--group_reporting $engine $more $FIO_OPTS \
		--output-format=json --output="$out" >"$out.err" 2>&1; then
		$PY - "$out" fio "$1" "$2" "$engine" >>"$results" <<-'EOF'
		import json, sys
		job = json.load(open(sys.argv[1]))["jobs"][0]
		d = job["write"] if job["write"]["io_bytes"] else job["read"]
		lat = d.get("lat_ns", {}).get("percentile") or d["clat_ns"]["percentile"]
		jobs = int(dict(o.lstrip("-").split("=", 1) for o in sys.argv[5].split() if "=" in o).get("numjobs", 1))
		engine = " ".join(o.split("=", 1)[1] if o.startswith("--ioengine") else o.lstrip("-")
				  for o in sys.argv[5].split() if not o.startswith("--iodepth") and o != "--thread")
		print("\t".join(str(x) for x in (sys.argv[3], sys.argv[4], sys.argv[2], engine,
		      d["iops"], d["bw_bytes"] / 1048576, lat["50.000000"] / 1e3, lat["99.000000"] / 1e3,
		      # group_reporting averages the jobs' CPU use: report the sum
		      (job["usr_cpu"] + job["sys_cpu"]) * jobs)))
		EOF
	else
		printf '%s\t%s\tfio\tfailed: %s\n' "$1" "$2" "$(tail -c 200 "$out.err" | tr '\n\t' '  ')" >>"$results"
	fi
	finish_run "$3"
}

run_cell() {	# NAME RW BS QD DIRECT
	local backend i qd
	for backend in $BACKENDS; do
		qd=$4
		case $backend:$2 in
		sync:read | sync:write) qd=$SYNC_SEQ_QD ;;
		esac
		for i in $(seq "$REPEAT"); do
			echo "  $1 $backend ($i/$REPEAT)" >&2
			if [ $((i % 2)) = 1 ]; then
				run_caio "$1" "$backend" "$2" "$3" "$qd" "$5"
				run_fio "$1" "$backend" "$2" "$3" "$qd" "$5"
			else
				run_fio "$1" "$backend" "$2" "$3" "$qd" "$5"
				run_caio "$1" "$backend" "$2" "$3" "$qd" "$5"
			fi
		done
	done
}

print_table() {
	$PY - "$results" <<-'EOF'
	import sys
	best = {}	# (cell, backend, tool) -> row, the best of REPEAT runs
	order = []
	for line in open(sys.argv[1]):
	    f = line.rstrip("\n").split("\t")
	    key = (f[0], f[1], f[2])
	    if (f[0], f[1]) not in order:
	        order.append((f[0], f[1]))
	    if f[3].startswith("failed"):
	        best.setdefault(key, f)
	        continue
	    old = best.get(key)
	    if old is None or old[3].startswith("failed") or float(f[4]) > float(old[4]):
	        best[key] = f
	head = ("cell", "backend", "caio IOPS", "caio MiB/s", "fio engine", "fio IOPS", "fio MiB/s",
	        "caio/fio", "per CPU", "caio p50/p99 us", "fio p50/p99 us", "caio cpu%", "fio cpu%")
	print("| " + " | ".join(head) + " |")
	print("|" + "|".join("---" for _ in head) + "|")
	low = []
	for cell, backend in order:
	    c, f = best.get((cell, backend, "caio")), best.get((cell, backend, "fio"))
	    def num(r, i, fmt):
	        return "n/a" if r is None or r[3].startswith("failed") else fmt % float(r[i])
	    def lat(r):
	        return "n/a" if r is None or r[3].startswith("failed") else "%.1f/%.1f" % (float(r[6]), float(r[7]))
	    ratio = per_cpu = "n/a"
	    if num(c, 4, "%f") != "n/a" and num(f, 4, "%f") != "n/a" and float(f[4]) > 0:
	        x = float(c[4]) / float(f[4])
	        ratio = "%.2f" % x
	        if x < 0.9:
	            low.append("%s %s %.2f" % (cell, backend, x))
	        if float(c[8]) > 0 and float(f[8]) > 0:
	            per_cpu = "%.2f" % (x * float(f[8]) / float(c[8]))
	    engine = f[3] if f and not f[3].startswith("failed") else "n/a"
	    print("| " + " | ".join((cell, backend, num(c, 4, "%.0f"), num(c, 5, "%.1f"), engine,
	          num(f, 4, "%.0f"), num(f, 5, "%.1f"), ratio, per_cpu, lat(c), lat(f),
	          num(c, 8, "%.0f"), num(f, 8, "%.0f"))) + " |")
	for key, r in sorted(best.items()):
	    if r[3].startswith("failed"):
	        print("%s %s %s: %s" % (key[0], key[1], key[2], r[3]))
	print("\ncaio/fio: IOPS ratio.  per CPU: the same ratio per CPU second used (IOPS / cpu%),")
	print("steadier than the raw ratio on a shared machine for the CPU-bound page-cached cells.")
	print("cells below 0.9x fio: %s" % (", ".join(low) if low else "none"))
	EOF
}

make_test_file
echo "caio-bench: $CAIO_BENCH; $($FIO --version); runtime ${RUNTIME}s per run; kernel $(uname -r); $(nproc) CPUs; buffers in $([ "$HUGEPAGES" = 1 ] && echo "huge pages" || echo "4 KiB pages")"
echo "file: $file ($FILE_SIZE, $(stat -f -c %T "$work")); backends: $BACKENDS; thread pool: $THREADS; batch: $BATCH; 1 MiB cells at QD $SEQ_QD (sync: $SYNC_SEQ_QD); registered buffers (uring): $([ "$FIXED" = 1 ] && echo yes || echo no)"
: >"$results"
while read -r name rw bs qd direct; do
	cell_selected "$name" || continue
	if [ "$direct" = 1 ] && [ "$direct_ok" = 0 ]; then
		continue
	fi
	run_cell "$name" "$rw" "$bs" "$qd" "$direct" </dev/null
done < <(cell_table)
echo
print_table
