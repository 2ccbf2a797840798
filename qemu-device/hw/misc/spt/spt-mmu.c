/*
 * SPT device MMU: per-context 4-level page-table walker.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <string.h>

#include "spt-mmu.h"
#include "spt_hw.h"

void spt_mmu_flush(SptMmu *m)
{
    for (unsigned i = 0; i < SPT_TLB_ENTRIES; i++) {
        m->tlb[i].vpn = UINT64_MAX;
        m->tlb[i].pte = 0;
    }
    m->l1_region = UINT64_MAX;
}

void spt_mmu_init(SptMmu *m, SptPhysReadFn read, void *opaque,
                  uint64_t ctx_table, uint32_t num_contexts)
{
    memset(m, 0, sizeof(*m));
    m->read = read;
    m->opaque = opaque;
    m->ctx_table = ctx_table;
    m->num_contexts = num_contexts;
    m->ctx = UINT32_MAX;
    spt_mmu_flush(m);
}

static int spt_mmu_read_u64(SptMmu *m, uint64_t pa, uint64_t *val)
{
    uint8_t b[8];

    if (m->read(m->opaque, pa, b, sizeof(b))) {
        return -1;
    }
    *val = 0;
    for (int i = 7; i >= 0; i--) {
        *val = (*val << 8) | b[i];
    }
    return 0;
}

int spt_mmu_set_context(SptMmu *m, uint32_t ctx)
{
    uint64_t root, reserved;
    uint64_t ent;

    spt_mmu_flush(m);
    m->ctx = UINT32_MAX;
    m->root = 0;
    if (ctx >= m->num_contexts || !m->ctx_table) {
        return SPT_ERR_BAD_CONTEXT;
    }
    ent = m->ctx_table + (uint64_t)ctx * sizeof(struct spt_ctx_entry);
    if (spt_mmu_read_u64(m, ent, &root) || spt_mmu_read_u64(m, ent + 8, &reserved)) {
        return SPT_ERR_DMA;
    }
    if (!(root & SPT_CTX_VALID) || reserved) {
        return SPT_ERR_BAD_CONTEXT;
    }
    m->ctx = ctx;
    m->root = root & SPT_PTE_ADDR_MASK;
    return SPT_ERR_NONE;
}

int spt_mmu_translate(SptMmu *m, uint64_t va, unsigned access, uint64_t *pa)
{
    uint64_t vpn = va >> SPT_PAGE_SHIFT;
    SptTlbEntry *t = &m->tlb[vpn % SPT_TLB_ENTRIES];
    uint64_t table, pte = 0;
    uint64_t need = (access & SPT_ACCESS_WRITE ? SPT_PTE_WRITE : 0) |
                    (access & SPT_ACCESS_READ ? SPT_PTE_READ : 0);

    if (m->ctx == UINT32_MAX || (va >> SPT_VA_BITS) != 0) {
        return SPT_ERR_MMU_FAULT;
    }
    if (t->vpn != vpn) {
        if (m->l1_region != va >> 21) {
            /* walk levels 4..2, then fetch the whole level-1 table */
            table = m->root;
            for (int level = SPT_PT_LEVELS; level >= 2; level--) {
                unsigned idx = (vpn >> (9 * (level - 1))) & (SPT_PT_ENTRIES - 1);

                m->walks++;
                if (spt_mmu_read_u64(m, table + idx * 8ull, &pte)) {
                    return SPT_ERR_DMA;
                }
                if (!(pte & SPT_PTE_VALID)) {
                    return SPT_ERR_MMU_FAULT;
                }
                table = pte & SPT_PTE_ADDR_MASK;
            }
            m->l1_region = UINT64_MAX;
            if (m->read(m->opaque, table, m->l1, sizeof(m->l1))) {
                return SPT_ERR_DMA;
            }
            m->l1_region = va >> 21;
        }
        pte = m->l1[vpn & (SPT_PT_ENTRIES - 1)];    /* little-endian host */
        if (!(pte & SPT_PTE_VALID)) {
            return SPT_ERR_MMU_FAULT;
        }
        t->vpn = vpn;
        t->pte = pte;
    }
    if ((t->pte & need) != need) {
        return SPT_ERR_MMU_FAULT;
    }
    *pa = (t->pte & SPT_PTE_ADDR_MASK) | (va & (SPT_PAGE_SIZE - 1));
    return SPT_ERR_NONE;
}
