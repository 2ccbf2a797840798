/*
 * SPT command-stream interpreter.
 *
 * Every guest-controlled size is checked against SPT_XFER_MAX /
 * SPT_CMD_MAX_LEN before any allocation; every compressed operand is
 * validated by core/ before use; every access goes through the MMU.
 * Command-stream versions 1 and 2 (uapi/spt_hw.h); a rejected command
 * leaves a reason for the device's guest-error log (spt_exec_last_error).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "spt-exec.h"
#include "spt/core.h"

/* The fuzz harness lowers the transfer limit to keep each run short. */
#ifndef SPT_EXEC_XFER_MAX
#define SPT_EXEC_XFER_MAX SPT_XFER_MAX
#endif

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the SPT interpreter assumes a little-endian host"
#endif

struct SptExec {
    const SptExecOps *ops;
    void *opaque;
    SptMmu mmu;
    struct spt_energy_model model;
    /* fault of the current job */
    uint64_t fault_va;
    unsigned fault_access;
    /* why the current job failed, when the interpreter says (static string) */
    uint8_t err_opcode;
    const char *err_why;
};

/* Fail with @code and note @why for the guest-error log. */
static int spt_bad(SptExec *e, int code, const char *why)
{
    e->err_why = why;
    return code;
}

SptExec *spt_exec_new(const SptExecOps *ops, void *opaque,
                      const SptModelParams *p)
{
    SptExec *e = calloc(1, sizeof(*e));

    if (!e) {
        return NULL;
    }
    e->ops = ops;
    e->opaque = opaque;
    spt_mmu_init(&e->mmu, ops->read, opaque, 0, 0);
    spt_energy_model_init(&e->model);
    if (p) {
        e->model.mac_pj = p->mac_pj;
        e->model.skip_check_pj = p->skip_check_pj;
        e->model.exp_add_pj = p->exp_add_pj;
        e->model.sram_pj_per_byte = p->sram_pj_per_byte;
        e->model.dram_pj_per_byte = p->dram_pj_per_byte;
        e->model.static_mw = p->static_mw;
        e->model.clock_mhz = p->clock_mhz;
        e->model.macs_per_cycle = p->macs_per_cycle;
        e->model.dram_gbytes_per_s = p->dram_gbytes_per_s;
    }
    if (spt_energy_model_check(&e->model)) {
        free(e);
        return NULL;
    }
    return e;
}

void spt_exec_free(SptExec *e)
{
    free(e);
}

void spt_exec_set_contexts(SptExec *e, uint64_t ctx_table, uint32_t num_contexts)
{
    e->mmu.ctx_table = ctx_table;
    e->mmu.num_contexts = num_contexts;
}

void spt_exec_last_fault(SptExec *e, uint64_t *va, unsigned *access)
{
    *va = e->fault_va;
    *access = e->fault_access;
}

const char *spt_exec_last_error(SptExec *e, uint8_t *opcode)
{
    *opcode = e->err_opcode;
    return e->err_why;
}

static int spt_va_rw(SptExec *e, uint64_t va, void *buf, size_t len, bool write)
{
    unsigned access = write ? SPT_ACCESS_WRITE : SPT_ACCESS_READ;
    uint8_t *p = buf;

    while (len) {
        uint64_t pa, pa2;
        size_t run = SPT_PAGE_SIZE - (va & (SPT_PAGE_SIZE - 1));
        int err;

        if (run > len) {
            run = len;
        }
        err = spt_mmu_translate(&e->mmu, va, access, &pa);
        if (err) {
            if (err == SPT_ERR_MMU_FAULT) {
                e->fault_va = va;
                e->fault_access = access;
            }
            return err;
        }
        /* coalesce physically contiguous pages into one transfer */
        while (run < len &&
               spt_mmu_translate(&e->mmu, va + run, access, &pa2) == 0 &&
               pa2 == pa + run) {
            run += len - run < SPT_PAGE_SIZE ? len - run : SPT_PAGE_SIZE;
        }
        if (write ? e->ops->write(e->opaque, pa, p, run) :
                    e->ops->read(e->opaque, pa, p, run)) {
            return SPT_ERR_DMA;
        }
        va += run;
        p += run;
        len -= run;
    }
    return SPT_ERR_NONE;
}

int spt_exec_va_read(SptExec *e, uint64_t va, void *buf, size_t len)
{
    return spt_va_rw(e, va, buf, len, false);
}

int spt_exec_va_write(SptExec *e, uint64_t va, const void *buf, size_t len)
{
    return spt_va_rw(e, va, (void *)buf, len, true);
}

static int spt_core_err(int ret)
{
    switch (ret) {
    case 0:
        return SPT_ERR_NONE;
    case -EDOM:
        return SPT_ERR_NUMERIC;
    case -ENOSPC:
        return SPT_ERR_NO_SPACE;
    case -EBADMSG:
        return SPT_ERR_BAD_TENSOR;
    case -E2BIG:
        return SPT_ERR_TOO_BIG;
    case -EINVAL:
        return SPT_ERR_BAD_CMD;
    default:
        return SPT_ERR_INTERNAL;
    }
}

static float spt_f32(uint32_t bits)
{
    float f;

    memcpy(&f, &bits, sizeof(f));
    return f;
}

static uint64_t spt_f64_bits(double d)
{
    uint64_t b;

    memcpy(&b, &d, sizeof(b));
    return b;
}

