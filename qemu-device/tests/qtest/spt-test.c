/*
 * QTest testcase for the SPT training accelerator (-device spt)
 *
 * Drives the device as a driver would: registers, rings, page tables in
 * guest memory, every opcode compared bit for bit with core/ called
 * directly, MMU faults, malformed input, reset and fault injection.
 * With SPT_BENCH=1, /spt/bench measures the device's overhead.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"
#include "libqtest.h"
#include "libqos/pci.h"
#include "libqos/pci-pc.h"
#include "hw/pci/pci_regs.h"

#include <math.h>

#include "spt_hw.h"
#include "spt/core.h"

#define SPT_DEVFN       QPCI_DEVFN(4, 0)
#define RAM_SIZE        (512 * 1024 * 1024ull)
#define ALLOC_BASE      (16 * 1024 * 1024ull)
#define VA_BASE         0x100000000ull
#define RING_ENTRIES    16
#define TIMEOUT_US      (60 * 1000 * 1000)

typedef struct Spt {
    QTestState *qts;
    QPCIBus *bus;
    QPCIDevice *dev;
    QPCIBar regs;
    QPCIBar db;
    uint64_t next_pa;
    uint64_t ctx_table;
    uint64_t root[4];               /* contexts 0..3 */
    uint64_t next_va[4];
    uint64_t ring[SPT_MAX_QUEUES];
    uint64_t cpl[SPT_MAX_QUEUES];
    uint32_t tail[SPT_MAX_QUEUES];
    unsigned nq;
} Spt;

typedef struct Buf {
    uint64_t va;
    uint64_t pa;
    uint64_t size;
} Buf;

/* ---- device setup ------------------------------------------------------- */

static uint64_t spt_palloc(Spt *s, uint64_t size)
{
    uint64_t pa = s->next_pa;

    s->next_pa += (size + 4095) & ~4095ull;
    g_assert_cmpuint(s->next_pa, <=, RAM_SIZE);
    return pa;
}

static uint64_t spt_pzalloc(Spt *s, uint64_t size)
{
    uint64_t pa = spt_palloc(s, size);

    qtest_memset(s->qts, pa, 0, (size + 4095) & ~4095ull);
    return pa;
}

static uint32_t rd(Spt *s, uint64_t off)
{
    return qpci_io_readl(s->dev, s->regs, off);
}

static void wr(Spt *s, uint64_t off, uint32_t v)
{
    qpci_io_writel(s->dev, s->regs, off, v);
}

static void spt_queue_setup(Spt *s, unsigned q, uint32_t entries)
{
    uint64_t base = SPT_REG_QUEUE(q);

    s->ring[q] = spt_pzalloc(s, entries * sizeof(struct spt_job_desc));
    s->cpl[q] = spt_pzalloc(s, entries * sizeof(struct spt_job_cpl));
    qpci_io_writeq(s->dev, s->regs, base + SPT_QREG_RING_BASE_LO, s->ring[q]);
    qpci_io_writeq(s->dev, s->regs, base + SPT_QREG_CPL_BASE_LO, s->cpl[q]);
    wr(s, base + SPT_QREG_RING_SIZE, entries);
    wr(s, base + SPT_QREG_CONTROL, SPT_QCTRL_ENABLE);
    g_assert_cmphex(rd(s, base + SPT_QREG_STATUS) & SPT_QSTAT_ENABLED, ==,
                    SPT_QSTAT_ENABLED);
    s->tail[q] = 0;
}

/* Bring the device up: context table, contexts 0..3, all queues. */
static void spt_init(Spt *s)
{
    wr(s, SPT_REG_CONTROL, SPT_CONTROL_RESET);
    s->ctx_table = spt_pzalloc(s, SPT_MAX_CONTEXTS * sizeof(struct spt_ctx_entry));
    qpci_io_writeq(s->dev, s->regs, SPT_REG_MMU_CTX_TABLE_LO, s->ctx_table);
    for (int c = 0; c < 4; c++) {
        s->root[c] = spt_pzalloc(s, 4096);
        qtest_writeq(s->qts, s->ctx_table + c * 16, s->root[c] | SPT_CTX_VALID);
        s->next_va[c] = VA_BASE;
    }
    s->nq = rd(s, SPT_REG_NUM_QUEUES);
    for (unsigned q = 0; q < s->nq; q++) {
        spt_queue_setup(s, q, RING_ENTRIES);
    }
    wr(s, SPT_REG_CONTROL, SPT_CONTROL_ENABLE);
    g_assert_cmphex(rd(s, SPT_REG_STATUS) & SPT_STATUS_READY, ==, SPT_STATUS_READY);
}

static void spt_attach(Spt *s, int devfn);

static Spt *spt_start(const char *extra)
{
    Spt *s = g_new0(Spt, 1);
    const char *fw = getenv("SPT_QEMU_FW");

    s->qts = qtest_initf("%s -m 512M -nic none -device spt,addr=04.0%s%s",
                         fw ? fw : "-L /usr/share/qemu -L /usr/share/seabios",
                         extra ? "," : "", extra ? extra : "");
    spt_attach(s, SPT_DEVFN);
    return s;
}

static void spt_attach(Spt *s, int devfn)
{
    s->bus = qpci_new_pc(s->qts, NULL);
    s->dev = qpci_device_find(s->bus, devfn);
    g_assert(s->dev);
    qpci_device_enable(s->dev);
    qpci_msix_enable(s->dev);
    s->regs = qpci_iomap(s->dev, SPT_BAR_REGS, NULL);
    s->db = qpci_iomap(s->dev, SPT_BAR_DOORBELL, NULL);
    s->next_pa = ALLOC_BASE;
    spt_init(s);
}

static void spt_stop(Spt *s)
{
    qpci_msix_disable(s->dev);
    g_free(s->dev);
    qpci_free_pc(s->bus);
    qtest_quit(s->qts);
    g_free(s);
}

/* ---- page tables -------------------------------------------------------- */

static void spt_map_page(Spt *s, int ctx, uint64_t va, uint64_t pa, uint64_t perm)
{
    uint64_t table = s->root[ctx];

    for (int level = 4; level > 1; level--) {
        unsigned idx = (va >> (12 + 9 * (level - 1))) & 511;
        uint64_t pte = qtest_readq(s->qts, table + idx * 8);

        if (!(pte & SPT_PTE_VALID)) {
            pte = spt_pzalloc(s, 4096) | SPT_PTE_VALID;
            qtest_writeq(s->qts, table + idx * 8, pte);
        }
        table = pte & SPT_PTE_ADDR_MASK;
    }
    qtest_writeq(s->qts, table + ((va >> 12) & 511) * 8, pa | perm | SPT_PTE_VALID);
}

/* A buffer mapped in context @ctx, physically contiguous, with a guard gap. */
static Buf spt_buf(Spt *s, int ctx, uint64_t size, uint64_t perm)
{
    Buf b;
    uint64_t pages = (size + 4095) / 4096;

    b.size = size;
    b.pa = spt_pzalloc(s, pages * 4096);
    b.va = s->next_va[ctx];
    s->next_va[ctx] += (pages + 1) * 4096;      /* unmapped guard page */
    for (uint64_t i = 0; i < pages; i++) {
        spt_map_page(s, ctx, b.va + i * 4096, b.pa + i * 4096, perm);
    }
    return b;
}

static Buf spt_buf_rw(Spt *s, int ctx, uint64_t size)
{
    return spt_buf(s, ctx, size, SPT_PTE_READ | SPT_PTE_WRITE);
}

static Buf spt_buf_data(Spt *s, int ctx, const void *data, uint64_t size)
{
    Buf b = spt_buf_rw(s, ctx, size);

    qtest_memwrite(s->qts, b.pa, data, size);
    return b;
}

/* ---- jobs --------------------------------------------------------------- */

typedef struct Cmds {
    uint8_t buf[8192];
    size_t len;
} Cmds;

static void cmds_add(Cmds *c, const void *cmd, size_t size)
{
    g_assert_cmpuint(c->len + size, <=, sizeof(c->buf));
    memcpy(c->buf + c->len, cmd, size);
    c->len += size;
}

#define CMD_HDR(op, type) { .opcode = (op), .version = 1, .size = sizeof(type) }

static struct spt_job_desc spt_desc(Buf *cmd, uint32_t len, int ctx)
{
    struct spt_job_desc d = {
        .ctx = ctx,
        .cmd_va = cmd->va,
        .cmd_len = len,
        .job_id = 0x1000 + len,
    };
    return d;
}

static uint32_t spt_push(Spt *s, unsigned q, const struct spt_job_desc *d)
{
    uint32_t idx = s->tail[q]++;

    qtest_memwrite(s->qts, s->ring[q] + (idx % RING_ENTRIES) * sizeof(*d), d,
                   sizeof(*d));
    return idx;
}

static void spt_doorbell(Spt *s, unsigned q)
{
    qpci_io_writel(s->dev, s->db, q * SPT_DOORBELL_STRIDE, s->tail[q]);
}

static bool spt_wait_head(Spt *s, unsigned q, uint32_t head)
{
    gint64 end = g_get_monotonic_time() + TIMEOUT_US;

    while ((int32_t)(rd(s, SPT_REG_QUEUE(q) + SPT_QREG_HEAD) - head) < 0) {
        if (g_get_monotonic_time() > end) {
            return false;
        }
        g_usleep(50);
    }
    return true;
}

static void spt_read_cpl(Spt *s, unsigned q, uint32_t idx, struct spt_job_cpl *c)
{
    qtest_memread(s->qts, s->cpl[q] + (idx % RING_ENTRIES) * sizeof(*c), c, sizeof(*c));
}

/* Submit one job on @q, wait, return its completion. */
static void spt_run(Spt *s, unsigned q, const struct spt_job_desc *d,
                    struct spt_job_cpl *c)
{
    uint32_t idx = spt_push(s, q, d);

    spt_doorbell(s, q);
    g_assert(spt_wait_head(s, q, idx + 1));
    spt_read_cpl(s, q, idx, c);
    g_assert_cmphex(c->job_id, ==, d->job_id);
}

/* Run a command list in @ctx on queue 0. */
static void spt_run_cmds(Spt *s, int ctx, Cmds *c, struct spt_job_cpl *cpl)
{
    Buf cmd = spt_buf_data(s, ctx, c->buf, c->len);
    struct spt_job_desc d = spt_desc(&cmd, c->len, ctx);

    spt_run(s, 0, &d, cpl);
}

static void assert_ok(const struct spt_job_cpl *c)
{
    if (c->status != SPT_JOB_OK) {
        g_test_message("job failed: error %u at offset %u fault va 0x%" PRIx64,
                       c->error_code, c->error_offset, (uint64_t)c->fault_va);
    }
    g_assert_cmpuint(c->status, ==, SPT_JOB_OK);
}

static void assert_err(const struct spt_job_cpl *c, uint32_t code)
{
    g_assert_cmpuint(c->status, ==, SPT_JOB_ERROR);
    g_assert_cmpuint(c->error_code, ==, code);
}

static void *guest_read(Spt *s, const Buf *b, uint64_t len)
{
    void *p = g_malloc(len);

    qtest_memread(s->qts, b->pa, p, len);
    return p;
}

/* ---- test data ---------------------------------------------------------- */

static float *rand_matrix(GRand *r, uint32_t rows, uint32_t cols, double zero_frac)
{
    float *m = g_new(float, (size_t)rows * cols);

    for (size_t i = 0; i < (size_t)rows * cols; i++) {
        m[i] = g_rand_double(r) < zero_frac ? 0.0f :
               (float)g_rand_double_range(r, -2.0, 2.0);
    }
    return m;
}

/* Encode on the host with core/ (returns a g_malloc'd buffer). */
static void *host_encode(const float *x, uint32_t rows, uint32_t cols, size_t *len)
{
    size_t cap = spt_ct_bound(rows, cols);
    void *out = g_malloc(cap);

    g_assert_cmpint(spt_ct_encode(x, rows, cols, NULL, out, cap, len, NULL), ==, 0);
    return out;
}

static struct spt_hw_encode hw_enc(uint32_t round, uint32_t mode, float tau,
                                   uint64_t seed)
{
    struct spt_hw_encode e = {
        .round = round, .prune_mode = mode, .round_seed = seed, .prune_seed = seed + 1,
    };
    memcpy(&e.tau, &tau, 4);
    return e;
}

static void host_enc_opts(const struct spt_hw_encode *h, struct spt_encode_opts *o)
{
    spt_encode_opts_init(o);
    o->round = h->round;
    o->round_seed = h->round_seed;
    o->prune.mode = h->prune_mode;
    memcpy(&o->prune.tau, &h->tau, 4);
    o->prune.seed = h->prune_seed;
}

static void assert_stats(const struct spt_hw_stats *h, const struct spt_tensor_stats *s)
{
    g_assert_cmpuint(h->elements, ==, s->elements);
    g_assert_cmpuint(h->natural_zeros, ==, s->natural_zeros);
    g_assert_cmpuint(h->pruned, ==, s->pruned);
    g_assert_cmpuint(h->underflow, ==, s->underflow);
    g_assert_cmpuint(h->nonzeros, ==, s->nonzeros);
    g_assert_cmpuint(h->nz_blocks, ==, s->nz_blocks);
    g_assert(memcmp(&h->sum_abs, &s->sum_abs, 8) == 0);
    g_assert(memcmp(&h->sum_abs_kept, &s->sum_abs_kept, 8) == 0);
    g_assert_cmpuint(h->bytes, ==, s->bytes);
}

/* ---- tests: identity and registers -------------------------------------- */

static void test_identity(void)
{
    Spt *s = spt_start(NULL);

    g_assert_cmphex(qpci_config_readw(s->dev, PCI_VENDOR_ID), ==, SPT_PCI_VENDOR_ID);
    g_assert_cmphex(qpci_config_readw(s->dev, PCI_DEVICE_ID), ==, SPT_PCI_DEVICE_ID);
    g_assert_cmphex(qpci_config_readw(s->dev, PCI_CLASS_DEVICE), ==, SPT_PCI_CLASS);
    g_assert_cmphex(rd(s, SPT_REG_ID), ==, SPT_ID_MAGIC);
    g_assert_cmphex(rd(s, SPT_REG_VERSION), ==, SPT_HW_VERSION);
    g_assert_cmphex(rd(s, SPT_REG_CAPS) & SPT_CAP_MMU, ==, SPT_CAP_MMU);
    g_assert_cmphex(rd(s, SPT_REG_CAPS) & SPT_CAP_DEBUG, ==, 0);
    g_assert_cmpuint(rd(s, SPT_REG_NUM_QUEUES), ==, 4);
    g_assert_cmpuint(rd(s, SPT_REG_NUM_CONTEXTS), ==, 16);
    g_assert_cmpuint(rd(s, SPT_REG_MAC_ARRAY), ==, 1024);
    g_assert_cmphex(rd(s, SPT_REG_FORMATS), ==, SPT_FMT_CT_V1 | SPT_FMT_FP32);
    g_assert_cmpuint(rd(s, SPT_REG_CMD_VERSION), ==, SPT_CMD_VERSION);
    g_assert_cmpuint(rd(s, SPT_REG_CMD_VERSION), ==, 2);
    g_assert_cmpuint(rd(s, SPT_REG_VA_BITS), ==, 48);
    g_assert_cmpuint(rd(s, SPT_REG_RING_MAX), ==, SPT_RING_MAX_ENTRIES);
    g_assert_cmpuint(qpci_msix_table_size(s->dev), ==, 5);
    spt_stop(s);
}

static void test_properties(void)
{
    Spt *s = spt_start("queues=2,contexts=8,mac-array=4096,clock-mhz=500,debug=on");

    g_assert_cmpuint(rd(s, SPT_REG_NUM_QUEUES), ==, 2);
    g_assert_cmpuint(rd(s, SPT_REG_NUM_CONTEXTS), ==, 8);
    g_assert_cmpuint(rd(s, SPT_REG_MAC_ARRAY), ==, 4096);
    g_assert_cmpuint(rd(s, SPT_REG_CLOCK_MHZ), ==, 500);
    g_assert_cmphex(rd(s, SPT_REG_CAPS) & SPT_CAP_DEBUG, ==, SPT_CAP_DEBUG);
    g_assert_cmpuint(qpci_msix_table_size(s->dev), ==, 3);
    spt_stop(s);
}

static void test_registers(void)
{
    Spt *s = spt_start(NULL);
    uint64_t q0 = SPT_REG_QUEUE(0);

    /* 64-bit register: halves and whole */
    wr(s, SPT_REG_MMU_CTX_TABLE_LO, 0x12345000);
    wr(s, SPT_REG_MMU_CTX_TABLE_LO + 4, 0xab);
    g_assert_cmphex(qpci_io_readq(s->dev, s->regs, SPT_REG_MMU_CTX_TABLE_LO), ==,
                    0xab12345000ull);
    qpci_io_writeq(s->dev, s->regs, SPT_REG_MMU_CTX_TABLE_LO, s->ctx_table);
    g_assert_cmphex(rd(s, SPT_REG_MMU_CTX_TABLE_LO), ==, (uint32_t)s->ctx_table);
    /* read-only and unknown registers */
    wr(s, SPT_REG_ID, 0);
    g_assert_cmphex(rd(s, SPT_REG_ID), ==, SPT_ID_MAGIC);
    g_assert_cmphex(rd(s, 0x3ffc), ==, 0);
    wr(s, 0x3ffc, 0xffffffff);
    /* debug registers absent without debug=on */
    wr(s, SPT_REG_DBG_HANG_AFTER, 1);
    g_assert_cmphex(rd(s, SPT_REG_DBG_HANG_AFTER), ==, 0);
    /* mask */
    wr(s, SPT_REG_INT_MASK, 0x8000000f);
    g_assert_cmphex(rd(s, SPT_REG_INT_MASK), ==, 0x8000000f);
    wr(s, SPT_REG_INT_MASK, 0);
    /* queue registers are locked while enabled */
    wr(s, q0 + SPT_QREG_RING_SIZE, 8);
    g_assert_cmpuint(rd(s, q0 + SPT_QREG_RING_SIZE), ==, RING_ENTRIES);
    g_assert_cmpuint(rd(s, q0 + SPT_QREG_HEAD), ==, 0);
    /* counters start at zero, timestamp runs */
    g_assert_cmpuint(qpci_io_readq(s->dev, s->regs, SPT_REG_CNT_JOBS_DONE), ==, 0);
    g_assert_cmpuint(rd(s, SPT_REG_ERR_STATUS), ==, 0);
    /* reset clears configuration */
    wr(s, SPT_REG_CONTROL, SPT_CONTROL_RESET);
    g_assert_cmphex(rd(s, SPT_REG_STATUS) & SPT_STATUS_READY, ==, 0);
    g_assert_cmphex(rd(s, q0 + SPT_QREG_STATUS), ==, 0);
    g_assert_cmphex(qpci_io_readq(s->dev, s->regs, SPT_REG_MMU_CTX_TABLE_LO), ==, 0);
    spt_stop(s);
}

/* ---- tests: simple opcodes, fences, interrupts -------------------------- */

