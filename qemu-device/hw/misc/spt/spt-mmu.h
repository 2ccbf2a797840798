/*
 * SPT device MMU: per-context 4-level page-table walker (uapi/spt_hw.h).
 *
 * QEMU-independent: memory is reached through a callback, so the walker is
 * unit-tested and fuzzed outside QEMU (tests/fuzz/fuzz_cmdstream.c).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef HW_MISC_SPT_MMU_H
#define HW_MISC_SPT_MMU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Read @len bytes of guest-physical memory at @pa; 0 on success, -1 on error. */
typedef int (*SptPhysReadFn)(void *opaque, uint64_t pa, void *buf, size_t len);

#define SPT_TLB_ENTRIES 64

typedef struct SptTlbEntry {
    uint64_t vpn;           /* VA >> 12, or UINT64_MAX when empty */
    uint64_t pte;           /* leaf entry */
} SptTlbEntry;

typedef struct SptMmu {
    SptPhysReadFn read;
    void *opaque;
    uint64_t ctx_table;     /* guest-physical */
    uint32_t num_contexts;
    uint32_t ctx;           /* current context */
    uint64_t root;          /* its level-4 table */
    uint64_t walks;         /* statistics: table walks done */
    SptTlbEntry tlb[SPT_TLB_ENTRIES];
    /* walk cache: the level-1 table covering one 2 MiB region */
    uint64_t l1_region;     /* VA >> 21, or UINT64_MAX when empty */
    uint64_t l1[512];
} SptMmu;

void spt_mmu_init(SptMmu *m, SptPhysReadFn read, void *opaque,
                  uint64_t ctx_table, uint32_t num_contexts);
void spt_mmu_flush(SptMmu *m);
/* Select @ctx: returns SPT_ERR_NONE, SPT_ERR_BAD_CONTEXT or SPT_ERR_DMA. */
int spt_mmu_set_context(SptMmu *m, uint32_t ctx);
/*
 * Translate @va for @access (SPT_ACCESS_READ/WRITE) in the current context:
 * SPT_ERR_NONE and *pa, SPT_ERR_MMU_FAULT, or SPT_ERR_DMA (table unreadable).
 */
int spt_mmu_translate(SptMmu *m, uint64_t va, unsigned access, uint64_t *pa);

#endif