/* Read @len bytes at @va into a fresh buffer (*out, free() it). */
static int spt_read_alloc(SptExec *e, uint64_t va, uint64_t len, void **out)
{
    void *buf;
    int err;

    *out = NULL;
    if (len == 0 || len > SPT_EXEC_XFER_MAX) {
        return SPT_ERR_TOO_BIG;
    }
    buf = malloc(len);
    if (!buf) {
        return SPT_ERR_INTERNAL;
    }
    err = spt_exec_va_read(e, va, buf, len);
    if (err) {
        free(buf);
        return err;
    }
    *out = buf;
    return SPT_ERR_NONE;
}

/*
 * Read a compressed input operand of @cap bytes at @va.  With @len_hdr
 * (SPT_CMD_F_LEN_HDR) @cap is its buffer's capacity: the tensor's own
 * header says how long it is (total_bytes, SPT_CT_HEADER_SIZE..@cap), and
 * only that much is read.  The length used in *len.
 */
static int spt_read_ct(SptExec *e, uint64_t va, uint64_t cap, bool len_hdr,
                       void **out, uint64_t *len)
{
    *out = NULL;
    *len = cap;
    if (len_hdr) {
        struct spt_ct_header h;
        int err;

        if (cap < sizeof(h)) {
            return spt_bad(e, SPT_ERR_BAD_TENSOR, "capacity below a tensor header");
        }
        err = spt_exec_va_read(e, va, &h, sizeof(h));
        if (err) {
            return err;
        }
        if (h.total_bytes < SPT_CT_HEADER_SIZE || h.total_bytes > cap) {
            return spt_bad(e, SPT_ERR_BAD_TENSOR,
                           "tensor header's total_bytes outside 64..capacity");
        }
        *len = h.total_bytes;
    }
    return spt_read_alloc(e, va, *len, out);
}

static int spt_encode_opts(const struct spt_hw_encode *h, struct spt_encode_opts *o)
{
    float tau = spt_f32(h->tau);

    if (h->round > SPT_ROUND_STOCHASTIC || h->prune_mode > SPT_PRUNE_STOCHASTIC ||
        h->pad || !(tau >= 0.0f) || tau > 3.4e38f) {
        return SPT_ERR_BAD_CMD;
    }
    spt_encode_opts_init(o);
    o->round = h->round;
    o->round_seed = h->round_seed;
    o->prune.mode = h->prune_mode;
    o->prune.tau = tau;
    o->prune.seed = h->prune_seed;
    return SPT_ERR_NONE;
}

/* Validate a compressed operand read from the guest; its shape in *info. */
static int spt_ct_check(const void *buf, uint64_t len, struct spt_ct_info *info)
{
    return spt_ct_validate(buf, len, info) ? SPT_ERR_BAD_TENSOR : SPT_ERR_NONE;
}

/*
 * The shape of a compressed GEMM operand from its header alone: spt_gemm()
 * validates the whole tensor itself, so a lying header still fails there
 * (with -EBADMSG), and the operand is not validated twice.
 */
static int spt_ct_shape(const void *buf, uint64_t len, uint32_t *rows, uint32_t *cols)
{
    struct spt_ct_header h;

    if (len < sizeof(h)) {
        return SPT_ERR_BAD_TENSOR;
    }
    memcpy(&h, buf, sizeof(h));
    if (h.magic != SPT_CT_MAGIC || h.version != SPT_CT_VERSION || !h.rows || !h.cols ||
        h.rows > SPT_CT_MAX_DIM || h.cols > SPT_CT_MAX_DIM) {
        return SPT_ERR_BAD_TENSOR;
    }
    *rows = h.rows;
    *cols = h.cols;
    return SPT_ERR_NONE;
}

typedef struct SptJobAcc {
    struct spt_counters cnt;
    uint64_t out_elements;
    uint64_t out_zeros;
} SptJobAcc;

static int spt_write_outputs(SptExec *e, SptJobAcc *acc, uint64_t len_va,
                             uint64_t stats_va, uint64_t len,
                             const struct spt_tensor_stats *s)
{
    int err = SPT_ERR_NONE;

    acc->out_elements += s->elements;
    acc->out_zeros += s->elements - s->nonzeros;
    if (len_va) {
        err = spt_exec_va_write(e, len_va, &len, sizeof(len));
    }
    if (!err && stats_va) {
        struct spt_hw_stats h = {
            .elements = s->elements,
            .natural_zeros = s->natural_zeros,
            .pruned = s->pruned,
            .underflow = s->underflow,
            .nonzeros = s->nonzeros,
            .nz_blocks = s->nz_blocks,
            .sum_abs = spt_f64_bits(s->sum_abs),
            .sum_abs_kept = spt_f64_bits(s->sum_abs_kept),
            .bytes = s->bytes,
        };
        err = spt_exec_va_write(e, stats_va, &h, sizeof(h));
    }
    return err;
}

/* Version 2's second, transposed output of ENCODE and GEMM (va 0: none). */
typedef struct SptTOut {
    uint64_t va;
    uint64_t cap;
    uint64_t len_va;
} SptTOut;

static int spt_t_check(SptExec *e, const SptTOut *t)
{
    if (!t->va) {
        return t->cap || t->len_va ?
            spt_bad(e, SPT_ERR_BAD_CMD, "t_cap or t_len_va without t_va") : 0;
    }
    if (!t->cap) {
        return spt_bad(e, SPT_ERR_BAD_CMD, "t_va with t_cap 0");
    }
    if (t->cap > SPT_EXEC_XFER_MAX) {
        return spt_bad(e, SPT_ERR_TOO_BIG, "t_cap beyond the transfer limit");
    }
    return 0;
}

/*
 * Write the re-blocked transpose of the compressed @ct (@ct_len bytes, just
 * produced by the command) at t->va, as TRANSPOSE with raw options would:
 * the producer writes both blockings, so only the write is counted.
 */
