#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# 'spt train': the per-layer weight-copy and weight-gradient options, and the
# traffic breakdown that --report writes (traffic.csv), on a short run.
# Usage: test_train.sh RESULT_FILE SPT_BINARY
# Prints "ok N - name" / "not ok N - name" lines; writes "<passed> <failed>"
# to RESULT_FILE.
# shellcheck source=tests/cli/lib.sh
. "$(dirname "$0")/lib.sh" "$@"

S=$spt
data=/usr/share/datasets/fashion-mnist

# ---- arguments ----------------------------------------------------------------
expect "--wcopy-targets rejects a value above 0.999" 1 "wcopy-targets: expected" \
	"$S" train --wcopy-targets 0.5,1.5
expect "--wgrad-targets rejects an empty list" 1 "wgrad-targets: expected" \
	"$S" train --wgrad-targets ,
expect "--wcopy-prune rejects an unknown kind" 1 "wcopy-prune: expected" \
	"$S" train --wcopy-prune random
expect "--wgrad-targets is rejected for the FP32 baseline" 1 "needs --precision bfp8" \
	"$S" train --precision fp32 --wgrad-targets 0.9
expect "--isa rejects an unknown path" 1 "--isa: expected auto, scalar, avx2 or avx512" \
	"$S" train --isa sse9
expect "--help lists the per-layer weight options" 0 "" "$S" train --help
if grep -q -- '--wcopy-targets' out.txt && grep -q -- '--wgrad-targets' out.txt &&
   grep -q -- '--wcopy-prune' out.txt
then ok "--help names --wcopy-targets, --wgrad-targets and --wcopy-prune"
else not_ok "--help names --wcopy-targets, --wgrad-targets and --wcopy-prune" "$(cat out.txt)"; fi

# ---- a short run with per-layer targets and a report ---------------------------
if [ ! -r "$data/train-images-idx3-ubyte.gz" ]; then
	echo "# $data missing: the training run is not tested"
