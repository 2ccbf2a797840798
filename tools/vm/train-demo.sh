#!/usr/bin/env bash
# Train on the emulated chip: boot a guest (QEMU -device spt, spt.ko) and run
# "spt train --backend device" there, then time device-backend training steps
# against the device's own busy time.  Needs "make qemu module image".
#
# Usage: tools/vm/train-demo.sh [-i IMAGE_DIR] [-t TIMEOUT] [SPT_TRAIN_ARGS...]
#
# Default run: MLP 784-512-256-10, BFP8, batch 64, one epoch over all
# 60 000 training images (938 steps), then the 10 000 test images,
# closed-loop target sparsity 0.9: the same configuration the CPU-backend
# part of "make demo" runs, so the two outputs can be compared.  A step is
# one job on the device; under TCG the epoch and the evaluation take about
# 20-40 s in the guest.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
img=$root/build/vm
timeout=900
while getopts "i:t:" o; do
	case $o in
	i) img=$OPTARG ;;
	t) timeout=$OPTARG ;;
	*) echo "usage: $0 [-i IMAGE_DIR] [-t TIMEOUT] [SPT_TRAIN_ARGS...]" >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
args=${*:-"--model mlp --epochs 1 --batch 64 --lr 0.05 --target-sparsity 0.9"}

[ -f "$img/initramfs.cpio.gz" ] || { echo "train-demo: no image in $img (make image)" >&2; exit 1; }

cmd="spt info | sed -n '1,3p'; echo;
echo '\$ spt train --backend device $args';
start=\$(date +%s); spt train --backend device $args 2>/tmp/progress; rc=\$?;
tr '\\r' '\\n' </tmp/progress | grep -v '^epoch [0-9]*/[0-9]* \\[\\|^\$' || true;
echo \"(training and evaluation: \$((\$(date +%s) - start)) s in the guest)\";
[ \$rc = 0 ] || exit \$rc; echo;
echo 'step time against device time (tests/guest/spt_runtime_test bench 10 64):';
/tests/spt_runtime_test bench 10 64"

start=$(date +%s)
set +e
bash "$here/run.sh" -i "$img" -t "$timeout" -l "$img/train-demo.log" -- "$cmd" |
	grep -v '^SPT-\|^\[ *[0-9.]*\]'
rc=${PIPESTATUS[0]}
set -e
echo "(whole demo guest run: $(($(date +%s) - start)) s wall, TCG)"
exit "$rc"