static void test_nop_fence_timestamp(void)
{
    Spt *s = spt_start(NULL);
    Buf out = spt_buf_rw(s, 0, 64);
    Buf fence = spt_buf_rw(s, 0, 8);
    struct spt_cmd_nop nop = { CMD_HDR(SPT_OP_NOP, struct spt_cmd_nop) };
    struct spt_cmd_fence f = { CMD_HDR(SPT_OP_FENCE, struct spt_cmd_fence),
                               .va = out.va, .value = 0x1122334455667788ull };
    struct spt_cmd_timestamp ts = { CMD_HDR(SPT_OP_TIMESTAMP, struct spt_cmd_timestamp),
                                    .va = out.va + 8 };
    struct spt_job_cpl c;
    struct spt_job_desc d;
    Cmds cmds = { .len = 0 };
    Buf cb;

    cmds_add(&cmds, &nop, sizeof(nop));
    cmds_add(&cmds, &f, sizeof(f));
    cmds_add(&cmds, &ts, sizeof(ts));
    cb = spt_buf_data(s, 0, cmds.buf, cmds.len);
    qtest_clock_step(s->qts, 1000);     /* device time is the virtual clock */
    for (unsigned q = 0; q < s->nq; q++) {
        d = spt_desc(&cb, cmds.len, 0);
        d.flags = SPT_JOB_FENCE;
        d.fence_va = fence.va;
        d.fence_value = 100 + q;
        spt_run(s, q, &d, &c);
        assert_ok(&c);
        g_assert_cmpuint(c.cmds_done, ==, 3);
        g_assert_cmphex(qtest_readq(s->qts, out.pa), ==, 0x1122334455667788ull);
        g_assert_cmpuint(qtest_readq(s->qts, out.pa + 8), !=, 0);
        g_assert_cmpuint(qtest_readq(s->qts, fence.pa), ==, 100 + q);
        g_assert(qpci_msix_pending(s->dev, SPT_MSIX_VECTOR_QUEUE(q)));
        g_assert_cmphex(rd(s, SPT_REG_INT_STATUS) & SPT_INT_QUEUE(q), ==,
                        SPT_INT_QUEUE(q));
        g_assert_cmpuint(c.t_end_ns, >=, c.t_start_ns);
    }
    g_assert(!qpci_msix_pending(s->dev, SPT_MSIX_VECTOR_ERROR(s->nq)));
    wr(s, SPT_REG_INT_ACK, 0xffffffff);
    g_assert_cmphex(rd(s, SPT_REG_INT_STATUS), ==, 0);
    g_assert_cmpuint(qpci_io_readq(s->dev, s->regs, SPT_REG_CNT_JOBS_DONE), ==, s->nq);

    /* NO_IRQ: completion without an interrupt */
    d.flags = SPT_JOB_NO_IRQ;
    spt_run(s, 1, &d, &c);
    assert_ok(&c);
    g_assert_cmphex(rd(s, SPT_REG_INT_STATUS), ==, 0);
    spt_stop(s);
}

/* Many jobs in flight, wrapping the ring several times. */
static void test_ring_wrap(void)
{
    Spt *s = spt_start(NULL);
    Buf out = spt_buf_rw(s, 0, 8);
    struct spt_cmd_fence f = { CMD_HDR(SPT_OP_FENCE, struct spt_cmd_fence),
                               .va = out.va };
    Buf cb;
    uint32_t idx = 0;

    for (int round = 0; round < 5; round++) {
        for (int i = 0; i < RING_ENTRIES; i++) {
            struct spt_job_desc d;

            f.value = round * 100 + i;
            cb = spt_buf_data(s, 0, &f, sizeof(f));
            d = spt_desc(&cb, sizeof(f), 0);
            d.job_id = round * 100 + i;
            idx = spt_push(s, 2, &d);
        }
        spt_doorbell(s, 2);
        g_assert(spt_wait_head(s, 2, idx + 1));
        for (int i = 0; i < RING_ENTRIES; i++) {
            struct spt_job_cpl c;

            spt_read_cpl(s, 2, idx - RING_ENTRIES + 1 + i, &c);
            assert_ok(&c);
            g_assert_cmpuint(c.job_id, ==, round * 100 + i);
        }
        g_assert_cmpuint(qtest_readq(s->qts, out.pa), ==, round * 100 + RING_ENTRIES - 1);
    }
    spt_stop(s);
}

/* ---- tests: every compute opcode against core/ -------------------------- */

static void test_encode_decode(void)
{
    Spt *s = spt_start(NULL);
    GRand *r = g_rand_new_with_seed(1);
    const uint32_t rows = 37, cols = 100;
    float *x = rand_matrix(r, rows, cols, 0.3);
    size_t cap = spt_ct_bound(rows, cols);
    Buf src = spt_buf_data(s, 0, x, rows * cols * 4);
    Buf dst = spt_buf_rw(s, 0, cap);
    Buf len = spt_buf_rw(s, 0, 8);
    Buf stats = spt_buf_rw(s, 0, sizeof(struct spt_hw_stats));
    Buf y = spt_buf_rw(s, 0, rows * cols * 4);
    struct spt_hw_encode modes[] = {
        hw_enc(0, 0, 0, 0),
        hw_enc(0, 1, 0.5f, 0),
        hw_enc(1, 2, 0.7f, 42),
    };

    for (unsigned m = 0; m < G_N_ELEMENTS(modes); m++) {
        struct spt_cmd_encode e = {
            CMD_HDR(SPT_OP_ENCODE, struct spt_cmd_encode),
            .src_va = src.va, .rows = rows, .cols = cols,
            .dst_va = dst.va, .dst_cap = cap, .len_va = len.va, .stats_va = stats.va,
            .enc = modes[m],
        };
        struct spt_cmd_decode dc = {
            CMD_HDR(SPT_OP_DECODE, struct spt_cmd_decode),
            .src_va = dst.va, .dst_va = y.va, .dst_elems = rows * cols,
        };
        struct spt_encode_opts o;
        struct spt_tensor_stats st;
        struct spt_hw_stats hs;
        void *want = g_malloc(cap), *got;
        float *want_y = g_new(float, rows * cols), *got_y;
        size_t want_len;
        struct spt_job_cpl c;
        Cmds cmds = { .len = 0 };

        host_enc_opts(&modes[m], &o);
        g_assert_cmpint(spt_ct_encode(x, rows, cols, &o, want, cap, &want_len, &st), ==,
                        0);
        g_assert_cmpint(spt_ct_decode(want, want_len, want_y, rows * cols), ==, 0);
        dc.src_len = want_len;
        cmds_add(&cmds, &e, sizeof(e));
        cmds_add(&cmds, &dc, sizeof(dc));
        spt_run_cmds(s, 0, &cmds, &c);
        assert_ok(&c);
        g_assert_cmpuint(qtest_readq(s->qts, len.pa), ==, want_len);
        got = guest_read(s, &dst, want_len);
        g_assert(memcmp(got, want, want_len) == 0);
        qtest_memread(s->qts, stats.pa, &hs, sizeof(hs));
        assert_stats(&hs, &st);
        got_y = guest_read(s, &y, rows * cols * 4);
        g_assert(memcmp(got_y, want_y, rows * cols * 4) == 0);
        g_assert_cmpuint(c.out_elements, ==, rows * cols);
        g_assert_cmpuint(c.out_zeros, ==, rows * cols - st.nonzeros);
        g_assert_cmpuint(c.bytes_read, >, 0);
        g_assert_cmpuint(c.cycles, >, 0);
        g_free(want);
        g_free(got);
        g_free(want_y);
        g_free(got_y);
    }
    g_free(x);
    g_rand_free(r);
    spt_stop(s);
}

static void test_transpose(void)
{
    Spt *s = spt_start(NULL);
    GRand *r = g_rand_new_with_seed(2);
    const uint32_t rows = 70, cols = 45;
    float *x = rand_matrix(r, rows, cols, 0.5);
    size_t in_len, cap = spt_ct_bound(cols, rows), want_len;
    void *in = host_encode(x, rows, cols, &in_len);
    void *want = g_malloc(cap), *got;
    struct spt_hw_encode he = hw_enc(0, 1, 0.25f, 0);
    struct spt_encode_opts o;
    struct spt_tensor_stats st;
    struct spt_hw_stats hs;
    Buf src = spt_buf_data(s, 0, in, in_len);
    Buf dst = spt_buf_rw(s, 0, cap);
    Buf stats = spt_buf_rw(s, 0, sizeof(hs));
    struct spt_cmd_transpose t = {
        CMD_HDR(SPT_OP_TRANSPOSE, struct spt_cmd_transpose),
        .src_va = src.va, .src_len = in_len, .dst_va = dst.va, .dst_cap = cap,
        .stats_va = stats.va, .enc = he,
    };
    struct spt_job_cpl c;
    Cmds cmds = { .len = 0 };

    host_enc_opts(&he, &o);
    g_assert_cmpint(spt_ct_transpose(in, in_len, &o, want, cap, &want_len, &st), ==, 0);
    cmds_add(&cmds, &t, sizeof(t));
    spt_run_cmds(s, 0, &cmds, &c);
    assert_ok(&c);
    got = guest_read(s, &dst, want_len);
    g_assert(memcmp(got, want, want_len) == 0);
    qtest_memread(s->qts, stats.pa, &hs, sizeof(hs));
    assert_stats(&hs, &st);
    g_free(x);
    g_free(in);
    g_free(want);
    g_free(got);
    g_rand_free(r);
    spt_stop(s);
}

typedef struct GemmCase {
    enum spt_pass pass;
    enum spt_act act;
    bool bias;
    bool y;
    bool ct;
    float scale;
    struct spt_hw_encode enc;
} GemmCase;

static void run_gemm_case(Spt *s, GRand *r, uint32_t m, uint32_t n, uint32_t k,
                          const GemmCase *gc)
{
    float *a = rand_matrix(r, m, k, 0.6), *b = rand_matrix(r, n, k, 0.6);
    float *bias = rand_matrix(r, 1, n, 0.0), *mk = rand_matrix(r, m, n, 0.5);
    size_t a_len, b_len, mask_len, cap = spt_ct_bound(m, n);
    void *ca = host_encode(a, m, k, &a_len), *cb = host_encode(b, n, k, &b_len);
    void *cmask = host_encode(mk, m, n, &mask_len);
    struct spt_gemm_epilogue ep = {
        .bias = gc->bias ? bias : NULL, .act = gc->act,
        .mask = gc->act == SPT_ACT_RELU_GRAD ? cmask : NULL,
        .mask_len = gc->act == SPT_ACT_RELU_GRAD ? mask_len : 0,
        .scale = gc->scale,
    };
    struct spt_gemm_out out = { 0 };
    struct spt_counters cnt = { 0 };
    Buf ba = spt_buf_data(s, 0, ca, a_len), bb = spt_buf_data(s, 0, cb, b_len);
    Buf bbias = spt_buf_data(s, 0, bias, n * 4);
    Buf bmask = spt_buf_data(s, 0, cmask, mask_len);
    Buf by = spt_buf_rw(s, 0, m * n * 4), bct = spt_buf_rw(s, 0, cap);
    Buf blen = spt_buf_rw(s, 0, 8);
    Buf bstats = spt_buf_rw(s, 0, sizeof(struct spt_hw_stats));
    struct spt_cmd_gemm g = {
        CMD_HDR(SPT_OP_GEMM, struct spt_cmd_gemm),
        .pass = gc->pass, .act = gc->act,
        .a_va = ba.va, .a_len = a_len, .b_va = bb.va, .b_len = b_len,
        .bias_va = gc->bias ? bbias.va : 0,
        .mask_va = gc->act == SPT_ACT_RELU_GRAD ? bmask.va : 0,
        .mask_len = gc->act == SPT_ACT_RELU_GRAD ? mask_len : 0,
        .y_va = gc->y ? by.va : 0,
        .ct_va = gc->ct ? bct.va : 0, .ct_cap = gc->ct ? cap : 0,
        .len_va = blen.va, .stats_va = bstats.va, .enc = gc->enc,
    };
    struct spt_job_cpl c;
    Cmds cmds = { .len = 0 };

    memcpy(&g.scale, &gc->scale, 4);
    out.y = gc->y ? g_new(float, m * n) : NULL;
    out.ct = gc->ct ? g_malloc(cap) : NULL;
    out.ct_cap = gc->ct ? cap : 0;
    host_enc_opts(&gc->enc, &out.enc);
    g_assert_cmpint(spt_gemm(gc->pass, ca, a_len, cb, b_len, &ep, &out, &cnt), ==, 0);

    cmds_add(&cmds, &g, sizeof(g));
    spt_run_cmds(s, 0, &cmds, &c);
    assert_ok(&c);
    if (gc->y) {
        float *got = guest_read(s, &by, m * n * 4);

        g_assert(memcmp(got, out.y, m * n * 4) == 0);
        g_free(got);
    }
    if (gc->ct) {
        void *got = guest_read(s, &bct, out.ct_len);
        struct spt_hw_stats hs;

        g_assert_cmpuint(qtest_readq(s->qts, blen.pa), ==, out.ct_len);
        g_assert(memcmp(got, out.ct, out.ct_len) == 0);
        qtest_memread(s->qts, bstats.pa, &hs, sizeof(hs));
        assert_stats(&hs, &out.stats);
        g_free(got);
    }
    g_assert_cmpuint(c.dense_macs, ==, cnt.dense_macs);
    g_assert_cmpuint(c.exec_macs, ==, cnt.exec_macs);
    g_assert_cmpuint(c.dense_macs, ==, (uint64_t)m * n * k);
    g_assert_cmpuint(c.exec_macs, <, c.dense_macs);
    g_assert_cmpuint(c.cycles, >, 0);
    g_assert_cmpuint(c.energy_fj, >, 0);
    g_free(a);
    g_free(b);
    g_free(bias);
    g_free(mk);
    g_free(ca);
    g_free(cb);
    g_free(cmask);
    g_free(out.y);
    g_free(out.ct);
}

static void test_gemm(void)
{
    Spt *s = spt_start(NULL);
    GRand *r = g_rand_new_with_seed(3);
    const GemmCase cases[] = {
        { SPT_PASS_FWD, SPT_ACT_NONE, false, true, false, 0, hw_enc(0, 0, 0, 0) },
        { SPT_PASS_FWD, SPT_ACT_RELU, true, true, true, 0, hw_enc(0, 1, 0.3f, 0) },
        { SPT_PASS_BWD, SPT_ACT_RELU_GRAD, false, true, true, 0.5f, hw_enc(1, 2, 0.2f, 7) },
        { SPT_PASS_WG, SPT_ACT_NONE, false, false, true, 0.25f, hw_enc(0, 1, 0.1f, 0) },
    };

    for (unsigned i = 0; i < G_N_ELEMENTS(cases); i++) {
        run_gemm_case(s, r, 33, 40, 96, &cases[i]);
    }
    g_assert_cmpuint(qpci_io_readq(s->dev, s->regs, SPT_REG_CNT_DENSE_MACS), ==,
                     4ull * 33 * 40 * 96);
    g_rand_free(r);
    spt_stop(s);
}

static void test_softmax_sgd(void)
{
    Spt *s = spt_start(NULL);
    GRand *r = g_rand_new_with_seed(4);
    const uint32_t rows = 16, classes = 10, n = 1000;
    float *logits = rand_matrix(r, rows, classes, 0.0);
    uint8_t labels[16];
    float loss, want_loss, *want_d = g_new(float, rows * classes), *got_d;
    uint32_t correct, want_correct;
    float *w = rand_matrix(r, 1, n, 0.0), *v = rand_matrix(r, 1, n, 0.0);
    float *g = rand_matrix(r, 1, n, 0.1), *got_w, *got_v;
    float lr = 0.05f, mom = 0.9f, wd = 1e-4f;
    Buf bl = spt_buf_data(s, 0, logits, rows * classes * 4);
    Buf blab, bloss = spt_buf_rw(s, 0, 8), bd = spt_buf_rw(s, 0, rows * classes * 4);
    Buf bw = spt_buf_data(s, 0, w, n * 4), bv = spt_buf_data(s, 0, v, n * 4);
    Buf bg = spt_buf_data(s, 0, g, n * 4);
    struct spt_cmd_softmax_xent sx = {
        CMD_HDR(SPT_OP_SOFTMAX_XENT, struct spt_cmd_softmax_xent),
        .logits_va = bl.va, .rows = rows, .classes = classes,
        .loss_va = bloss.va, .correct_va = bloss.va + 4, .dlogits_va = bd.va,
    };
    struct spt_cmd_sgd sg = {
        CMD_HDR(SPT_OP_SGD, struct spt_cmd_sgd),
        .w_va = bw.va, .v_va = bv.va, .g_va = bg.va, .n = n,
    };
    struct spt_job_cpl c;
    Cmds cmds = { .len = 0 };

    for (unsigned i = 0; i < rows; i++) {
        labels[i] = g_rand_int_range(r, 0, classes);
    }
    blab = spt_buf_data(s, 0, labels, rows);
    sx.labels_va = blab.va;
    memcpy(&sg.lr, &lr, 4);
    memcpy(&sg.momentum, &mom, 4);
    memcpy(&sg.weight_decay, &wd, 4);
    cmds_add(&cmds, &sx, sizeof(sx));
    cmds_add(&cmds, &sg, sizeof(sg));
    spt_run_cmds(s, 0, &cmds, &c);
    assert_ok(&c);

    g_assert_cmpint(spt_softmax_xent(logits, labels, rows, classes, &want_loss,
                                     &want_correct, want_d), ==, 0);
    g_assert_cmpint(spt_sgd_momentum(w, v, g, n, lr, mom, wd), ==, 0);
    qtest_memread(s->qts, bloss.pa, &loss, 4);
    qtest_memread(s->qts, bloss.pa + 4, &correct, 4);
    g_assert(memcmp(&loss, &want_loss, 4) == 0);
    g_assert_cmpuint(correct, ==, want_correct);
    got_d = guest_read(s, &bd, rows * classes * 4);
    g_assert(memcmp(got_d, want_d, rows * classes * 4) == 0);
    got_w = guest_read(s, &bw, n * 4);
    got_v = guest_read(s, &bv, n * 4);
    g_assert(memcmp(got_w, w, n * 4) == 0);
    g_assert(memcmp(got_v, v, n * 4) == 0);
    g_free(logits);
    g_free(want_d);
    g_free(got_d);
    g_free(w);
    g_free(v);
    g_free(g);
    g_free(got_w);
    g_free(got_v);
    g_rand_free(r);
    spt_stop(s);
}

/*
 * A whole training step of a one-layer softmax classifier as one job:
 * encode X and W^T, forward GEMM, loss and dlogits, encode dY and
 * transpose it, transpose X, weight-gradient GEMM, SGD.  Compared with the
 * same sequence on core/.
 */
