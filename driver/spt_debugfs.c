// SPDX-License-Identifier: GPL-2.0-only
/*
 * Copyright (C) 2026 The SPT authors
 */

#include <linux/debugfs.h>
#include <linux/seq_file.h>
#include <drm/drm_debugfs.h>
#include <drm/drm_drv.h>
#include <drm/drm_file.h>

#include "spt_drv.h"

static int spt_debugfs_rings(struct seq_file *m, void *data)
{
	struct drm_debugfs_entry *entry = m->private;
	struct spt_device *sdev = to_spt_device(entry->dev);
	unsigned long flags;
	u32 q, hw_head, hw_tail, qstat;
	int idx;

	if (!drm_dev_enter(&sdev->drm, &idx))
		return -ENODEV;

	for (q = 0; q < sdev->nr_hwq; q++) {
		struct spt_hwq *hwq = &sdev->hwq[q];
		u32 base = SPT_REG_QUEUE(q);

		hw_head = spt_rd(sdev, base + SPT_QREG_HEAD);
		hw_tail = spt_rd(sdev, base + SPT_QREG_TAIL);
		qstat = spt_rd(sdev, base + SPT_QREG_STATUS);
		spin_lock_irqsave(&hwq->lock, flags);
		seq_printf(m, "%s: size %u head %u tail %u hw_head %u hw_tail %u status %#x stalls %u\n",
			   hwq->name, hwq->size, hwq->head, hwq->tail, hw_head,
			   hw_tail, qstat, hwq->stalls);
		spin_unlock_irqrestore(&hwq->lock, flags);
	}
	seq_printf(m, "status %#x err_status %#x last_err %#x info %#x va %#llx\n",
		   spt_rd(sdev, SPT_REG_STATUS), spt_rd(sdev, SPT_REG_ERR_STATUS),
		   sdev->last_err_status, sdev->last_err_info, sdev->last_err_va);
	if (sdev->caps & SPT_CAP_DEBUG)
		seq_printf(m, "jobs_started %u\n", spt_rd(sdev, SPT_REG_DBG_JOBS_STARTED));
	drm_dev_exit(idx);
	return 0;
}

static int spt_debugfs_contexts(struct seq_file *m, void *data)
{
	struct drm_debugfs_entry *entry = m->private;
	struct spt_device *sdev = to_spt_device(entry->dev);
	struct drm_file *file;

	mutex_lock(&sdev->drm.filelist_mutex);
	list_for_each_entry(file, &sdev->drm.filelist, lhead) {
		struct spt_file *sfile = file->driver_priv;

		if (!sfile)
			continue;
		seq_printf(m, "ctx %u: enabled %d root %pad done %llu failed %llu faults %llu guilty %llu\n",
			   sfile->vm.ctx, sfile->vm.enabled, &sfile->vm.root.dma,
			   (u64)atomic64_read(&sfile->cnt.done),
			   (u64)atomic64_read(&sfile->cnt.failed),
			   (u64)atomic64_read(&sfile->cnt.faults),
			   (u64)atomic64_read(&sfile->guilty));
	}
	mutex_unlock(&sdev->drm.filelist_mutex);
	return 0;
}

static void spt_debugfs_pt_dump(struct seq_file *m, struct spt_pt *pt,
				unsigned int level, u64 va)
{
	unsigned int i;

	for (i = 0; i < SPT_PT_ENTRIES; i++) {
		u64 pte = le64_to_cpu(pt->cpu[i]);
		u64 sub = va | ((u64)i << (SPT_PAGE_SHIFT + 9 * (level - 1)));

		if (!pte)
			continue;
		if (level == 1)
			seq_printf(m, "  %#014llx -> %#llx %c%c\n", sub, pte & SPT_PTE_ADDR_MASK,
				   pte & SPT_PTE_READ ? 'r' : '-', pte & SPT_PTE_WRITE ? 'w' : '-');
		else if (pt->child && pt->child[i])
			spt_debugfs_pt_dump(m, pt->child[i], level - 1, sub);
	}
}