static int spt_write_t(SptExec *e, SptJobAcc *acc, const SptTOut *t,
                       const void *ct, size_t ct_len)
{
    struct spt_encode_opts raw;
    struct spt_ct_info info;
    size_t bound, cap, len = 0;
    void *out;
    int err;

    if (!t->va) {
        return SPT_ERR_NONE;
    }
    err = spt_ct_check(ct, ct_len, &info);
    if (err) {
        return err;
    }
    bound = spt_ct_bound(info.cols, info.rows);
    if (!bound) {
        return SPT_ERR_TOO_BIG;
    }
    cap = t->cap < bound ? t->cap : bound;
    out = malloc(cap);
    if (!out) {
        return SPT_ERR_INTERNAL;
    }
    spt_encode_opts_init(&raw);
    err = spt_core_err(spt_ct_transpose(ct, ct_len, &raw, out, cap, &len, NULL));
    if (!err) {
        err = spt_exec_va_write(e, t->va, out, len);
    }
    if (!err && t->len_va) {
        uint64_t l64 = len;

        err = spt_exec_va_write(e, t->len_va, &l64, sizeof(l64));
    }
    if (!err) {
        acc->cnt.bytes_written += len;
    }
    free(out);
    return err;
}

static int spt_op_fence(SptExec *e, const struct spt_cmd_fence *c)
{
    if (c->va & 7) {
        return SPT_ERR_BAD_CMD;
    }
    return spt_exec_va_write(e, c->va, &c->value, sizeof(c->value));
}

static int spt_op_timestamp(SptExec *e, const struct spt_cmd_timestamp *c)
{
    uint64_t now = e->ops->now_ns ? e->ops->now_ns(e->opaque) : 0;

    if (c->va & 7) {
        return SPT_ERR_BAD_CMD;
    }
    return spt_exec_va_write(e, c->va, &now, sizeof(now));
}

/* @t: version 2's transposed output (t->va 0: none) */
static int spt_op_encode(SptExec *e, const struct spt_cmd_encode *c,
                         const SptTOut *t, SptJobAcc *acc)
{
    struct spt_encode_opts o;
    struct spt_tensor_stats st;
    uint64_t in_bytes = (uint64_t)c->rows * c->cols * sizeof(float);
    size_t bound, cap, out_len = 0;
    void *in = NULL, *out = NULL;
    int err;

    err = spt_encode_opts(&c->enc, &o);
    if (err) {
        return err;
    }
    if (!c->rows || !c->cols || !c->dst_va || !c->dst_cap) {
        return SPT_ERR_BAD_CMD;
    }
    err = spt_t_check(e, t);
    if (err) {
        return err;
    }
    if (in_bytes > SPT_EXEC_XFER_MAX || c->dst_cap > SPT_EXEC_XFER_MAX) {
        return SPT_ERR_TOO_BIG;
    }
    bound = spt_ct_bound(c->rows, c->cols);
    if (!bound) {
        return SPT_ERR_TOO_BIG;
    }
    cap = c->dst_cap < bound ? c->dst_cap : bound;
    err = spt_read_alloc(e, c->src_va, in_bytes, &in);
    if (err) {
        return err;
    }
    out = malloc(cap);
    if (!out) {
        free(in);
        return SPT_ERR_INTERNAL;
    }
    err = spt_core_err(spt_ct_encode(in, c->rows, c->cols, &o, out, cap,
                                     &out_len, &st));
    if (!err) {
        err = spt_exec_va_write(e, c->dst_va, out, out_len);
    }
    if (!err) {
        err = spt_write_outputs(e, acc, c->len_va, c->stats_va, out_len, &st);
    }
    if (!err) {
        err = spt_write_t(e, acc, t, out, out_len);
    }
    if (!err) {
        acc->cnt.bytes_read += in_bytes;
        acc->cnt.bytes_written += out_len;
        acc->cnt.elements_out += st.elements;
    }
    free(in);
    free(out);
    return err;
}

static int spt_op_decode(SptExec *e, const struct spt_cmd_decode *c, bool len_hdr,
                         SptJobAcc *acc)
{
    struct spt_ct_info info;
    void *in = NULL;
    float *out;
    uint64_t elems, len;
    int err;

    if (!c->dst_va) {
        return SPT_ERR_BAD_CMD;
    }
    err = spt_read_ct(e, c->src_va, c->src_len, len_hdr, &in, &len);
    if (err) {
        return err;
    }
    err = spt_ct_check(in, len, &info);
    if (err) {
        goto out;
    }
    elems = (uint64_t)info.rows * info.cols;
    if (c->dst_elems != elems) {
        err = SPT_ERR_SHAPE;
        goto out;
    }
    if (elems * sizeof(float) > SPT_EXEC_XFER_MAX) {
        err = SPT_ERR_TOO_BIG;
        goto out;
    }
    out = malloc(elems * sizeof(float));
    if (!out) {
        err = SPT_ERR_INTERNAL;
        goto out;
    }
    err = spt_core_err(spt_ct_decode(in, len, out, elems));
    if (!err) {
        err = spt_exec_va_write(e, c->dst_va, out, elems * sizeof(float));
    }
    if (!err) {
        acc->cnt.bytes_read += info.total_bytes;
        acc->cnt.bytes_written += elems * sizeof(float);
        acc->cnt.elements_out += elems;
    }
    free(out);
out:
    free(in);
    return err;
}

