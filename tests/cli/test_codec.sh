#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The 'spt codec' command on real data: round trips, statistics, errors.
# Usage: test_codec.sh RESULT_FILE SPT_BINARY
# Prints "ok N - name" / "not ok N - name" lines; writes "<passed> <failed>"
# to RESULT_FILE.
# shellcheck source=tests/cli/lib.sh
. "$(dirname "$0")/lib.sh" "$@"

# expect_status NAME STATUS REGEX CMD...: exit status and a stderr pattern.
expect_status() {
	local name=$1 want=$2 pattern=$3 rc
	shift 3
	"$@" >out.txt 2>err.txt
	rc=$?
	if [ "$rc" -ne "$want" ]; then
		not_ok "$name" "expected exit status $want, got $rc" "stderr: $(head -c 300 err.txt)"
	elif [ -n "$pattern" ] && ! grep -qE "$pattern" err.txt; then
		not_ok "$name" "expected stderr matching /$pattern/, got: $(head -c 300 err.txt)"
	else
		ok "$name"
	fi
}

# expect_py NAME PYTHON-CODE: a python3 check that exits 0 on success.
expect_py() {
	local name=$1 msg
	if msg=$(python3 -c "$2" 2>&1); then
		ok "$name"
	else
		not_ok "$name" "$msg"
	fi
}

# Test data: float32 little-endian, row-major.
python3 - <<'EOF' || { echo "not ok 1 - generate test data"; echo "0 1" >"$result"; exit 1; }
import random, struct
random.seed(7)
def write(name, vals):
    with open(name, "wb") as f:
        f.write(struct.pack("<%df" % len(vals), *vals))
# 37 x 100: ragged (100 = 3*32 + 4), half exact zeros, a few binades
write("x.f32", [0.0 if random.random() < 0.5 else random.gauss(0, 1) * 2 ** random.randint(-4, 4)
               for _ in range(37 * 100)])
# one block whose products are exact ties: block max 1.0, x*64 = k + 0.5
write("ties.f32", [1.0, 2.5 / 64, 3.5 / 64, -2.5 / 64, 0.5 / 64, 127.5 / 64 / 2])
# saturation: 1.9999 * 64 rounds to 128, clamped to 127
write("sat.f32", [1.9999, -1.9999, 0.5])
write("nan.f32", [1.0, 2.0, float("nan"), 4.0])
write("inf.f32", [1.0, float("-inf"), 3.0, 4.0])
write("zero.f32", [0.0] * (130 * 32))
EOF

S=$spt

# ---- help and usage ----------------------------------------------------------
expect_status "codec --help exits 0" 0 "" "$S" codec --help
if grep -q quantize out.txt && grep -q encode out.txt && grep -q decode out.txt &&
	grep -q inspect out.txt; then ok "codec --help lists the commands"
else not_ok "codec --help lists the commands" "got: $(cat out.txt)"; fi
for c in quantize encode decode inspect; do
	expect_status "codec $c --help exits 0" 0 "" "$S" codec "$c" --help
	if grep -q "^usage: spt codec $c" out.txt; then ok "codec $c --help prints its usage"
	else not_ok "codec $c --help prints its usage" "got: $(head -3 out.txt)"; fi
done
expect_status "codec without a command is a usage error" 2 "usage" "$S" codec
expect_status "unknown codec command is a usage error" 2 "unknown codec command 'frob'" "$S" codec frob

# ---- quantize ----------------------------------------------------------------
expect_status "quantize ties" 0 "" "$S" codec quantize --shape 1,6 ties.f32 ties.q
expect_py "quantize rounds ties to even" '
import struct
got = struct.unpack("<6f", open("ties.q", "rb").read())
want = (1.0, 2 / 64, 4 / 64, -2 / 64, 0.0, 1.0)    # last: 63.75 -> 64
assert got == want, "expected %r, got %r" % (want, got)'
expect_status "quantize saturating block" 0 "" "$S" codec quantize --shape 1,3 sat.f32 sat.q
expect_py "quantize clamps k to 127" '
import struct
got = struct.unpack("<3f", open("sat.q", "rb").read())
want = (127 / 64, -127 / 64, 0.5)
assert got == want, "expected %r, got %r" % (want, got)'
expect_status "quantize 37x100" 0 "" "$S" codec quantize --shape 37,100 x.f32 x.q
expect_py "quantize keeps the size and stays within half a step" '
import struct, math
x = struct.unpack("<3700f", open("x.f32", "rb").read())
q = struct.unpack("<3700f", open("x.q", "rb").read())
for r in range(37):
    for c0 in range(0, 100, 32):
        blk = range(r * 100 + c0, r * 100 + min(c0 + 32, 100))
        m = max(abs(x[i]) for i in blk)
        e = -127 if m == 0 else max(-127, math.frexp(m)[1] - 1)
        for i in blk:
            step = 2.0 ** (e - 6)
            tol = step if abs(x[i]) >= 127.5 * step else step / 2    # clamped to 127
            assert abs(q[i] - x[i]) <= tol, (i, x[i], q[i])
            assert q[i] * 2.0 ** (6 - e) == round(q[i] * 2.0 ** (6 - e)), (i, q[i])'
