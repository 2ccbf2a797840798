// SPDX-License-Identifier: GPL-2.0-only
/*
 * Copyright (C) 2026 The SPT authors
 */

#include <linux/module.h>
#include <linux/pci.h>
#include <drm/drm_accel.h>
#include <drm/drm_drv.h>
#include <drm/drm_file.h>
#include <drm/drm_gem.h>
#include <drm/drm_gem_shmem_helper.h>
#include <drm/drm_ioctl.h>
#include <drm/drm_print.h>
#include <drm/spt_accel.h>

#include "spt_drv.h"

u32 spt_dbg_mask;
module_param_named(dbg_mask, spt_dbg_mask, uint, 0644);
MODULE_PARM_DESC(dbg_mask, "Debug message mask (1 probe, 2 job, 4 mmu, 8 irq, 16 reset, 32 file)");

unsigned int spt_job_timeout_ms = 2000;
module_param_named(job_timeout_ms, spt_job_timeout_ms, uint, 0444);
MODULE_PARM_DESC(job_timeout_ms, "Time without progress before a job is declared hung");

unsigned int spt_job_max_stalls = 15;
module_param_named(job_max_stalls, spt_job_max_stalls, uint, 0644);
MODULE_PARM_DESC(job_max_stalls, "Timeouts a device that is not hung may take for one job before reset");

unsigned int spt_ring_entries = 64;
module_param_named(ring_entries, spt_ring_entries, uint, 0444);
MODULE_PARM_DESC(ring_entries, "Descriptors per hardware ring (power of two)");

unsigned int spt_hw_queues;
module_param_named(hw_queues, spt_hw_queues, uint, 0444);
MODULE_PARM_DESC(hw_queues, "Hardware queues to use (0 = all)");

static void spt_file_release(struct kref *ref)
{
	struct spt_file *sfile = container_of(ref, struct spt_file, ref);

	kfree(sfile);
}

void spt_file_put(struct spt_file *sfile)
{
	kref_put(&sfile->ref, spt_file_release);
}

static int spt_open(struct drm_device *dev, struct drm_file *file)
{
	struct spt_device *sdev = to_spt_device(dev);
	struct spt_file *sfile;
	int ret;

	sfile = kzalloc(sizeof(*sfile), GFP_KERNEL);
	if (!sfile)
		return -ENOMEM;

	kref_init(&sfile->ref);
	init_waitqueue_head(&sfile->hw_idle);
	sfile->sdev = sdev;
	sfile->file = file;
	xa_init_flags(&sfile->queues, XA_FLAGS_ALLOC1);

	ret = spt_vm_init(sdev, &sfile->vm);
	if (ret) {
		kfree(sfile);
		return ret;
	}

	file->driver_priv = sfile;
	spt_dbg(sdev, FILE, "open: ctx %u\n", sfile->vm.ctx);
	return 0;
}

static void spt_postclose(struct drm_device *dev, struct drm_file *file)
{
	struct spt_file *sfile = file->driver_priv;

	spt_queues_destroy(sfile);
	spt_vm_fini(&sfile->vm);
	xa_destroy(&sfile->queues);
	spt_dbg(sfile->sdev, FILE, "close: ctx %u\n", sfile->vm.ctx);
	spt_file_put(sfile);
}

static int spt_query_device(struct spt_device *sdev, struct drm_spt_query_device *q)
{
	q->abi_major = DRM_SPT_ABI_VERSION_MAJOR;
	q->abi_minor = DRM_SPT_ABI_VERSION_MINOR;
	q->hw_version = sdev->hw_version;
	q->caps = sdev->caps;
	q->formats = sdev->formats;
	q->cmd_version = sdev->cmd_version;
	q->num_hw_queues = sdev->nr_hwq;
	q->num_contexts = sdev->num_contexts;
	q->max_queues = SPT_MAX_QUEUES_PER_FILE;
	q->mac_array = sdev->mac_array;
	q->sram_kib = sdev->sram_kib;
	q->clock_mhz = sdev->clock_mhz;
	q->dram_mbps = sdev->dram_mbps;
	q->va_start = SPT_VA_START;
	q->va_end = SPT_VA_END;
	q->max_bo_size = SPT_MAX_BO_SIZE;
	q->max_cmd_size = sdev->cmd_max;
	q->max_bo_refs = SPT_MAX_BO_REFS;
	q->max_in_syncs = SPT_MAX_IN_SYNCS;
	q->job_timeout_ms = spt_job_timeout_ms;
	return 0;
}

