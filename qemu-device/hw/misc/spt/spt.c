/*
 * SPT: sparsity-scaling training processor, a PCIe DNN training accelerator.
 *
 * The hardware interface is uapi/spt_hw.h (docs/hw.md).  The arithmetic is
 * the project's golden model (core/), the command-stream interpreter and
 * the MMU walker are QEMU-independent (spt-exec.c, spt-mmu.c).
 *
 * Threading: MMIO and doorbells run on vCPU threads under the BQL.  A
 * doorbell records the new tail and schedules a guarded bottom half, which
 * kicks one worker thread.  The worker picks jobs round-robin across queues
 * and runs them without the BQL; it takes the BQL only around each DMA
 * write (in chunks of at most SPT_DMA_CHUNK, so vCPUs are never held
 * long) and to post completions and interrupts; reads are RCU-protected.
 * Reset, FLR and queue disable bump a generation counter under the BQL; a
 * job whose generation is stale does no further DMA and posts nothing, so
 * cancellation is clean even while core/ is still computing on host buffers.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/log.h"
#include "qemu/main-loop.h"
#include "qemu/rcu.h"
#include "qemu/thread.h"
#include "qemu/timer.h"
#include "qemu/units.h"
#include "qapi/error.h"
#include "hw/pci/pci_device.h"
#include "hw/pci/msix.h"
#include "hw/pci/pcie.h"
#include "hw/qdev-properties.h"
#include "hw/resettable.h"
#include "migration/vmstate.h"
#include "qom/object.h"
#include "trace.h"

#include "spt-exec.h"

#define TYPE_SPT "spt"
OBJECT_DECLARE_SIMPLE_TYPE(SptState, SPT)

#define SPT_DMA_CHUNK (1 * MiB)
#define SPT_NUM_COUNTERS 10

typedef struct SptQueue {
    uint64_t ring_base;
    uint64_t cpl_base;
    uint32_t size;
    uint32_t control;
    uint32_t head;
    uint32_t tail;
    bool stopped;
    uint32_t gen;           /* bumped when disabled */
} SptQueue;

typedef struct SptJob {
    unsigned q;
    uint32_t index;
    uint32_t qgen;
    uint64_t gen;
    bool fail_dma;
    bool corrupt;
    struct spt_job_desc desc;
} SptJob;

struct SptState {
    PCIDevice parent_obj;

    MemoryRegion mmio;
    MemoryRegion doorbells;
    QEMUBH *bh;

    QemuThread thread;
    QemuMutex lock;         /* protects kick and stopping, for the cond */
    QemuCond cond;
    bool kick;
    bool stopping;

    /* everything below is protected by the BQL */
    uint64_t generation;
    SptJob cur;             /* the job the worker runs */
    bool busy;
    bool hung;
    uint32_t control;
    uint32_t int_status;
    uint32_t int_mask;
    uint32_t err_status;
    uint32_t err_info;
    uint32_t err_code;
    uint64_t err_va;
    uint64_t ctx_table;
    uint64_t cnt[SPT_NUM_COUNTERS];
    uint32_t jobs_started;
    uint32_t dbg_hang_after;
    uint32_t dbg_dma_err_after;
    uint32_t dbg_corrupt_after;
    unsigned rr;            /* next queue to look at */
    SptQueue q[SPT_MAX_QUEUES];

    /* owned by the worker */
    SptExec *exec;

    /* properties */
    uint32_t num_queues;
    uint32_t num_contexts;
    uint32_t mac_array;
    uint32_t sram_kib;
    uint32_t clock_mhz;
    uint32_t dram_mbps;
    uint32_t mac_fj;
    uint32_t skip_fj;
    uint32_t exp_add_fj;
    uint32_t sram_fj_per_byte;
    uint32_t dram_fj_per_byte;
    uint32_t static_mw;
    bool debug;
    uint32_t fi_hang_after;
    uint32_t fi_dma_err_after;
    uint32_t fi_corrupt_after;
};

enum {
    SPT_CNT_JOBS_DONE,
    SPT_CNT_JOBS_FAILED,
    SPT_CNT_DENSE_MACS,
    SPT_CNT_EXEC_MACS,
    SPT_CNT_BYTES_READ,
    SPT_CNT_BYTES_WRITTEN,
    SPT_CNT_CYCLES,
    SPT_CNT_ENERGY_FJ,
    SPT_CNT_MMU_FAULTS,
};

/* ---- interrupts (BQL) --------------------------------------------------- */

static void spt_update_intx(SptState *s)
{
    PCIDevice *pdev = PCI_DEVICE(s);

    if (!msix_enabled(pdev)) {
        pci_set_irq(pdev, (s->int_status & ~s->int_mask) != 0);
    }
}

