#!/usr/bin/env bash
# Bounded libFuzzer runs: each target for SECONDS from its seed corpus,
# then replay of the corpus.  Usage: run-fuzz.sh RESULT SECONDS TARGET...
set -u
result=$1 secs=$2
shift 2
passed=0 failed=0
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
for t in "$@"; do
	name=$(basename "$t")
	seeds=tests/fuzz/corpus/$name
	work=$(dirname "$t")/$name.corpus
	mkdir -p "$work"
	log=$(dirname "$t")/$name.log
	if "$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
		"$work" "$seeds" >"$log" 2>&1; then
		passed=$((passed + 1))
		echo "fuzz       $name: $(grep -E 'stat::number_of_executed_units' "$log" | awk '{print $2}') runs, no crash"
	else
		failed=$((failed + 1))
		echo "fuzz       $name: FAILED (log $log)"
		grep -A30 -E 'ERROR|runtime error|SUMMARY' "$log" | head -50
	fi
done
echo "$passed $failed" >"$result"