expect_status "quantize stochastic seed 1" 0 "" "$S" codec quantize --shape 37,100 --round stochastic --seed 1 x.f32 s1.q
expect_status "quantize stochastic seed 1 again" 0 "" "$S" codec quantize --shape 37,100 --round stochastic --seed 1 x.f32 s1b.q
expect_status "quantize stochastic seed 2" 0 "" "$S" codec quantize --shape 37,100 --round stochastic --seed 2 x.f32 s2.q
if cmp -s s1.q s1b.q; then ok "stochastic rounding is deterministic in the seed"
else not_ok "stochastic rounding is deterministic in the seed" "seed 1 twice gave different output"; fi
if ! cmp -s s1.q s2.q; then ok "stochastic rounding differs across seeds"
else not_ok "stochastic rounding differs across seeds" "seeds 1 and 2 gave identical output"; fi

# ---- encode / decode / inspect -----------------------------------------------
expect_status "encode 37x100" 0 "" "$S" codec encode --shape 37,100 x.f32 x.spt
if grep -q "^nonzeros" out.txt && grep -q "^bytes" out.txt; then ok "encode prints statistics"
else not_ok "encode prints statistics" "got: $(cat out.txt)"; fi
expect_status "decode 37x100" 0 "" "$S" codec decode x.spt x.d
if cmp -s x.d x.q; then ok "decode(encode(x)) equals quantize(x) byte for byte"
else not_ok "decode(encode(x)) equals quantize(x) byte for byte" "x.d and x.q differ"; fi
expect_status "encode -q" 0 "" "$S" codec encode -q --shape 37,100 x.f32 xq.spt
if [ ! -s out.txt ] && cmp -s x.spt xq.spt; then ok "encode -q prints nothing, same bytes"
else not_ok "encode -q prints nothing, same bytes" "stdout: $(cat out.txt)"; fi
expect_status "options after the file names" 0 "" "$S" codec encode x.f32 xa.spt --shape 37,100 -q
if cmp -s x.spt xa.spt; then ok "option order does not matter"
else not_ok "option order does not matter" "different encoding"; fi

expect_status "encode --json" 0 "" "$S" codec encode --json --shape 37,100 x.f32 x.spt
cp out.txt enc.json
expect_status "inspect --json" 0 "" "$S" codec inspect --json x.spt
cp out.txt insp.json
expect_py "encode and inspect statistics agree with the file and the data" '
import json, os, struct
e = json.load(open("enc.json")); i = json.load(open("insp.json"))
q = struct.unpack("<3700f", open("x.q", "rb").read())
x = struct.unpack("<3700f", open("x.f32", "rb").read())
size = os.path.getsize("x.spt")
nz = sum(1 for v in q if v != 0)
assert e["bytes"] == size == i["bytes"], (e["bytes"], size, i["bytes"])
assert e["nonzeros"] == nz == i["nonzeros"], (e["nonzeros"], nz, i["nonzeros"])
assert e["elements"] == 3700 == i["elements"]
assert e["natural_zeros"] == sum(1 for v in x if v == 0)
assert (i["rows"], i["cols"]) == (37, 100)
assert abs(i["bits_per_element"] - 8 * size / 3700) < 1e-3
assert abs(i["sparsity"] - (1 - nz / 3700)) < 1e-5
l1 = i["level1"]
assert l1["blocks"] == 37 * 4 and l1["tiles"] == 3, l1
assert l1["nz_blocks"] == e["nz_blocks"]
assert i["level2"]["nz_per_block_min"] >= 1 and i["level2"]["nz_per_block_max"] <= 32
assert -127 <= i["exponent"]["min"] <= i["exponent"]["max"] <= 127'
expect_status "inspect" 0 "" "$S" codec inspect x.spt
if grep -q "^shape *37 x 100" out.txt && grep -q "^level 1" out.txt && grep -q "^level 2" out.txt &&
	grep -q "^exponent" out.txt; then ok "inspect describes shape, levels and exponents"
else not_ok "inspect describes shape, levels and exponents" "got: $(cat out.txt)"; fi

expect_status "encode all-zero" 0 "" "$S" codec encode -q --shape 130,32 zero.f32 zero.spt
expect_status "inspect all-zero --json" 0 "" "$S" codec inspect -j zero.spt
expect_py "all-zero tensor: empty tiles only, header + table + masks" '
import json, os
i = json.load(open("out.txt"))
assert os.path.getsize("zero.spt") == 64 + 4 * 4 + 8 * 3, os.path.getsize("zero.spt")
assert i["nonzeros"] == 0 and i["level1"]["empty_tiles"] == 3 and i["sparsity"] == 1.0, i'

