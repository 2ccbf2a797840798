// SPDX-License-Identifier: GPL-2.0-only
/*
 * Copyright (C) 2026 The SPT authors
 */

#include <linux/dma-mapping.h>
#include <linux/scatterlist.h>
#include <drm/drm_drv.h>
#include <drm/drm_managed.h>
#include <drm/drm_print.h>

#include "spt_drv.h"

#define SPT_PT_SIZE		(SPT_PT_ENTRIES * sizeof(u64))

static unsigned int spt_pt_index(u64 va, unsigned int level)
{
	return (va >> (SPT_PAGE_SHIFT + 9 * (level - 1))) & (SPT_PT_ENTRIES - 1);
}

static void spt_mmu_fini_action(struct drm_device *drm, void *arg)
{
	spt_mmu_fini(arg);
}

int spt_mmu_init(struct spt_device *sdev)
{
	struct device *dev = sdev->drm.dev;

	ida_init(&sdev->ctx_ida);
	spin_lock_init(&sdev->mmu_lock);
	sdev->ctx_table_size = PAGE_ALIGN(sdev->num_contexts * sizeof(struct spt_ctx_entry));
	sdev->ctx_table = dma_alloc_coherent(dev, sdev->ctx_table_size,
					     &sdev->ctx_table_dma, GFP_KERNEL);
	if (!sdev->ctx_table)
		return -ENOMEM;

	return drmm_add_action_or_reset(&sdev->drm, spt_mmu_fini_action, sdev);
}

void spt_mmu_fini(struct spt_device *sdev)
{
	if (!sdev->ctx_table)
		return;

	dma_free_coherent(sdev->drm.dev, sdev->ctx_table_size, sdev->ctx_table,
			  sdev->ctx_table_dma);
	sdev->ctx_table = NULL;
	ida_destroy(&sdev->ctx_ida);
}

void spt_mmu_hw_init(struct spt_device *sdev)
{
	spt_wr64(sdev, SPT_REG_MMU_CTX_TABLE_LO, sdev->ctx_table_dma);
	spt_wr(sdev, SPT_REG_MMU_TLB_INV, SPT_TLB_INV_ALL);
}

void spt_mmu_tlb_inv(struct spt_device *sdev, u32 ctx)
{
	unsigned long flags;
	int idx;

	if (!drm_dev_enter(&sdev->drm, &idx))
		return;

	spin_lock_irqsave(&sdev->mmu_lock, flags);
	spt_wr(sdev, SPT_REG_MMU_TLB_INV, ctx);
	spin_unlock_irqrestore(&sdev->mmu_lock, flags);
	drm_dev_exit(idx);
}

static void spt_ctx_set(struct spt_device *sdev, u32 ctx, u64 root)
{
	unsigned long flags;

	spin_lock_irqsave(&sdev->mmu_lock, flags);
	WRITE_ONCE(sdev->ctx_table[ctx].reserved, 0);
	WRITE_ONCE(sdev->ctx_table[ctx].root, spt_le64(root));
	spin_unlock_irqrestore(&sdev->mmu_lock, flags);
	dma_wmb();
	spt_mmu_tlb_inv(sdev, ctx);
}

static int spt_pt_alloc(struct spt_device *sdev, struct spt_pt *pt, unsigned int level)
{
	pt->cpu = dma_alloc_coherent(sdev->drm.dev, SPT_PT_SIZE, &pt->dma, GFP_KERNEL);
	if (!pt->cpu)
		return -ENOMEM;

	if (level > 1) {
		pt->child = kcalloc(SPT_PT_ENTRIES, sizeof(*pt->child), GFP_KERNEL);
		if (!pt->child) {
			dma_free_coherent(sdev->drm.dev, SPT_PT_SIZE, pt->cpu, pt->dma);
			pt->cpu = NULL;
			return -ENOMEM;
		}
	}
	return 0;
}

static void spt_pt_free(struct spt_device *sdev, struct spt_pt *pt, unsigned int level)
{
	unsigned int i;

	if (pt->child) {
		for (i = 0; i < SPT_PT_ENTRIES; i++) {
			if (!pt->child[i])
				continue;
			spt_pt_free(sdev, pt->child[i], level - 1);
			kfree(pt->child[i]);
		}
		kfree(pt->child);
		pt->child = NULL;
	}
	if (pt->cpu)
		dma_free_coherent(sdev->drm.dev, SPT_PT_SIZE, pt->cpu, pt->dma);
	pt->cpu = NULL;
}