static int spt_debugfs_page_tables(struct seq_file *m, void *data)
{
	struct drm_debugfs_entry *entry = m->private;
	struct spt_device *sdev = to_spt_device(entry->dev);
	struct drm_file *file;

	mutex_lock(&sdev->drm.filelist_mutex);
	list_for_each_entry(file, &sdev->drm.filelist, lhead) {
		struct spt_file *sfile = file->driver_priv;

		if (!sfile)
			continue;
		seq_printf(m, "ctx %u:\n", sfile->vm.ctx);
		mutex_lock(&sfile->vm.lock);
		if (sfile->vm.root.cpu)
			spt_debugfs_pt_dump(m, &sfile->vm.root, SPT_PT_LEVELS, 0);
		mutex_unlock(&sfile->vm.lock);
	}
	mutex_unlock(&sdev->drm.filelist_mutex);
	return 0;
}

static const struct drm_debugfs_info spt_debugfs_list[] = {
	{ "rings", spt_debugfs_rings, 0 },
	{ "contexts", spt_debugfs_contexts, 0 },
	{ "page_tables", spt_debugfs_page_tables, 0 },
};

/*
 * Fault injection: N arms the fault for the N-th job the device starts after
 * the write (0 disarms).  The device counts jobs since its last reset, so the
 * driver adds DBG_JOBS_STARTED.
 */
static int spt_fi_set(struct spt_device *sdev, u32 reg, u64 val)
{
	int idx;

	if (!(sdev->caps & SPT_CAP_DEBUG))
		return -EOPNOTSUPP;
	if (val > U32_MAX / 2)
		return -EINVAL;
	if (!drm_dev_enter(&sdev->drm, &idx))
		return -ENODEV;
	if (val)
		val += spt_rd(sdev, SPT_REG_DBG_JOBS_STARTED);
	spt_wr(sdev, reg, val);
	drm_dev_exit(idx);
	return 0;
}

static int spt_fi_get(struct spt_device *sdev, u32 reg, u64 *val)
{
	int idx;

	if (!drm_dev_enter(&sdev->drm, &idx))
		return -ENODEV;
	*val = spt_rd(sdev, reg);
	drm_dev_exit(idx);
	return 0;
}

#define SPT_FI_ATTR(name, offset)					\
static int name##_set(void *data, u64 val)				\
{									\
	return spt_fi_set(data, SPT_REG_DBG_##offset, val);		\
}									\
static int name##_get(void *data, u64 *val)				\
{									\
	return spt_fi_get(data, SPT_REG_DBG_##offset, val);		\
}									\
DEFINE_DEBUGFS_ATTRIBUTE(name##_fops, name##_get, name##_set, "%llu\n")

SPT_FI_ATTR(spt_fi_hang, HANG_AFTER);
SPT_FI_ATTR(spt_fi_dma_err, DMA_ERR_AFTER);
SPT_FI_ATTR(spt_fi_corrupt, CORRUPT_AFTER);

static int spt_reset_set(void *data, u64 val)
{
	struct spt_device *sdev = data;
	int idx, ret;

	if (val != 1)
		return -EINVAL;
	if (!drm_dev_enter(&sdev->drm, &idx))
		return -ENODEV;
	ret = spt_device_reset(sdev, NULL, false);
	drm_dev_exit(idx);
	return ret;
}
DEFINE_DEBUGFS_ATTRIBUTE(spt_reset_fops, NULL, spt_reset_set, "%llu\n");

void spt_debugfs_init(struct spt_device *sdev)
{
	struct dentry *root = sdev->drm.debugfs_root;

	drm_debugfs_add_files(&sdev->drm, spt_debugfs_list, ARRAY_SIZE(spt_debugfs_list));
	if (IS_ERR_OR_NULL(root))
		return;
	debugfs_create_file_unsafe("fi_hang_after", 0600, root, sdev, &spt_fi_hang_fops);
	debugfs_create_file_unsafe("fi_dma_err_after", 0600, root, sdev, &spt_fi_dma_err_fops);
	debugfs_create_file_unsafe("fi_corrupt_after", 0600, root, sdev, &spt_fi_corrupt_fops);
	debugfs_create_file_unsafe("reset", 0200, root, sdev, &spt_reset_fops);
}
