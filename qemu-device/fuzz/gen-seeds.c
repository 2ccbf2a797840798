/*
 * Writes the seed corpus of tests/fuzz/fuzz_cmdstream.c: one valid job per
 * opcode (and a few modes), laid out as the harness expects.
 * Built and run by 'make fuzz-corpus' (mk/fuzz-corpus.mk):
 *   gen-seeds tests/fuzz/corpus/fuzz_cmdstream
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spt_hw.h"
#include "spt/core.h"

#define VA      0x10000000ull
#define DATA    0x1000u         /* offset of input data after the commands */
#define OUT     0x20000u        /* outputs, in zeroed memory past the input */

static uint8_t buf[64 * 1024];
static size_t cmd_len, data_len;
static const char *dir;

static void reset(void)
{
    memset(buf, 0, sizeof(buf));
    cmd_len = 0;
    data_len = DATA;
}

static void cmd(const void *c, size_t n)
{
    memcpy(buf + cmd_len, c, n);
    cmd_len += n;
}

static uint64_t data(const void *p, size_t n)
{
    uint64_t va = VA + data_len;

    memcpy(buf + data_len, p, n);
    data_len = (data_len + n + 63) & ~63ul;
    return va;
}

static void emit(const char *name, uint8_t mode)
{
    char path[512];
    uint8_t hdr[8] = { mode };
    uint32_t len = cmd_len;
    FILE *f;

    memcpy(hdr + 4, &len, 4);
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "wb");
    if (!f) {
        perror(path);
        exit(1);
    }
    fwrite(hdr, 1, 8, f);
    fwrite(buf, 1, data_len, f);
    fclose(f);
}

#define HDR(op, t) { .opcode = (op), .version = 1, .size = sizeof(t) }
#define HDR2(op, t, f) { .opcode = (op), .version = 2, .size = sizeof(t), .flags = (f) }

static void matrix(float *m, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        m[i] = (seed >> 16) % 3 == 0 ? 0.0f : ((int)((seed >> 8) % 200) - 100) / 50.0f;
    }
}

static uint64_t encoded(unsigned rows, unsigned cols, unsigned seed, size_t *len)
{
    static uint8_t out[16384];
    float m[4096];

    matrix(m, rows * cols, seed);
    if (spt_ct_encode(m, rows, cols, NULL, out, sizeof(out), len, NULL)) {
        fprintf(stderr, "encode failed\n");
        exit(1);
    }
    return data(out, *len);
}