static void test_training_step(void)
{
    Spt *s = spt_start(NULL);
    GRand *r = g_rand_new_with_seed(5);
    const uint32_t batch = 32, in = 64, out = 10;
    float *x = rand_matrix(r, batch, in, 0.5), *wt = rand_matrix(r, out, in, 0.0);
    float *v = g_new0(float, out * in);
    uint8_t labels[32];
    size_t cx = spt_ct_bound(batch, in), cw = spt_ct_bound(out, in);
    size_t cxt = spt_ct_bound(in, batch), cdyt = spt_ct_bound(out, batch);
    size_t cdy = spt_ct_bound(batch, out), l_cdy;
    float lr = 0.1f, mom = 0.9f, wd = 0, one = 1.0f;
    Buf bx = spt_buf_data(s, 0, x, batch * in * 4);
    Buf bw = spt_buf_data(s, 0, wt, out * in * 4);
    Buf bv = spt_buf_data(s, 0, v, out * in * 4), blab;
    Buf bcx = spt_buf_rw(s, 0, cx);
    Buf bcw = spt_buf_rw(s, 0, cw), bcxt = spt_buf_rw(s, 0, cxt);
    Buf blogits = spt_buf_rw(s, 0, batch * out * 4);
    Buf bdl = spt_buf_rw(s, 0, batch * out * 4);
    Buf bcdy = spt_buf_rw(s, 0, cdy), bcdyt = spt_buf_rw(s, 0, cdyt);
    Buf bgw = spt_buf_rw(s, 0, out * in * 4), bloss = spt_buf_rw(s, 0, 8);
    Buf blens = spt_buf_rw(s, 0, 64);
    struct spt_job_cpl c;
    Cmds cmds = { .len = 0 };
    size_t l_cx, l_cw, l_cxt, l_cdyt;
    void *h_cx = g_malloc(cx), *h_cw = g_malloc(cw), *h_cxt = g_malloc(cxt);
    void *h_cdyt = g_malloc(cdyt), *h_cdy = g_malloc(cdy);
    float *h_logits = g_new(float, batch * out), *h_dl = g_new(float, batch * out);
    float *h_gw = g_new(float, out * in);
    float h_loss, got_loss, *got_w;
    uint32_t h_correct;
    struct spt_gemm_out go = { 0 };

    for (unsigned i = 0; i < batch; i++) {
        labels[i] = g_rand_int_range(r, 0, out);
    }
    blab = spt_buf_data(s, 0, labels, batch);

    /* host reference: the same sequence on core/ */
    g_assert_cmpint(spt_ct_encode(x, batch, in, NULL, h_cx, cx, &l_cx, NULL), ==, 0);
    g_assert_cmpint(spt_ct_encode(wt, out, in, NULL, h_cw, cw, &l_cw, NULL), ==, 0);
    go.y = h_logits;
    g_assert_cmpint(spt_gemm(SPT_PASS_FWD, h_cx, l_cx, h_cw, l_cw, NULL, &go, NULL), ==,
                    0);
    g_assert_cmpint(spt_softmax_xent(h_logits, labels, batch, out, &h_loss, &h_correct,
                                     h_dl), ==, 0);
    g_assert_cmpint(spt_ct_encode(h_dl, batch, out, NULL, h_cdy, cdy, &l_cdy, NULL), ==,
                    0);
    g_assert_cmpint(spt_ct_transpose(h_cdy, l_cdy, NULL, h_cdyt, cdyt, &l_cdyt, NULL), ==,
                    0);
    g_assert_cmpint(spt_ct_transpose(h_cx, l_cx, NULL, h_cxt, cxt, &l_cxt, NULL), ==, 0);
    memset(&go, 0, sizeof(go));
    go.y = h_gw;
    /* dW^T[out x in] = dY^T[out x batch] * X^T[in x batch]^T */
    g_assert_cmpint(spt_gemm(SPT_PASS_WG, h_cdyt, l_cdyt, h_cxt, l_cxt, NULL, &go, NULL), ==,
                    0);
    g_assert_cmpint(spt_sgd_momentum(wt, v, h_gw, out * in, lr, mom, wd), ==, 0);

    /* the device: the same sequence as one job (lengths from the reference) */
    {
        struct spt_cmd_encode ex = { CMD_HDR(SPT_OP_ENCODE, struct spt_cmd_encode),
            .src_va = bx.va, .rows = batch, .cols = in, .dst_va = bcx.va, .dst_cap = cx,
            .len_va = blens.va };
        struct spt_cmd_encode ew = { CMD_HDR(SPT_OP_ENCODE, struct spt_cmd_encode),
            .src_va = bw.va, .rows = out, .cols = in, .dst_va = bcw.va, .dst_cap = cw,
            .len_va = blens.va + 8 };
        struct spt_cmd_gemm fwd = { CMD_HDR(SPT_OP_GEMM, struct spt_cmd_gemm),
            .pass = SPT_PASS_FWD, .a_va = bcx.va, .a_len = l_cx, .b_va = bcw.va,
            .b_len = l_cw, .y_va = blogits.va };
        struct spt_cmd_softmax_xent sx = {
            CMD_HDR(SPT_OP_SOFTMAX_XENT, struct spt_cmd_softmax_xent),
            .logits_va = blogits.va, .labels_va = blab.va, .rows = batch,
            .classes = out, .loss_va = bloss.va, .dlogits_va = bdl.va };
        struct spt_cmd_transpose tx = { CMD_HDR(SPT_OP_TRANSPOSE, struct spt_cmd_transpose),
            .src_va = bcx.va, .src_len = l_cx, .dst_va = bcxt.va, .dst_cap = cxt };
        struct spt_cmd_encode edy = { CMD_HDR(SPT_OP_ENCODE, struct spt_cmd_encode),
            .src_va = bdl.va, .rows = batch, .cols = out, .dst_va = bcdy.va,
            .dst_cap = cdy };
        struct spt_cmd_transpose tdy = { CMD_HDR(SPT_OP_TRANSPOSE, struct spt_cmd_transpose),
            .src_va = bcdy.va, .src_len = l_cdy, .dst_va = bcdyt.va, .dst_cap = cdyt };
        struct spt_cmd_gemm wg = { CMD_HDR(SPT_OP_GEMM, struct spt_cmd_gemm),
            .pass = SPT_PASS_WG, .a_va = bcdyt.va, .a_len = l_cdyt, .b_va = bcxt.va,
            .b_len = l_cxt, .y_va = bgw.va };
        struct spt_cmd_sgd sg = { CMD_HDR(SPT_OP_SGD, struct spt_cmd_sgd),
            .w_va = bw.va, .v_va = bv.va, .g_va = bgw.va, .n = out * in };

        memcpy(&fwd.scale, &one, 4);
        memcpy(&sg.lr, &lr, 4);
        memcpy(&sg.momentum, &mom, 4);
        memcpy(&sg.weight_decay, &wd, 4);
        cmds_add(&cmds, &ex, sizeof(ex));
        cmds_add(&cmds, &ew, sizeof(ew));
        cmds_add(&cmds, &fwd, sizeof(fwd));
        cmds_add(&cmds, &sx, sizeof(sx));
        cmds_add(&cmds, &tx, sizeof(tx));
        cmds_add(&cmds, &edy, sizeof(edy));
        cmds_add(&cmds, &tdy, sizeof(tdy));
        cmds_add(&cmds, &wg, sizeof(wg));
        cmds_add(&cmds, &sg, sizeof(sg));
    }
    spt_run_cmds(s, 0, &cmds, &c);
    assert_ok(&c);
    g_assert_cmpuint(c.cmds_done, ==, 9);
    qtest_memread(s->qts, bloss.pa, &got_loss, 4);
    g_assert(memcmp(&got_loss, &h_loss, 4) == 0);
    {
        float *got_dl = guest_read(s, &bdl, batch * out * 4);

        g_assert(memcmp(got_dl, h_dl, batch * out * 4) == 0);
        g_free(got_dl);
    }
    got_w = guest_read(s, &bw, out * in * 4);
    g_assert(memcmp(got_w, wt, out * in * 4) == 0);
    g_assert_cmpuint(c.dense_macs, ==, 2ull * batch * in * out);

    g_free(got_w);
    g_free(x);
    g_free(wt);
    g_free(v);
    g_free(h_cx);
    g_free(h_cw);
    g_free(h_cxt);
    g_free(h_cdyt);
    g_free(h_logits);
    g_free(h_dl);
    g_free(h_cdy);
    g_free(h_gw);
    g_rand_free(r);
    spt_stop(s);
}

/* ---- tests: MMU --------------------------------------------------------- */

static void test_mmu_fault(void)
{
    Spt *s = spt_start(NULL);
    Buf ok1 = spt_buf_rw(s, 1, 8), ro = spt_buf(s, 1, 8, SPT_PTE_READ);
    Buf ok2 = spt_buf_rw(s, 2, 8);
    uint64_t unmapped = 0x7000000000ull + 0x123;
    struct spt_cmd_fence f = { CMD_HDR(SPT_OP_FENCE, struct spt_cmd_fence) };
    struct spt_cmd_timestamp ts = { CMD_HDR(SPT_OP_TIMESTAMP, struct spt_cmd_timestamp) };
    struct spt_job_cpl c1, c2, c3, c4;
    struct spt_job_desc d1, d2, d3, d4;
    Buf cb1, cb2, cb3, cb4;
    uint32_t i1, i2, i3;

    /* ctx 1 reads an unmapped VA (DECODE source), ctx 2 works meanwhile */
    {
        struct spt_cmd_decode dc = { CMD_HDR(SPT_OP_DECODE, struct spt_cmd_decode),
                                     .src_va = unmapped, .src_len = 128,
                                     .dst_va = ok1.va, .dst_elems = 1 };
        cb1 = spt_buf_data(s, 1, &dc, sizeof(dc));
    }
    f.va = ok2.va;
    f.value = 77;
    cb2 = spt_buf_data(s, 2, &f, sizeof(f));
    /* ctx 1 writes a read-only page */
    ts.va = ro.va;
    cb3 = spt_buf_data(s, 1, &ts, sizeof(ts));
    /* ctx 2 uses a VA that is only mapped in ctx 1 */
    f.va = ok1.va + 0x10000000;
    cb4 = spt_buf_data(s, 2, &f, sizeof(f));

    d1 = spt_desc(&cb1, sizeof(struct spt_cmd_decode), 1);
    d2 = spt_desc(&cb2, sizeof(f), 2);
    d3 = spt_desc(&cb3, sizeof(ts), 1);
    d4 = spt_desc(&cb4, sizeof(f), 2);
    i1 = spt_push(s, 0, &d1);
    i2 = spt_push(s, 1, &d2);
    i3 = spt_push(s, 0, &d3);
    spt_doorbell(s, 0);
    spt_doorbell(s, 1);
    g_assert(spt_wait_head(s, 0, i3 + 1));
    g_assert(spt_wait_head(s, 1, i2 + 1));
    spt_read_cpl(s, 0, i1, &c1);
    spt_read_cpl(s, 1, i2, &c2);
    spt_read_cpl(s, 0, i3, &c3);

    assert_err(&c1, SPT_ERR_MMU_FAULT);
    g_assert_cmpuint(c1.fault_ctx, ==, 1);
    g_assert_cmphex(c1.fault_va, ==, unmapped);
    g_assert_cmpuint(c1.fault_access, ==, SPT_ACCESS_READ);
    assert_ok(&c2);
    g_assert_cmpuint(qtest_readq(s->qts, ok2.pa), ==, 77);
    assert_err(&c3, SPT_ERR_MMU_FAULT);
    g_assert_cmphex(c3.fault_va, ==, ro.va);
    g_assert_cmpuint(c3.fault_access, ==, SPT_ACCESS_WRITE);
    g_assert_cmpuint(qtest_readq(s->qts, ro.pa), ==, 0);

    spt_run(s, 1, &d4, &c4);
    assert_err(&c4, SPT_ERR_MMU_FAULT);
    g_assert_cmpuint(c4.fault_ctx, ==, 2);

    g_assert_cmphex(rd(s, SPT_REG_ERR_STATUS) & SPT_ERRS_MMU_FAULT, ==,
                    SPT_ERRS_MMU_FAULT);
    g_assert_cmphex(qpci_io_readq(s->dev, s->regs, SPT_REG_ERR_VA_LO), ==, c4.fault_va);
    g_assert_cmpuint(SPT_ERR_INFO_CTX(rd(s, SPT_REG_ERR_INFO)), ==, 2);
    g_assert_cmpuint(SPT_ERR_INFO_QUEUE(rd(s, SPT_REG_ERR_INFO)), ==, 1);
    g_assert_cmpuint(qpci_io_readq(s->dev, s->regs, SPT_REG_CNT_MMU_FAULTS), ==, 3);
    g_assert(qpci_msix_pending(s->dev, SPT_MSIX_VECTOR_ERROR(s->nq)));
    g_assert_cmphex(rd(s, SPT_REG_INT_STATUS) & SPT_INT_ERROR, ==, SPT_INT_ERROR);
    wr(s, SPT_REG_ERR_STATUS, 0xffffffff);
    g_assert_cmphex(rd(s, SPT_REG_ERR_STATUS), ==, 0);

    /* the faulting context keeps working */
    f.va = ok1.va;
    f.value = 5;
    cb1 = spt_buf_data(s, 1, &f, sizeof(f));
    d1 = spt_desc(&cb1, sizeof(f), 1);
    spt_run(s, 0, &d1, &c1);
    assert_ok(&c1);
    g_assert_cmpuint(qtest_readq(s->qts, ok1.pa), ==, 5);

    /* a VA above 48 bits and a VA of a non-present level-4 entry */
    f.va = 1ull << 50;
    cb1 = spt_buf_data(s, 1, &f, sizeof(f));
    d1 = spt_desc(&cb1, sizeof(f), 1);
    spt_run(s, 0, &d1, &c1);
    assert_err(&c1, SPT_ERR_MMU_FAULT);
    g_assert_cmphex(c1.fault_va, ==, 1ull << 50);
    spt_stop(s);
}

static void test_mmu_bad_context(void)
{
    Spt *s = spt_start(NULL);
    struct spt_cmd_nop nop = { CMD_HDR(SPT_OP_NOP, struct spt_cmd_nop) };
    Buf cb = spt_buf_data(s, 0, &nop, sizeof(nop));
    struct spt_job_desc d = spt_desc(&cb, sizeof(nop), 0);
    struct spt_job_cpl c;

    d.ctx = 16;                 /* == NUM_CONTEXTS */
    spt_run(s, 0, &d, &c);
    assert_err(&c, SPT_ERR_BAD_CONTEXT);
    d.ctx = 0xffffffff;
    spt_run(s, 0, &d, &c);
    assert_err(&c, SPT_ERR_BAD_CONTEXT);
    d.ctx = 5;                  /* in range, entry not valid */
    spt_run(s, 0, &d, &c);
    assert_err(&c, SPT_ERR_BAD_CONTEXT);
    /* context table pointing at non-existent memory */
    qpci_io_writeq(s->dev, s->regs, SPT_REG_MMU_CTX_TABLE_LO, 0xfffffffff000ull);
    d.ctx = 0;
    spt_run(s, 0, &d, &c);
    g_assert_cmpuint(c.status, ==, SPT_JOB_ERROR);
    qpci_io_writeq(s->dev, s->regs, SPT_REG_MMU_CTX_TABLE_LO, s->ctx_table);
    /* page table pointing outside guest RAM */
    qtest_writeq(s->qts, s->ctx_table + 3 * 16, 0xfff0000000ull | SPT_CTX_VALID);
    d.ctx = 3;
    spt_run(s, 0, &d, &c);
    g_assert_cmpuint(c.status, ==, SPT_JOB_ERROR);
    /* still fine */
    d.ctx = 0;
    spt_run(s, 0, &d, &c);
    assert_ok(&c);
    spt_stop(s);
}

/* ---- tests: malformed input --------------------------------------------- */

static void test_bad_descriptors(void)
{
    Spt *s = spt_start(NULL);
    struct spt_cmd_nop nop[2] = {
        { CMD_HDR(SPT_OP_NOP, struct spt_cmd_nop) },
        { CMD_HDR(SPT_OP_NOP, struct spt_cmd_nop) },
    };
    Buf cb = spt_buf_data(s, 0, nop, sizeof(nop));
    struct spt_job_desc good = spt_desc(&cb, sizeof(nop), 0), d;
    struct spt_job_cpl c;

    d = good; d.flags = 0x80;
    spt_run(s, 0, &d, &c);
    assert_err(&c, SPT_ERR_BAD_DESC);
    d = good; d.cmd_len = 12;
    spt_run(s, 0, &d, &c);
    assert_err(&c, SPT_ERR_BAD_DESC);
    d = good; d.cmd_len = 0;
    spt_run(s, 0, &d, &c);
    assert_err(&c, SPT_ERR_BAD_DESC);
    d = good; d.cmd_len = 0xfffffff8;
    spt_run(s, 0, &d, &c);
    assert_err(&c, SPT_ERR_BAD_DESC);
    d = good; d.pad0 = 1;
    spt_run(s, 0, &d, &c);
    assert_err(&c, SPT_ERR_BAD_DESC);
    d = good; d.reserved[1] = 1;
    spt_run(s, 0, &d, &c);
    assert_err(&c, SPT_ERR_BAD_DESC);
    d = good; d.cmd_va += 4;
    spt_run(s, 0, &d, &c);
    assert_err(&c, SPT_ERR_BAD_DESC);
    d = good; d.cmd_len = 16 * 4096;    /* runs into the unmapped guard page */
    spt_run(s, 0, &d, &c);
    assert_err(&c, SPT_ERR_MMU_FAULT);
    d = good; d.flags = SPT_JOB_FENCE; d.fence_va = 3;
    spt_run(s, 0, &d, &c);
    assert_err(&c, SPT_ERR_BAD_DESC);
    d = good;
    spt_run(s, 0, &d, &c);
    assert_ok(&c);
    g_assert_cmphex(rd(s, SPT_REG_ERR_STATUS) & SPT_ERRS_DESC, ==, SPT_ERRS_DESC);
    spt_stop(s);
}

static void run_bad_cmd(Spt *s, const void *cmd, size_t size, uint32_t code)
{
    struct spt_job_cpl c;
    Cmds cmds = { .len = 0 };
    struct spt_cmd_nop nop = { CMD_HDR(SPT_OP_NOP, struct spt_cmd_nop) };

    cmds_add(&cmds, &nop, sizeof(nop));
    cmds_add(&cmds, cmd, size);
    spt_run_cmds(s, 0, &cmds, &c);
    assert_err(&c, code);
    g_assert_cmpuint(c.error_offset, ==, 8);
    g_assert_cmpuint(c.cmds_done, ==, 1);
}

