// SPDX-License-Identifier: GPL-2.0-only
/*
 * Copyright (C) 2026 The SPT authors
 */

#include <linux/dma-resv.h>
#include <drm/drm_gem.h>
#include <drm/drm_gem_shmem_helper.h>
#include <drm/drm_print.h>
#include <drm/drm_utils.h>
#include <drm/spt_accel.h>

#include "spt_drv.h"

/* Bound on the wait for a file's jobs in the rings when a VA goes away. */
#define SPT_CLOSE_WAIT_MS	60000

struct spt_bo {
	struct drm_gem_shmem_object base;
	struct mutex lock;		/* mappings */
	struct list_head mappings;
	u32 flags;
};

struct spt_bo_va {
	struct list_head link;
	struct spt_file *sfile;
	struct drm_mm_node node;
	unsigned int users;
};

static inline struct spt_bo *to_spt_bo(struct drm_gem_object *obj)
{
	return container_of(to_drm_gem_shmem_obj(obj), struct spt_bo, base);
}

static struct spt_bo_va *spt_bo_va_find(struct spt_bo *bo, struct spt_file *sfile)
{
	struct spt_bo_va *bva;

	list_for_each_entry(bva, &bo->mappings, link)
		if (bva->sfile == sfile)
			return bva;
	return NULL;
}

int spt_bo_va(struct drm_gem_object *obj, struct spt_file *sfile, u64 *va)
{
	struct spt_bo *bo = to_spt_bo(obj);
	struct spt_bo_va *bva;
	int ret = -ENOENT;

	mutex_lock(&bo->lock);
	bva = spt_bo_va_find(bo, sfile);
	if (bva) {
		*va = bva->node.start;
		ret = 0;
	}
	mutex_unlock(&bo->lock);
	return ret;
}

static int spt_bo_open(struct drm_gem_object *obj, struct drm_file *file)
{
	struct spt_file *sfile = file->driver_priv;
	struct spt_bo *bo = to_spt_bo(obj);
	struct spt_bo_va *bva;
	struct sg_table *sgt;
	int ret = 0;

	mutex_lock(&bo->lock);
	bva = spt_bo_va_find(bo, sfile);
	if (bva) {
		bva->users++;
		goto out_unlock;
	}

	sgt = drm_gem_shmem_get_pages_sgt(&bo->base);
	if (IS_ERR(sgt)) {
		ret = PTR_ERR(sgt);
		goto out_unlock;
	}

	bva = kzalloc(sizeof(*bva), GFP_KERNEL);
	if (!bva) {
		ret = -ENOMEM;
		goto out_unlock;
	}

	ret = spt_vm_map(&sfile->vm, &bva->node, obj->size, sgt,
			 bo->flags & DRM_SPT_BO_DEVICE_READONLY);
	if (ret) {
		kfree(bva);
		goto out_unlock;
	}

	bva->sfile = sfile;
	bva->users = 1;
	list_add_tail(&bva->link, &bo->mappings);
out_unlock:
	mutex_unlock(&bo->lock);
	return ret;
}

static void spt_bo_close(struct drm_gem_object *obj, struct drm_file *file)
{
	struct spt_file *sfile = file->driver_priv;
	struct spt_bo *bo = to_spt_bo(obj);
	struct spt_bo_va *bva;

	mutex_lock(&bo->lock);
	bva = spt_bo_va_find(bo, sfile);
	if (!bva || --bva->users) {
		mutex_unlock(&bo->lock);
		return;
	}
	list_del(&bva->link);
	mutex_unlock(&bo->lock);

	/*
	 * Jobs that reach the device after the unmap fault on the VA; jobs
	 * already in the rings may hold translations, so the pages (freed
	 * once the last reference goes) must wait for them.  Timeouts and
	 * resets bound the wait; if it still ends, no job of this file may
	 * touch memory any more.
	 */
	spt_vm_unmap(&sfile->vm, &bva->node);
	if (!spt_file_wait_hw_idle(sfile, msecs_to_jiffies(SPT_CLOSE_WAIT_MS))) {
		drm_warn(obj->dev, "ctx %u: jobs still running at BO close, disabling context\n",
			 sfile->vm.ctx);
		spt_vm_disable(&sfile->vm);
	}
	kfree(bva);
}