else
	expect "a short run with per-layer weight targets" 0 "" \
		"$S" train --epochs 2 --limit-train 1280 --limit-test 200 --warmup 0.1 --ramp 0.2 \
		--target-sparsity 0.9 --wcopy-targets 0.8,0 --wgrad-targets 0,0.9 \
		--report rep --json
	csv=rep/traffic.csv
	if [ ! -s "$csv" ]; then
		not_ok "--report writes traffic.csv" "$(ls rep 2>&1)"
	else
		ok "--report writes traffic.csv"
		# 3 layers x (fwd, bwd, wg, reblock) and a header
		rows=$(wc -l <"$csv")
		if [ "$rows" -eq 13 ]; then ok "traffic.csv: one row per layer and part"
		else not_ok "traffic.csv: one row per layer and part" "got $rows lines"; fi
		# layer 0 has no backward pass; the re-blocking transposes have no FP16 peer
		bad=$(awk -F, 'NR > 1 && (($1 == 0 && $2 == "bwd" && $3 + $4 != 0) ||
			($2 == "reblock" && $5 != 0) || ($2 != "reblock" && $1 + 0 > 0 && $5 == 0))' "$csv")
		if [ -z "$bad" ]; then ok "traffic.csv: passes and transposes where they belong"
		else not_ok "traffic.csv: passes and transposes where they belong" "$bad"; fi
		# the producers write both blockings: re-blocked copies are written, never read back
		bad=$(awk -F, 'NR > 1 && $2 == "reblock" && ($3 != 0 || $4 == 0)' "$csv")
		if [ -z "$bad" ]; then ok "traffic.csv: re-blocked copies written, not read back"
		else not_ok "traffic.csv: re-blocked copies written, not read back" "$bad"; fi
		# the parts add up to the last epoch's bytes_vs_fp16
		sum=$(awk -F, 'NR > 1 { s += $6 } END { printf "%.4f", s }' "$csv")
		ep=$(awk -F, 'END { printf "%.4f", $7 }' rep/epochs.csv)
		if awk -v a="$sum" -v b="$ep" 'BEGIN { d = a - b; exit !(d < 0.0005 && d > -0.0005) }'
		then ok "traffic.csv: the shares add up to bytes_vs_fp16 ($sum)"
		else not_ok "traffic.csv: the shares add up to bytes_vs_fp16" "sum $sum, epochs.csv $ep"; fi
		# per-layer targets: layer 0's weight copy pruned, layer 1's not;
		# layer 1's gradient pruned
		wc0=$(awk -F, '$1 == 0 && $2 == "fwd" { print $9 }' "$csv")
		wc1=$(awk -F, '$1 == 1 && $2 == "fwd" { print $9 }' "$csv")
		wg1=$(awk -F, '$1 == 1 && $2 == "fwd" { print $10 }' "$csv")
		if awk -v a="$wc0" -v b="$wc1" -v g="$wg1" 'BEGIN { exit !(a > 0.1 && b < 0.05 && g > 0.3) }'
		then ok "per-layer targets reach their layers (wcopy $wc0 / $wc1, wgrad l1 $wg1)"
		else not_ok "per-layer targets reach their layers" "wcopy l0 $wc0, l1 $wc1, wgrad l1 $wg1"; fi
	fi

	# every SIMD path gives the same bits: the same checkpoint and figures
	if expect "--isa scalar: a short run" 0 "" \
		"$S" train --isa scalar --limit-train 640 --limit-test 100 --target-sparsity 0.9 \
		--save isa-scalar.ckpt --json && cp out.txt isa-scalar.json &&
	   expect "--isa auto: the same run" 0 "" \
		"$S" train --isa auto --limit-train 640 --limit-test 100 --target-sparsity 0.9 \
		--save isa-auto.ckpt --json; then
		if cmp -s isa-scalar.ckpt isa-auto.ckpt &&
		   [ "$(sed 's/"seconds": [0-9.e+-]*//' isa-scalar.json)" = \
		     "$(sed 's/"seconds": [0-9.e+-]*//' out.txt)" ]
		then ok "--isa scalar and auto: the same checkpoint and JSON"
		else not_ok "--isa scalar and auto: the same checkpoint and JSON" \
			"$(cat isa-scalar.json out.txt)"; fi
	fi
	if grep -qw avx2 /proc/cpuinfo; then
		expect "--isa avx2 --bench --json" 0 "" \
			"$S" train --isa avx2 --bench --bench-steps 3 --batch 16 --json
		if grep -q '"isa": "avx2"' out.txt
		then ok "--bench --json names the SIMD path it timed"
		else not_ok "--bench --json names the SIMD path it timed" "$(cat out.txt)"; fi
	fi
	if ! grep -qw avx512_vnni /proc/cpuinfo; then
		expect "--isa avx512 on a CPU without it" 1 "--isa avx512: this CPU does not have it" \
			"$S" train --isa avx512
	fi

	# the benchmark interleaves the two configurations in rounds
	expect "--bench --json: FP32 and BFP8 timed in interleaved rounds" 0 "" \
		"$S" train --bench --bench-steps 7 --batch 16 --target-sparsity 0.9 --json
	if grep -qE '"steps": 7, "rounds": 7,' out.txt &&
	   awk '{ if (!match($0, /"round_cpu_speedup_median": [0-9.]+, "round_cpu_speedup_min": [0-9.]+, "round_cpu_speedup_max": [0-9.]+/)) exit 1
		split(substr($0, RSTART, RLENGTH), f, /[:,] */)
		exit !(f[4] > 0 && f[4] <= f[2] && f[2] <= f[6]) }' out.txt
	then ok "--bench --json: one ratio per round, min <= median <= max"
	else not_ok "--bench --json: one ratio per round, min <= median <= max" "$(cat out.txt)"; fi
fi

cli_finish