expect_status "encode with deterministic pruning" 0 "" "$S" codec encode --json --shape 37,100 --prune deterministic --tau 0.5 x.f32 p.spt
cp out.txt prune.json
expect_status "decode pruned" 0 "" "$S" codec decode -q p.spt p.d
expect_py "deterministic pruning zeroes every |x| < tau" '
import json, struct
x = struct.unpack("<3700f", open("x.f32", "rb").read())
d = struct.unpack("<3700f", open("p.d", "rb").read())
s = json.load(open("prune.json"))
small = [i for i in range(3700) if 0 < abs(x[i]) < 0.5]
assert small and all(d[i] == 0 for i in small)
assert s["pruned"] == len(small), (s["pruned"], len(small))
assert any(d[i] != 0 for i in range(3700) if abs(x[i]) >= 0.5)'
expect_status "encode with stochastic pruning" 0 "" "$S" codec encode -q --shape 37,100 --prune stochastic --tau 0.5 --prune-seed 3 x.f32 sp.spt
expect_status "decode stochastic-pruned" 0 "" "$S" codec decode -q sp.spt sp.d
expect_py "stochastic pruning gives 0 or +-tau below tau" '
import struct
x = struct.unpack("<3700f", open("x.f32", "rb").read())
d = struct.unpack("<3700f", open("sp.d", "rb").read())
small = [i for i in range(3700) if 0 < abs(x[i]) < 0.5]
vals = {abs(d[i]) for i in small}
assert vals <= {0.0, 0.5}, vals
assert 0.5 in vals and 0.0 in vals, vals'

# ---- errors ----------------------------------------------------------------------
expect_status "file size not matching the shape" 1 "do not match shape 37x101" "$S" codec encode --shape 37,101 x.f32 bad.spt
expect_status "NaN input" 1 "NaN" "$S" codec encode --shape 2,2 nan.f32 bad.spt
expect_status "infinite input" 1 "infinite" "$S" codec quantize --shape 2,2 inf.f32 bad.q
expect_status "unreadable input" 1 "cannot open" "$S" codec decode missing.spt bad.d
expect_status "unwritable output" 1 "cannot create" "$S" codec encode -q --shape 37,100 x.f32 nodir/out.spt
expect_status "unknown option" 2 "unknown or incomplete option" "$S" codec encode --frobnicate --shape 37,100 x.f32 bad.spt
expect_status "option of another command" 2 "does not apply" "$S" codec quantize --prune off --shape 37,100 x.f32 bad.q
expect_status "missing --shape" 2 "missing --shape" "$S" codec encode x.f32 bad.spt
expect_status "bad shape" 2 "bad shape" "$S" codec encode --shape 37x100 x.f32 bad.spt
expect_status "zero shape" 2 "bad shape" "$S" codec quantize --shape 0,100 x.f32 bad.q
expect_status "bad rounding mode" 2 "bad rounding mode" "$S" codec quantize --round up --shape 37,100 x.f32 bad.q
expect_status "bad pruning mode" 2 "bad pruning mode" "$S" codec encode --prune some --shape 37,100 x.f32 bad.spt
expect_status "negative tau" 2 "bad threshold" "$S" codec encode --prune deterministic --tau -1 --shape 37,100 x.f32 bad.spt
expect_status "NaN tau" 2 "bad threshold" "$S" codec encode --prune deterministic --tau nan --shape 37,100 x.f32 bad.spt
expect_status "bad seed" 2 "bad seed" "$S" codec quantize --round stochastic --seed -3 --shape 37,100 x.f32 bad.q
expect_status "missing output file" 2 "missing file" "$S" codec decode x.spt
expect_status "extra argument" 2 "unexpected argument" "$S" codec inspect x.spt x.spt
expect_status "raw floats are not a compressed tensor" 1 "not a valid compressed tensor" "$S" codec inspect x.f32
head -c 200 x.spt >trunc.spt
expect_status "truncated compressed tensor" 1 "not a valid compressed tensor" "$S" codec decode trunc.spt bad.d
cp x.spt corrupt.spt
printf '\377' | dd of=corrupt.spt bs=1 seek=6 conv=notrunc status=none	# flags
expect_status "corrupt header flags" 1 "not a valid compressed tensor" "$S" codec decode corrupt.spt bad.d
if [ ! -e bad.spt ] && [ ! -e bad.d ] && [ ! -e bad.q ] && ! ls ./*.tmp* >/dev/null 2>&1; then
	ok "failed commands leave no output file"
else not_ok "failed commands leave no output file" "$(ls)"; fi
cp x.q keep.q
expect_status "NaN input over an existing output" 1 "NaN" "$S" codec quantize --shape 2,2 nan.f32 keep.q
if cmp -s keep.q x.q; then ok "a failed command leaves an existing output untouched"
else not_ok "a failed command leaves an existing output untouched" "keep.q changed"; fi

echo "# codec CLI: $passed passed, $failed failed"
cli_finish