static void test_bad_commands(void)
{
    Spt *s = spt_start(NULL);
    GRand *r = g_rand_new_with_seed(6);
    float *x = rand_matrix(r, 8, 64, 0.0);
    size_t xl;
    void *cx = host_encode(x, 8, 64, &xl);
    Buf bx = spt_buf_data(s, 0, x, 8 * 64 * 4), bcx = spt_buf_data(s, 0, cx, xl);
    Buf out = spt_buf_rw(s, 0, 65536);
    uint8_t garbage[512];
    Buf bg;
    struct spt_cmd_nop nop = { CMD_HDR(SPT_OP_NOP, struct spt_cmd_nop) };
    struct spt_cmd_encode e = { CMD_HDR(SPT_OP_ENCODE, struct spt_cmd_encode),
        .src_va = bx.va, .rows = 8, .cols = 64, .dst_va = out.va, .dst_cap = 65536 };
    struct spt_cmd_gemm g = { CMD_HDR(SPT_OP_GEMM, struct spt_cmd_gemm),
        .a_va = bcx.va, .a_len = xl, .b_va = bcx.va, .b_len = xl, .y_va = out.va };
    struct spt_cmd_encode e2;
    struct spt_cmd_gemm g2;
    struct spt_cmd_sgd sg = { CMD_HDR(SPT_OP_SGD, struct spt_cmd_sgd),
        .w_va = out.va, .v_va = out.va, .g_va = out.va };
    float nan = NAN;

    for (unsigned i = 0; i < sizeof(garbage); i++) {
        garbage[i] = g_rand_int(r);
    }
    bg = spt_buf_data(s, 0, garbage, sizeof(garbage));

    nop.hdr.opcode = 0x7f;
    run_bad_cmd(s, &nop, sizeof(nop), SPT_ERR_BAD_OPCODE);
    nop.hdr.opcode = 0;
    run_bad_cmd(s, &nop, sizeof(nop), SPT_ERR_BAD_OPCODE);
    nop.hdr.opcode = SPT_OP_NOP;
    nop.hdr.version = 3;
    run_bad_cmd(s, &nop, sizeof(nop), SPT_ERR_BAD_OPCODE);
    nop.hdr.version = 0;
    run_bad_cmd(s, &nop, sizeof(nop), SPT_ERR_BAD_OPCODE);
    nop.hdr.version = 1;
    nop.hdr.flags = 1;
    run_bad_cmd(s, &nop, sizeof(nop), SPT_ERR_BAD_CMD);
    nop.hdr.flags = 0;
    nop.hdr.size = 16;
    run_bad_cmd(s, &nop, sizeof(nop), SPT_ERR_BAD_CMD);
    /* a command cut short by the end of the stream */
    run_bad_cmd(s, &e, 40, SPT_ERR_BAD_CMD);

    e2 = e; e2.rows = 0;
    run_bad_cmd(s, &e2, sizeof(e2), SPT_ERR_BAD_CMD);
    e2 = e; e2.rows = 1u << 24; e2.cols = 1u << 24;
    run_bad_cmd(s, &e2, sizeof(e2), SPT_ERR_TOO_BIG);
    e2 = e; e2.dst_cap = 1ull << 40;
    run_bad_cmd(s, &e2, sizeof(e2), SPT_ERR_TOO_BIG);
    e2 = e; e2.dst_cap = 16;
    run_bad_cmd(s, &e2, sizeof(e2), SPT_ERR_NO_SPACE);
    e2 = e; e2.enc.round = 9;
    run_bad_cmd(s, &e2, sizeof(e2), SPT_ERR_BAD_CMD);
    e2 = e; memcpy(&e2.enc.tau, &nan, 4); e2.enc.prune_mode = 1;
    run_bad_cmd(s, &e2, sizeof(e2), SPT_ERR_BAD_CMD);
    qtest_memwrite(s->qts, bx.pa + 4 * 10, &nan, 4);
    run_bad_cmd(s, &e, sizeof(e), SPT_ERR_NUMERIC);

    g2 = g; g2.a_va = bg.va; g2.a_len = sizeof(garbage);
    run_bad_cmd(s, &g2, sizeof(g2), SPT_ERR_BAD_TENSOR);
    g2 = g; g2.a_len = xl - 1;
    run_bad_cmd(s, &g2, sizeof(g2), SPT_ERR_BAD_TENSOR);
    g2 = g; g2.a_len = 1ull << 62;
    run_bad_cmd(s, &g2, sizeof(g2), SPT_ERR_TOO_BIG);
    g2 = g; g2.pass = 3;
    run_bad_cmd(s, &g2, sizeof(g2), SPT_ERR_BAD_CMD);
    g2 = g; g2.y_va = 0;
    run_bad_cmd(s, &g2, sizeof(g2), SPT_ERR_BAD_CMD);
    g2 = g; g2.act = SPT_ACT_RELU_GRAD;
    run_bad_cmd(s, &g2, sizeof(g2), SPT_ERR_BAD_CMD);
    g2 = g; g2.act = SPT_ACT_RELU_GRAD; g2.mask_va = bcx.va; g2.mask_len = xl;
    run_bad_cmd(s, &g2, sizeof(g2), SPT_ERR_SHAPE);
    g2 = g; g2.ct_va = out.va; g2.ct_cap = 8;
    run_bad_cmd(s, &g2, sizeof(g2), SPT_ERR_NO_SPACE);
    sg.n = 1ull << 40;
    run_bad_cmd(s, &sg, sizeof(sg), SPT_ERR_TOO_BIG);
    sg.n = 0;
    run_bad_cmd(s, &sg, sizeof(sg), SPT_ERR_BAD_CMD);

    /* pure garbage as a command stream */
    {
        struct spt_job_desc d = spt_desc(&bg, sizeof(garbage), 0);
        struct spt_job_cpl c;

        spt_run(s, 0, &d, &c);
        g_assert_cmpuint(c.status, ==, SPT_JOB_ERROR);
    }
    g_assert_cmphex(rd(s, SPT_REG_ERR_STATUS) & SPT_ERRS_CMD, ==, SPT_ERRS_CMD);
    g_free(x);
    g_free(cx);
    g_rand_free(r);
    spt_stop(s);
}

/* ---- tests: command stream version 2 ------------------------------------ */

#define CMD_HDR2(op, type) { .opcode = (op), .version = 2, .size = sizeof(type) }

static struct spt_cmd_im2col conv_cmd(uint8_t op, const struct spt_conv_shape *sh,
                                      uint64_t img_va, uint64_t col_va)
{
    struct spt_cmd_im2col c = {
        CMD_HDR2(op, struct spt_cmd_im2col),
        .img_va = img_va, .col_va = col_va,
        .n = sh->n, .h = sh->h, .w = sh->w, .c = sh->c,
        .k = sh->k, .stride = sh->stride, .pad = sh->pad,
    };
    return c;
}

/* A copy of @ct (@len bytes) followed by @extra bytes of junk. */
static void *with_junk(const void *ct, size_t len, size_t extra)
{
    uint8_t *p = g_malloc(len + extra);

    memcpy(p, ct, len);
    memset(p + len, 0xa5, extra);
    return p;
}

/* IM2COL and COL2IM against core/, bit for bit, for several windows. */
static void test_v2_lowering(void)
{
    Spt *s = spt_start(NULL);
    GRand *r = g_rand_new_with_seed(20);
    const struct spt_conv_shape shapes[] = {
        { 2, 8, 8, 3, 3, 1, 1 },
        { 3, 9, 7, 5, 3, 2, 1 },
        { 1, 11, 6, 4, 5, 2, 2 },
        { 2, 5, 5, 1, 1, 1, 0 },
        { 1, 7, 9, 3, 3, 4, 0 },
        { 1, 16, 16, 2, 16, 16, 15 },
    };

    for (unsigned i = 0; i < G_N_ELEMENTS(shapes); i++) {
        const struct spt_conv_shape *sh = &shapes[i];
        struct spt_conv_dims d;
        float *img, *col, *want_col, *want_img, *got;
        struct spt_cmd_im2col ic, ci;
        struct spt_job_cpl c;
        Cmds cmds = { .len = 0 };
        Buf bimg, bcol, bimg2;

        g_assert_cmpint(spt_conv_shape_check(sh, &d), ==, 0);
        img = rand_matrix(r, 1, d.img_elems, 0.2);
        col = rand_matrix(r, 1, d.col_elems, 0.2);
        want_col = g_new(float, d.col_elems);
        want_img = g_new(float, d.img_elems);
        g_assert_cmpint(spt_im2col(sh, img, d.img_elems, want_col, d.col_elems), ==, 0);
        g_assert_cmpint(spt_col2im(sh, col, d.col_elems, want_img, d.img_elems), ==, 0);
        bimg = spt_buf_data(s, 0, img, d.img_elems * 4);
        bcol = spt_buf_data(s, 0, col, d.col_elems * 4);
        bimg2 = spt_buf_rw(s, 0, d.img_elems * 4);
        /* col2im first (reads the random patches), then im2col overwrites them */
        ci = conv_cmd(SPT_OP_COL2IM, sh, bimg2.va, bcol.va);
        ic = conv_cmd(SPT_OP_IM2COL, sh, bimg.va, bcol.va);
        cmds_add(&cmds, &ci, sizeof(ci));
        cmds_add(&cmds, &ic, sizeof(ic));
        spt_run_cmds(s, 0, &cmds, &c);
        assert_ok(&c);
        g_assert_cmpuint(c.cmds_done, ==, 2);
        got = guest_read(s, &bimg2, d.img_elems * 4);
        g_assert(memcmp(got, want_img, d.img_elems * 4) == 0);
        g_free(got);
        got = guest_read(s, &bcol, d.col_elems * 4);
        g_assert(memcmp(got, want_col, d.col_elems * 4) == 0);
        g_free(got);
        g_assert_cmpuint(c.bytes_read, ==, 4 * (d.img_elems + d.col_elems));
        g_assert_cmpuint(c.bytes_written, ==, 4 * (d.img_elems + d.col_elems));
        g_assert_cmpuint(c.dense_macs, ==, 0);
        g_assert_cmpuint(c.cycles, >, 0);
        g_free(img);
        g_free(col);
        g_free(want_col);
        g_free(want_img);
    }
    g_rand_free(r);
    spt_stop(s);
}

/*
 * COLSUM against core/ and against the runtime's bias gradient (decode, then
 * sum the rows in order from 0.0f), exact length and capacity, and
 * CHECK_FINITE on finite and non-finite data.
 */
static void test_v2_colsum_finite(void)
{
    Spt *s = spt_start(NULL);
    GRand *r = g_rand_new_with_seed(21);
    const uint32_t dims[][2] = { { 70, 45 }, { 300, 96 }, { 1, 1 }, { 129, 33 } };

    for (unsigned i = 0; i < G_N_ELEMENTS(dims); i++) {
        uint32_t rows = dims[i][0], cols = dims[i][1];
        float *x = rand_matrix(r, rows, cols, 0.7), *dec = g_new(float, rows * cols);
        float *ref = g_new0(float, cols), *want = g_new(float, cols), *got;
        size_t len;
        void *ct = host_encode(x, rows, cols, &len), *junk = with_junk(ct, len, 200);
        Buf bct = spt_buf_data(s, 0, junk, len + 200);
        Buf bs1 = spt_buf_rw(s, 0, cols * 4), bs2 = spt_buf_rw(s, 0, cols * 4);
        struct spt_cmd_colsum exact = { CMD_HDR2(SPT_OP_COLSUM, struct spt_cmd_colsum),
            .src_va = bct.va, .src_len = len, .dst_va = bs1.va, .dst_elems = cols };
        struct spt_cmd_colsum capa = exact;
        struct spt_cmd_check_finite cf = {
            CMD_HDR2(SPT_OP_CHECK_FINITE, struct spt_cmd_check_finite),
            .va = bs2.va, .n = cols };
        struct spt_job_cpl c;
        Cmds cmds = { .len = 0 };

        g_assert_cmpint(spt_ct_decode(ct, len, dec, rows * cols), ==, 0);
        for (uint32_t rr = 0; rr < rows; rr++) {
            for (uint32_t cc = 0; cc < cols; cc++) {
                ref[cc] += dec[rr * cols + cc];
            }
        }
        g_assert_cmpint(spt_ct_colsum(ct, len, want, cols), ==, 0);
        g_assert(memcmp(want, ref, cols * 4) == 0);
        capa.hdr.flags = SPT_CMD_F_LEN_HDR;
        capa.src_len = len + 200;
        capa.dst_va = bs2.va;
        cmds_add(&cmds, &exact, sizeof(exact));
        cmds_add(&cmds, &capa, sizeof(capa));
        cmds_add(&cmds, &cf, sizeof(cf));
        spt_run_cmds(s, 0, &cmds, &c);
        assert_ok(&c);
        g_assert_cmpuint(c.cmds_done, ==, 3);
        got = guest_read(s, &bs1, cols * 4);
        g_assert(memcmp(got, want, cols * 4) == 0);
        g_free(got);
        got = guest_read(s, &bs2, cols * 4);
        g_assert(memcmp(got, want, cols * 4) == 0);
        g_free(got);
        /* read: the tensor twice (its own length both times), the sums once */
        g_assert_cmpuint(c.bytes_read, ==, 2 * len + cols * 4);
        g_assert_cmpuint(c.bytes_written, ==, 2 * cols * 4);
        g_free(x);
        g_free(dec);
        g_free(ref);
        g_free(want);
        g_free(ct);
        g_free(junk);
    }

    /* CHECK_FINITE: each kind of non-finite value, anywhere */
    {
        const float bad[] = { NAN, -NAN, INFINITY, -INFINITY };
        float v[100];
        Buf bv = spt_buf_rw(s, 0, sizeof(v));
        struct spt_cmd_check_finite cf = {
            CMD_HDR2(SPT_OP_CHECK_FINITE, struct spt_cmd_check_finite),
            .va = bv.va, .n = 100 };
        struct spt_job_cpl c;
        Cmds cmds = { .len = 0 };
        Buf cb;
        struct spt_job_desc d;

        for (unsigned i = 0; i < 100; i++) {
            v[i] = (float)i - 50.0f;
        }
        v[7] = 3.4028235e38f;
        v[8] = -1e-45f;
        qtest_memwrite(s->qts, bv.pa, v, sizeof(v));
        cmds_add(&cmds, &cf, sizeof(cf));
        cb = spt_buf_data(s, 0, cmds.buf, cmds.len);
        d = spt_desc(&cb, cmds.len, 0);
        spt_run(s, 0, &d, &c);
        assert_ok(&c);
        g_assert_cmpuint(c.bytes_read, ==, sizeof(v));
        for (unsigned b = 0; b < G_N_ELEMENTS(bad); b++) {
            unsigned at = (b * 37) % 100;

            qtest_memwrite(s->qts, bv.pa + 4 * at, &bad[b], 4);
            spt_run(s, 0, &d, &c);
            assert_err(&c, SPT_ERR_NUMERIC);
            g_assert_cmpuint(c.error_offset, ==, 0);
            qtest_memwrite(s->qts, bv.pa + 4 * at, &v[at], 4);
        }
    }
    g_rand_free(r);
    spt_stop(s);
}

/* f32 bits as a float and back */
static float f32_of(uint32_t u)
{
    float f;

    memcpy(&f, &u, 4);
    return f;
}

/*
 * RELU_MASK against core/ bit for bit: ReLU outputs with +0.0f and -0.0f,
 * dx with NaN payloads, zeros and infinities; sizes from one element to
 * several pages; in place (dx_va == y_va) and with overlapping VAs (the
 * arrays as they were before the command); the counters.
 */
static void test_v2_relu_mask(void)
{
    Spt *s = spt_start(NULL);
    GRand *r = g_rand_new_with_seed(27);
    static const uint32_t odd[] = {
        0x7fc12345u, 0xffa00001u, 0x7f800001u, 0x80000000u, 0x00000000u,
        0x7f800000u, 0xff800000u, 0x00000001u,
    };
    const uint64_t sizes[] = { 1, 7, 1024, 1025, 5000 };

    for (unsigned i = 0; i < G_N_ELEMENTS(sizes); i++) {
        uint64_t n = sizes[i];
        float *y = g_new(float, n), *dx = g_new(float, n), *want, *got;
        uint64_t zeros = 0, masked = 0;
        struct spt_job_cpl c;
        Cmds cmds = { .len = 0 };
        Buf by, bdx;

        for (uint64_t j = 0; j < n; j++) {
            double u = g_rand_double(r);

            /* a ReLU output: zero (either sign) or positive; a NaN now and then */
            y[j] = u < 0.4 ? 0.0f : u < 0.55 ? -0.0f : u < 0.57 ? f32_of(0x7fc00000u) :
                   (float)g_rand_double_range(r, 1e-3, 4.0);
            dx[j] = j % 5 == 3 ? f32_of(odd[(j / 5) % G_N_ELEMENTS(odd)]) :
                    (float)g_rand_double_range(r, -2.0, 2.0);
        }
        want = g_memdup2(dx, n * 4);
        g_assert_cmpint(spt_relu_mask(want, y, n), ==, 0);
        for (uint64_t j = 0; j < n; j++) {
            uint32_t wb, db;

            memcpy(&wb, &want[j], 4);
            memcpy(&db, &dx[j], 4);
            zeros += y[j] == 0.0f;
            masked += y[j] == 0.0f && db != 0;
            g_assert_cmphex(wb, ==, y[j] == 0.0f ? 0u : db);
        }
        if (n >= 1024) {
            g_assert_cmpuint(masked, >, n / 4);
            g_assert_cmpuint(zeros, <, n - n / 4);
        }
        by = spt_buf_data(s, 0, y, n * 4);
        bdx = spt_buf_data(s, 0, dx, n * 4);
        {
            struct spt_cmd_relu_mask rm = {
                CMD_HDR2(SPT_OP_RELU_MASK, struct spt_cmd_relu_mask),
                .dx_va = bdx.va, .y_va = by.va, .n = n };

            cmds_add(&cmds, &rm, sizeof(rm));
        }
        spt_run_cmds(s, 0, &cmds, &c);
        assert_ok(&c);
        g_assert_cmpuint(c.cmds_done, ==, 1);
        got = guest_read(s, &bdx, n * 4);
        g_assert(memcmp(got, want, n * 4) == 0);
        g_free(got);
        got = guest_read(s, &by, n * 4);
        g_assert(memcmp(got, y, n * 4) == 0);               /* y only read */
        g_free(got);
        g_assert_cmpuint(c.bytes_read, ==, 8 * n);
        g_assert_cmpuint(c.bytes_written, ==, 4 * n);
        g_assert_cmpuint(c.dense_macs, ==, 0);
        g_assert_cmpuint(c.out_elements, ==, 0);
        g_assert_cmpuint(c.cycles, >, 0);

        /* in place: -0.0f becomes +0.0f, all else keeps its bits */
        {
            struct spt_cmd_relu_mask rm = {
                CMD_HDR2(SPT_OP_RELU_MASK, struct spt_cmd_relu_mask),
                .dx_va = by.va, .y_va = by.va, .n = n };
            float *w2 = g_memdup2(y, n * 4);

            g_assert_cmpint(spt_relu_mask(w2, w2, n), ==, 0);
            cmds.len = 0;
            cmds_add(&cmds, &rm, sizeof(rm));
            spt_run_cmds(s, 0, &cmds, &c);
            assert_ok(&c);
            got = guest_read(s, &by, n * 4);
            g_assert(memcmp(got, w2, n * 4) == 0);
            g_free(got);
            g_free(w2);
        }
        g_free(y);
        g_free(dx);
        g_free(want);
    }

    /* overlapping VAs: both arrays are read before dx is written */
    {
        const uint64_t n = 600;
        float *v = rand_matrix(r, 1, n + 3, 0.5), *a, *b, *got;
        Buf bv = spt_buf_data(s, 0, v, (n + 3) * 4);
        struct spt_cmd_relu_mask rm = {
            CMD_HDR2(SPT_OP_RELU_MASK, struct spt_cmd_relu_mask),
            .dx_va = bv.va + 12, .y_va = bv.va, .n = n };
        struct spt_job_cpl c;
        Cmds cmds = { .len = 0 };

        a = g_memdup2(v + 3, n * 4);                        /* dx as it was */
        b = g_memdup2(v, n * 4);                            /* y as it was */
        g_assert_cmpint(spt_relu_mask(a, b, n), ==, 0);
        cmds_add(&cmds, &rm, sizeof(rm));
        spt_run_cmds(s, 0, &cmds, &c);
        assert_ok(&c);
        got = guest_read(s, &bv, (n + 3) * 4);
        g_assert(memcmp(got, v, 12) == 0);
        g_assert(memcmp(got + 3, a, n * 4) == 0);
        g_free(got);
        g_free(a);
        g_free(b);
        g_free(v);
    }
    g_rand_free(r);
    spt_stop(s);
}

/*
 * ENCODE v2 and GEMM v2 with t_va: the transposed copy is bit for bit what
 * spt_ct_transpose (raw options) gives on the command's compressed result,
 * its length at t_len_va, and the job counts it as written, not read.
 */
