#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# 'spt train --save/--resume': SIGINT finishes the step and saves a checkpoint,
# a resume continues the same run bit for bit, and a bad checkpoint or a
# different --seed is refused with a clear message and left untouched.
# Usage: test_checkpoint.sh RESULT_FILE SPT_BINARY
# Prints "ok N - name" / "not ok N - name" lines; writes "<passed> <failed>"
# to RESULT_FILE.
# shellcheck source=tests/cli/lib.sh
. "$(dirname "$0")/lib.sh" "$@"

S=$spt
data=/usr/share/datasets/fashion-mnist
if [ ! -r "$data/train-images-idx3-ubyte.gz" ]; then
	not_ok "Fashion-MNIST in $data" "the checkpoint tests need it (make deps installs dataset-fashion-mnist)"
	cli_finish
	exit 1
fi

# 2 epochs of 300 steps: long enough to interrupt inside the first epoch
run=(train --epochs 2 --limit-train 19200 --limit-test 500 --target-sparsity 0.9 --seed 7)
field() { sed -n "s/.*\"$1\": *\\([0-9.a-z]*\\).*/\\1/p" "$2"; }

OPENBLAS_NUM_THREADS=1 "$S" "${run[@]}" --json >ref.json 2>/dev/null
ref_acc=$(field test_accuracy ref.json) ref_loss=$(field test_loss ref.json)
if [ -n "$ref_acc" ]; then ok "reference run (test_accuracy $ref_acc)"
else not_ok "reference run" "$(cat ref.json)"; fi

# ---- SIGINT inside epoch 1, then resume -----------------------------------------
"$S" "${run[@]}" --save ck >int.out 2>int.err &
pid=$!
for _ in $(seq 600); do	# up to 60 s for the first progress line (step 100)
	grep -q 'step 100/' int.err 2>/dev/null && break
	kill -0 "$pid" 2>/dev/null || break
	sleep 0.1
done
kill -INT "$pid" 2>/dev/null
wait "$pid"
rc=$?
if [ "$rc" -eq 130 ] && grep -q 'interrupted after step [0-9]*; checkpoint saved' int.err
then ok "SIGINT: exit status 130, 'checkpoint saved' ($(grep -o 'after step [0-9]*' int.err))"
else not_ok "SIGINT: exit status 130 and a saved checkpoint" "status $rc" "$(tail -n 3 int.err)"; fi
if grep -q 'step 100/' int.err && ! grep -q 'epoch 2/2' int.err
then ok "SIGINT landed inside the first epoch"
else not_ok "SIGINT landed inside the first epoch" "$(tr '\r' '\n' <int.err | tail -n 3)"; fi
cp ck ck.orig 2>/dev/null

expect "resume with another --seed is refused" 1 "trained with --seed 7, not 1: resume with --seed 7" \
	"$S" train --epochs 2 --limit-train 19200 --limit-test 500 --target-sparsity 0.9 --resume ck
if cmp -s ck ck.orig; then ok "a refused resume leaves the checkpoint as it was"
else not_ok "a refused resume leaves the checkpoint as it was"; fi

OPENBLAS_NUM_THREADS=1 "$S" "${run[@]}" --resume ck --save ck --json >res.json 2>res.err
rc=$?
acc=$(field test_accuracy res.json) loss=$(field test_loss res.json)
if [ "$rc" -eq 0 ] && [ -n "$acc" ] && [ "$acc" = "$ref_acc" ] && [ "$loss" = "$ref_loss" ]
then ok "the resumed run ends exactly like the uninterrupted one (accuracy $acc, loss $loss)"
else not_ok "the resumed run ends exactly like the uninterrupted one" \
	"status $rc, resumed $acc / $loss, uninterrupted $ref_acc / $ref_loss" "$(tail -n 2 res.err)"; fi
expect "a finished checkpoint does not train again" 1 "already holds 2 epochs" \
	"$S" "${run[@]}" --resume ck

# ---- damaged checkpoints ------------------------------------------------------------
size=$(stat -c %s ck.orig)
cp ck.orig flip
# invert the byte (a fixed value would leave it as it was 1 time in 256)
byte=$(od -An -tu1 -j $((size / 2)) -N1 ck.orig | tr -d ' ')
printf '%b' "\\0$(printf '%03o' $((byte ^ 0xff)))" | dd of=flip bs=1 seek=$((size / 2)) conv=notrunc status=none
if cmp -s flip ck.orig; then not_ok "the flipped copy differs from the checkpoint"; fi
cp flip flip.orig
expect "a flipped byte is refused" 1 "cannot resume from flip: .*(checksum|CRC)" \
	"$S" "${run[@]}" --resume flip
if cmp -s flip flip.orig; then ok "the damaged file is left as it was"
else not_ok "the damaged file is left as it was"; fi
head -c $((size - 100)) ck.orig >short
expect "a truncated checkpoint is refused" 1 "cannot resume from short: .*truncated" \
	"$S" "${run[@]}" --resume short
head -c 4096 /dev/urandom >noise
expect "random bytes are refused" 1 "cannot resume from noise" "$S" "${run[@]}" --resume noise
expect "a missing checkpoint is refused" 1 "cannot resume from nothere" \
	"$S" "${run[@]}" --resume nothere

cli_finish
