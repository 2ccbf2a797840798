#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The 'spt bench' command's arguments and 'spt bench device' where there is
# no SPT device (the host; the guest suite runs it on the device).
# Usage: test_bench.sh RESULT_FILE SPT_BINARY
# Prints "ok N - name" / "not ok N - name" lines; writes "<passed> <failed>"
# to RESULT_FILE.
# shellcheck source=tests/cli/lib.sh
. "$(dirname "$0")/lib.sh" "$@"

S=$spt
NO_DEVICE=3	# SPT_EXIT_NO_DEVICE (tools/spt/spt.h)

# ---- arguments ----------------------------------------------------------------
expect "bench without a target prints the usage" 2 "usage: spt bench <target>" "$S" bench
expect "bench --help exits 0" 0 "" "$S" bench --help
if grep -qE '^  device ' out.txt && grep -qE '^  core ' out.txt && grep -qE '^  train ' out.txt
then ok "bench --help lists core, train and device"
else not_ok "bench --help lists core, train and device" "$(cat out.txt)"; fi
expect "bench device --help exits 0" 0 "" "$S" bench device --help
expect "unknown target" 2 "unknown target 'gpu'" "$S" bench gpu
expect "unknown option" 2 "unknown argument '--fast'" "$S" bench device --fast
expect "stray argument" 2 "unknown argument 'extra'" "$S" bench device --json extra
expect "an option is not a target" 2 "unknown target '--json'" "$S" bench --json

# ---- no device -----------------------------------------------------------------
# $SPT_DEVICE pins the node libspt probes, so a machine that does have an
# SPT device still takes the no-device path here.
expect "bench device: a missing node is no device" $NO_DEVICE "no SPT device found" \
	env SPT_DEVICE="$tmp/accel9" "$S" bench device
expect "bench device --json: no device, no JSON" $NO_DEVICE "no SPT device found" \
	env SPT_DEVICE="$tmp/accel9" "$S" bench device --json
expect "bench device --quick: a node of another driver is no device" $NO_DEVICE \
	"no SPT device found" env SPT_DEVICE=/dev/null "$S" bench device --quick
if [ -e /dev/accel ] || [ -n "${SPT_DEVICE:-}" ]; then
	echo "# this machine may have an SPT device: discovery without SPT_DEVICE not tested"
else
	expect "bench device: discovery finds no device here" $NO_DEVICE "no SPT device found" \
		"$S" bench device --json
fi

echo "# bench CLI: $passed passed, $failed failed"
cli_finish