static void test_v2_transposed_out(void)
{
    Spt *s = spt_start(NULL);
    GRand *r = g_rand_new_with_seed(23);
    const uint32_t m = 40, n = 24, k = 96;
    float *x = rand_matrix(r, m, k, 0.5), *w = rand_matrix(r, n, k, 0.6);
    size_t lx, lw, lxt, ly, lyt, cap_x = spt_ct_bound(m, k), cap_y = spt_ct_bound(m, n);
    size_t cap_xt = spt_ct_bound(k, m), cap_yt = spt_ct_bound(n, m);
    void *cx = g_malloc(cap_x), *cxt = g_malloc(cap_xt), *cw = host_encode(w, n, k, &lw);
    void *cy = g_malloc(cap_y), *cyt = g_malloc(cap_yt), *got;
    struct spt_encode_opts po;
    struct spt_gemm_epilogue ep = { .act = SPT_ACT_RELU };
    struct spt_gemm_out go = { 0 };
    Buf bx = spt_buf_data(s, 0, x, m * k * 4), bw = spt_buf_data(s, 0, cw, lw);
    Buf bcx = spt_buf_rw(s, 0, cap_x), bcxt = spt_buf_rw(s, 0, cap_xt);
    Buf bcy = spt_buf_rw(s, 0, cap_y), bcyt = spt_buf_rw(s, 0, cap_yt);
    Buf blen = spt_buf_rw(s, 0, 32);
    struct spt_cmd_encode_v2 en = { .v1 = {
        CMD_HDR2(SPT_OP_ENCODE, struct spt_cmd_encode_v2),
        .src_va = bx.va, .rows = m, .cols = k, .dst_va = bcx.va, .dst_cap = cap_x,
        .len_va = blen.va,
        .enc = { .prune_mode = SPT_PRUNE_DETERMINISTIC, .tau = 0x3e800000u /* 0.25 */ } },
        .t_va = bcxt.va, .t_cap = cap_xt, .t_len_va = blen.va + 8 };
    struct spt_cmd_gemm_v2 g = { .v1 = {
        CMD_HDR2(SPT_OP_GEMM, struct spt_cmd_gemm_v2),
        .pass = SPT_PASS_FWD, .act = SPT_ACT_RELU, .a_va = bcx.va, .a_len = cap_x,
        .b_va = bw.va, .b_len = lw, .ct_va = bcy.va, .ct_cap = cap_y,
        .len_va = blen.va + 16 },
        .t_va = bcyt.va, .t_cap = cap_yt, .t_len_va = blen.va + 24 };
    struct spt_job_cpl c;
    Cmds cmds = { .len = 0 };

    g.v1.hdr.flags = SPT_CMD_F_LEN_HDR;
    spt_encode_opts_init(&po);
    po.prune.mode = SPT_PRUNE_DETERMINISTIC;
    po.prune.tau = 0.25f;
    g_assert_cmpint(spt_ct_encode(x, m, k, &po, cx, cap_x, &lx, NULL), ==, 0);
    g_assert_cmpint(spt_ct_transpose(cx, lx, NULL, cxt, cap_xt, &lxt, NULL), ==, 0);
    go.ct = cy;
    go.ct_cap = cap_y;
    spt_encode_opts_init(&go.enc);
    g_assert_cmpint(spt_gemm(SPT_PASS_FWD, cx, lx, cw, lw, &ep, &go, NULL), ==, 0);
    ly = go.ct_len;
    g_assert_cmpint(spt_ct_transpose(cy, ly, NULL, cyt, cap_yt, &lyt, NULL), ==, 0);
    cmds_add(&cmds, &en, sizeof(en));
    cmds_add(&cmds, &g, sizeof(g));
    spt_run_cmds(s, 0, &cmds, &c);
    assert_ok(&c);
    g_assert_cmpuint(qtest_readq(s->qts, blen.pa), ==, lx);
    g_assert_cmpuint(qtest_readq(s->qts, blen.pa + 8), ==, lxt);
    g_assert_cmpuint(qtest_readq(s->qts, blen.pa + 16), ==, ly);
    g_assert_cmpuint(qtest_readq(s->qts, blen.pa + 24), ==, lyt);
    got = guest_read(s, &bcxt, lxt);
    g_assert(memcmp(got, cxt, lxt) == 0);
    g_free(got);
    got = guest_read(s, &bcyt, lyt);
    g_assert(memcmp(got, cyt, lyt) == 0);
    g_free(got);
    /* written once each, the compressed results not read back for the copies */
    g_assert_cmpuint(c.bytes_written, ==, lx + lxt + go.ct_len + lyt);
    g_assert_cmpuint(c.bytes_read, ==, (uint64_t)m * k * 4 + lx + lw);
    g_free(x);
    g_free(w);
    g_free(cx);
    g_free(cxt);
    g_free(cw);
    g_free(cy);
    g_free(cyt);
    g_rand_free(r);
    spt_stop(s);
}

/*
 * SPT_CMD_F_LEN_HDR on DECODE, TRANSPOSE and GEMM: a capacity larger than
 * the tensor (junk after it, the capacity reaching past the mapping) gives
 * the same results as the exact length; a header claiming more than the
 * capacity, or less than a header, fails with SPT_ERR_BAD_TENSOR.
 */
static void test_v2_len_hdr(void)
{
    Spt *s = spt_start(NULL);
    GRand *r = g_rand_new_with_seed(22);
    const uint32_t m = 40, n = 24, k = 96;
    float *a = rand_matrix(r, m, k, 0.5), *b = rand_matrix(r, n, k, 0.5);
    float *mk = rand_matrix(r, m, n, 0.5);
    size_t la, lb, lm, lt, cap_t = spt_ct_bound(k, m);
    void *ca = host_encode(a, m, k, &la), *cb = host_encode(b, n, k, &lb);
    void *cm = host_encode(mk, m, n, &lm);
    void *ja = with_junk(ca, la, 100), *jb = with_junk(cb, lb, 3000);
    void *jm = with_junk(cm, lm, 8);
    Buf ba = spt_buf_data(s, 0, ja, la + 100), bb = spt_buf_data(s, 0, jb, lb + 3000);
    Buf bm = spt_buf_data(s, 0, jm, lm + 8);
    Buf bdec = spt_buf_rw(s, 0, m * k * 4), bt = spt_buf_rw(s, 0, cap_t);
    Buf by = spt_buf_rw(s, 0, m * n * 4), blen = spt_buf_rw(s, 0, 8);
    Buf bcnt = spt_buf_rw(s, 0, sizeof(struct spt_hw_counters));
    float *want_dec = g_new(float, m * k), *want_y = g_new(float, m * n), *got;
    void *want_t = g_malloc(cap_t), *got_t;
    struct spt_gemm_epilogue ep = { .act = SPT_ACT_RELU_GRAD, .mask = cm, .mask_len = lm };
    struct spt_gemm_out go = { .y = want_y };
    struct spt_counters cnt = { 0 };
    struct spt_hw_counters hc;
    struct spt_cmd_decode dc = { CMD_HDR2(SPT_OP_DECODE, struct spt_cmd_decode),
        .src_va = ba.va, .src_len = 1ull << 30, .dst_va = bdec.va, .dst_elems = m * k };
    struct spt_cmd_transpose tr = { CMD_HDR2(SPT_OP_TRANSPOSE, struct spt_cmd_transpose),
        .src_va = ba.va, .src_len = la + 100, .dst_va = bt.va, .dst_cap = cap_t,
        .len_va = blen.va };
    struct spt_cmd_gemm_v2 g = { .v1 = {
        CMD_HDR2(SPT_OP_GEMM, struct spt_cmd_gemm_v2),
        .pass = SPT_PASS_FWD, .act = SPT_ACT_RELU_GRAD,
        .a_va = ba.va, .a_len = la + 100, .b_va = bb.va, .b_len = lb + 3000,
        .mask_va = bm.va, .mask_len = lm + 8, .y_va = by.va }, .cnt_va = bcnt.va };
    struct spt_job_cpl c;
    Cmds cmds = { .len = 0 };

    dc.hdr.flags = tr.hdr.flags = g.v1.hdr.flags = SPT_CMD_F_LEN_HDR;
    g_assert_cmpint(spt_ct_decode(ca, la, want_dec, m * k), ==, 0);
    g_assert_cmpint(spt_ct_transpose(ca, la, NULL, want_t, cap_t, &lt, NULL), ==, 0);
    g_assert_cmpint(spt_gemm(SPT_PASS_FWD, ca, la, cb, lb, &ep, &go, &cnt), ==, 0);
    cmds_add(&cmds, &dc, sizeof(dc));
    cmds_add(&cmds, &tr, sizeof(tr));
    cmds_add(&cmds, &g, sizeof(g));
    spt_run_cmds(s, 0, &cmds, &c);
    assert_ok(&c);
    got = guest_read(s, &bdec, m * k * 4);
    g_assert(memcmp(got, want_dec, m * k * 4) == 0);
    g_free(got);
    g_assert_cmpuint(qtest_readq(s->qts, blen.pa), ==, lt);
    got_t = guest_read(s, &bt, lt);
    g_assert(memcmp(got_t, want_t, lt) == 0);
    g_free(got_t);
    got = guest_read(s, &by, m * n * 4);
    g_assert(memcmp(got, want_y, m * n * 4) == 0);
    g_free(got);
    qtest_memread(s->qts, bcnt.pa, &hc, sizeof(hc));
    g_assert_cmpuint(hc.dense_macs, ==, cnt.dense_macs);
    g_assert_cmpuint(hc.exec_macs, ==, cnt.exec_macs);
    g_assert_cmpuint(hc.bytes_read, ==, cnt.bytes_read);
    g_assert_cmpuint(hc.bytes_written, ==, cnt.bytes_written);
    g_assert_cmpuint(hc.blocks, ==, cnt.blocks);
    /* decode and transpose count the tensor's own length, not the capacity */
    g_assert_cmpuint(c.bytes_read, ==, 2 * la + cnt.bytes_read);

    /* the header claims more than the capacity */
    {
        struct spt_cmd_decode d2 = dc;
        struct spt_cmd_gemm_v2 g2 = g;
        struct spt_cmd_colsum cs = { CMD_HDR2(SPT_OP_COLSUM, struct spt_cmd_colsum),
            .src_va = ba.va, .src_len = la - 1, .dst_va = by.va, .dst_elems = k };
        uint64_t big = 1ull << 40, tiny = 63;
        Buf bbig;

        cs.hdr.flags = SPT_CMD_F_LEN_HDR;
        d2.src_len = la - 1;
        run_bad_cmd(s, &d2, sizeof(d2), SPT_ERR_BAD_TENSOR);
        run_bad_cmd(s, &cs, sizeof(cs), SPT_ERR_BAD_TENSOR);
        g2.v1.b_len = lb - 1;
        run_bad_cmd(s, &g2, sizeof(g2), SPT_ERR_BAD_TENSOR);
        g2 = g;
        g2.v1.mask_len = lm - 1;
        run_bad_cmd(s, &g2, sizeof(g2), SPT_ERR_BAD_TENSOR);
        /* a capacity below a header */
        d2.src_len = 63;
        run_bad_cmd(s, &d2, sizeof(d2), SPT_ERR_BAD_TENSOR);
        d2.src_len = 0;
        run_bad_cmd(s, &d2, sizeof(d2), SPT_ERR_BAD_TENSOR);
        /* header total_bytes below a header, and far beyond SPT_XFER_MAX */
        bbig = spt_buf_data(s, 0, ca, la);
        qtest_memwrite(s->qts, bbig.pa + 48, &tiny, 8);
        d2 = dc;
        d2.src_va = bbig.va;
        run_bad_cmd(s, &d2, sizeof(d2), SPT_ERR_BAD_TENSOR);
        qtest_memwrite(s->qts, bbig.pa + 48, &big, 8);
        d2.src_len = 1ull << 41;
        run_bad_cmd(s, &d2, sizeof(d2), SPT_ERR_TOO_BIG);
        /* a header that lies about the length within the capacity */
        g_assert_cmpuint(la % 4096, <, 4096 - 8);
        big = la + 8;
        qtest_memwrite(s->qts, bbig.pa + 48, &big, 8);
        run_bad_cmd(s, &d2, sizeof(d2), SPT_ERR_BAD_TENSOR);
        /* the header itself unmapped */
        d2.src_va = 0x7000000000ull;
        run_bad_cmd(s, &d2, sizeof(d2), SPT_ERR_MMU_FAULT);
    }
    g_free(a);
    g_free(b);
    g_free(mk);
    g_free(ca);
    g_free(cb);
    g_free(cm);
    g_free(ja);
    g_free(jb);
    g_free(jm);
    g_free(want_dec);
    g_free(want_y);
    g_free(want_t);
    g_rand_free(r);
    spt_stop(s);
}

/*
 * GEMM version 2: each command's counters record equals core's counters,
 * and the job's completion adds them up (with the epilogue's bytes).
 */
static void test_v2_gemm_counters(void)
{
    Spt *s = spt_start(NULL);
    GRand *r = g_rand_new_with_seed(23);
    const GemmCase cases[] = {
        { SPT_PASS_FWD, SPT_ACT_RELU, true, true, true, 0, hw_enc(0, 1, 0.3f, 0) },
        { SPT_PASS_WG, SPT_ACT_NONE, false, false, true, 0.25f, hw_enc(1, 2, 0.1f, 5) },
        { SPT_PASS_BWD, SPT_ACT_NONE, false, true, false, 0, hw_enc(0, 0, 0, 0) },
    };
    const uint32_t m = 33, n = 40, k = 96;
    struct spt_counters sum = { 0 };
    struct spt_job_cpl c;
    Cmds cmds = { .len = 0 };
    Buf bcnt = spt_buf_rw(s, 0, G_N_ELEMENTS(cases) * sizeof(struct spt_hw_counters));
    Buf outs[G_N_ELEMENTS(cases)][2];
    void *want_ct[G_N_ELEMENTS(cases)];
    float *want_y[G_N_ELEMENTS(cases)];
    size_t want_len[G_N_ELEMENTS(cases)], cap = spt_ct_bound(m, n);

    for (unsigned i = 0; i < G_N_ELEMENTS(cases); i++) {
        const GemmCase *gc = &cases[i];
        float *a = rand_matrix(r, m, k, 0.6), *b = rand_matrix(r, n, k, 0.6);
        float *bias = rand_matrix(r, 1, n, 0.0);
        size_t la, lb;
        void *ca = host_encode(a, m, k, &la), *cb = host_encode(b, n, k, &lb);
        struct spt_gemm_epilogue ep = { .bias = gc->bias ? bias : NULL, .act = gc->act,
                                        .scale = gc->scale };
        struct spt_gemm_out out = { 0 };
        struct spt_counters cnt = { 0 };
        Buf ba = spt_buf_data(s, 0, ca, la), bb = spt_buf_data(s, 0, cb, lb);
        Buf bbias = spt_buf_data(s, 0, bias, n * 4);
        struct spt_cmd_gemm_v2 g = { .v1 = {
            CMD_HDR2(SPT_OP_GEMM, struct spt_cmd_gemm_v2),
            .pass = gc->pass, .act = gc->act, .a_va = ba.va, .a_len = la,
            .b_va = bb.va, .b_len = lb, .bias_va = gc->bias ? bbias.va : 0,
            .enc = gc->enc },
            .cnt_va = bcnt.va + i * sizeof(struct spt_hw_counters) };

        outs[i][0] = spt_buf_rw(s, 0, m * n * 4);
        outs[i][1] = spt_buf_rw(s, 0, cap);
        g.v1.y_va = gc->y ? outs[i][0].va : 0;
        g.v1.ct_va = gc->ct ? outs[i][1].va : 0;
        g.v1.ct_cap = gc->ct ? cap : 0;
        memcpy(&g.v1.scale, &gc->scale, 4);
        want_y[i] = out.y = gc->y ? g_new(float, m * n) : NULL;
        want_ct[i] = out.ct = gc->ct ? g_malloc(cap) : NULL;
        out.ct_cap = gc->ct ? cap : 0;
        host_enc_opts(&gc->enc, &out.enc);
        g_assert_cmpint(spt_gemm(gc->pass, ca, la, cb, lb, &ep, &out, &cnt), ==, 0);
        want_len[i] = out.ct_len;
        spt_counters_add(&sum, &cnt);
        cmds_add(&cmds, &g, sizeof(g));
        g_free(a);
        g_free(b);
        g_free(bias);
        g_free(ca);
        g_free(cb);
    }
    spt_run_cmds(s, 0, &cmds, &c);
    assert_ok(&c);
    for (unsigned i = 0; i < G_N_ELEMENTS(cases); i++) {
        struct spt_hw_counters hc;

        if (want_y[i]) {
            float *got = guest_read(s, &outs[i][0], m * n * 4);

            g_assert(memcmp(got, want_y[i], m * n * 4) == 0);
            g_free(got);
        }
        if (want_ct[i]) {
            void *got = guest_read(s, &outs[i][1], want_len[i]);

            g_assert(memcmp(got, want_ct[i], want_len[i]) == 0);
            g_free(got);
        }
        qtest_memread(s->qts, bcnt.pa + i * sizeof(hc), &hc, sizeof(hc));
        g_assert_cmpuint(hc.dense_macs, ==, (uint64_t)m * n * k);
        g_assert_cmpuint(hc.reserved, ==, 0);
        g_assert_cmpuint(hc.elements_out, ==, (uint64_t)m * n);
        g_free(want_y[i]);
        g_free(want_ct[i]);
    }
    /* the records add up to the job's counters */
    {
        struct spt_hw_counters hc[G_N_ELEMENTS(cases)];
        uint64_t dm = 0, em = 0, br = 0, bw = 0;

        qtest_memread(s->qts, bcnt.pa, hc, sizeof(hc));
        for (unsigned i = 0; i < G_N_ELEMENTS(cases); i++) {
            dm += hc[i].dense_macs;
            em += hc[i].exec_macs;
            br += hc[i].bytes_read;
            bw += hc[i].bytes_written;
        }
        g_assert_cmpuint(c.dense_macs, ==, dm);
        g_assert_cmpuint(c.exec_macs, ==, em);
        g_assert_cmpuint(c.bytes_read, ==, br);
        g_assert_cmpuint(c.bytes_written, ==, bw);
        g_assert_cmpuint(dm, ==, sum.dense_macs);
        g_assert_cmpuint(em, ==, sum.exec_macs);
        g_assert_cmpuint(br, ==, sum.bytes_read);
        g_assert_cmpuint(bw, ==, sum.bytes_written);
    }
    g_rand_free(r);
    spt_stop(s);
}

/*
 * One convolution layer's training step as one job, every compressed
 * intermediate sized by the device alone (F_LEN_HDR with the bound as the
 * capacity): IM2COL, ENCODE, GEMM forward with ReLU into a compressed
 * output, COLSUM of it (the bias gradient of a layer whose dY it were),
 * TRANSPOSE of W^T, GEMM backward into FP32 patches, COL2IM, RELU_MASK
 * with the layer's input as the ReLU output before it, CHECK_FINITE.
 * Compared with the same sequence on core/, bit for bit.
 */