int main(int argc, char **argv)
{
    float m[4096];
    size_t la, lb, lm;
    uint64_t a, b, mk;

    dir = argc > 1 ? argv[1] : ".";

    reset();
    {
        struct spt_cmd_nop n = { HDR(SPT_OP_NOP, struct spt_cmd_nop) };
        struct spt_cmd_fence f = { HDR(SPT_OP_FENCE, struct spt_cmd_fence),
                                   .va = VA + OUT, .value = 42 };
        struct spt_cmd_timestamp t = { HDR(SPT_OP_TIMESTAMP, struct spt_cmd_timestamp),
                                       .va = VA + OUT + 8 };
        cmd(&n, sizeof(n));
        cmd(&f, sizeof(f));
        cmd(&t, sizeof(t));
    }
    emit("nop-fence-timestamp", 8);

    reset();
    matrix(m, 8 * 64, 1);
    {
        struct spt_cmd_encode e = { HDR(SPT_OP_ENCODE, struct spt_cmd_encode),
            .src_va = data(m, 8 * 64 * 4), .rows = 8, .cols = 64,
            .dst_va = VA + OUT, .dst_cap = 8192, .len_va = VA + OUT + 8192,
            .stats_va = VA + OUT + 8200,
            .enc = { .round = 1, .prune_mode = 2, .tau = 0x3f000000, .round_seed = 3 } };
        cmd(&e, sizeof(e));
    }
    emit("encode", 0);

    reset();
    a = encoded(16, 40, 2, &la);
    {
        struct spt_cmd_decode d = { HDR(SPT_OP_DECODE, struct spt_cmd_decode),
            .src_va = a, .src_len = la, .dst_va = VA + OUT, .dst_elems = 16 * 40 };
        struct spt_cmd_transpose t = { HDR(SPT_OP_TRANSPOSE, struct spt_cmd_transpose),
            .src_va = a, .src_len = la, .dst_va = VA + OUT + 0x4000, .dst_cap = 8192,
            .len_va = VA + OUT + 0x8000, .stats_va = VA + OUT + 0x8008,
            .enc = { .prune_mode = 1, .tau = 0x3e800000 } };
        cmd(&d, sizeof(d));
        cmd(&t, sizeof(t));
    }
    emit("decode-transpose", 0);

    reset();
    a = encoded(8, 64, 3, &la);
    b = encoded(16, 64, 4, &lb);
    mk = encoded(8, 16, 5, &lm);
    matrix(m, 16, 6);
    {
        struct spt_cmd_gemm g = { HDR(SPT_OP_GEMM, struct spt_cmd_gemm),
            .pass = SPT_PASS_FWD, .act = SPT_ACT_RELU, .a_va = a, .a_len = la,
            .b_va = b, .b_len = lb, .bias_va = data(m, 16 * 4), .y_va = VA + OUT,
            .ct_va = VA + OUT + 0x2000, .ct_cap = 4096, .len_va = VA + OUT + 0x3000,
            .stats_va = VA + OUT + 0x3008, .enc = { .prune_mode = 1, .tau = 0x3f000000 } };
        struct spt_cmd_gemm g2 = g;

        cmd(&g, sizeof(g));
        g2.pass = SPT_PASS_BWD;
        g2.act = SPT_ACT_RELU_GRAD;
        g2.mask_va = mk;
        g2.mask_len = lm;
        g2.bias_va = 0;
        g2.scale = 0x3f000000;
        g2.enc.round = 1;
        g2.enc.prune_mode = 2;
        cmd(&g2, sizeof(g2));
    }
    emit("gemm", 0);

    reset();
    matrix(m, 8 * 10, 7);
    {
        uint8_t labels[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
        float lr = 0.1f, mom = 0.9f;
        struct spt_cmd_softmax_xent x = { HDR(SPT_OP_SOFTMAX_XENT, struct spt_cmd_softmax_xent),
            .logits_va = data(m, 80 * 4), .labels_va = data(labels, 8), .rows = 8,
            .classes = 10, .loss_va = VA + OUT, .correct_va = VA + OUT + 4,
            .dlogits_va = VA + OUT + 64 };
        struct spt_cmd_sgd s = { HDR(SPT_OP_SGD, struct spt_cmd_sgd),
            .w_va = VA + OUT + 0x1000, .v_va = VA + OUT + 0x2000, .g_va = x.logits_va,
            .n = 80 };

        memcpy(&s.lr, &lr, 4);
        memcpy(&s.momentum, &mom, 4);
        cmd(&x, sizeof(x));
        cmd(&s, sizeof(s));
    }
    emit("softmax-sgd", 0);

    /* version 2: convolution lowering both ways */
    reset();
    matrix(m, 2 * 5 * 5 * 3, 8);
    {
        uint64_t img = data(m, 2 * 5 * 5 * 3 * 4);
        struct spt_cmd_im2col ic = { HDR2(SPT_OP_IM2COL, struct spt_cmd_im2col, 0),
            .img_va = img, .col_va = VA + OUT, .n = 2, .h = 5, .w = 5, .c = 3,
            .k = 3, .stride = 2, .pad = 1 };
        struct spt_cmd_im2col ci = ic;

        ci.hdr.opcode = SPT_OP_COL2IM;
        ci.img_va = VA + OUT + 0x8000;
        cmd(&ic, sizeof(ic));
        cmd(&ci, sizeof(ci));
    }
    emit("v2-im2col-col2im", 0);

    /* version 2: column sums (length from the header) and the finite check */
    reset();
    a = encoded(20, 45, 9, &la);
    {
        struct spt_cmd_colsum cs = {
            HDR2(SPT_OP_COLSUM, struct spt_cmd_colsum, SPT_CMD_F_LEN_HDR),
            .src_va = a, .src_len = la + 64, .dst_va = VA + OUT, .dst_elems = 45 };
        struct spt_cmd_check_finite cf = {
            HDR2(SPT_OP_CHECK_FINITE, struct spt_cmd_check_finite, 0),
            .va = VA + OUT, .n = 45 };

        cmd(&cs, sizeof(cs));
        cmd(&cf, sizeof(cf));
    }
    emit("v2-colsum-finite", 0);

    /* version 2: the ReLU mask, separate arrays and in place */
    reset();
    matrix(m, 256, 13);
    {
        uint64_t y = data(m, 128 * 4), dx = data(m + 128, 128 * 4);
        struct spt_cmd_relu_mask rm = {
            HDR2(SPT_OP_RELU_MASK, struct spt_cmd_relu_mask, 0),
            .dx_va = dx, .y_va = y, .n = 128 };
        struct spt_cmd_relu_mask rm2 = rm;

        rm2.dx_va = y;
        cmd(&rm, sizeof(rm));
        cmd(&rm2, sizeof(rm2));
    }
    emit("v2-relu-mask", 0);

    /* version 2: GEMM with counters, operands sized by their headers */
    reset();
    a = encoded(8, 64, 10, &la);
    b = encoded(16, 64, 11, &lb);
    mk = encoded(8, 16, 12, &lm);
    {
        struct spt_cmd_decode d = {
            HDR2(SPT_OP_DECODE, struct spt_cmd_decode, SPT_CMD_F_LEN_HDR),
            .src_va = a, .src_len = 0x10000, .dst_va = VA + OUT + 0x4000,
            .dst_elems = 8 * 64 };
        struct spt_cmd_transpose t = {
            HDR2(SPT_OP_TRANSPOSE, struct spt_cmd_transpose, SPT_CMD_F_LEN_HDR),
            .src_va = b, .src_len = lb + 8, .dst_va = VA + OUT + 0x6000, .dst_cap = 8192,
            .len_va = VA + OUT + 0x8000 };
        struct spt_cmd_gemm_v2 g = { .v1 = {
            HDR2(SPT_OP_GEMM, struct spt_cmd_gemm_v2, SPT_CMD_F_LEN_HDR),
            .pass = SPT_PASS_FWD, .act = SPT_ACT_RELU_GRAD, .a_va = a, .a_len = la + 256,
            .b_va = b, .b_len = lb, .mask_va = mk, .mask_len = lm + 1, .y_va = VA + OUT,
            .ct_va = VA + OUT + 0x2000, .ct_cap = 4096, .len_va = VA + OUT + 0x3000,
            .stats_va = VA + OUT + 0x3008, .enc = { .prune_mode = 1, .tau = 0x3f000000 } },
            .cnt_va = VA + OUT + 0x3100 };

        cmd(&d, sizeof(d));
        cmd(&t, sizeof(t));
        cmd(&g, sizeof(g));
    }
    emit("v2-gemm-len-hdr", 0);

    /* version 2: ENCODE and GEMM that also write their re-blocked transposes */
    reset();
    matrix(m, 8 * 64, 13);
    b = encoded(16, 64, 14, &lb);
    {
        struct spt_cmd_encode_v2 e = { .v1 = {
            HDR2(SPT_OP_ENCODE, struct spt_cmd_encode_v2, 0),
            .src_va = data(m, 8 * 64 * 4), .rows = 8, .cols = 64,
            .dst_va = VA + OUT, .dst_cap = 4096, .len_va = VA + OUT + 0x7000,
            .enc = { .prune_mode = 1, .tau = 0x3e800000 } },
            .t_va = VA + OUT + 0x1000, .t_cap = 4096, .t_len_va = VA + OUT + 0x7008 };
        struct spt_cmd_gemm_v2 g = { .v1 = {
            HDR2(SPT_OP_GEMM, struct spt_cmd_gemm_v2, SPT_CMD_F_LEN_HDR),
            .pass = SPT_PASS_FWD, .act = SPT_ACT_RELU, .a_va = VA + OUT, .a_len = 4096,
            .b_va = b, .b_len = lb, .ct_va = VA + OUT + 0x2000, .ct_cap = 4096,
            .len_va = VA + OUT + 0x7010 },
            .cnt_va = VA + OUT + 0x7100, .t_va = VA + OUT + 0x3000, .t_cap = 4096,
            .t_len_va = VA + OUT + 0x7018 };

        cmd(&e, sizeof(e));
        cmd(&g, sizeof(g));
    }
    emit("v2-transposed-out", 0);

    /* same NOP job in the other context modes */
    reset();
    {
        struct spt_cmd_fence f = { HDR(SPT_OP_FENCE, struct spt_cmd_fence),
                                   .va = VA + 0xf0000, .value = 1 };
        cmd(&f, sizeof(f));
    }
    emit("readonly-fault", 0);
    emit("bad-context", 2);
    emit("alias-context", 4);
    return 0;
}