static void spt_query_status(struct spt_file *sfile, struct drm_spt_query_status *q)
{
	q->resets = atomic64_read(&sfile->sdev->cnt.resets);
	q->guilty_jobs = atomic64_read(&sfile->guilty);
	q->faulted_jobs = atomic64_read(&sfile->cnt.faults);
	q->failed_jobs = atomic64_read(&sfile->cnt.failed);
	q->done_jobs = atomic64_read(&sfile->cnt.done);
	q->last_fault_va = atomic64_read(&sfile->last_fault_va);
	q->ctx = sfile->vm.ctx;
}

static int spt_ioctl_dev_query(struct drm_device *dev, void *data, struct drm_file *file)
{
	struct spt_device *sdev = to_spt_device(dev);
	struct drm_spt_dev_query *args = data;
	union {
		struct drm_spt_query_device dev;
		struct drm_spt_query_status status;
	} u;
	u32 size;

	memset(&u, 0, sizeof(u));
	switch (args->type) {
	case DRM_SPT_QUERY_DEVICE:
		spt_query_device(sdev, &u.dev);
		size = sizeof(u.dev);
		break;
	case DRM_SPT_QUERY_STATUS:
		spt_query_status(file->driver_priv, &u.status);
		size = sizeof(u.status);
		break;
	default:
		return -EINVAL;
	}

	if (!args->pointer) {
		args->size = size;
		return 0;
	}

	size = min(size, args->size);
	if (copy_to_user(u64_to_user_ptr(args->pointer), &u, size))
		return -EFAULT;
	args->size = size;
	return 0;
}

static const struct drm_ioctl_desc spt_ioctls[] = {
	DRM_IOCTL_DEF_DRV(SPT_DEV_QUERY, spt_ioctl_dev_query, 0),
	DRM_IOCTL_DEF_DRV(SPT_BO_CREATE, spt_ioctl_bo_create, 0),
	DRM_IOCTL_DEF_DRV(SPT_BO_INFO, spt_ioctl_bo_info, 0),
	DRM_IOCTL_DEF_DRV(SPT_BO_WAIT, spt_ioctl_bo_wait, 0),
	DRM_IOCTL_DEF_DRV(SPT_QUEUE_CREATE, spt_ioctl_queue_create, 0),
	DRM_IOCTL_DEF_DRV(SPT_QUEUE_DESTROY, spt_ioctl_queue_destroy, 0),
	DRM_IOCTL_DEF_DRV(SPT_SUBMIT, spt_ioctl_submit, 0),
};

static void spt_show_fdinfo(struct drm_printer *p, struct drm_file *file)
{
	struct spt_file *sfile = file->driver_priv;

	drm_printf(p, "drm-engine-spt:\t%llu ns\n",
		   (u64)atomic64_read(&sfile->cnt.busy_ns));
	drm_printf(p, "drm-cycles-spt:\t%llu\n",
		   (u64)atomic64_read(&sfile->cnt.cycles));
	drm_printf(p, "spt-ctx:\t%u\n", sfile->vm.ctx);
	drm_printf(p, "spt-jobs-done:\t%llu\n",
		   (u64)atomic64_read(&sfile->cnt.done));
	drm_printf(p, "spt-jobs-failed:\t%llu\n",
		   (u64)atomic64_read(&sfile->cnt.failed));
	drm_show_memory_stats(p, file);
}

static const struct file_operations spt_fops = {
	.owner = THIS_MODULE,
	DRM_ACCEL_FOPS,
	.show_fdinfo = drm_show_fdinfo,
};

static const struct drm_driver spt_drm_driver = {
	.driver_features = DRIVER_GEM | DRIVER_COMPUTE_ACCEL |
			   DRIVER_SYNCOBJ | DRIVER_SYNCOBJ_TIMELINE,
	.open = spt_open,
	.postclose = spt_postclose,
	.gem_create_object = spt_gem_create_object,
	.gem_prime_import_sg_table = drm_gem_shmem_prime_import_sg_table,
	.show_fdinfo = spt_show_fdinfo,
	.ioctls = spt_ioctls,
	.num_ioctls = ARRAY_SIZE(spt_ioctls),
	.fops = &spt_fops,
	.name = SPT_DRIVER_NAME,
	.desc = SPT_DRIVER_DESC,
	.date = "20261127",
	.major = DRM_SPT_ABI_VERSION_MAJOR,
	.minor = DRM_SPT_ABI_VERSION_MINOR,
};