static void spt_raise(SptState *s, uint32_t bit, unsigned vector)
{
    PCIDevice *pdev = PCI_DEVICE(s);

    s->int_status |= bit;
    trace_spt_irq(vector);
    if (msix_enabled(pdev)) {
        msix_notify(pdev, vector);
    } else {
        spt_update_intx(s);
    }
}

static void spt_error(SptState *s, uint32_t bits, uint32_t code, unsigned q,
                      uint32_t ctx, unsigned access, uint64_t va)
{
    s->err_status |= bits;
    s->err_code = code;
    s->err_info = (q & 0xff) | ((ctx & 0xffff) << 8) | ((access & 3) << 24);
    if (bits & SPT_ERRS_MMU_FAULT) {
        s->err_va = va;
    }
    trace_spt_error(s->err_status, code);
    spt_raise(s, SPT_INT_ERROR, SPT_MSIX_VECTOR_ERROR(s->num_queues));
}

/* ---- DMA callbacks of the interpreter (any thread) ---------------------- */

static bool spt_job_stale(SptState *s)
{
    return qatomic_read(&s->generation) != s->cur.gen ||
           qatomic_read(&s->q[s->cur.q].gen) != s->cur.qgen;
}

/*
 * Reads run without the BQL: address_space_rw() is RCU-protected and takes
 * the BQL itself if the target is MMIO, and a read does not change guest
 * memory, so one racing with a reset is harmless (its data is dropped).
 * Writes take the BQL and re-check the generation under it, so a cancelled
 * job never writes.
 */
static int spt_dma(SptState *s, uint64_t pa, void *buf, size_t len, bool write)
{
    PCIDevice *pdev = PCI_DEVICE(s);

    while (len) {
        size_t n = MIN(len, SPT_DMA_CHUNK);
        MemTxResult r;

        if (write) {
            BQL_LOCK_GUARD();
            if (spt_job_stale(s) || s->cur.fail_dma) {
                return -1;
            }
            r = pci_dma_write(pdev, pa, buf, n);
        } else {
            if (spt_job_stale(s) || s->cur.fail_dma) {
                return -1;
            }
            r = pci_dma_read(pdev, pa, buf, n);
        }
        if (r != MEMTX_OK) {
            return -1;
        }
        pa += n;
        buf = (uint8_t *)buf + n;
        len -= n;
    }
    return 0;
}

static int spt_dma_read_cb(void *opaque, uint64_t pa, void *buf, size_t len)
{
    return spt_dma(opaque, pa, buf, len, false);
}

static int spt_dma_write_cb(void *opaque, uint64_t pa, const void *buf, size_t len)
{
    return spt_dma(opaque, pa, (void *)buf, len, true);
}

static uint64_t spt_now_cb(void *opaque)
{
    return qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL);
}

static bool spt_cancelled_cb(void *opaque)
{
    return spt_job_stale(opaque);
}

static const SptExecOps spt_exec_ops = {
    .read = spt_dma_read_cb,
    .write = spt_dma_write_cb,
    .now_ns = spt_now_cb,
    .cancelled = spt_cancelled_cb,
};

/* ---- job scheduling (BQL) ----------------------------------------------- */

static bool spt_fi_hit(uint32_t armed, uint32_t n)
{
    return armed && armed == n;
}

/* Take the next job; false if there is none (or the device is hung). */
static bool spt_pick_job(SptState *s)
{
    PCIDevice *pdev = PCI_DEVICE(s);

    if (!(s->control & SPT_CONTROL_ENABLE) || s->hung) {
        return false;
    }
    for (unsigned i = 0; i < s->num_queues; i++) {
        unsigned qi = (s->rr + i) % s->num_queues;
        SptQueue *q = &s->q[qi];
        SptJob *job = &s->cur;
        uint64_t addr;

        if (!(q->control & SPT_QCTRL_ENABLE) || q->stopped || q->head == q->tail) {
            continue;
        }
        s->rr = qi + 1;
        addr = q->ring_base + (uint64_t)(q->head & (q->size - 1)) * sizeof(job->desc);
        if (pci_dma_read(pdev, addr, &job->desc, sizeof(job->desc)) != MEMTX_OK) {
            qemu_log_mask(LOG_GUEST_ERROR, "spt: queue %u: ring read at 0x%" PRIx64
                          " failed\n", qi, addr);
            q->stopped = true;
            spt_error(s, SPT_ERRS_DMA | SPT_ERRS_RING, SPT_ERR_DMA, qi, 0, 0, 0);
            continue;
        }
        s->jobs_started++;
        if (spt_fi_hit(s->dbg_hang_after, s->jobs_started)) {
            trace_spt_hang(s->jobs_started);
            s->hung = true;
            return false;
        }
        job->q = qi;
        job->index = q->head;
        job->qgen = q->gen;
        job->gen = s->generation;
        job->fail_dma = spt_fi_hit(s->dbg_dma_err_after, s->jobs_started);
        job->corrupt = spt_fi_hit(s->dbg_corrupt_after, s->jobs_started);
        spt_exec_set_contexts(s->exec, s->ctx_table, s->num_contexts);
        s->busy = true;
        trace_spt_job_start(qi, job->index, le32_to_cpu(job->desc.ctx),
                            le64_to_cpu(job->desc.cmd_va),
                            le32_to_cpu(job->desc.cmd_len));
        return true;
    }
    return false;
}