static int spt_op_transpose(SptExec *e, const struct spt_cmd_transpose *c,
                            bool len_hdr, SptJobAcc *acc)
{
    struct spt_encode_opts o;
    struct spt_tensor_stats st;
    struct spt_ct_info info;
    size_t bound, cap, out_len = 0;
    uint64_t len;
    void *in = NULL, *out = NULL;
    int err;

    err = spt_encode_opts(&c->enc, &o);
    if (err) {
        return err;
    }
    if (!c->dst_va || !c->dst_cap) {
        return SPT_ERR_BAD_CMD;
    }
    if (c->dst_cap > SPT_EXEC_XFER_MAX) {
        return SPT_ERR_TOO_BIG;
    }
    err = spt_read_ct(e, c->src_va, c->src_len, len_hdr, &in, &len);
    if (err) {
        return err;
    }
    err = spt_ct_check(in, len, &info);
    if (err) {
        goto out;
    }
    bound = spt_ct_bound(info.cols, info.rows);
    if (!bound || (uint64_t)info.rows * info.cols * sizeof(float) > SPT_EXEC_XFER_MAX) {
        err = SPT_ERR_TOO_BIG;
        goto out;
    }
    cap = c->dst_cap < bound ? c->dst_cap : bound;
    out = malloc(cap);
    if (!out) {
        err = SPT_ERR_INTERNAL;
        goto out;
    }
    err = spt_core_err(spt_ct_transpose(in, len, &o, out, cap, &out_len, &st));
    if (!err) {
        err = spt_exec_va_write(e, c->dst_va, out, out_len);
    }
    if (!err) {
        err = spt_write_outputs(e, acc, c->len_va, c->stats_va, out_len, &st);
    }
    if (!err) {
        acc->cnt.bytes_read += info.total_bytes;
        acc->cnt.bytes_written += out_len;
        acc->cnt.elements_out += st.elements;
    }
out:
    free(in);
    free(out);
    return err;
}

/* The counters record of a version-2 GEMM: core's counters of the command. */
static int spt_write_counters(SptExec *e, uint64_t va, const struct spt_counters *c)
{
    struct spt_hw_counters h = {
        .dense_macs = c->dense_macs,
        .exec_macs = c->exec_macs,
        .bytes_read = c->bytes_read,
        .bytes_written = c->bytes_written,
        .dense_fp16_bytes = c->dense_fp16_bytes,
        .blocks = c->blocks,
        .elements_out = c->elements_out,
    };

    return spt_exec_va_write(e, va, &h, sizeof(h));
}

/*
 * @cnt_va: version 2's counters record (0: none); @t: version 2's
 * transposed output (t->va 0: none); @len_hdr: SPT_CMD_F_LEN_HDR
 */
static int spt_op_gemm(SptExec *e, const struct spt_cmd_gemm *c, uint64_t cnt_va,
                       const SptTOut *t, bool len_hdr, SptJobAcc *acc)
{
    struct spt_gemm_epilogue ep = { 0 };
    struct spt_gemm_out out = { 0 };
    struct spt_counters cnt = { 0 };
    uint32_t ma, ka, nb, kb, mm, nm;
    void *a = NULL, *b = NULL, *mask = NULL;
    float *bias = NULL, *y = NULL;
    void *ct = NULL;
    uint64_t m, n, y_bytes, a_len, b_len, mask_len;
    int err;

    if (cnt_va & 7) {
        return spt_bad(e, SPT_ERR_BAD_CMD, "gemm: cnt_va not 8-byte aligned");
    }
    if (c->pass > SPT_PASS_WG || c->act > SPT_ACT_RELU_GRAD || c->pad ||
        (!c->y_va && !c->ct_va) || (c->ct_va && !c->ct_cap)) {
        return SPT_ERR_BAD_CMD;
    }
    if ((c->act == SPT_ACT_RELU_GRAD) != (c->mask_va != 0)) {
        return SPT_ERR_BAD_CMD;
    }
    if (t->va && !c->ct_va) {
        return spt_bad(e, SPT_ERR_BAD_CMD, "gemm: t_va without ct_va");
    }
    err = spt_t_check(e, t);
    if (err) {
        return err;
    }
    err = spt_encode_opts(&c->enc, &out.enc);
    if (err) {
        return err;
    }
    if (c->ct_cap > SPT_EXEC_XFER_MAX) {
        return SPT_ERR_TOO_BIG;
    }
    err = spt_read_ct(e, c->a_va, c->a_len, len_hdr, &a, &a_len);
    if (!err) {
        err = spt_read_ct(e, c->b_va, c->b_len, len_hdr, &b, &b_len);
    }
    if (!err) {
        err = spt_ct_shape(a, a_len, &ma, &ka);
    }
    if (!err) {
        err = spt_ct_shape(b, b_len, &nb, &kb);
    }
    if (err) {
        goto out;
    }
    if (ka != kb) {
        err = SPT_ERR_SHAPE;
        goto out;
    }
    m = ma;
    n = nb;
    y_bytes = m * n * sizeof(float);
    if (y_bytes > SPT_EXEC_XFER_MAX) {
        err = SPT_ERR_TOO_BIG;
        goto out;
    }
    if (c->mask_va) {
        err = spt_read_ct(e, c->mask_va, c->mask_len, len_hdr, &mask, &mask_len);
        if (!err) {
            err = spt_ct_shape(mask, mask_len, &mm, &nm);
        }
        if (!err && (mm != m || nm != n)) {
            err = SPT_ERR_SHAPE;
        }
        if (err) {
            goto out;
        }
        ep.mask = mask;
        ep.mask_len = mask_len;
    }
    if (c->bias_va) {
        err = spt_read_alloc(e, c->bias_va, n * sizeof(float), (void **)&bias);
        if (err) {
            goto out;
        }
        ep.bias = bias;
    }
    ep.act = c->act;
    ep.scale = spt_f32(c->scale);
    if (c->y_va) {
        y = malloc(y_bytes);
        if (!y) {
            err = SPT_ERR_INTERNAL;
            goto out;
        }
        out.y = y;
    }
    if (c->ct_va) {
        size_t bound = spt_ct_bound(m, n);

        out.ct_cap = c->ct_cap < bound ? c->ct_cap : bound;
        ct = malloc(out.ct_cap ? out.ct_cap : 1);
        if (!bound || !ct) {
            err = bound ? SPT_ERR_INTERNAL : SPT_ERR_TOO_BIG;
            goto out;
        }
        out.ct = ct;
    }
    err = spt_core_err(spt_gemm(c->pass, a, a_len, b, b_len, &ep, &out, &cnt));
    if (!err && y) {
        err = spt_exec_va_write(e, c->y_va, y, y_bytes);
    }
    if (!err && ct) {
        err = spt_exec_va_write(e, c->ct_va, ct, out.ct_len);
        if (!err) {
            err = spt_write_outputs(e, acc, c->len_va, c->stats_va, out.ct_len,
                                    &out.stats);
        }
        if (!err) {
            err = spt_write_t(e, acc, t, ct, out.ct_len);
        }
    }
    if (!err && cnt_va) {
        err = spt_write_counters(e, cnt_va, &cnt);
    }
    if (!err) {
        spt_model_apply(&e->model, &cnt);
        spt_counters_add(&acc->cnt, &cnt);
    }
out:
    free(a);
    free(b);
    free(mask);
    free(bias);
    free(y);
    free(ct);
    return err;
}

