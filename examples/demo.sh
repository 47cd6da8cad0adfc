#!/bin/sh
# demo.sh - libcaio demonstration: copy one file with every available backend and show what each cost.
#
# Usage: examples/demo.sh [SIZE_MIB]     (default 64)
# Environment: CAIO_CP (the caio-cp to run), DEMO_DIR (where the temp files
# go; default $TMPDIR or /var/tmp), DEMO_QD and DEMO_BS (caio-cp -q and -s).
set -u

size_mib=${1:-64}
here=$(cd "$(dirname "$0")" && pwd)
if [ -z "${CAIO_CP:-}" ]; then
	for c in "$here/caio-cp" ./examples/caio-cp "$(command -v caio-cp)"; do
		[ -n "$c" ] && [ -x "$c" ] && CAIO_CP=$c && break
	done
fi
if [ -z "${CAIO_CP:-}" ]; then
	echo "demo.sh: caio-cp not found: build first (make), or set CAIO_CP" >&2
	exit 1
fi
unset CAIO_IMPL	# each backend is asked for by name below
tmp=$(mktemp -d "${DEMO_DIR:-${TMPDIR:-/var/tmp}}/caio-demo.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM

echo "libcaio demo: copying a $size_mib MiB file with each backend ($CAIO_CP -q ${DEMO_QD:-32} -s ${DEMO_BS:-128k})"
head -c $((size_mib * 1048576)) /dev/urandom >"$tmp/source" || exit 1
chmod 640 "$tmp/source"

# value KEY LINE: the value of KEY=... in caio-cp's statistics line
value() {
	echo "$2" | tr ' ' '\n' | sed -n "s/^$1=//p"
}

status=0
printf '\n%-8s %-10s %9s %9s %15s %10s %10s\n' backend result seconds requests kernel_submits avg_batch max_batch
"$CAIO_CP" --probe >"$tmp/probe" || exit 1
while read -r backend verdict; do
	if [ "$verdict" != ok ]; then
		printf '%-8s skipped: %s\n' "$backend" "${verdict#unavailable: }"
		continue
	fi
	rm -f "$tmp/copy"
	if ! line=$("$CAIO_CP" -b "$backend" -q "${DEMO_QD:-32}" -s "${DEMO_BS:-128k}" </dev/null \
			"$tmp/source" "$tmp/copy"); then
		printf '%-8s FAILED\n' "$backend"
		status=1
		continue
	fi
	result=ok
	cmp -s "$tmp/source" "$tmp/copy" || { result=DIFFERENT; status=1; }
	printf '%-8s %-10s %9s %9s %15s %10s %10s\n' "$backend" "$result" \
		"$(value seconds "$line")" "$(value requests "$line")" \
		"$(value kernel_submits "$line")" "$(value avg_batch "$line")" \
		"$(value max_batch "$line")"
done <"$tmp/probe"

cat <<'EOF'

requests: reads, writes and the final fsync handed to libcaio.
kernel_submits: flushes that handed requests over in one go: one io_uring_enter
  (uring) or io_submit (linux) each, carrying avg_batch requests on average.
  The thread backend hands each batch to its worker pool and the sync backend
  runs it in place: both still make one pread/pwrite system call per request.
EOF
exit $status