static uint32_t spt_err_bits(uint32_t code)
{
    switch (code) {
    case SPT_ERR_MMU_FAULT:
        return SPT_ERRS_MMU_FAULT;
    case SPT_ERR_DMA:
        return SPT_ERRS_DMA;
    case SPT_ERR_BAD_CONTEXT:
    case SPT_ERR_BAD_DESC:
        return SPT_ERRS_DESC;
    default:
        return SPT_ERRS_CMD;
    }
}

static void spt_finish_job(SptState *s, bool ran, struct spt_job_cpl *cpl)
{
    PCIDevice *pdev = PCI_DEVICE(s);
    SptJob *job = &s->cur;
    SptQueue *q = &s->q[job->q];
    uint64_t addr;
    int err;

    s->busy = false;
    if (!ran || spt_job_stale(s)) {
        trace_spt_job_dropped(job->q, job->index);
        return;
    }
    if (cpl->status != SPT_JOB_OK) {
        uint8_t op;
        const char *why = spt_exec_last_error(s->exec, &op);

        qemu_log_mask(LOG_GUEST_ERROR, "spt: queue %u job %u failed: error %u at "
                      "offset %u (opcode 0x%02x%s%s) va 0x%" PRIx64 "\n", job->q,
                      job->index, cpl->error_code, cpl->error_offset, op,
                      why ? ": " : "", why ? why : "", (uint64_t)cpl->fault_va);
    }
    trace_spt_job_done(job->q, job->index, cpl->status, cpl->error_code,
                       cpl->fault_va);
    if (job->corrupt) {
        cpl->job_id = ~cpl->job_id;
        cpl->status = 0xdeadbeef;
        cpl->error_code = 0xdeadbeef;
    }
    addr = q->cpl_base + (uint64_t)(job->index & (q->size - 1)) * sizeof(*cpl);
    if (pci_dma_write(pdev, addr, cpl, sizeof(*cpl)) != MEMTX_OK) {
        qemu_log_mask(LOG_GUEST_ERROR, "spt: queue %u: completion write at 0x%"
                      PRIx64 " failed\n", job->q, addr);
        q->stopped = true;
        spt_error(s, SPT_ERRS_CPL_WRITE, SPT_ERR_DMA, job->q, 0, 0, 0);
        return;
    }
    err = spt_exec_fence(s->exec, &job->desc);
    if (err) {
        qemu_log_mask(LOG_GUEST_ERROR, "spt: queue %u job %u: fence write failed "
                      "(error %d)\n", job->q, job->index, err);
    }
    q->head++;

    s->cnt[cpl->status == SPT_JOB_OK ? SPT_CNT_JOBS_DONE : SPT_CNT_JOBS_FAILED]++;
    s->cnt[SPT_CNT_DENSE_MACS] += cpl->dense_macs;
    s->cnt[SPT_CNT_EXEC_MACS] += cpl->exec_macs;
    s->cnt[SPT_CNT_BYTES_READ] += cpl->bytes_read;
    s->cnt[SPT_CNT_BYTES_WRITTEN] += cpl->bytes_written;
    s->cnt[SPT_CNT_CYCLES] += cpl->cycles;
    s->cnt[SPT_CNT_ENERGY_FJ] += cpl->energy_fj;
    if (cpl->error_code == SPT_ERR_MMU_FAULT || err == SPT_ERR_MMU_FAULT) {
        s->cnt[SPT_CNT_MMU_FAULTS]++;
    }
    if (cpl->status != SPT_JOB_OK && !job->corrupt) {
        spt_error(s, spt_err_bits(cpl->error_code), cpl->error_code, job->q,
                  le32_to_cpu(job->desc.ctx), cpl->fault_access, cpl->fault_va);
    } else if (err) {
        uint64_t va;
        unsigned access;

        spt_exec_last_fault(s->exec, &va, &access);
        spt_error(s, spt_err_bits(err), err, job->q, le32_to_cpu(job->desc.ctx),
                  access, va);
    }
    if (!(le32_to_cpu(job->desc.flags) & SPT_JOB_NO_IRQ)) {
        spt_raise(s, SPT_INT_QUEUE(job->q), SPT_MSIX_VECTOR_QUEUE(job->q));
    }
}