static int spt_op_softmax(SptExec *e, const struct spt_cmd_softmax_xent *c,
                          SptJobAcc *acc)
{
    uint64_t elems = (uint64_t)c->rows * c->classes;
    float *logits = NULL, *dlogits = NULL;
    uint8_t *labels = NULL;
    uint32_t correct = 0;
    float loss = 0;
    int err;

    if (!c->rows || !c->classes || !c->loss_va) {
        return SPT_ERR_BAD_CMD;
    }
    if (elems * sizeof(float) > SPT_EXEC_XFER_MAX) {
        return SPT_ERR_TOO_BIG;
    }
    err = spt_read_alloc(e, c->logits_va, elems * sizeof(float), (void **)&logits);
    if (!err) {
        err = spt_read_alloc(e, c->labels_va, c->rows, (void **)&labels);
    }
    if (!err && c->dlogits_va) {
        dlogits = malloc(elems * sizeof(float));
        err = dlogits ? SPT_ERR_NONE : SPT_ERR_INTERNAL;
    }
    if (!err) {
        err = spt_core_err(spt_softmax_xent(logits, labels, c->rows, c->classes,
                                            &loss, &correct, dlogits));
    }
    if (!err) {
        err = spt_exec_va_write(e, c->loss_va, &loss, sizeof(loss));
    }
    if (!err && c->correct_va) {
        err = spt_exec_va_write(e, c->correct_va, &correct, sizeof(correct));
    }
    if (!err && dlogits) {
        err = spt_exec_va_write(e, c->dlogits_va, dlogits, elems * sizeof(float));
    }
    if (!err) {
        acc->cnt.bytes_read += elems * sizeof(float) + c->rows;
        acc->cnt.bytes_written += dlogits ? elems * sizeof(float) : 0;
    }
    free(logits);
    free(labels);
    free(dlogits);
    return err;
}

static int spt_op_sgd(SptExec *e, const struct spt_cmd_sgd *c, SptJobAcc *acc)
{
    uint64_t bytes = c->n * sizeof(float);
    float *w = NULL, *v = NULL, *g = NULL;
    int err;

    if (!c->n || c->pad) {
        return SPT_ERR_BAD_CMD;
    }
    if (c->n > SPT_EXEC_XFER_MAX / sizeof(float)) {
        return SPT_ERR_TOO_BIG;
    }
    err = spt_read_alloc(e, c->w_va, bytes, (void **)&w);
    if (!err) {
        err = spt_read_alloc(e, c->v_va, bytes, (void **)&v);
    }
    if (!err) {
        err = spt_read_alloc(e, c->g_va, bytes, (void **)&g);
    }
    if (!err) {
        err = spt_core_err(spt_sgd_momentum(w, v, g, c->n, spt_f32(c->lr),
                                            spt_f32(c->momentum),
                                            spt_f32(c->weight_decay)));
    }
    if (!err) {
        err = spt_exec_va_write(e, c->w_va, w, bytes);
    }
    if (!err) {
        err = spt_exec_va_write(e, c->v_va, v, bytes);
    }
    if (!err) {
        acc->cnt.bytes_read += 3 * bytes;
        acc->cnt.bytes_written += 2 * bytes;
    }
    free(w);
    free(v);
    free(g);
    return err;
}

/* ---- version 2: convolution lowering, column sums, finite check ---------- */

/* An FP32 array the command names: present and 4-byte aligned. */
static bool spt_f32_va_ok(uint64_t va)
{
    return va && !(va & 3);
}

static int spt_conv_check(SptExec *e, const struct spt_cmd_im2col *c,
                          struct spt_conv_shape *sh, struct spt_conv_dims *d)
{
    int ret;