static void test_v2_conv_step(void)
{
    Spt *s = spt_start(NULL);
    GRand *r = g_rand_new_with_seed(24);
    const struct spt_conv_shape sh = { 2, 6, 6, 3, 3, 1, 1 };
    const uint32_t N = 8;
    struct spt_conv_dims d;
    float *x, *wt = rand_matrix(r, N, 27, 0.1), *col, *dcol, *dx, *gb, *got;
    size_t cap_col, cap_w = spt_ct_bound(N, 27), cap_y, cap_wn = spt_ct_bound(27, N);
    size_t l_col, l_w, l_y, l_wn;
    void *h_col, *h_w, *h_y, *h_wn;
    struct spt_gemm_out go = { 0 };
    struct spt_gemm_epilogue ep = { .act = SPT_ACT_RELU };
    struct spt_counters c_fwd = { 0 }, c_bwd = { 0 };
    struct spt_hw_counters hc[2];
    struct spt_job_cpl c;
    Cmds cmds = { .len = 0 };
    Buf bx, bw, bcol, bccol, bcw, bcy, bcwn, bgb, bdcol, bdx, bcnt;

    g_assert_cmpint(spt_conv_shape_check(&sh, &d), ==, 0);
    g_assert_cmpuint(d.cols, ==, 27);
    x = rand_matrix(r, 1, d.img_elems, 0.3);
    col = g_new(float, d.col_elems);
    dcol = g_new(float, d.col_elems);
    dx = g_new(float, d.img_elems);
    gb = g_new(float, N);
    cap_col = spt_ct_bound(d.rows, d.cols);
    cap_y = spt_ct_bound(d.rows, N);
    h_col = g_malloc(cap_col);
    h_w = host_encode(wt, N, 27, &l_w);
    h_y = g_malloc(cap_y);
    h_wn = g_malloc(cap_wn);

    /* core/ */
    g_assert_cmpint(spt_im2col(&sh, x, d.img_elems, col, d.col_elems), ==, 0);
    g_assert_cmpint(spt_ct_encode(col, d.rows, d.cols, NULL, h_col, cap_col, &l_col, NULL),
                    ==, 0);
    go.ct = h_y;
    go.ct_cap = cap_y;
    g_assert_cmpint(spt_gemm(SPT_PASS_FWD, h_col, l_col, h_w, l_w, &ep, &go, &c_fwd), ==, 0);
    l_y = go.ct_len;
    g_assert_cmpint(spt_ct_colsum(h_y, l_y, gb, N), ==, 0);
    g_assert_cmpint(spt_ct_transpose(h_w, l_w, NULL, h_wn, cap_wn, &l_wn, NULL), ==, 0);
    memset(&go, 0, sizeof(go));
    go.y = dcol;
    g_assert_cmpint(spt_gemm(SPT_PASS_BWD, h_y, l_y, h_wn, l_wn, NULL, &go, &c_bwd), ==, 0);
    g_assert_cmpint(spt_col2im(&sh, dcol, d.col_elems, dx, d.img_elems), ==, 0);
    g_assert_cmpint(spt_relu_mask(dx, x, d.img_elems), ==, 0);
    g_assert_cmpint(spt_check_finite(dx, d.img_elems), ==, 0);

    /* the device */
    bx = spt_buf_data(s, 0, x, d.img_elems * 4);
    bw = spt_buf_data(s, 0, wt, N * 27 * 4);
    bcol = spt_buf_rw(s, 0, d.col_elems * 4);
    bccol = spt_buf_rw(s, 0, cap_col);
    bcw = spt_buf_rw(s, 0, cap_w);
    bcy = spt_buf_rw(s, 0, cap_y);
    bcwn = spt_buf_rw(s, 0, cap_wn);
    bgb = spt_buf_rw(s, 0, N * 4);
    bdcol = spt_buf_rw(s, 0, d.col_elems * 4);
    bdx = spt_buf_rw(s, 0, d.img_elems * 4);
    bcnt = spt_buf_rw(s, 0, sizeof(hc));
    {
        struct spt_cmd_im2col ic = conv_cmd(SPT_OP_IM2COL, &sh, bx.va, bcol.va);
        struct spt_cmd_encode_v2 ecol = { .v1 = {
            CMD_HDR2(SPT_OP_ENCODE, struct spt_cmd_encode_v2),
            .src_va = bcol.va, .rows = d.rows, .cols = d.cols, .dst_va = bccol.va,
            .dst_cap = cap_col } };
        struct spt_cmd_encode ew = { CMD_HDR(SPT_OP_ENCODE, struct spt_cmd_encode),
            .src_va = bw.va, .rows = N, .cols = 27, .dst_va = bcw.va, .dst_cap = cap_w };
        struct spt_cmd_gemm_v2 fwd = { .v1 = {
            { .opcode = SPT_OP_GEMM, .version = 2, .size = sizeof(fwd),
              .flags = SPT_CMD_F_LEN_HDR },
            .pass = SPT_PASS_FWD, .act = SPT_ACT_RELU, .a_va = bccol.va, .a_len = cap_col,
            .b_va = bcw.va, .b_len = cap_w, .ct_va = bcy.va, .ct_cap = cap_y },
            .cnt_va = bcnt.va };
        struct spt_cmd_colsum cs = {
            { .opcode = SPT_OP_COLSUM, .version = 2, .size = sizeof(cs),
              .flags = SPT_CMD_F_LEN_HDR },
            .src_va = bcy.va, .src_len = cap_y, .dst_va = bgb.va, .dst_elems = N };
        struct spt_cmd_transpose tw = {
            { .opcode = SPT_OP_TRANSPOSE, .version = 2, .size = sizeof(tw),
              .flags = SPT_CMD_F_LEN_HDR },
            .src_va = bcw.va, .src_len = cap_w, .dst_va = bcwn.va, .dst_cap = cap_wn };
        struct spt_cmd_gemm_v2 bwd = fwd;
        struct spt_cmd_im2col ci = conv_cmd(SPT_OP_COL2IM, &sh, bdx.va, bdcol.va);
        struct spt_cmd_relu_mask rm = {
            CMD_HDR2(SPT_OP_RELU_MASK, struct spt_cmd_relu_mask),
            .dx_va = bdx.va, .y_va = bx.va, .n = d.img_elems };
        struct spt_cmd_check_finite cf = {
            CMD_HDR2(SPT_OP_CHECK_FINITE, struct spt_cmd_check_finite),
            .va = bdx.va, .n = d.img_elems };

        bwd.v1.pass = SPT_PASS_BWD;
        bwd.v1.act = SPT_ACT_NONE;
        bwd.v1.a_va = bcy.va;
        bwd.v1.a_len = cap_y;
        bwd.v1.b_va = bcwn.va;
        bwd.v1.b_len = cap_wn;
        bwd.v1.ct_va = 0;
        bwd.v1.ct_cap = 0;
        bwd.v1.y_va = bdcol.va;
        bwd.cnt_va = bcnt.va + sizeof(hc[0]);
        cmds_add(&cmds, &ic, sizeof(ic));
        cmds_add(&cmds, &ecol, sizeof(ecol));
        cmds_add(&cmds, &ew, sizeof(ew));      /* a version-1 command in a v2 stream */
        cmds_add(&cmds, &fwd, sizeof(fwd));
        cmds_add(&cmds, &cs, sizeof(cs));
        cmds_add(&cmds, &tw, sizeof(tw));
        cmds_add(&cmds, &bwd, sizeof(bwd));
        cmds_add(&cmds, &ci, sizeof(ci));
        cmds_add(&cmds, &rm, sizeof(rm));
        cmds_add(&cmds, &cf, sizeof(cf));
    }
    spt_run_cmds(s, 0, &cmds, &c);
    assert_ok(&c);
    g_assert_cmpuint(c.cmds_done, ==, 10);
    got = guest_read(s, &bgb, N * 4);
    g_assert(memcmp(got, gb, N * 4) == 0);
    g_free(got);
    got = guest_read(s, &bdcol, d.col_elems * 4);
    g_assert(memcmp(got, dcol, d.col_elems * 4) == 0);
    g_free(got);
    got = guest_read(s, &bdx, d.img_elems * 4);
    g_assert(memcmp(got, dx, d.img_elems * 4) == 0);
    g_free(got);
    qtest_memread(s->qts, bcnt.pa, hc, sizeof(hc));
    g_assert_cmpuint(hc[0].exec_macs, ==, c_fwd.exec_macs);
    g_assert_cmpuint(hc[1].exec_macs, ==, c_bwd.exec_macs);
    g_assert_cmpuint(c.dense_macs, ==, c_fwd.dense_macs + c_bwd.dense_macs);
    g_assert_cmpuint(c.exec_macs, ==, c_fwd.exec_macs + c_bwd.exec_macs);

    /* a NaN in the input: the patches' ENCODE refuses it, the job stops there */
    {
        float nan = NAN;

        qtest_memwrite(s->qts, bx.pa, &nan, 4);
        spt_run_cmds(s, 0, &cmds, &c);
        g_assert_cmpuint(c.status, ==, SPT_JOB_ERROR);
        g_assert_cmpuint(c.error_code, ==, SPT_ERR_NUMERIC);
        g_assert_cmpuint(c.cmds_done, ==, 1);
    }
    g_free(x);
    g_free(wt);
    g_free(col);
    g_free(dcol);
    g_free(dx);
    g_free(gb);
    g_free(h_col);
    g_free(h_w);
    g_free(h_y);
    g_free(h_wn);
    g_rand_free(r);
    spt_stop(s);
}

/* Malformed version-2 commands, and version-1 streams keep their rules. */
static void test_v2_malformed(void)
{
    Spt *s = spt_start(NULL);
    GRand *r = g_rand_new_with_seed(25);
    const struct spt_conv_shape sh = { 1, 4, 4, 2, 3, 1, 1 };
    float *x = rand_matrix(r, 8, 64, 0.0);
    size_t xl;
    void *cx = host_encode(x, 8, 64, &xl);
    Buf bx = spt_buf_data(s, 0, x, 8 * 64 * 4), bcx = spt_buf_data(s, 0, cx, xl);
    Buf out = spt_buf_rw(s, 0, 65536), ro = spt_buf(s, 0, 4096, SPT_PTE_READ);
    struct spt_cmd_im2col ic = conv_cmd(SPT_OP_IM2COL, &sh, bx.va, out.va), ic2;
    struct spt_cmd_colsum cs = { CMD_HDR2(SPT_OP_COLSUM, struct spt_cmd_colsum),
        .src_va = bcx.va, .src_len = xl, .dst_va = out.va, .dst_elems = 64 }, cs2;
    struct spt_cmd_check_finite cf = {
        CMD_HDR2(SPT_OP_CHECK_FINITE, struct spt_cmd_check_finite),
        .va = bx.va, .n = 8 * 64 }, cf2;
    struct spt_cmd_relu_mask rm = {
        CMD_HDR2(SPT_OP_RELU_MASK, struct spt_cmd_relu_mask),
        .dx_va = out.va, .y_va = bx.va, .n = 8 * 64 }, rm2;
    struct spt_cmd_gemm_v2 g = { .v1 = { CMD_HDR2(SPT_OP_GEMM, struct spt_cmd_gemm_v2),
        .a_va = bcx.va, .a_len = xl, .b_va = bcx.va, .b_len = xl, .y_va = out.va },
        .cnt_va = out.va + 0x8000 }, g2;
    struct spt_cmd_gemm g1 = g.v1;
    struct spt_cmd_decode dc = { CMD_HDR(SPT_OP_DECODE, struct spt_cmd_decode),
        .src_va = bcx.va, .src_len = xl, .dst_va = out.va, .dst_elems = 8 * 64 };
    struct spt_cmd_encode_v2 en = { .v1 = {
        CMD_HDR2(SPT_OP_ENCODE, struct spt_cmd_encode_v2),
        .src_va = bx.va, .rows = 8, .cols = 64, .dst_va = out.va, .dst_cap = 65536 } }, en2;
    struct spt_cmd_nop nop = { CMD_HDR(SPT_OP_NOP, struct spt_cmd_nop) };
    struct spt_job_cpl c;

    g1.hdr.version = 1;
    g1.hdr.size = sizeof(g1);
    /* the good ones pass */
    {
        Cmds cmds = { .len = 0 };

        cmds_add(&cmds, &ic, sizeof(ic));
        cmds_add(&cmds, &cs, sizeof(cs));
        cmds_add(&cmds, &cf, sizeof(cf));
        cmds_add(&cmds, &rm, sizeof(rm));
        cmds_add(&cmds, &g, sizeof(g));
        cmds_add(&cmds, &g1, sizeof(g1));
        cmds_add(&cmds, &dc, sizeof(dc));
        cmds_add(&cmds, &en, sizeof(en));
        nop.hdr.version = 2;
        cmds_add(&cmds, &nop, sizeof(nop));
        nop.hdr.version = 1;
        spt_run_cmds(s, 0, &cmds, &c);
        assert_ok(&c);
        g_assert_cmpuint(c.cmds_done, ==, 9);
    }

    /* versions and sizes */
    ic2 = ic; ic2.hdr.version = 1;
    run_bad_cmd(s, &ic2, sizeof(ic2), SPT_ERR_BAD_OPCODE);
    cs2 = cs; cs2.hdr.version = 1;
    run_bad_cmd(s, &cs2, sizeof(cs2), SPT_ERR_BAD_OPCODE);
    cf2 = cf; cf2.hdr.version = 1;
    run_bad_cmd(s, &cf2, sizeof(cf2), SPT_ERR_BAD_OPCODE);
    rm2 = rm; rm2.hdr.version = 1;
    run_bad_cmd(s, &rm2, sizeof(rm2), SPT_ERR_BAD_OPCODE);
    rm2 = rm; rm2.hdr.size = 24;
    run_bad_cmd(s, &rm2, 24, SPT_ERR_BAD_CMD);
    ic2 = ic; ic2.hdr.version = 3;
    run_bad_cmd(s, &ic2, sizeof(ic2), SPT_ERR_BAD_OPCODE);
    ic2 = ic; ic2.hdr.version = 0;
    run_bad_cmd(s, &ic2, sizeof(ic2), SPT_ERR_BAD_OPCODE);
    ic2 = ic; ic2.hdr.opcode = 0x45;
    run_bad_cmd(s, &ic2, sizeof(ic2), SPT_ERR_BAD_OPCODE);
    ic2 = ic; ic2.hdr.size = 48;
    run_bad_cmd(s, &ic2, 48, SPT_ERR_BAD_CMD);
    g2 = g; g2.v1.hdr.size = sizeof(struct spt_cmd_gemm);         /* v2 with v1's size */
    run_bad_cmd(s, &g2, sizeof(struct spt_cmd_gemm), SPT_ERR_BAD_CMD);
    g2 = g; g2.v1.hdr.version = 1;                                /* v1 with v2's size */
    run_bad_cmd(s, &g2, sizeof(g2), SPT_ERR_BAD_CMD);
    run_bad_cmd(s, &g, sizeof(g) - 8, SPT_ERR_BAD_CMD);           /* cut short */
    en2 = en; en2.v1.hdr.size = sizeof(struct spt_cmd_encode);    /* ENCODE v2 with v1's size */
    run_bad_cmd(s, &en2, sizeof(struct spt_cmd_encode), SPT_ERR_BAD_CMD);
    en2 = en; en2.v1.hdr.version = 1;                             /* v1 with v2's size */
    run_bad_cmd(s, &en2, sizeof(en2), SPT_ERR_BAD_CMD);

    /* flags */
    dc.hdr.flags = SPT_CMD_F_LEN_HDR;                             /* version 1 */
    run_bad_cmd(s, &dc, sizeof(dc), SPT_ERR_BAD_CMD);
    g2 = g; g2.v1.hdr.flags = 2;
    run_bad_cmd(s, &g2, sizeof(g2), SPT_ERR_BAD_CMD);
    g2 = g; g2.v1.hdr.flags = SPT_CMD_F_LEN_HDR | 0x80000000u;
    run_bad_cmd(s, &g2, sizeof(g2), SPT_ERR_BAD_CMD);
    en2 = en; en2.v1.hdr.flags = SPT_CMD_F_LEN_HDR;               /* no compressed input */
    run_bad_cmd(s, &en2, sizeof(en2), SPT_ERR_BAD_CMD);
    ic2 = ic; ic2.hdr.flags = SPT_CMD_F_LEN_HDR;
    run_bad_cmd(s, &ic2, sizeof(ic2), SPT_ERR_BAD_CMD);
    cf2 = cf; cf2.hdr.flags = SPT_CMD_F_LEN_HDR;
    run_bad_cmd(s, &cf2, sizeof(cf2), SPT_ERR_BAD_CMD);
    rm2 = rm; rm2.hdr.flags = SPT_CMD_F_LEN_HDR;
    run_bad_cmd(s, &rm2, sizeof(rm2), SPT_ERR_BAD_CMD);
    nop.hdr.version = 2;
    nop.hdr.flags = SPT_CMD_F_LEN_HDR;
    run_bad_cmd(s, &nop, sizeof(nop), SPT_ERR_BAD_CMD);

    /* GEMM v2 */
    g2 = g; g2.cnt_va = out.va + 4;
    run_bad_cmd(s, &g2, sizeof(g2), SPT_ERR_BAD_CMD);
    g2 = g; g2.cnt_va = ro.va;
    run_bad_cmd(s, &g2, sizeof(g2), SPT_ERR_MMU_FAULT);
    g2 = g; g2.cnt_va = out.va + 65536 - 32;                      /* runs into the guard page */
    run_bad_cmd(s, &g2, sizeof(g2), SPT_ERR_MMU_FAULT);
    g2 = g; g2.v1.pad = 1;
    run_bad_cmd(s, &g2, sizeof(g2), SPT_ERR_BAD_CMD);

    /* the transposed outputs of GEMM v2 and ENCODE v2 */
    g2 = g; g2.t_va = out.va + 0x4000; g2.t_cap = 4096;           /* no ct_va */
    run_bad_cmd(s, &g2, sizeof(g2), SPT_ERR_BAD_CMD);
    g2 = g; g2.v1.ct_va = out.va + 0x2000; g2.v1.ct_cap = 8192;
    g2.v1.y_va = 0; g2.t_va = out.va + 0x4000;                    /* t_cap 0 */
    run_bad_cmd(s, &g2, sizeof(g2), SPT_ERR_BAD_CMD);
    g2.t_va = 0; g2.t_cap = 4096;                                 /* t_cap, no t_va */
    run_bad_cmd(s, &g2, sizeof(g2), SPT_ERR_BAD_CMD);
    g2.t_cap = 0; g2.t_len_va = out.va;                           /* t_len_va, no t_va */
    run_bad_cmd(s, &g2, sizeof(g2), SPT_ERR_BAD_CMD);
    g2.t_len_va = 0; g2.t_va = out.va + 0x4000; g2.t_cap = 1ull << 40;
    run_bad_cmd(s, &g2, sizeof(g2), SPT_ERR_TOO_BIG);
    g2.t_cap = 64;                                                /* too small */
    run_bad_cmd(s, &g2, sizeof(g2), SPT_ERR_NO_SPACE);
    g2.t_cap = 4096; g2.t_va = ro.va;                             /* read-only */
    run_bad_cmd(s, &g2, sizeof(g2), SPT_ERR_MMU_FAULT);
    en2 = en; en2.v1.dst_cap = 8192; en2.t_cap = 4096;            /* t_cap, no t_va */
    run_bad_cmd(s, &en2, sizeof(en2), SPT_ERR_BAD_CMD);
    en2.t_cap = 0; en2.t_len_va = out.va;                         /* t_len_va, no t_va */
    run_bad_cmd(s, &en2, sizeof(en2), SPT_ERR_BAD_CMD);
    en2.t_len_va = 0; en2.t_va = out.va + 0x4000;                 /* t_cap 0 */
    run_bad_cmd(s, &en2, sizeof(en2), SPT_ERR_BAD_CMD);
    en2.t_cap = 1ull << 40;
    run_bad_cmd(s, &en2, sizeof(en2), SPT_ERR_TOO_BIG);
    en2.t_cap = 64;
    run_bad_cmd(s, &en2, sizeof(en2), SPT_ERR_NO_SPACE);
    en2.t_cap = 4096; en2.t_len_va = ro.va;
    run_bad_cmd(s, &en2, sizeof(en2), SPT_ERR_MMU_FAULT);

    /* IM2COL / COL2IM */
    ic2 = ic; ic2.pad2 = 1;
    run_bad_cmd(s, &ic2, sizeof(ic2), SPT_ERR_BAD_CMD);
    ic2 = ic; ic2.k = 0;
    run_bad_cmd(s, &ic2, sizeof(ic2), SPT_ERR_BAD_CMD);
    ic2 = ic; ic2.k = 17; ic2.pad = 0; ic2.h = ic2.w = 20;
    run_bad_cmd(s, &ic2, sizeof(ic2), SPT_ERR_BAD_CMD);
    ic2 = ic; ic2.stride = 0;
    run_bad_cmd(s, &ic2, sizeof(ic2), SPT_ERR_BAD_CMD);
    ic2 = ic; ic2.stride = 17;
    run_bad_cmd(s, &ic2, sizeof(ic2), SPT_ERR_BAD_CMD);
    ic2 = ic; ic2.pad = 3;
    run_bad_cmd(s, &ic2, sizeof(ic2), SPT_ERR_BAD_CMD);
    ic2 = ic; ic2.n = 0;
    run_bad_cmd(s, &ic2, sizeof(ic2), SPT_ERR_BAD_CMD);
    ic2 = ic; ic2.c = 0;
    run_bad_cmd(s, &ic2, sizeof(ic2), SPT_ERR_BAD_CMD);
    ic2 = ic; ic2.h = 1; ic2.pad = 0;                             /* oh would be 0 */
    run_bad_cmd(s, &ic2, sizeof(ic2), SPT_ERR_BAD_CMD);
    ic2 = ic; ic2.n = ic2.h = ic2.w = ic2.c = 0xffffffffu;        /* 64-bit overflow */
    run_bad_cmd(s, &ic2, sizeof(ic2), SPT_ERR_TOO_BIG);
    ic2 = ic; ic2.n = 1024; ic2.h = ic2.w = 64; ic2.c = 64;       /* 1 GiB image */
    run_bad_cmd(s, &ic2, sizeof(ic2), SPT_ERR_TOO_BIG);
    ic2 = ic; ic2.h = ic2.w = 256; ic2.c = 64;                    /* 16 MiB image, 151 MiB... */
    ic2.k = 16; ic2.pad = 15; ic2.n = 1;                          /* ...patches: 4.6 GiB */
    run_bad_cmd(s, &ic2, sizeof(ic2), SPT_ERR_TOO_BIG);
    ic2 = ic; ic2.img_va = 0;
    run_bad_cmd(s, &ic2, sizeof(ic2), SPT_ERR_BAD_CMD);
    ic2 = ic; ic2.col_va = 0;
    run_bad_cmd(s, &ic2, sizeof(ic2), SPT_ERR_BAD_CMD);
    ic2 = ic; ic2.img_va += 2;
    run_bad_cmd(s, &ic2, sizeof(ic2), SPT_ERR_BAD_CMD);
    ic2 = ic; ic2.col_va += 1;
    run_bad_cmd(s, &ic2, sizeof(ic2), SPT_ERR_BAD_CMD);
    ic2 = ic; ic2.img_va = 0x7000000000ull;
    run_bad_cmd(s, &ic2, sizeof(ic2), SPT_ERR_MMU_FAULT);
    ic2 = ic; ic2.col_va = ro.va;
    run_bad_cmd(s, &ic2, sizeof(ic2), SPT_ERR_MMU_FAULT);
    ic2 = ic; ic2.hdr.opcode = SPT_OP_COL2IM; ic2.img_va = ro.va;
    run_bad_cmd(s, &ic2, sizeof(ic2), SPT_ERR_MMU_FAULT);

    /* COLSUM */
    cs2 = cs; cs2.dst_elems = 63;
    run_bad_cmd(s, &cs2, sizeof(cs2), SPT_ERR_SHAPE);
    cs2 = cs; cs2.dst_elems = 8;                                  /* rows, not cols */
    run_bad_cmd(s, &cs2, sizeof(cs2), SPT_ERR_SHAPE);
    cs2 = cs; cs2.dst_va = 0;
    run_bad_cmd(s, &cs2, sizeof(cs2), SPT_ERR_BAD_CMD);
    cs2 = cs; cs2.dst_va = out.va + 2;
    run_bad_cmd(s, &cs2, sizeof(cs2), SPT_ERR_BAD_CMD);
    cs2 = cs; cs2.src_len = xl - 1;
    run_bad_cmd(s, &cs2, sizeof(cs2), SPT_ERR_BAD_TENSOR);
    cs2 = cs; cs2.src_len = xl + 1;
    run_bad_cmd(s, &cs2, sizeof(cs2), SPT_ERR_BAD_TENSOR);
    cs2 = cs; cs2.src_va = bx.va; cs2.src_len = 512;              /* FP32, not a tensor */
    run_bad_cmd(s, &cs2, sizeof(cs2), SPT_ERR_BAD_TENSOR);
    cs2 = cs; cs2.src_len = 1ull << 62;
    run_bad_cmd(s, &cs2, sizeof(cs2), SPT_ERR_TOO_BIG);
    cs2 = cs; cs2.src_len = 0;
    run_bad_cmd(s, &cs2, sizeof(cs2), SPT_ERR_TOO_BIG);
    cs2 = cs; cs2.dst_va = ro.va;
    run_bad_cmd(s, &cs2, sizeof(cs2), SPT_ERR_MMU_FAULT);

    /* CHECK_FINITE */
    cf2 = cf; cf2.n = 0;
    run_bad_cmd(s, &cf2, sizeof(cf2), SPT_ERR_BAD_CMD);
    cf2 = cf; cf2.va = 0;
    run_bad_cmd(s, &cf2, sizeof(cf2), SPT_ERR_BAD_CMD);
    cf2 = cf; cf2.va += 1;
    run_bad_cmd(s, &cf2, sizeof(cf2), SPT_ERR_BAD_CMD);
    cf2 = cf; cf2.n = 1ull << 62;
    run_bad_cmd(s, &cf2, sizeof(cf2), SPT_ERR_TOO_BIG);
    cf2 = cf; cf2.n = 8 * 64 + 1024;                              /* into the guard page */
    run_bad_cmd(s, &cf2, sizeof(cf2), SPT_ERR_MMU_FAULT);

    /* RELU_MASK */
    rm2 = rm; rm2.n = 0;
    run_bad_cmd(s, &rm2, sizeof(rm2), SPT_ERR_BAD_CMD);
    rm2 = rm; rm2.dx_va = 0;
    run_bad_cmd(s, &rm2, sizeof(rm2), SPT_ERR_BAD_CMD);
    rm2 = rm; rm2.y_va = 0;
    run_bad_cmd(s, &rm2, sizeof(rm2), SPT_ERR_BAD_CMD);
    rm2 = rm; rm2.dx_va += 2;
    run_bad_cmd(s, &rm2, sizeof(rm2), SPT_ERR_BAD_CMD);
    rm2 = rm; rm2.y_va += 1;
    run_bad_cmd(s, &rm2, sizeof(rm2), SPT_ERR_BAD_CMD);
    rm2 = rm; rm2.n = 1ull << 62;
    run_bad_cmd(s, &rm2, sizeof(rm2), SPT_ERR_TOO_BIG);
    rm2 = rm; rm2.n = SPT_XFER_MAX / 4 + 1;
    run_bad_cmd(s, &rm2, sizeof(rm2), SPT_ERR_TOO_BIG);
    rm2 = rm; rm2.n = 8 * 64 + 1024;                              /* y into the guard page */
    run_bad_cmd(s, &rm2, sizeof(rm2), SPT_ERR_MMU_FAULT);
    rm2 = rm; rm2.y_va = 0x7000000000ull;                         /* unmapped */
    run_bad_cmd(s, &rm2, sizeof(rm2), SPT_ERR_MMU_FAULT);
    rm2 = rm; rm2.dx_va = ro.va;                                  /* read-only dx */
    run_bad_cmd(s, &rm2, sizeof(rm2), SPT_ERR_MMU_FAULT);

    g_assert_cmphex(rd(s, SPT_REG_ERR_STATUS) & SPT_ERRS_CMD, ==, SPT_ERRS_CMD);
    g_free(x);
    g_free(cx);
    g_rand_free(r);
    spt_stop(s);
}