static void spt_bo_free(struct drm_gem_object *obj)
{
	struct spt_bo *bo = to_spt_bo(obj);

	drm_WARN_ON(obj->dev, !list_empty(&bo->mappings));
	mutex_destroy(&bo->lock);
	drm_gem_shmem_free(&bo->base);
}

static const struct drm_gem_object_funcs spt_gem_funcs = {
	.free = spt_bo_free,
	.open = spt_bo_open,
	.close = spt_bo_close,
	.print_info = drm_gem_shmem_object_print_info,
	.pin = drm_gem_shmem_object_pin,
	.unpin = drm_gem_shmem_object_unpin,
	.get_sg_table = drm_gem_shmem_object_get_sg_table,
	.vmap = drm_gem_shmem_object_vmap,
	.vunmap = drm_gem_shmem_object_vunmap,
	.mmap = drm_gem_shmem_object_mmap,
	.vm_ops = &drm_gem_shmem_vm_ops,
};

struct drm_gem_object *spt_gem_create_object(struct drm_device *dev, size_t size)
{
	struct spt_bo *bo;

	bo = kzalloc(sizeof(*bo), GFP_KERNEL);
	if (!bo)
		return ERR_PTR(-ENOMEM);

	mutex_init(&bo->lock);
	INIT_LIST_HEAD(&bo->mappings);
	bo->base.base.funcs = &spt_gem_funcs;
	return &bo->base.base;
}

int spt_ioctl_bo_create(struct drm_device *dev, void *data, struct drm_file *file)
{
	struct spt_file *sfile = file->driver_priv;
	struct drm_spt_bo_create *args = data;
	struct drm_gem_shmem_object *shmem;
	struct spt_bo *bo;
	int ret;

	if (!args->size || args->size > SPT_MAX_BO_SIZE ||
	    (args->flags & ~DRM_SPT_BO_FLAGS))
		return -EINVAL;

	shmem = drm_gem_shmem_create(dev, PAGE_ALIGN(args->size));
	if (IS_ERR(shmem))
		return PTR_ERR(shmem);

	bo = container_of(shmem, struct spt_bo, base);
	bo->flags = args->flags;

	ret = drm_gem_handle_create(file, &shmem->base, &args->handle);
	if (!ret)
		ret = spt_bo_va(&shmem->base, sfile, &args->va);
	drm_gem_object_put(&shmem->base);
	return ret;
}

int spt_ioctl_bo_info(struct drm_device *dev, void *data, struct drm_file *file)
{
	struct drm_spt_bo_info *args = data;
	struct drm_gem_object *obj;
	int ret;

	if (args->flags)
		return -EINVAL;

	obj = drm_gem_object_lookup(file, args->handle);
	if (!obj)
		return -ENOENT;

	ret = drm_gem_create_mmap_offset(obj);
	if (ret)
		goto out_put;

	ret = spt_bo_va(obj, file->driver_priv, &args->va);
	if (ret)
		goto out_put;

	args->mmap_offset = drm_vma_node_offset_addr(&obj->vma_node);
	args->size = obj->size;
	args->flags = to_spt_bo(obj)->flags;
out_put:
	drm_gem_object_put(obj);
	return ret;
}

int spt_ioctl_bo_wait(struct drm_device *dev, void *data, struct drm_file *file)
{
	struct drm_spt_bo_wait *args = data;
	struct drm_gem_object *obj;
	unsigned long timeout;
	long ret;

	if (args->pad)
		return -EINVAL;

	obj = drm_gem_object_lookup(file, args->handle);
	if (!obj)
		return -ENOENT;

	timeout = drm_timeout_abs_to_jiffies(args->timeout_ns);
	ret = dma_resv_wait_timeout(obj->resv, DMA_RESV_USAGE_READ, true, timeout);
	drm_gem_object_put(obj);

	if (ret == 0)
		return -ETIMEDOUT;
	return ret < 0 ? ret : 0;
}