static void *spt_worker(void *opaque)
{
    SptState *s = opaque;
    struct spt_job_cpl cpl;

    rcu_register_thread();
    bql_lock();
    while (!qatomic_read(&s->stopping)) {
        bool ran;

        if (!spt_pick_job(s)) {
            bql_unlock();
            qemu_mutex_lock(&s->lock);
            while (!s->kick && !s->stopping) {
                qemu_cond_wait(&s->cond, &s->lock);
            }
            s->kick = false;
            qemu_mutex_unlock(&s->lock);
            bql_lock();
            continue;
        }
        bql_unlock();
        ran = spt_exec_job(s->exec, &s->cur.desc, &cpl);
        bql_lock();
        spt_finish_job(s, ran, &cpl);
    }
    bql_unlock();
    rcu_unregister_thread();
    return NULL;
}

static void spt_kick(SptState *s)
{
    qemu_mutex_lock(&s->lock);
    s->kick = true;
    qemu_cond_signal(&s->cond);
    qemu_mutex_unlock(&s->lock);
}

static void spt_bh(void *opaque)
{
    spt_kick(opaque);
}

/* ---- reset -------------------------------------------------------------- */

static void spt_soft_reset(SptState *s, const char *why)
{
    trace_spt_reset(why);
    qatomic_set(&s->generation, s->generation + 1);
    for (unsigned i = 0; i < SPT_MAX_QUEUES; i++) {
        uint32_t gen = s->q[i].gen + 1;

        memset(&s->q[i], 0, sizeof(s->q[i]));
        qatomic_set(&s->q[i].gen, gen);
    }
    s->hung = false;
    s->control = 0;
    s->int_status = 0;
    s->int_mask = 0;
    s->err_status = 0;
    s->err_info = 0;
    s->err_code = 0;
    s->err_va = 0;
    s->ctx_table = 0;
    memset(s->cnt, 0, sizeof(s->cnt));
    s->jobs_started = 0;
    s->dbg_hang_after = s->fi_hang_after;
    s->dbg_dma_err_after = s->fi_dma_err_after;
    s->dbg_corrupt_after = s->fi_corrupt_after;
    s->rr = 0;
    spt_update_intx(s);
}

static void spt_reset_hold(Object *obj, ResetType type)
{
    spt_soft_reset(SPT(obj), "device reset");
}

/* ---- registers ---------------------------------------------------------- */

static uint32_t spt_status(SptState *s)
{
    uint32_t v = 0;

    if ((s->control & SPT_CONTROL_ENABLE) && !s->hung) {
        v |= SPT_STATUS_READY;
    }
    if (s->busy) {
        v |= SPT_STATUS_BUSY;
    }
    if (s->hung) {
        v |= SPT_STATUS_HUNG;
    }
    if (s->err_status) {
        v |= SPT_STATUS_ERROR;
    }
    return v;
}

static uint64_t spt_caps(SptState *s)
{
    return SPT_CAP_MMU | SPT_CAP_MSIX | SPT_CAP_FENCE | SPT_CAP_COUNTERS |
           SPT_CAP_STOCHASTIC | SPT_CAP_TRAIN_OPS | (s->debug ? SPT_CAP_DEBUG : 0);
}

/* 64-bit registers: read as a whole or as halves */
static uint64_t spt_half(uint64_t v, hwaddr addr, unsigned size)
{
    if (size == 8) {
        return v;
    }
    return (addr & 4) ? v >> 32 : (uint32_t)v;
}

static void spt_set_half(uint64_t *reg, hwaddr addr, unsigned size, uint64_t val)
{
    if (size == 8) {
        *reg = val;
    } else if (addr & 4) {
        *reg = deposit64(*reg, 32, 32, val);
    } else {
        *reg = deposit64(*reg, 0, 32, val);
    }
}