static void test_ring_errors(void)
{
    Spt *s = spt_start(NULL);
    uint64_t q3 = SPT_REG_QUEUE(3);
    struct spt_cmd_nop nop = { CMD_HDR(SPT_OP_NOP, struct spt_cmd_nop) };
    Buf cb = spt_buf_data(s, 0, &nop, sizeof(nop));
    struct spt_job_desc d = spt_desc(&cb, sizeof(nop), 0);
    struct spt_job_cpl c;

    /* overflow: more than RING_ENTRIES in flight is refused */
    qpci_io_writel(s->dev, s->db, 0, RING_ENTRIES + 1);
    g_assert_cmpuint(rd(s, SPT_REG_QUEUE(0) + SPT_QREG_TAIL), ==, 0);
    g_assert_cmphex(rd(s, SPT_REG_ERR_STATUS) & SPT_ERRS_RING, ==, SPT_ERRS_RING);
    g_assert(qpci_msix_pending(s->dev, SPT_MSIX_VECTOR_ERROR(s->nq)));
    wr(s, SPT_REG_ERR_STATUS, SPT_ERRS_RING);
    /* doorbell beyond the queues, unaligned, and of a disabled queue */
    qpci_io_writel(s->dev, s->db, 4, 1);
    wr(s, q3 + SPT_QREG_CONTROL, 0);
    qpci_io_writel(s->dev, s->db, 3 * SPT_DOORBELL_STRIDE, 1);
    g_assert_cmphex(rd(s, SPT_REG_ERR_STATUS) & SPT_ERRS_RING, ==, SPT_ERRS_RING);
    wr(s, SPT_REG_ERR_STATUS, SPT_ERRS_RING);
    /* bad configurations are refused at enable */
    wr(s, q3 + SPT_QREG_RING_SIZE, 3);
    wr(s, q3 + SPT_QREG_CONTROL, SPT_QCTRL_ENABLE);
    g_assert_cmphex(rd(s, q3 + SPT_QREG_STATUS) & SPT_QSTAT_ENABLED, ==, 0);
    wr(s, q3 + SPT_QREG_RING_SIZE, 1u << 20);
    wr(s, q3 + SPT_QREG_CONTROL, SPT_QCTRL_ENABLE);
    g_assert_cmphex(rd(s, q3 + SPT_QREG_STATUS) & SPT_QSTAT_ENABLED, ==, 0);
    wr(s, q3 + SPT_QREG_RING_SIZE, RING_ENTRIES);
    qpci_io_writeq(s->dev, s->regs, q3 + SPT_QREG_RING_BASE_LO, s->ring[3] + 4);
    wr(s, q3 + SPT_QREG_CONTROL, SPT_QCTRL_ENABLE);
    g_assert_cmphex(rd(s, q3 + SPT_QREG_STATUS) & SPT_QSTAT_ENABLED, ==, 0);
    /* ring in non-existent memory: the queue stops, others go on */
    qpci_io_writeq(s->dev, s->regs, q3 + SPT_QREG_RING_BASE_LO, 0xfff00000000ull);
    wr(s, q3 + SPT_QREG_CONTROL, SPT_QCTRL_ENABLE);
    qpci_io_writel(s->dev, s->db, 3 * SPT_DOORBELL_STRIDE, 1);
    spt_run(s, 0, &d, &c);
    assert_ok(&c);
    g_assert_cmphex(rd(s, q3 + SPT_QREG_STATUS) & SPT_QSTAT_STOPPED, ==,
                    SPT_QSTAT_STOPPED);
    /* re-enable with a sane configuration */
    wr(s, q3 + SPT_QREG_CONTROL, 0);
    spt_queue_setup(s, 3, RING_ENTRIES);
    spt_run(s, 3, &d, &c);
    assert_ok(&c);
    /* completion ring in non-existent memory: queue stopped, CPL_WRITE */
    wr(s, q3 + SPT_QREG_CONTROL, 0);
    qpci_io_writeq(s->dev, s->regs, q3 + SPT_QREG_CPL_BASE_LO, 0xfff00000000ull);
    wr(s, q3 + SPT_QREG_CONTROL, SPT_QCTRL_ENABLE);
    s->tail[3] = 0;
    spt_push(s, 3, &d);
    spt_doorbell(s, 3);
    spt_run(s, 0, &d, &c);   /* serialises with the worker */
    g_assert_cmphex(rd(s, SPT_REG_ERR_STATUS) & SPT_ERRS_CPL_WRITE, ==,
                    SPT_ERRS_CPL_WRITE);
    g_assert_cmphex(rd(s, q3 + SPT_QREG_STATUS) & SPT_QSTAT_STOPPED, ==,
                    SPT_QSTAT_STOPPED);
    spt_stop(s);
}

/* Random register, doorbell and memory garbage: QEMU must survive it. */
static void test_garbage(void)
{
    Spt *s = spt_start("debug=on");
    GRand *r = g_rand_new_with_seed(10);
    uint8_t junk[4096];
    struct spt_cmd_nop nop = { CMD_HDR(SPT_OP_NOP, struct spt_cmd_nop) };
    struct spt_job_desc d;
    struct spt_job_cpl c;
    Buf cb;

    for (int round = 0; round < 4; round++) {
        /* rings, page tables: noise */
        for (unsigned q = 0; q < s->nq; q++) {
            for (unsigned i = 0; i < sizeof(junk); i++) {
                junk[i] = g_rand_int(r);
            }
            qtest_memwrite(s->qts, s->ring[q], junk, RING_ENTRIES * 64);
        }
        for (unsigned i = 0; i < sizeof(junk); i++) {
            junk[i] = g_rand_int(r);
        }
        qtest_memwrite(s->qts, s->root[round], junk, sizeof(junk));
        for (int i = 0; i < 500; i++) {
            uint32_t off = g_rand_int_range(r, 0, SPT_REGS_SIZE / 4) * 4;
            uint32_t val = g_rand_int(r);

            if (g_rand_boolean(r)) {
                off = SPT_REG_QUEUE(g_rand_int_range(r, 0, s->nq)) +
                      g_rand_int_range(r, 0, 9) * 4;
            }
            if (off == SPT_REG_CONTROL) {
                val &= ~SPT_CONTROL_RESET;
            }
            wr(s, off, val);
            rd(s, g_rand_int_range(r, 0, SPT_REGS_SIZE / 4) * 4);
            if (i % 10 == 0) {
                qpci_io_writel(s->dev, s->db,
                               g_rand_int_range(r, 0, s->nq) * SPT_DOORBELL_STRIDE,
                               g_rand_int_range(r, 0, 2 * RING_ENTRIES));
            }
        }
        g_usleep(100 * 1000);
        /* a reset always brings it back */
        s->next_pa = (s->next_pa + 0xfffff) & ~0xfffffull;
        spt_init(s);
        cb = spt_buf_data(s, 0, &nop, sizeof(nop));
        d = spt_desc(&cb, sizeof(nop), 0);
        spt_run(s, 0, &d, &c);
        assert_ok(&c);
    }
    g_rand_free(r);
    spt_stop(s);
}

/* ---- tests: reset and fault injection ----------------------------------- */

/* A job that runs long enough to be caught mid-flight. */
static Buf big_gemm_job(Spt *s, uint32_t *len, Buf *y)
{
    GRand *r = g_rand_new_with_seed(8);
    const uint32_t m = 512, n = 512, k = 512;
    float *a = rand_matrix(r, m, k, 0.0);
    size_t al;
    void *ca = host_encode(a, m, k, &al);
    Buf ba = spt_buf_data(s, 0, ca, al);
    struct spt_cmd_gemm g = { CMD_HDR(SPT_OP_GEMM, struct spt_cmd_gemm),
        .a_va = ba.va, .a_len = al, .b_va = ba.va, .b_len = al };
    uint8_t cmds[sizeof(g) * 8];

    *y = spt_buf_rw(s, 0, m * n * 4);
    g.y_va = y->va;
    for (int i = 0; i < 8; i++) {
        memcpy(cmds + i * sizeof(g), &g, sizeof(g));
    }
    *len = sizeof(cmds);
    g_free(a);
    g_free(ca);
    g_rand_free(r);
    return spt_buf_data(s, 0, cmds, sizeof(cmds));
}

static void test_reset_mid_job(void)
{
    Spt *s = spt_start(NULL);
    uint32_t len;
    Buf y, cb = big_gemm_job(s, &len, &y);
    struct spt_job_desc d = spt_desc(&cb, len, 0);
    struct spt_job_cpl c, zero = { 0 };
    struct spt_cmd_nop nop = { CMD_HDR(SPT_OP_NOP, struct spt_cmd_nop) };
    Buf nb;
    gint64 end;

    d.flags = SPT_JOB_FENCE;
    d.fence_va = y.va;
    d.fence_value = 0xfeed;
    spt_push(s, 0, &d);
    spt_doorbell(s, 0);
    end = g_get_monotonic_time() + TIMEOUT_US;
    while (!(rd(s, SPT_REG_STATUS) & SPT_STATUS_BUSY)) {
        g_assert(g_get_monotonic_time() < end);
        g_usleep(20);
    }
    wr(s, SPT_REG_CONTROL, SPT_CONTROL_RESET);
    g_assert_cmpuint(rd(s, SPT_REG_QUEUE(0) + SPT_QREG_HEAD), ==, 0);
    /* give the cancelled job time to reach its end: nothing may appear */
    g_usleep(300 * 1000);
    spt_read_cpl(s, 0, 0, &c);
    g_assert(memcmp(&c, &zero, sizeof(c)) == 0);
    g_assert_cmpuint(qtest_readq(s->qts, y.pa), !=, 0xfeed);
    g_assert_cmpuint(qpci_io_readq(s->dev, s->regs, SPT_REG_CNT_JOBS_DONE), ==, 0);

    /* the device comes back */
    s->next_pa = (s->next_pa + 0xfffff) & ~0xfffffull;
    spt_init(s);
    nb = spt_buf_data(s, 0, &nop, sizeof(nop));
    d = spt_desc(&nb, sizeof(nop), 0);
    spt_run(s, 0, &d, &c);
    assert_ok(&c);
    spt_stop(s);
}

/* After FLR or system reset the BARs and MSI-X are gone: map them again. */
static void spt_remap(Spt *s)
{
    qpci_msix_disable(s->dev);
    s->regs = qpci_iomap(s->dev, SPT_BAR_REGS, NULL);
    s->db = qpci_iomap(s->dev, SPT_BAR_DOORBELL, NULL);
    qpci_device_enable(s->dev);
    qpci_msix_enable(s->dev);
    g_assert_cmphex(rd(s, SPT_REG_ID), ==, SPT_ID_MAGIC);
}

