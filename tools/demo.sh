#!/usr/bin/env bash
# make demo: the chip at work, from its arithmetic to training a network on
# the emulated chip through the driver.  Usage: tools/demo.sh BUILD_DIR
set -euo pipefail
build=${1:-build}
spt=$build/bin/spt

step() { printf '\n== %s\n\n' "$*"; }

step "1/3  core/: the chip's arithmetic on this CPU (single thread, one run, ratios against peers)"
"$spt" bench core --quick

step "2/3  libspt on the CPU backend (the chip's golden model): MLP on Fashion-MNIST, BFP8, target sparsity 0.9"
"$spt" train --backend cpu --model mlp --epochs 1 --batch 64 --lr 0.05 \
	--target-sparsity 0.9

step "3/3  the emulated chip: QEMU with -device spt, spt.ko, training through /dev/accel"
make -s --no-print-directory qemu module image >/dev/null
bash tools/vm/train-demo.sh