    if (c->pad2) {
        return spt_bad(e, SPT_ERR_BAD_CMD, "im2col/col2im: pad2 not zero");
    }
    if (!spt_f32_va_ok(c->img_va) || !spt_f32_va_ok(c->col_va)) {
        return spt_bad(e, SPT_ERR_BAD_CMD,
                       "im2col/col2im: img_va or col_va zero or not 4-byte aligned");
    }
    sh->n = c->n;
    sh->h = c->h;
    sh->w = c->w;
    sh->c = c->c;
    sh->k = c->k;
    sh->stride = c->stride;
    sh->pad = c->pad;
    ret = spt_conv_shape_check(sh, d);
    if (ret) {
        return spt_bad(e, spt_core_err(ret), "im2col/col2im: invalid shape");
    }
    if (d->img_elems > SPT_EXEC_XFER_MAX / sizeof(float) ||
        d->col_elems > SPT_EXEC_XFER_MAX / sizeof(float)) {
        return spt_bad(e, SPT_ERR_TOO_BIG, "im2col/col2im: image or patches too big");
    }
    return SPT_ERR_NONE;
}

/* IM2COL (@to_col) or COL2IM: read one FP32 array, write the other. */
static int spt_op_lower(SptExec *e, const struct spt_cmd_im2col *c, bool to_col,
                        SptJobAcc *acc)
{
    struct spt_conv_shape sh;
    struct spt_conv_dims d;
    uint64_t in_va, out_va, in_elems, out_elems;
    float *in = NULL, *out = NULL;
    int err;

    err = spt_conv_check(e, c, &sh, &d);
    if (err) {
        return err;
    }
    in_va = to_col ? c->img_va : c->col_va;
    out_va = to_col ? c->col_va : c->img_va;
    in_elems = to_col ? d.img_elems : d.col_elems;
    out_elems = to_col ? d.col_elems : d.img_elems;
    err = spt_read_alloc(e, in_va, in_elems * sizeof(float), (void **)&in);
    if (err) {
        return err;
    }
    out = malloc(out_elems * sizeof(float));
    if (!out) {
        free(in);
        return SPT_ERR_INTERNAL;
    }
    err = spt_core_err(to_col ? spt_im2col(&sh, in, in_elems, out, out_elems) :
                                spt_col2im(&sh, in, in_elems, out, out_elems));
    if (!err) {
        err = spt_exec_va_write(e, out_va, out, out_elems * sizeof(float));
    }
    if (!err) {
        acc->cnt.bytes_read += in_elems * sizeof(float);
        acc->cnt.bytes_written += out_elems * sizeof(float);
        acc->cnt.elements_out += out_elems;
    }
    free(in);
    free(out);
    return err;
}

static int spt_op_colsum(SptExec *e, const struct spt_cmd_colsum *c, bool len_hdr,
                         SptJobAcc *acc)
{
    void *in = NULL;
    float *sum = NULL;
    uint32_t rows, cols;
    uint64_t len;
    int err;

    if (!spt_f32_va_ok(c->dst_va)) {
        return spt_bad(e, SPT_ERR_BAD_CMD, "colsum: dst_va zero or not 4-byte aligned");
    }
    err = spt_read_ct(e, c->src_va, c->src_len, len_hdr, &in, &len);
    if (!err) {
        /* the header's shape; spt_ct_colsum validates the whole tensor */
        err = spt_ct_shape(in, len, &rows, &cols);
    }
    if (err) {
        goto out;
    }
    if (c->dst_elems != cols) {
        err = spt_bad(e, SPT_ERR_SHAPE, "colsum: dst_elems is not the tensor's cols");
        goto out;
    }
    if ((uint64_t)cols * sizeof(float) > SPT_EXEC_XFER_MAX) {
        err = SPT_ERR_TOO_BIG;
        goto out;
    }
    sum = malloc((size_t)cols * sizeof(float));
    if (!sum) {
        err = SPT_ERR_INTERNAL;
        goto out;
    }
    err = spt_core_err(spt_ct_colsum(in, len, sum, cols));
    if (!err) {
        err = spt_exec_va_write(e, c->dst_va, sum, (size_t)cols * sizeof(float));
    }
    if (!err) {
        acc->cnt.bytes_read += len;
        acc->cnt.bytes_written += (uint64_t)cols * sizeof(float);
        acc->cnt.elements_out += cols;
    }
out:
    free(in);
    free(sum);
    return err;
}

static int spt_op_check_finite(SptExec *e, const struct spt_cmd_check_finite *c,
                               SptJobAcc *acc)
{
    float *x = NULL;
    int err;

    if (!spt_f32_va_ok(c->va) || !c->n) {
        return spt_bad(e, SPT_ERR_BAD_CMD,
                       "check-finite: va zero or not 4-byte aligned, or n zero");
    }
    if (c->n > SPT_EXEC_XFER_MAX / sizeof(float)) {
        return SPT_ERR_TOO_BIG;
    }
    err = spt_read_alloc(e, c->va, c->n * sizeof(float), (void **)&x);
    if (!err) {
        err = spt_core_err(spt_check_finite(x, c->n));
        if (err) {
            spt_bad(e, err, "check-finite: NaN or Inf");
        }
    }
    if (!err) {
        acc->cnt.bytes_read += c->n * sizeof(float);
    }
    free(x);
    return err;
}

/*
 * RELU_MASK: dx := +0.0f where y is +-0.0f.  Both arrays are read before
 * dx is written, so VAs that overlap (or alias through the page tables)
 * give the result of the two arrays as they were before the command.
 */
