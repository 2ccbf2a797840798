#!/usr/bin/env bash
# Sum the suites' results into the one closing line: "N passed, N failed".
# A suite that left no result counts as one failure.
set -u
dir=$1
shift
passed=0 failed=0
for s in "$@"; do
	if [ -r "$dir/$s" ] && read -r p f <"$dir/$s" && [ -n "$p" ] && [ -n "$f" ]; then
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
