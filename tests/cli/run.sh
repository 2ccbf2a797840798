#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Every tests/cli/test_*.sh against one spt binary; their results summed.
# Usage: run.sh RESULT_FILE SPT_BINARY
# Writes "<passed> <failed>" to RESULT_FILE; a script that leaves no result
# counts as one failure.
set -u
result=${1:?usage: run.sh RESULT_FILE SPT_BINARY}
spt=${2:?usage: run.sh RESULT_FILE SPT_BINARY}
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

passed=0 failed=0
for t in "$here"/test_*.sh; do
	name=$(basename "$t" .sh)
	bash "$t" "$tmp/$name" "$spt"
	line=$(tail -n 1 "$tmp/$name" 2>/dev/null)
	if [[ $line =~ ^([0-9]+)\ ([0-9]+)$ ]]; then
		passed=$((passed + BASH_REMATCH[1]))
		failed=$((failed + BASH_REMATCH[2]))
	else
		echo "not ok - $name left no result"
		failed=$((failed + 1))
	fi
done
echo "$passed $failed" >"$result"
[ "$failed" -eq 0 ]