static int spt_op_relu_mask(SptExec *e, const struct spt_cmd_relu_mask *c,
                            SptJobAcc *acc)
{
    float *dx = NULL, *y = NULL;
    uint64_t bytes;
    int err;

    if (!spt_f32_va_ok(c->dx_va) || !spt_f32_va_ok(c->y_va) || !c->n) {
        return spt_bad(e, SPT_ERR_BAD_CMD,
                       "relu-mask: dx_va or y_va zero or not 4-byte aligned, or n zero");
    }
    if (c->n > SPT_EXEC_XFER_MAX / sizeof(float)) {
        return spt_bad(e, SPT_ERR_TOO_BIG, "relu-mask: n too big");
    }
    bytes = c->n * sizeof(float);
    err = spt_read_alloc(e, c->y_va, bytes, (void **)&y);
    if (!err) {
        err = spt_read_alloc(e, c->dx_va, bytes, (void **)&dx);
    }
    if (!err) {
        err = spt_core_err(spt_relu_mask(dx, y, c->n));
    }
    if (!err) {
        err = spt_exec_va_write(e, c->dx_va, dx, bytes);
    }
    if (!err) {
        acc->cnt.bytes_read += 2 * bytes;
        acc->cnt.bytes_written += bytes;
        acc->cnt.elements_out += c->n;
    }
    free(dx);
    free(y);
    return err;
}

/* Bytes of the command @opcode in @version; 0 if there is no such command. */
static size_t spt_cmd_size(uint8_t opcode, uint8_t version)
{
    if (version != 1 && version != 2) {
        return 0;
    }
    switch (opcode) {
    case SPT_OP_NOP:
        return sizeof(struct spt_cmd_nop);
    case SPT_OP_FENCE:
        return sizeof(struct spt_cmd_fence);
    case SPT_OP_TIMESTAMP:
        return sizeof(struct spt_cmd_timestamp);
    case SPT_OP_ENCODE:
        return version == 1 ? sizeof(struct spt_cmd_encode) : sizeof(struct spt_cmd_encode_v2);
    case SPT_OP_DECODE:
        return sizeof(struct spt_cmd_decode);
    case SPT_OP_TRANSPOSE:
        return sizeof(struct spt_cmd_transpose);
    case SPT_OP_GEMM:
        return version == 1 ? sizeof(struct spt_cmd_gemm) : sizeof(struct spt_cmd_gemm_v2);
    case SPT_OP_SOFTMAX_XENT:
        return sizeof(struct spt_cmd_softmax_xent);
    case SPT_OP_SGD:
        return sizeof(struct spt_cmd_sgd);
    case SPT_OP_IM2COL:
    case SPT_OP_COL2IM:
        return version == 2 ? sizeof(struct spt_cmd_im2col) : 0;
    case SPT_OP_COLSUM:
        return version == 2 ? sizeof(struct spt_cmd_colsum) : 0;
    case SPT_OP_CHECK_FINITE:
        return version == 2 ? sizeof(struct spt_cmd_check_finite) : 0;
    case SPT_OP_RELU_MASK:
        return version == 2 ? sizeof(struct spt_cmd_relu_mask) : 0;
    default:
        return 0;
    }
}

/* hdr.flags bits the command may set: F_LEN_HDR on version-2 commands with compressed inputs */
static uint32_t spt_cmd_flags(uint8_t opcode, uint8_t version)
{
    if (version < 2) {
        return 0;
    }
    switch (opcode) {
    case SPT_OP_DECODE:
    case SPT_OP_TRANSPOSE:
    case SPT_OP_GEMM:
    case SPT_OP_COLSUM:
        return SPT_CMD_F_LEN_HDR;
    default:
        return 0;
    }
}

/* Execute one command (already copied, @size bytes, 8-byte aligned). */
static int spt_exec_cmd(SptExec *e, const void *cmd, SptJobAcc *acc)
{
    const struct spt_cmd_hdr *h = cmd;
    bool len_hdr = h->flags & SPT_CMD_F_LEN_HDR;
    struct spt_counters before = acc->cnt;
    struct spt_counters delta;
    const SptTOut no_t = { 0 };
    int err;

    switch (h->opcode) {
    case SPT_OP_NOP:
        return SPT_ERR_NONE;
    case SPT_OP_FENCE:
        return spt_op_fence(e, cmd);
    case SPT_OP_TIMESTAMP:
        return spt_op_timestamp(e, cmd);
    case SPT_OP_GEMM:                       /* modeled inside */
        if (h->version == 1) {
            return spt_op_gemm(e, cmd, 0, &no_t, false, acc);
        } else {
            const struct spt_cmd_gemm_v2 *g = cmd;
            SptTOut t = { g->t_va, g->t_cap, g->t_len_va };

            return spt_op_gemm(e, &g->v1, g->cnt_va, &t, len_hdr, acc);
        }
    case SPT_OP_ENCODE:
        if (h->version == 1) {
            err = spt_op_encode(e, cmd, &no_t, acc);
        } else {
            const struct spt_cmd_encode_v2 *en = cmd;
            SptTOut t = { en->t_va, en->t_cap, en->t_len_va };

            err = spt_op_encode(e, &en->v1, &t, acc);
        }
        break;
    case SPT_OP_DECODE:
        err = spt_op_decode(e, cmd, len_hdr, acc);
        break;
    case SPT_OP_TRANSPOSE:
        err = spt_op_transpose(e, cmd, len_hdr, acc);
        break;
    case SPT_OP_SOFTMAX_XENT:
        err = spt_op_softmax(e, cmd, acc);
        break;
    case SPT_OP_SGD:
        err = spt_op_sgd(e, cmd, acc);
        break;
    case SPT_OP_IM2COL:
        err = spt_op_lower(e, cmd, true, acc);
        break;
    case SPT_OP_COL2IM:
        err = spt_op_lower(e, cmd, false, acc);
        break;
    case SPT_OP_COLSUM:
        err = spt_op_colsum(e, cmd, len_hdr, acc);
        break;
    case SPT_OP_CHECK_FINITE:
        err = spt_op_check_finite(e, cmd, acc);
        break;
    case SPT_OP_RELU_MASK:
        err = spt_op_relu_mask(e, cmd, acc);
        break;
    default:
        return SPT_ERR_BAD_OPCODE;
    }
    if (!err) {
        /* model the data movement of the non-GEMM operations */
        memset(&delta, 0, sizeof(delta));
        delta.bytes_read = acc->cnt.bytes_read - before.bytes_read;
        delta.bytes_written = acc->cnt.bytes_written - before.bytes_written;
        spt_model_apply(&e->model, &delta);
        acc->cnt.cycles += delta.cycles;
        acc->cnt.energy_pj += delta.energy_pj;
    }
    return err;
}