static uint64_t spt_queue_read(SptState *s, unsigned qi, hwaddr off, unsigned size)
{
    SptQueue *q = &s->q[qi];

    switch (off & ~7) {
    case SPT_QREG_RING_BASE_LO:
        return spt_half(q->ring_base, off, size);
    case SPT_QREG_CPL_BASE_LO:
        return spt_half(q->cpl_base, off, size);
    }
    switch (off) {
    case SPT_QREG_RING_SIZE:
        return q->size;
    case SPT_QREG_CONTROL:
        return q->control;
    case SPT_QREG_STATUS:
        return (q->control & SPT_QCTRL_ENABLE ? SPT_QSTAT_ENABLED : 0) |
               (q->head != q->tail ? SPT_QSTAT_BUSY : 0) |
               (q->stopped ? SPT_QSTAT_STOPPED : 0);
    case SPT_QREG_HEAD:
        return q->head;
    case SPT_QREG_TAIL:
        return q->tail;
    }
    return 0;
}

static void spt_queue_write(SptState *s, unsigned qi, hwaddr off, unsigned size,
                            uint64_t val)
{
    SptQueue *q = &s->q[qi];
    bool enabled = q->control & SPT_QCTRL_ENABLE;

    if (off != SPT_QREG_CONTROL && enabled) {
        qemu_log_mask(LOG_GUEST_ERROR, "spt: queue %u: register 0x%" HWADDR_PRIx
                      " written while enabled\n", qi, off);
        return;
    }
    switch (off & ~7) {
    case SPT_QREG_RING_BASE_LO:
        spt_set_half(&q->ring_base, off, size, val);
        return;
    case SPT_QREG_CPL_BASE_LO:
        spt_set_half(&q->cpl_base, off, size, val);
        return;
    }
    switch (off) {
    case SPT_QREG_RING_SIZE:
        q->size = val;
        return;
    case SPT_QREG_CONTROL:
        if ((val & SPT_QCTRL_ENABLE) && !enabled) {
            if (q->size < SPT_RING_MIN_ENTRIES || q->size > SPT_RING_MAX_ENTRIES ||
                !is_power_of_2(q->size) || !q->ring_base || !q->cpl_base ||
                (q->ring_base & 63) || (q->cpl_base & 63)) {
                qemu_log_mask(LOG_GUEST_ERROR, "spt: queue %u: bad ring "
                              "configuration (size %u)\n", qi, q->size);
                spt_error(s, SPT_ERRS_RING, SPT_ERR_NONE, qi, 0, 0, 0);
                return;
            }
            q->head = q->tail = 0;
            q->stopped = false;
            q->control = SPT_QCTRL_ENABLE;
            trace_spt_queue_enable(qi, q->ring_base, q->cpl_base, q->size);
        } else if (!(val & SPT_QCTRL_ENABLE) && enabled) {
            q->control = 0;
            qatomic_set(&q->gen, q->gen + 1);
            q->head = q->tail = 0;
            q->stopped = false;
            trace_spt_queue_disable(qi);
        }
        return;
    }
    qemu_log_mask(LOG_GUEST_ERROR, "spt: queue %u: write to read-only 0x%"
                  HWADDR_PRIx "\n", qi, off);
}

