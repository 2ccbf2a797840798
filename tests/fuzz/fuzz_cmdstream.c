/*
 * libFuzzer harness over the SPT device's command-stream interpreter and
 * MMU walker (qemu-device/hw/misc/spt/spt-exec.c, spt-mmu.c), run outside
 * QEMU against a flat 1 MiB "guest memory".
 *
 * Input: byte 0 selects the mode (bits 1-2: job context 0 valid, 1 invalid
 * entry, 2 valid alias of 0, 3 out of range; bit 0: the next 4 KiB of input
 * also overwrite the level-1 page table, fuzzing the walker; bit 3: the
 * job asks for a fence), bytes 4-7 are the command stream length (LE;
 * 0: all), the rest is copied to VA 0x10000000 (PA 0x10000): the command
 * stream, followed by the data its commands address.  Page 0x100f0000 is read-only, page
 * 0x100f1000 maps outside memory (bus error), everything else is unmapped.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* keep single runs short: operands and results up to 4 MiB */
#define SPT_EXEC_XFER_MAX (4u << 20)
#include "../../qemu-device/hw/misc/spt/spt-mmu.c"
#include "../../qemu-device/hw/misc/spt/spt-exec.c"

#define MEM_SIZE        (1u << 20)
#define CTX_TABLE       0x5000u
#define L4              0x1000u
#define L3              0x2000u
#define L2              0x3000u
#define L1              0x4000u
#define DATA_PA         0x10000u
#define DATA_VA         0x10000000ull
#define DATA_PAGES      240u

static uint8_t mem[MEM_SIZE];

static int fz_read(void *opaque, uint64_t pa, void *buf, size_t len)
{
    (void)opaque;
    if (pa >= MEM_SIZE || len > MEM_SIZE - pa) {
        return -1;
    }
    memcpy(buf, mem + pa, len);
    return 0;
}

static int fz_write(void *opaque, uint64_t pa, const void *buf, size_t len)
{
    (void)opaque;
    if (pa >= MEM_SIZE || len > MEM_SIZE - pa) {
        return -1;
    }
    memcpy(mem + pa, buf, len);
    return 0;
}

static uint64_t fz_now(void *opaque)
{
    (void)opaque;
    return 12345;
}

static const SptExecOps fz_ops = {
    .read = fz_read,
    .write = fz_write,
    .now_ns = fz_now,
};

static void put64(uint64_t pa, uint64_t v)
{
    memcpy(mem + pa, &v, 8);
}

static void fz_tables(void)
{
    uint64_t va = DATA_VA;

    memset(mem, 0, DATA_PA);
    put64(CTX_TABLE + 0 * 16, L4 | SPT_CTX_VALID);
    put64(CTX_TABLE + 1 * 16, L4);                  /* not valid */
    put64(CTX_TABLE + 2 * 16, L4 | SPT_CTX_VALID);
    put64(L4 + ((va >> 39) & 511) * 8, L3 | SPT_PTE_VALID);
    put64(L3 + ((va >> 30) & 511) * 8, L2 | SPT_PTE_VALID);
    put64(L2 + ((va >> 21) & 511) * 8, L1 | SPT_PTE_VALID);
    for (unsigned i = 0; i < DATA_PAGES; i++) {
        put64(L1 + (((va >> 12) + i) & 511) * 8,
              (DATA_PA + i * 4096ull) | SPT_PTE_VALID | SPT_PTE_READ | SPT_PTE_WRITE);
    }
    put64(L1 + (((va >> 12) + DATA_PAGES) & 511) * 8,
          (DATA_PA + DATA_PAGES * 4096ull) | SPT_PTE_VALID | SPT_PTE_READ);
    put64(L1 + (((va >> 12) + DATA_PAGES + 1) & 511) * 8,
          (1ull << 40) | SPT_PTE_VALID | SPT_PTE_READ | SPT_PTE_WRITE);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint32_t ctxs[4] = { 0, 1, 2, 99 };
    struct spt_job_desc d;
    struct spt_job_cpl cpl;
    static SptExec *e;
    size_t n;
    uint32_t len;
    uint8_t mode;

    if (size < 8) {
        return 0;
    }
    mode = data[0];
    memcpy(&len, data + 4, 4);
    data += 8;
    size -= 8;
    fz_tables();
    if ((mode & 1) && size >= 4096) {
        memcpy(mem + L1, data, 4096);
        data += 4096;
        size -= 4096;
    }
    n = size < MEM_SIZE - DATA_PA ? size : MEM_SIZE - DATA_PA;
    memset(mem + DATA_PA, 0, MEM_SIZE - DATA_PA);
    memcpy(mem + DATA_PA, data, n);

    memset(&d, 0, sizeof(d));
    d.ctx = ctxs[(mode >> 1) & 3];
    d.cmd_va = DATA_VA;
    d.cmd_len = len ? len : (uint32_t)(n & ~(size_t)7);
    if (mode & 8) {
        d.flags = SPT_JOB_FENCE;
        d.fence_va = DATA_VA + 8;
        d.fence_value = 1;
    }
    if (!e) {
        e = spt_exec_new(&fz_ops, NULL, NULL);
        spt_exec_set_contexts(e, CTX_TABLE, 16);
    }
    if (spt_exec_job(e, &d, &cpl)) {
        spt_exec_fence(e, &d);
#ifdef FUZZ_VERBOSE
        fprintf(stderr, "status %u error %u offset %u cmds %u fault 0x%llx\n",
                cpl.status, cpl.error_code, cpl.error_offset, cpl.cmds_done,
                (unsigned long long)cpl.fault_va);
#endif
    }
    return 0;
}