int spt_vm_init(struct spt_device *sdev, struct spt_vm *vm)
{
	int ret;

	vm->sdev = sdev;
	mutex_init(&vm->lock);
	ret = ida_alloc_max(&sdev->ctx_ida, sdev->num_contexts - 1, GFP_KERNEL);
	if (ret < 0)
		return ret == -ENOSPC ? -EBUSY : ret;
	vm->ctx = ret;

	ret = spt_pt_alloc(sdev, &vm->root, SPT_PT_LEVELS);
	if (ret) {
		ida_free(&sdev->ctx_ida, vm->ctx);
		return ret;
	}

	drm_mm_init(&vm->mm, SPT_VA_START, SPT_VA_END - SPT_VA_START);
	spt_ctx_set(sdev, vm->ctx, vm->root.dma | SPT_CTX_VALID);
	vm->enabled = true;
	return 0;
}

/* Makes every later access of the context fault (BAD_CONTEXT). */
void spt_vm_disable(struct spt_vm *vm)
{
	if (!vm->enabled)
		return;
	spt_ctx_set(vm->sdev, vm->ctx, 0);
	vm->enabled = false;
}

void spt_vm_fini(struct spt_vm *vm)
{
	struct spt_device *sdev = vm->sdev;

	spt_vm_disable(vm);
	mutex_lock(&vm->lock);
	drm_mm_takedown(&vm->mm);
	spt_pt_free(sdev, &vm->root, SPT_PT_LEVELS);
	mutex_unlock(&vm->lock);
	ida_free(&sdev->ctx_ida, vm->ctx);
	mutex_destroy(&vm->lock);
}

static __le64 *spt_vm_pte(struct spt_vm *vm, u64 va, bool alloc)
{
	struct spt_pt *pt = &vm->root;
	unsigned int level, i;

	for (level = SPT_PT_LEVELS; level > 1; level--) {
		i = spt_pt_index(va, level);
		if (!pt->child[i]) {
			struct spt_pt *next;

			if (!alloc)
				return NULL;
			next = kzalloc(sizeof(*next), GFP_KERNEL);
			if (!next || spt_pt_alloc(vm->sdev, next, level - 1)) {
				kfree(next);
				return NULL;
			}
			pt->child[i] = next;
			WRITE_ONCE(pt->cpu[i], cpu_to_le64(next->dma | SPT_PTE_VALID));
		}
		pt = pt->child[i];
	}
	return &pt->cpu[spt_pt_index(va, 1)];
}

static void spt_vm_clear(struct spt_vm *vm, u64 va, u64 size)
{
	u64 end = va + size;
	__le64 *pte;

	for (; va < end; va += SPT_PAGE_SIZE) {
		pte = spt_vm_pte(vm, va, false);
		if (pte)
			WRITE_ONCE(*pte, cpu_to_le64(0));
	}
}

/*
 * Allocates a VA range with one unmapped guard page after it and maps the
 * pages of @sgt there.
 */
int spt_vm_map(struct spt_vm *vm, struct drm_mm_node *node, u64 size,
	       struct sg_table *sgt, bool readonly)
{
	u64 flags = SPT_PTE_VALID | SPT_PTE_READ | (readonly ? 0 : SPT_PTE_WRITE);
	struct sg_dma_page_iter iter;
	u64 va, mapped = 0;
	__le64 *pte;
	int ret;

	mutex_lock(&vm->lock);
	ret = drm_mm_insert_node_generic(&vm->mm, node, size + SPT_PAGE_SIZE,
					 SPT_PAGE_SIZE, 0, DRM_MM_INSERT_BEST);
	if (ret)
		goto out_unlock;

	va = node->start;
	for_each_sgtable_dma_page(sgt, &iter, 0) {
		if (mapped >= size)
			break;
		pte = spt_vm_pte(vm, va + mapped, true);
		if (!pte) {
			ret = -ENOMEM;
			goto err_clear;
		}
		WRITE_ONCE(*pte, cpu_to_le64((sg_page_iter_dma_address(&iter) &
					      SPT_PTE_ADDR_MASK) | flags));
		mapped += SPT_PAGE_SIZE;
	}
	dma_wmb();
	mutex_unlock(&vm->lock);
	spt_dbg(vm->sdev, MMU, "ctx %u map %#llx+%#llx\n", vm->ctx, va, size);
	return 0;

err_clear:
	spt_vm_clear(vm, va, mapped);
	drm_mm_remove_node(node);
out_unlock:
	mutex_unlock(&vm->lock);
	return ret;
}

void spt_vm_unmap(struct spt_vm *vm, struct drm_mm_node *node)
{
	spt_dbg(vm->sdev, MMU, "ctx %u unmap %#llx\n", vm->ctx, node->start);
	mutex_lock(&vm->lock);
	spt_vm_clear(vm, node->start, node->size);
	drm_mm_remove_node(node);
	dma_wmb();
	mutex_unlock(&vm->lock);
	spt_mmu_tlb_inv(vm->sdev, vm->ctx);
}