static int spt_pci_init(struct spt_device *sdev)
{
	struct pci_dev *pdev = sdev->pdev;
	int ret;

	ret = pcim_enable_device(pdev);
	if (ret)
		return ret;

	sdev->regs = pcim_iomap_region(pdev, SPT_BAR_REGS, SPT_DRIVER_NAME);
	if (IS_ERR(sdev->regs))
		return PTR_ERR(sdev->regs);

	sdev->doorbells = pcim_iomap_region(pdev, SPT_BAR_DOORBELL, SPT_DRIVER_NAME);
	if (IS_ERR(sdev->doorbells))
		return PTR_ERR(sdev->doorbells);

	ret = dma_set_mask_and_coherent(&pdev->dev, DMA_BIT_MASK(64));
	if (ret)
		return ret;

	dma_set_max_seg_size(&pdev->dev, UINT_MAX);
	pci_set_master(pdev);
	return 0;
}

static int spt_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	struct spt_device *sdev;
	int ret;

	sdev = devm_drm_dev_alloc(&pdev->dev, &spt_drm_driver, struct spt_device, drm);
	if (IS_ERR(sdev))
		return PTR_ERR(sdev);

	sdev->pdev = pdev;
	pci_set_drvdata(pdev, sdev);

	ret = spt_pci_init(sdev);
	if (ret)
		return ret;

	ret = spt_device_init(sdev);
	if (ret)
		return ret;

	ret = spt_mmu_init(sdev);
	if (ret)
		return ret;

	ret = spt_job_init(sdev);
	if (ret)
		return ret;

	ret = spt_irq_init(sdev);
	if (ret)
		return ret;

	ret = spt_device_start(sdev);
	if (ret)
		goto err_irq_fini;

	spt_debugfs_init(sdev);

	ret = drm_dev_register(&sdev->drm, 0);
	if (ret)
		goto err_device_stop;

	ret = spt_sysfs_init(sdev);
	if (ret)
		goto err_dev_unregister;
	spt_genl_add_device(sdev);

	drm_info(&sdev->drm, "SPT hw %u.%u, %u queues, %u contexts, caps %#x\n",
		 sdev->hw_version >> 16, sdev->hw_version & 0xffff,
		 sdev->nr_hwq, sdev->num_contexts, sdev->caps);
	return 0;

err_dev_unregister:
	drm_dev_unregister(&sdev->drm);
err_device_stop:
	spt_device_stop(sdev);
err_irq_fini:
	spt_irq_fini(sdev);
	return ret;
}

static void spt_remove(struct pci_dev *pdev)
{
	struct spt_device *sdev = pci_get_drvdata(pdev);

	spt_genl_remove_device(sdev);
	spt_sysfs_fini(sdev);
	drm_dev_unplug(&sdev->drm);
	spt_device_stop(sdev);
	spt_irq_fini(sdev);
	spt_job_cancel_all(sdev, -ENODEV);
}

static const struct pci_device_id spt_pci_ids[] = {
	{ PCI_DEVICE(SPT_PCI_VENDOR_ID, SPT_PCI_DEVICE_ID) },
	{ }
};
MODULE_DEVICE_TABLE(pci, spt_pci_ids);

static struct pci_driver spt_pci_driver = {
	.name = SPT_DRIVER_NAME,
	.id_table = spt_pci_ids,
	.probe = spt_probe,
	.remove = spt_remove,
};

static int __init spt_init(void)
{
	int ret;

	ret = spt_genl_init();
	if (ret)
		return ret;

	ret = pci_register_driver(&spt_pci_driver);
	if (ret)
		spt_genl_fini();
	return ret;
}

static void __exit spt_exit(void)
{
	pci_unregister_driver(&spt_pci_driver);
	spt_genl_fini();
}

module_init(spt_init);
module_exit(spt_exit);

MODULE_AUTHOR("The SPT authors");
MODULE_DESCRIPTION(SPT_DRIVER_DESC);
MODULE_LICENSE("GPL");
MODULE_IMPORT_NS(DMA_BUF);
