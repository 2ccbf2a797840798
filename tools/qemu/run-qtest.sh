#!/usr/bin/env bash
# Run the SPT qtest binary and count its TAP results.
# Usage: run-qtest.sh QEMU_BIN QTEST_BIN RESULT_FILE  (writes "<passed> <failed>")
set -uo pipefail
qemu=$1 qtest=$2 out=$3
log=${out}.log
if [ ! -x "$qemu" ] || [ ! -x "$qtest" ]; then
	echo "device: $qemu or $qtest missing (make qemu failed?)" >&2
	echo "0 1" > "$out"
	exit 1
fi
QTEST_QEMU_BINARY=$qemu timeout 900 "$qtest" --tap -k >"$log" 2>&1
rc=$?
pass=$(grep -c '^ok ' "$log")
fail=$(grep -c '^not ok ' "$log")
# a crash or timeout mid-run counts as a failure
if [ "$rc" -ne 0 ] && [ "$fail" -eq 0 ]; then
	fail=1
fi
grep -E '^(not ok|Bail out)' "$log" >&2
echo "device: $pass passed, $fail failed (log: $log)"
echo "$pass $fail" > "$out"
[ "$fail" -eq 0 ]
