#!/usr/bin/env bash
# Boot a fresh guest, run tests/guest/run-all, count KTAP results.
# Usage: tools/vm/check.sh IMAGE_DIR RESULT_FILE [TIMEOUT]
# RESULT_FILE gets "<passed> <failed>": leaf test cases of the nested KTAP,
# plus one failure per program that failed without a failing case (crash,
# timeout) and one if the guest run itself failed (splat, taint, timeout);
# then the hot-unplug test in a second guest (SPT_SKIP_UNPLUG=1 skips it).
set -uo pipefail
img=$1 result=$2 timeout=${3:-900}
here=$(cd "$(dirname "$0")" && pwd)
log=$img/ktap.log

start=$(date +%s)
bash "$here/run.sh" -i "$img" -t "$timeout" -- /tests/run-all | tee "$log"
rc=${PIPESTATUS[0]}
end=$(date +%s)

read -r passed failed < <(awk '
	/^    (not )?ok [0-9]+/ { leaf_fail += /^    not ok/; leaf_pass += !/^    not ok/; cur_fail += /^    not ok/; next }
	/^not ok [0-9]+/ { if (cur_fail == 0) prog_fail++; cur_fail = 0; next }
	/^ok [0-9]+/ { cur_fail = 0 }
	END { print leaf_pass + 0, leaf_fail + prog_fail }' "$log")
if [ "$rc" != 0 ] && [ "$failed" = 0 ]; then
	failed=1
fi

# Second guest: device_del with jobs in flight (tools/vm/unplug-test.sh).
if [ "${SPT_SKIP_UNPLUG:-0}" != 1 ]; then
	bash "$here/unplug-test.sh" "$img" 2>&1 | tee "$img/unplug.log"
	urc=${PIPESTATUS[0]}
	upass=$(grep -c '^ok ' "$img/unplug.log")
	ufail=$(grep -c '^not ok ' "$img/unplug.log")
	if [ "$urc" != 0 ] && [ "$ufail" = 0 ]; then
		ufail=1
	fi
	passed=$((passed + upass))
	failed=$((failed + ufail))
	end=$(date +%s)
fi
echo "$passed $failed" >"$result"
echo "check-guest: $passed passed, $failed failed (guest exit $rc, $((end - start)) s)"
[ "$failed" = 0 ]