bool spt_exec_job(SptExec *e, const struct spt_job_desc *d,
                  struct spt_job_cpl *cpl)
{
    SptJobAcc acc;
    uint8_t *stream = NULL;
    uint32_t off = 0;
    int err;

    memset(cpl, 0, sizeof(*cpl));
    memset(&acc, 0, sizeof(acc));
    cpl->job_id = d->job_id;
    cpl->t_start_ns = e->ops->now_ns ? e->ops->now_ns(e->opaque) : 0;
    e->fault_va = 0;
    e->fault_access = 0;
    e->err_opcode = 0;
    e->err_why = NULL;
    /* translations are cached for one job only */
    spt_mmu_flush(&e->mmu);
    e->mmu.ctx = UINT32_MAX;

    if ((d->flags & ~SPT_JOB_FLAGS_MASK) || d->pad0 || d->reserved[0] ||
        d->reserved[1] || d->cmd_len < sizeof(struct spt_cmd_hdr) ||
        d->cmd_len > SPT_CMD_MAX_LEN || (d->cmd_len & 7) || (d->cmd_va & 7) ||
        ((d->flags & SPT_JOB_FENCE) && (d->fence_va & 7))) {
        err = SPT_ERR_BAD_DESC;
        goto done;
    }
    err = spt_mmu_set_context(&e->mmu, d->ctx);
    if (err) {
        goto done;
    }
    stream = malloc(d->cmd_len);
    if (!stream) {
        err = SPT_ERR_INTERNAL;
        goto done;
    }
    err = spt_exec_va_read(e, d->cmd_va, stream, d->cmd_len);
    while (!err && off < d->cmd_len) {
        struct spt_cmd_hdr h;
        size_t size;

        if (e->ops->cancelled && e->ops->cancelled(e->opaque)) {
            free(stream);
            return false;
        }
        memcpy(&h, stream + off, sizeof(h));
        e->err_opcode = h.opcode;
        size = spt_cmd_size(h.opcode, h.version);
        if (!size) {
            err = spt_bad(e, SPT_ERR_BAD_OPCODE, "unknown opcode or version");
        } else if (h.size != size || size > d->cmd_len - off) {
            err = spt_bad(e, SPT_ERR_BAD_CMD, "size does not match the opcode and version");
        } else if (h.flags & ~spt_cmd_flags(h.opcode, h.version)) {
            err = spt_bad(e, SPT_ERR_BAD_CMD, "flags not allowed for the opcode and version");
        } else {
            uint64_t cmd[184 / 8];      /* aligned copy; largest command is 184 */

            _Static_assert(sizeof(struct spt_cmd_gemm_v2) <= sizeof(cmd), "cmd");

            memcpy(cmd, stream + off, size);
            err = spt_exec_cmd(e, cmd, &acc);
        }
        if (!err) {
            off += size;
            cpl->cmds_done++;
        }
    }
    cpl->error_offset = off;
done:
    free(stream);
    cpl->status = err ? SPT_JOB_ERROR : SPT_JOB_OK;
    cpl->error_code = err;
    if (err == SPT_ERR_MMU_FAULT) {
        cpl->fault_ctx = d->ctx;
        cpl->fault_access = e->fault_access;
        cpl->fault_va = e->fault_va;
    }
    cpl->dense_macs = acc.cnt.dense_macs;
    cpl->exec_macs = acc.cnt.exec_macs;
    cpl->bytes_read = acc.cnt.bytes_read;
    cpl->bytes_written = acc.cnt.bytes_written;
    cpl->cycles = acc.cnt.cycles;
    cpl->energy_fj = (uint64_t)(acc.cnt.energy_pj * 1000.0 + 0.5);
    cpl->out_elements = acc.out_elements;
    cpl->out_zeros = acc.out_zeros;
    cpl->out_sparsity_ppm = acc.out_elements ?
        (uint32_t)(acc.out_zeros * 1000000ull / acc.out_elements) : 0;
    cpl->t_end_ns = e->ops->now_ns ? e->ops->now_ns(e->opaque) : 0;
    return true;
}

int spt_exec_fence(SptExec *e, const struct spt_job_desc *d)
{
    int err;

    if (!(d->flags & SPT_JOB_FENCE)) {
        return SPT_ERR_NONE;
    }
    if (d->fence_va & 7) {
        return SPT_ERR_BAD_DESC;
    }
    if (e->mmu.ctx != d->ctx) {
        err = spt_mmu_set_context(&e->mmu, d->ctx);
        if (err) {
            return err;
        }
    }
    return spt_exec_va_write(e, d->fence_va, &d->fence_value, sizeof(d->fence_value));
}