static uint64_t spt_mmio_read(void *opaque, hwaddr addr, unsigned size)
{
    SptState *s = opaque;
    uint64_t val = 0;

    if (addr >= SPT_REG_QUEUE(0) && addr < SPT_REG_QUEUE(s->num_queues)) {
        val = spt_queue_read(s, (addr - SPT_REG_QUEUE(0)) / 0x40,
                             (addr - SPT_REG_QUEUE(0)) % 0x40, size);
        goto out;
    }
    if (addr >= SPT_REG_CNT_BASE && addr < SPT_REG_CNT_BASE + 8 * SPT_NUM_COUNTERS) {
        unsigned i = (addr - SPT_REG_CNT_BASE) / 8;
        uint64_t v = addr >= SPT_REG_CNT_TIMESTAMP && addr < SPT_REG_CNT_TIMESTAMP + 8 ?
                     (uint64_t)qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL) : s->cnt[i];

        val = spt_half(v, addr, size);
        goto out;
    }
    switch (addr & ~7ull) {
    case SPT_REG_ERR_VA_LO:
        val = spt_half(s->err_va, addr, size);
        goto out;
    case SPT_REG_MMU_CTX_TABLE_LO:
        val = spt_half(s->ctx_table, addr, size);
        goto out;
    }
    switch (addr) {
    case SPT_REG_ID:
        val = SPT_ID_MAGIC;
        break;
    case SPT_REG_VERSION:
        val = SPT_HW_VERSION;
        break;
    case SPT_REG_CAPS:
        val = spt_caps(s);
        break;
    case SPT_REG_NUM_QUEUES:
        val = s->num_queues;
        break;
    case SPT_REG_NUM_CONTEXTS:
        val = s->num_contexts;
        break;
    case SPT_REG_MAC_ARRAY:
        val = s->mac_array;
        break;
    case SPT_REG_SRAM_KIB:
        val = s->sram_kib;
        break;
    case SPT_REG_FORMATS:
        val = SPT_FMT_CT_V1 | SPT_FMT_FP32;
        break;
    case SPT_REG_CMD_VERSION:
        val = SPT_CMD_VERSION;
        break;
    case SPT_REG_CLOCK_MHZ:
        val = s->clock_mhz;
        break;
    case SPT_REG_DRAM_MBPS:
        val = s->dram_mbps;
        break;
    case SPT_REG_VA_BITS:
        val = SPT_VA_BITS;
        break;
    case SPT_REG_RING_MAX:
        val = SPT_RING_MAX_ENTRIES;
        break;
    case SPT_REG_CMD_MAX:
        val = SPT_CMD_MAX_LEN;
        break;
    case SPT_REG_XFER_MAX:
        val = SPT_XFER_MAX;
        break;
    case SPT_REG_CONTROL:
        val = s->control;
        break;
    case SPT_REG_STATUS:
        val = spt_status(s);
        break;
    case SPT_REG_INT_STATUS:
        val = s->int_status;
        break;
    case SPT_REG_INT_MASK:
        val = s->int_mask;
        break;
    case SPT_REG_ERR_STATUS:
        val = s->err_status;
        break;
    case SPT_REG_ERR_INFO:
        val = s->err_info;
        break;
    case SPT_REG_ERR_CODE:
        val = s->err_code;
        break;
    case SPT_REG_DBG_HANG_AFTER:
        val = s->debug ? s->dbg_hang_after : 0;
        break;
    case SPT_REG_DBG_DMA_ERR_AFTER:
        val = s->debug ? s->dbg_dma_err_after : 0;
        break;
    case SPT_REG_DBG_CORRUPT_AFTER:
        val = s->debug ? s->dbg_corrupt_after : 0;
        break;
    case SPT_REG_DBG_JOBS_STARTED:
        val = s->debug ? s->jobs_started : 0;
        break;
    default:
        qemu_log_mask(LOG_GUEST_ERROR, "spt: read of unknown register 0x%"
                      HWADDR_PRIx "\n", addr);
        break;
    }
out:
    trace_spt_mmio_read(addr, size, val);
    return val;
}

static void spt_mmio_write(void *opaque, hwaddr addr, uint64_t val, unsigned size)
{
    SptState *s = opaque;

    trace_spt_mmio_write(addr, size, val);
    if (addr >= SPT_REG_QUEUE(0) && addr < SPT_REG_QUEUE(s->num_queues)) {
        spt_queue_write(s, (addr - SPT_REG_QUEUE(0)) / 0x40,
                        (addr - SPT_REG_QUEUE(0)) % 0x40, size, val);
        return;
    }
    if ((addr & ~7ull) == SPT_REG_MMU_CTX_TABLE_LO) {
        spt_set_half(&s->ctx_table, addr, size, val);
        return;
    }
    if ((addr >= SPT_REG_DBG_HANG_AFTER && addr <= SPT_REG_DBG_JOBS_STARTED) &&
        !s->debug) {
        qemu_log_mask(LOG_GUEST_ERROR, "spt: debug register 0x%" HWADDR_PRIx
                      " written without debug=on\n", addr);
        return;
    }
    switch (addr) {
    case SPT_REG_CONTROL:
        if (val & SPT_CONTROL_RESET) {
            spt_soft_reset(s, "CONTROL.RESET");
            return;
        }
        s->control = val & SPT_CONTROL_ENABLE;
        if (s->control) {
            qemu_bh_schedule(s->bh);
        }
        return;
    case SPT_REG_INT_MASK:
        s->int_mask = val;
        spt_update_intx(s);
        return;
    case SPT_REG_INT_ACK:
        s->int_status &= ~val;
        spt_update_intx(s);
        return;
    case SPT_REG_ERR_STATUS:
        s->err_status &= ~val;
        return;
    case SPT_REG_MMU_TLB_INV:
        /* translations are cached only for the duration of one job */
        return;
    case SPT_REG_DBG_HANG_AFTER:
        s->dbg_hang_after = val;
        return;
    case SPT_REG_DBG_DMA_ERR_AFTER:
        s->dbg_dma_err_after = val;
        return;
    case SPT_REG_DBG_CORRUPT_AFTER:
        s->dbg_corrupt_after = val;
        return;
    }
    qemu_log_mask(LOG_GUEST_ERROR, "spt: write of 0x%" PRIx64 " to read-only or "
                  "unknown register 0x%" HWADDR_PRIx "\n", val, addr);
}

static const MemoryRegionOps spt_mmio_ops = {
    .read = spt_mmio_read,
    .write = spt_mmio_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    .valid = { .min_access_size = 4, .max_access_size = 8 },
    .impl = { .min_access_size = 4, .max_access_size = 8 },
};

