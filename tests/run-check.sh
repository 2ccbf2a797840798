#!/usr/bin/env bash
# Run Check test programs; write "<passed> <failed>" to the result file.
# Usage: run-check.sh SUITE RESULT_FILE PROGRAM...
set -u
suite=$1 result=$2
shift 2
passed=0 failed=0
export CK_FORK=yes
for prog in "$@"; do
	name=$(basename "$prog")
	log=$(mktemp)
	"$prog" >"$log" 2>&1
	rc=$?
	line=$(grep -E '^[0-9]+%: Checks: [0-9]+' "$log" | tail -n 1)
	if [ -n "$line" ]; then
		n=$(sed -E 's/.*Checks: ([0-9]+).*/\1/' <<<"$line")
		f=$(sed -E 's/.*Failures: ([0-9]+).*/\1/' <<<"$line")
		e=$(sed -E 's/.*Errors: ([0-9]+).*/\1/' <<<"$line")
		passed=$((passed + n - f - e))
		failed=$((failed + f + e))
		if [ "$rc" -ne 0 ] && [ $((f + e)) -eq 0 ]; then
			failed=$((failed + 1))
			echo "$suite/$name: exit status $rc with no failing check"
		fi
	else
		failed=$((failed + 1))
		line="no Check summary (exit status $rc)"
	fi
	if [ "$rc" -ne 0 ]; then
		sed 's/^/    /' "$log" | grep -vE ':P:|^    Running suite' | tail -n 40
	fi
	printf '%-10s %-28s %s\n' "$suite" "$name" "$line"
	rm -f "$log"
done
echo "$passed $failed" >"$result"
