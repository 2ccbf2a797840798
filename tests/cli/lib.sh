# shellcheck shell=bash
# SPDX-License-Identifier: MIT
# Shared by tests/cli/test_*.sh, sourced first thing with the script's own
# arguments:  . "$(dirname "$0")/lib.sh" "$@"
# Takes RESULT_FILE and SPT_BINARY (made absolute as $result and $spt),
# moves into a scratch directory removed on exit, and gives the counters
# and the ok / not_ok / expect helpers.  cli_finish writes "<passed>
# <failed>" to RESULT_FILE and returns non-zero if anything failed.
set -u
_me=$(basename "$0")
result=${1:?usage: $_me RESULT_FILE SPT_BINARY}
spt=${2:?usage: $_me RESULT_FILE SPT_BINARY}
case $spt in /*) ;; *) spt=$PWD/$spt ;; esac
case $result in /*) ;; *) result=$PWD/$result ;; esac

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1

n=0 passed=0 failed=0

ok() {
	n=$((n + 1)) passed=$((passed + 1))
	echo "ok $n - $1"
}

not_ok() {
	n=$((n + 1)) failed=$((failed + 1))
	echo "not ok $n - $1"
	shift
	for line in "$@"; do echo "#   $line"; done
}

# expect NAME STATUS STDERR-REGEX CMD...: exit status, a stderr pattern
# ("" for none) and, unless the status is 0, nothing on stdout.
expect() {
	local name=$1 want=$2 pattern=$3 rc
	shift 3
	"$@" >out.txt 2>err.txt
	rc=$?
	if [ "$rc" -ne "$want" ]; then
		not_ok "$name" "expected exit status $want, got $rc" "stderr: $(head -c 300 err.txt)"
	elif [ -n "$pattern" ] && ! grep -qE -e "$pattern" err.txt; then
		not_ok "$name" "expected stderr matching /$pattern/, got: $(head -c 300 err.txt)"
	elif [ "$want" -ne 0 ] && [ -s out.txt ]; then
		not_ok "$name" "expected nothing on stdout, got: $(head -c 300 out.txt)"
	else
		ok "$name"
	fi
}

cli_finish() {
	echo "$passed $failed" >"$result"
	[ "$failed" -eq 0 ]
}