static uint64_t spt_doorbell_read(void *opaque, hwaddr addr, unsigned size)
{
    return 0;
}

static void spt_doorbell_write(void *opaque, hwaddr addr, uint64_t val,
                               unsigned size)
{
    SptState *s = opaque;
    unsigned qi = addr / SPT_DOORBELL_STRIDE;
    SptQueue *q;
    uint32_t tail = val;

    if (qi >= s->num_queues || addr % SPT_DOORBELL_STRIDE || size != 4) {
        qemu_log_mask(LOG_GUEST_ERROR, "spt: bad doorbell write at 0x%"
                      HWADDR_PRIx "\n", addr);
        return;
    }
    q = &s->q[qi];
    trace_spt_doorbell(qi, tail);
    if (!(q->control & SPT_QCTRL_ENABLE)) {
        qemu_log_mask(LOG_GUEST_ERROR, "spt: doorbell of disabled queue %u\n", qi);
        spt_error(s, SPT_ERRS_RING, SPT_ERR_NONE, qi, 0, 0, 0);
        return;
    }
    if (tail - q->head > q->size) {
        qemu_log_mask(LOG_GUEST_ERROR, "spt: queue %u overflow: head %u tail %u "
                      "size %u\n", qi, q->head, tail, q->size);
        spt_error(s, SPT_ERRS_RING, SPT_ERR_NONE, qi, 0, 0, 0);
        return;
    }
    q->tail = tail;
    qemu_bh_schedule(s->bh);
}

static const MemoryRegionOps spt_doorbell_ops = {
    .read = spt_doorbell_read,
    .write = spt_doorbell_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    .valid = { .min_access_size = 4, .max_access_size = 8 },
    .impl = { .min_access_size = 4, .max_access_size = 8 },
};

/* ---- realize / exit ----------------------------------------------------- */

static void spt_write_config(PCIDevice *pdev, uint32_t addr, uint32_t val, int len)
{
    pci_default_write_config(pdev, addr, val, len);
    pcie_cap_flr_write_config(pdev, addr, val, len);
}

static void spt_realize(PCIDevice *pdev, Error **errp)
{
    SptState *s = SPT(pdev);
    SptModelParams model;
    unsigned vectors;

    if (s->num_queues < 1 || s->num_queues > SPT_MAX_QUEUES) {
        error_setg(errp, "spt: queues must be 1..%u", SPT_MAX_QUEUES);
        return;
    }
    if (s->num_contexts < 1 || s->num_contexts > SPT_MAX_CONTEXTS) {
        error_setg(errp, "spt: contexts must be 1..%u", SPT_MAX_CONTEXTS);
        return;
    }
    model = (SptModelParams) {
        .mac_pj = s->mac_fj / 1000.0,
        .skip_check_pj = s->skip_fj / 1000.0,
        .exp_add_pj = s->exp_add_fj / 1000.0,
        .sram_pj_per_byte = s->sram_fj_per_byte / 1000.0,
        .dram_pj_per_byte = s->dram_fj_per_byte / 1000.0,
        .static_mw = s->static_mw,
        .clock_mhz = s->clock_mhz,
        .macs_per_cycle = s->mac_array,
        .dram_gbytes_per_s = s->dram_mbps / 1000.0,
    };
    s->exec = spt_exec_new(&spt_exec_ops, s, &model);
    if (!s->exec) {
        error_setg(errp, "spt: mac-array, clock-mhz, dram-mbps and the energy "
                   "constants must be positive");
        return;
    }

    pci_config_set_interrupt_pin(pdev->config, 1);
    pcie_endpoint_cap_init(pdev, 0x80);
    pcie_cap_flr_init(pdev);

    memory_region_init_io(&s->mmio, OBJECT(s), &spt_mmio_ops, s, "spt-regs",
                          SPT_REGS_SIZE);
    pci_register_bar(pdev, SPT_BAR_REGS, PCI_BASE_ADDRESS_SPACE_MEMORY |
                     PCI_BASE_ADDRESS_MEM_TYPE_64, &s->mmio);
    memory_region_init_io(&s->doorbells, OBJECT(s), &spt_doorbell_ops, s,
                          "spt-doorbells",
                          pow2ceil(s->num_queues * SPT_DOORBELL_STRIDE));
    pci_register_bar(pdev, SPT_BAR_DOORBELL, PCI_BASE_ADDRESS_SPACE_MEMORY |
                     PCI_BASE_ADDRESS_MEM_TYPE_64, &s->doorbells);
    vectors = s->num_queues + 1;
    if (msix_init_exclusive_bar(pdev, vectors, SPT_BAR_MSIX, errp)) {
        spt_exec_free(s->exec);
        s->exec = NULL;
        return;
    }
    for (unsigned i = 0; i < vectors; i++) {
        msix_vector_use(pdev, i);
    }

    spt_soft_reset(s, "realize");
    s->bh = qemu_bh_new_guarded(spt_bh, s, &DEVICE(pdev)->mem_reentrancy_guard);
    qemu_mutex_init(&s->lock);
    qemu_cond_init(&s->cond);
    s->stopping = false;
    qemu_thread_create(&s->thread, "spt-worker", spt_worker, s,
                       QEMU_THREAD_JOINABLE);
}