/* Start the big job on queue @q and wait until the device runs it. */
static void start_big_job(Spt *s, unsigned q, Buf *y)
{
    uint32_t len;
    Buf cb = big_gemm_job(s, &len, y);
    struct spt_job_desc d = spt_desc(&cb, len, 0);
    gint64 end = g_get_monotonic_time() + TIMEOUT_US;

    d.flags = SPT_JOB_FENCE;
    d.fence_va = y->va;
    d.fence_value = 0xfeed;
    spt_push(s, q, &d);
    spt_doorbell(s, q);
    while (!(rd(s, SPT_REG_STATUS) & SPT_STATUS_BUSY)) {
        g_assert(g_get_monotonic_time() < end);
        g_usleep(20);
    }
}

static void assert_no_completion(Spt *s, unsigned q, const Buf *y)
{
    struct spt_job_cpl c, zero = { 0 };

    g_usleep(300 * 1000);
    spt_read_cpl(s, q, 0, &c);
    g_assert(memcmp(&c, &zero, sizeof(c)) == 0);
    g_assert_cmpuint(qtest_readq(s->qts, y->pa), !=, 0xfeed);
}

static void test_queue_disable_mid_job(void)
{
    Spt *s = spt_start(NULL);
    Buf y, out = spt_buf_rw(s, 0, 8);
    struct spt_cmd_fence f = { CMD_HDR(SPT_OP_FENCE, struct spt_cmd_fence),
                               .va = out.va, .value = 4 };
    Buf cb = spt_buf_data(s, 0, &f, sizeof(f));
    struct spt_job_desc d = spt_desc(&cb, sizeof(f), 0);
    struct spt_job_cpl c;

    start_big_job(s, 1, &y);
    wr(s, SPT_REG_QUEUE(1) + SPT_QREG_CONTROL, 0);
    g_assert_cmpuint(rd(s, SPT_REG_QUEUE(1) + SPT_QREG_HEAD), ==, 0);
    /* the other queues go on */
    spt_run(s, 0, &d, &c);
    assert_ok(&c);
    g_assert_cmpuint(qtest_readq(s->qts, out.pa), ==, 4);
    assert_no_completion(s, 1, &y);
    spt_stop(s);
}

static void test_system_reset_mid_job(void)
{
    Spt *s = spt_start(NULL);
    Buf y;

    start_big_job(s, 0, &y);
    qtest_system_reset(s->qts);
    spt_remap(s);
    g_assert_cmphex(rd(s, SPT_REG_STATUS) & SPT_STATUS_READY, ==, 0);
    g_assert_cmpuint(rd(s, SPT_REG_QUEUE(0) + SPT_QREG_HEAD), ==, 0);
    assert_no_completion(s, 0, &y);
    spt_init(s);
    spt_stop(s);
}

/* Hot-unplug with a job in flight: the worker stops, QEMU goes on. */
static void test_unplug_mid_job(void)
{
    Spt *s = g_new0(Spt, 1);
    const char *fw = getenv("SPT_QEMU_FW");
    Buf y;

    s->qts = qtest_initf("%s -m 512M -nic none",
                         fw ? fw : "-L /usr/share/qemu -L /usr/share/seabios");
    qtest_qmp_device_add(s->qts, "spt", "spt0", "{'addr': '0x06'}");
    spt_attach(s, QPCI_DEVFN(6, 0));
    start_big_job(s, 0, &y);
    qpci_unplug_acpi_device_test(s->qts, "spt0", 0x06);
    g_assert_cmpuint(qtest_readq(s->qts, y.pa), !=, 0xfeed);
    g_free(s->dev);
    qpci_free_pc(s->bus);
    qtest_quit(s->qts);
    g_free(s);
}

static void test_flr_mid_job(void)
{
    Spt *s = spt_start(NULL);
    uint8_t cap = qpci_find_capability(s->dev, PCI_CAP_ID_EXP, 0);
    uint32_t len;
    Buf y, cb;
    struct spt_job_desc d;
    struct spt_job_cpl c, zero = { 0 };

    if (!cap) {
        g_test_skip("no PCIe capability on this bus");
        spt_stop(s);
        return;
    }
    cb = big_gemm_job(s, &len, &y);
    d = spt_desc(&cb, len, 0);
    spt_push(s, 0, &d);
    spt_doorbell(s, 0);
    g_usleep(1000);
    qpci_config_writew(s->dev, cap + PCI_EXP_DEVCTL,
                       qpci_config_readw(s->dev, cap + PCI_EXP_DEVCTL) |
                       PCI_EXP_DEVCTL_BCR_FLR);
    /* FLR cleared the BARs and MSI-X: map everything again */
    qpci_msix_disable(s->dev);
    s->regs = qpci_iomap(s->dev, SPT_BAR_REGS, NULL);
    s->db = qpci_iomap(s->dev, SPT_BAR_DOORBELL, NULL);
    qpci_device_enable(s->dev);
    qpci_msix_enable(s->dev);
    g_assert_cmphex(rd(s, SPT_REG_ID), ==, SPT_ID_MAGIC);
    g_assert_cmphex(rd(s, SPT_REG_STATUS) & SPT_STATUS_READY, ==, 0);
    g_assert_cmphex(qpci_io_readq(s->dev, s->regs, SPT_REG_MMU_CTX_TABLE_LO), ==, 0);
    g_usleep(300 * 1000);
    spt_read_cpl(s, 0, 0, &c);
    g_assert(memcmp(&c, &zero, sizeof(c)) == 0);
    spt_init(s);
    spt_stop(s);
}

static void test_fi_hang(void)
{
    Spt *s = spt_start("debug=on");
    struct spt_cmd_nop nop = { CMD_HDR(SPT_OP_NOP, struct spt_cmd_nop) };
    Buf cb = spt_buf_data(s, 0, &nop, sizeof(nop));
    struct spt_job_desc d = spt_desc(&cb, sizeof(nop), 0);
    struct spt_job_cpl c;

    wr(s, SPT_REG_DBG_HANG_AFTER, 2);
    g_assert_cmpuint(rd(s, SPT_REG_DBG_HANG_AFTER), ==, 2);
    spt_run(s, 0, &d, &c);
    assert_ok(&c);
    spt_push(s, 0, &d);
    spt_push(s, 0, &d);
    spt_doorbell(s, 0);
    g_usleep(200 * 1000);
    g_assert_cmpuint(rd(s, SPT_REG_QUEUE(0) + SPT_QREG_HEAD), ==, 1);
    g_assert_cmphex(rd(s, SPT_REG_STATUS) & SPT_STATUS_HUNG, ==, SPT_STATUS_HUNG);
    g_assert_cmpuint(rd(s, SPT_REG_DBG_JOBS_STARTED), ==, 2);
    /* other queues are stuck too: the whole device hangs */
    spt_push(s, 1, &d);
    spt_doorbell(s, 1);
    g_usleep(100 * 1000);
    g_assert_cmpuint(rd(s, SPT_REG_QUEUE(1) + SPT_QREG_HEAD), ==, 0);
    /* recovery: reset and set up again (new page tables) */
    spt_init(s);
    g_assert_cmphex(rd(s, SPT_REG_STATUS) & SPT_STATUS_HUNG, ==, 0);
    g_assert_cmpuint(rd(s, SPT_REG_DBG_HANG_AFTER), ==, 0);
    cb = spt_buf_data(s, 0, &nop, sizeof(nop));
    d = spt_desc(&cb, sizeof(nop), 0);
    spt_run(s, 0, &d, &c);
    assert_ok(&c);
    spt_stop(s);

    /* the same through the property: hangs at the first job */
    s = spt_start("fi-hang-after=1");
    cb = spt_buf_data(s, 0, &nop, sizeof(nop));
    d = spt_desc(&cb, sizeof(nop), 0);
    spt_push(s, 0, &d);
    spt_doorbell(s, 0);
    g_usleep(100 * 1000);
    g_assert_cmphex(rd(s, SPT_REG_STATUS) & SPT_STATUS_HUNG, ==, SPT_STATUS_HUNG);
    spt_stop(s);
}

static void test_fi_dma_error(void)
{
    Spt *s = spt_start("debug=on");
    Buf out = spt_buf_rw(s, 0, 8);
    struct spt_cmd_fence f = { CMD_HDR(SPT_OP_FENCE, struct spt_cmd_fence),
                               .va = out.va, .value = 9 };
    Buf cb = spt_buf_data(s, 0, &f, sizeof(f));
    struct spt_job_desc d = spt_desc(&cb, sizeof(f), 0);
    struct spt_job_cpl c;

    wr(s, SPT_REG_DBG_DMA_ERR_AFTER, 1);
    spt_run(s, 0, &d, &c);
    assert_err(&c, SPT_ERR_DMA);
    g_assert_cmpuint(qtest_readq(s->qts, out.pa), ==, 0);
    g_assert_cmphex(rd(s, SPT_REG_ERR_STATUS) & SPT_ERRS_DMA, ==, SPT_ERRS_DMA);
    g_assert(qpci_msix_pending(s->dev, SPT_MSIX_VECTOR_ERROR(s->nq)));
    spt_run(s, 0, &d, &c);
    assert_ok(&c);
    g_assert_cmpuint(qtest_readq(s->qts, out.pa), ==, 9);
    spt_stop(s);

    s = spt_start("fi-dma-error-after=2");
    out = spt_buf_rw(s, 0, 8);
    cb = spt_buf_data(s, 0, &f, sizeof(f));
    f.va = out.va;
    qtest_memwrite(s->qts, cb.pa, &f, sizeof(f));
    d = spt_desc(&cb, sizeof(f), 0);
    spt_run(s, 0, &d, &c);
    assert_ok(&c);
    spt_run(s, 0, &d, &c);
    assert_err(&c, SPT_ERR_DMA);
    spt_stop(s);
}

static void test_fi_corrupt(void)
{
    Spt *s = spt_start("debug=on");
    struct spt_cmd_nop nop = { CMD_HDR(SPT_OP_NOP, struct spt_cmd_nop) };
    Buf cb = spt_buf_data(s, 0, &nop, sizeof(nop));
    Buf fence = spt_buf_rw(s, 0, 8);
    struct spt_job_desc d = spt_desc(&cb, sizeof(nop), 0);
    struct spt_job_cpl c;
    uint32_t idx;

    wr(s, SPT_REG_DBG_CORRUPT_AFTER, 1);
    d.flags = SPT_JOB_FENCE;
    d.fence_va = fence.va;
    d.fence_value = 3;
    idx = spt_push(s, 0, &d);
    spt_doorbell(s, 0);
    g_assert(spt_wait_head(s, 0, idx + 1));
    spt_read_cpl(s, 0, idx, &c);
    g_assert_cmphex(c.job_id, ==, ~d.job_id);
    g_assert_cmphex(c.status, ==, 0xdeadbeef);
    g_assert_cmpuint(qtest_readq(s->qts, fence.pa), ==, 3);
    spt_run(s, 0, &d, &c);
    assert_ok(&c);
    spt_stop(s);
}

/* ---- benchmark: device overhead ----------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

/*
 * Device overhead: the same GEMM job through the device (doorbell write to
 * HEAD update, seen from the test) and as a direct spt_gemm() call in this
 * process, interleaved.  Wall-clock figures: on a loaded machine the
 * thread hand-offs of the device path (vCPU/qtest -> bottom half -> worker
 * -> completion) wait for the scheduler; `make bench-device` runs it niced.
 */
static void test_bench(void)
{
    const char *size = getenv("SPT_BENCH_SIZE");     /* "MxNxK" */
    uint32_t m = 256, n = 512, k = 1024;
    const int reps = 21;
    Spt *s;
    GRand *r;
    float *a, *b;

    if (size) {
        g_assert_cmpint(sscanf(size, "%ux%ux%u", &m, &n, &k), ==, 3);
    }
    s = spt_start(NULL);
    r = g_rand_new_with_seed(9);
    a = rand_matrix(r, m, k, 0.9);
    b = rand_matrix(r, n, k, 0.9);
    size_t al, bl, cap = spt_ct_bound(m, n);
    void *ca = host_encode(a, m, k, &al), *cb = host_encode(b, n, k, &bl);
    Buf ba = spt_buf_data(s, 0, ca, al), bb = spt_buf_data(s, 0, cb, bl);
    Buf by = spt_buf_rw(s, 0, (uint64_t)m * n * 4), bct = spt_buf_rw(s, 0, cap);
    struct spt_cmd_gemm g = { CMD_HDR(SPT_OP_GEMM, struct spt_cmd_gemm),
        .pass = SPT_PASS_FWD, .act = SPT_ACT_RELU, .a_va = ba.va, .a_len = al,
        .b_va = bb.va, .b_len = bl, .y_va = by.va, .ct_va = bct.va, .ct_cap = cap,
        .enc = hw_enc(0, 1, 0.5f, 0) };
    Buf cmd = spt_buf_data(s, 0, &g, sizeof(g));
    struct spt_job_desc d = spt_desc(&cmd, sizeof(g), 0);
    double t_dev[21], t_host[21], ratio[21], b_dev[5], b_host[5];
    struct spt_gemm_epilogue ep = { .act = SPT_ACT_RELU };
    struct spt_gemm_out out = { 0 };
    struct spt_job_cpl c;

    out.y = g_new(float, m * n);
    out.ct = g_malloc(cap);
    out.ct_cap = cap;
    host_enc_opts(&g.enc, &out.enc);
    for (int i = 0; i < reps; i++) {
        uint32_t idx = spt_push(s, 0, &d);
        gint64 t0 = g_get_monotonic_time();

        g_assert_cmpint(spt_gemm(SPT_PASS_FWD, ca, al, cb, bl, &ep, &out, NULL), ==, 0);
        t_host[i] = (g_get_monotonic_time() - t0) / 1000.0;

        t0 = g_get_monotonic_time();
        spt_doorbell(s, 0);
        while (rd(s, SPT_REG_QUEUE(0) + SPT_QREG_HEAD) != idx + 1) {
            g_assert(g_get_monotonic_time() - t0 < TIMEOUT_US);
            g_usleep(200);      /* light polling: leave the CPU to the worker */
        }
        t_dev[i] = (g_get_monotonic_time() - t0) / 1000.0;
        ratio[i] = t_dev[i] / t_host[i];
        spt_read_cpl(s, 0, idx, &c);
        assert_ok(&c);
    }
    {
        float *got = guest_read(s, &by, m * n * 4);

        g_assert(memcmp(got, out.y, m * n * 4) == 0);
        g_free(got);
    }
    /* pipelined: a full ring of jobs per doorbell, the same calls directly */
    for (int i = 0; i < 5; i++) {
        const int batch = RING_ENTRIES - 1;
        uint32_t idx = 0;
        gint64 t0 = g_get_monotonic_time();

        for (int j = 0; j < batch; j++) {
            g_assert_cmpint(spt_gemm(SPT_PASS_FWD, ca, al, cb, bl, &ep, &out, NULL), ==, 0);
        }
        b_host[i] = (g_get_monotonic_time() - t0) / 1000.0 / batch;
        for (int j = 0; j < batch; j++) {
            idx = spt_push(s, 0, &d);
        }
        t0 = g_get_monotonic_time();
        spt_doorbell(s, 0);
        while (rd(s, SPT_REG_QUEUE(0) + SPT_QREG_HEAD) != idx + 1) {
            g_assert(g_get_monotonic_time() - t0 < TIMEOUT_US);
            g_usleep(1000);
        }
        b_dev[i] = (g_get_monotonic_time() - t0) / 1000.0 / batch;
    }
    qsort(b_dev, 5, sizeof(double), cmp_double);
    qsort(b_host, 5, sizeof(double), cmp_double);
    qsort(t_dev, reps, sizeof(double), cmp_double);
    qsort(t_host, reps, sizeof(double), cmp_double);
    qsort(ratio, reps, sizeof(double), cmp_double);
    printf("# spt bench: GEMM fwd M=%u N=%u K=%u, 90%% zeros in A and B, ReLU + prune + "
           "encode epilogue, FP32 and compressed outputs, ISA %s, %d runs\n", m, n, k,
           spt_core_isa_name(spt_core_get_isa()), reps);
    printf("# spt bench: device job (doorbell -> HEAD): median %.3f ms, min %.3f ms\n",
           t_dev[reps / 2], t_dev[0]);
    printf("# spt bench: direct spt_gemm():             median %.3f ms, min %.3f ms\n",
           t_host[reps / 2], t_host[0]);
    printf("# spt bench: overhead ratio device/direct: median of pairs %.3f, "
           "min/min %.3f (target <= 1.2)\n", ratio[reps / 2], t_dev[0] / t_host[0]);
    printf("# spt bench: pipelined, %d jobs per doorbell: device %.3f ms/job, direct "
           "%.3f ms/call (medians of 5), ratio %.3f\n", RING_ENTRIES - 1, b_dev[2],
           b_host[2], b_dev[2] / b_host[2]);
    g_free(a);
    g_free(b);
    g_free(ca);
    g_free(cb);
    g_free(out.y);
    g_free(out.ct);
    g_rand_free(r);
    spt_stop(s);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);

    qtest_add_func("/spt/identity", test_identity);
    qtest_add_func("/spt/properties", test_properties);
    qtest_add_func("/spt/registers", test_registers);
    qtest_add_func("/spt/jobs/nop-fence-timestamp", test_nop_fence_timestamp);
    qtest_add_func("/spt/jobs/ring-wrap", test_ring_wrap);
    qtest_add_func("/spt/ops/encode-decode", test_encode_decode);
    qtest_add_func("/spt/ops/transpose", test_transpose);
    qtest_add_func("/spt/ops/gemm", test_gemm);
    qtest_add_func("/spt/ops/softmax-sgd", test_softmax_sgd);
    qtest_add_func("/spt/ops/training-step", test_training_step);
    qtest_add_func("/spt/mmu/fault", test_mmu_fault);
    qtest_add_func("/spt/mmu/bad-context", test_mmu_bad_context);
    qtest_add_func("/spt/malformed/descriptors", test_bad_descriptors);
    qtest_add_func("/spt/malformed/commands", test_bad_commands);
    qtest_add_func("/spt/malformed/commands-v2", test_v2_malformed);
    qtest_add_func("/spt/v2/lowering", test_v2_lowering);
    qtest_add_func("/spt/v2/colsum-finite", test_v2_colsum_finite);
    qtest_add_func("/spt/v2/relu-mask", test_v2_relu_mask);
    qtest_add_func("/spt/v2/len-hdr", test_v2_len_hdr);
    qtest_add_func("/spt/v2/transposed-out", test_v2_transposed_out);
    qtest_add_func("/spt/v2/gemm-counters", test_v2_gemm_counters);
    qtest_add_func("/spt/v2/conv-step", test_v2_conv_step);
    qtest_add_func("/spt/malformed/rings", test_ring_errors);
    qtest_add_func("/spt/malformed/garbage", test_garbage);
    qtest_add_func("/spt/reset/mid-job", test_reset_mid_job);
    qtest_add_func("/spt/reset/flr-mid-job", test_flr_mid_job);
    qtest_add_func("/spt/reset/system-reset-mid-job", test_system_reset_mid_job);
    qtest_add_func("/spt/reset/queue-disable-mid-job", test_queue_disable_mid_job);
    qtest_add_func("/spt/reset/unplug-mid-job", test_unplug_mid_job);
    qtest_add_func("/spt/fault-injection/hang", test_fi_hang);
    qtest_add_func("/spt/fault-injection/dma-error", test_fi_dma_error);
    qtest_add_func("/spt/fault-injection/corrupt", test_fi_corrupt);
    if (getenv("SPT_BENCH")) {
        qtest_add_func("/spt/bench", test_bench);
    }
    return g_test_run();
}
