#!/usr/bin/env bash
# Sum the suites' results into the one closing line: "N passed, N failed".
# Each result file holds "<passed> <failed>" on its last line; a suite that
# left no such result counts as one failure.
set -u
dir=$1
shift
passed=0 failed=0
for s in "$@"; do
	line=$(tail -n 1 "$dir/$s" 2>/dev/null)
	if [[ $line =~ ^([0-9]+)\ ([0-9]+)$ ]]; then
		p=${BASH_REMATCH[1]} f=${BASH_REMATCH[2]}
		printf 'suite %-12s %5d passed, %d failed\n' "$s" "$p" "$f"
	else
		p=0 f=1
		printf 'suite %-12s left no result (counted as 1 failure)\n' "$s"
	fi
	passed=$((passed + p))
	failed=$((failed + f))
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