static void spt_exit(PCIDevice *pdev)
{
    SptState *s = SPT(pdev);

    qatomic_set(&s->generation, s->generation + 1);
    qemu_mutex_lock(&s->lock);
    s->stopping = true;
    qemu_cond_signal(&s->cond);
    qemu_mutex_unlock(&s->lock);
    /* the worker may be waiting for the BQL to finish a (now stale) job */
    bql_unlock();
    qemu_thread_join(&s->thread);
    bql_lock();
    qemu_cond_destroy(&s->cond);
    qemu_mutex_destroy(&s->lock);
    qemu_bh_delete(s->bh);
    msix_uninit_exclusive_bar(pdev);
    spt_exec_free(s->exec);
}

static const Property spt_props[] = {
    DEFINE_PROP_UINT32("queues", SptState, num_queues, 4),
    DEFINE_PROP_UINT32("contexts", SptState, num_contexts, 16),
    DEFINE_PROP_UINT32("mac-array", SptState, mac_array, 1024),
    DEFINE_PROP_UINT32("sram-kib", SptState, sram_kib, 512),
    DEFINE_PROP_UINT32("clock-mhz", SptState, clock_mhz, 1000),
    DEFINE_PROP_UINT32("dram-mbps", SptState, dram_mbps, 25600),
    DEFINE_PROP_UINT32("mac-fj", SptState, mac_fj, 300),
    DEFINE_PROP_UINT32("skip-check-fj", SptState, skip_fj, 30),
    DEFINE_PROP_UINT32("exp-add-fj", SptState, exp_add_fj, 1000),
    DEFINE_PROP_UINT32("sram-fj-per-byte", SptState, sram_fj_per_byte, 1250),
    DEFINE_PROP_UINT32("dram-fj-per-byte", SptState, dram_fj_per_byte, 20000),
    DEFINE_PROP_UINT32("static-mw", SptState, static_mw, 50),
    DEFINE_PROP_BOOL("debug", SptState, debug, false),
    DEFINE_PROP_UINT32("fi-hang-after", SptState, fi_hang_after, 0),
    DEFINE_PROP_UINT32("fi-dma-error-after", SptState, fi_dma_err_after, 0),
    DEFINE_PROP_UINT32("fi-corrupt-after", SptState, fi_corrupt_after, 0),
};

static const VMStateDescription spt_vmstate = {
    .name = "spt",
    .unmigratable = 1,
};

static void spt_class_init(ObjectClass *klass, void *data)
{
    DeviceClass *dc = DEVICE_CLASS(klass);
    PCIDeviceClass *k = PCI_DEVICE_CLASS(klass);
    ResettableClass *rc = RESETTABLE_CLASS(klass);

    k->realize = spt_realize;
    k->exit = spt_exit;
    k->config_write = spt_write_config;
    k->vendor_id = SPT_PCI_VENDOR_ID;
    k->device_id = SPT_PCI_DEVICE_ID;
    k->revision = SPT_PCI_REVISION;
    k->class_id = SPT_PCI_CLASS;
    k->subsystem_vendor_id = SPT_PCI_SUBSYS_VENDOR;
    k->subsystem_id = SPT_PCI_SUBSYS_ID;
    rc->phases.hold = spt_reset_hold;
    dc->desc = "SPT sparsity-scaling DNN training accelerator";
    dc->vmsd = &spt_vmstate;
    device_class_set_props(dc, spt_props);
    set_bit(DEVICE_CATEGORY_MISC, dc->categories);
}

static const TypeInfo spt_info = {
    .name = TYPE_SPT,
    .parent = TYPE_PCI_DEVICE,
    .instance_size = sizeof(SptState),
    .class_init = spt_class_init,
    .interfaces = (InterfaceInfo[]) {
        { INTERFACE_PCIE_DEVICE },
        { }
    },
};

static void spt_register_types(void)
{
    type_register_static(&spt_info);
}

type_init(spt_register_types)
