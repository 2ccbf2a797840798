// SPDX-License-Identifier: MIT
/*
 * The device backend: discovery of an SPT accelerator through libdrm.
 *
 * The device is found by driver name and its ABI, hardware interface and
 * tensor format versions are checked with DRM_IOCTL_SPT_DEV_QUERY (a
 * mismatch fails loudly with -SPT_EVERSION).  A context opened with
 * SPT_CTX_QUERY_ONLY only answers spt_ctx_info(); any other open needs
 * command-stream version 2 and the TRAIN_OPS opcodes (-SPT_EVERSION
 * otherwise) and sets up submission (backend_device_exec.c), where a
 * training step runs on the device as one command stream.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "drm/spt_accel.h"
#include "backend_device_exec.h"
#include "drm_probe.h"
#include "internal.h"

#define ACCEL_DIR "/dev/accel"

static int dev_probe(const char *path, char *drv, size_t drvlen, struct rt_drm_devinfo *di)
{
	int ret = rt_drm_probe(path, drv, drvlen, di);

	if (ret == -ENODEV || ret == -ENOENT || ret == -ENOTTY)
		return -SPT_ENODEVICE;
	return ret == -EPROTO ? -SPT_EVERSION : ret;
}

static int dev_find(const struct spt_ctx_opts *o, char *path, size_t plen, char *drv,
		    size_t drvlen, struct rt_drm_devinfo *di)
{
	const char *env = getenv("SPT_DEVICE");
	const char *want = o->device_path ? o->device_path : env;
	struct dirent *de;
	DIR *d;
	int ret = -SPT_ENODEVICE;

	if (want && *want) {
		snprintf(path, plen, "%s", want);
		return dev_probe(path, drv, drvlen, di);
	}
	d = opendir(ACCEL_DIR);
	if (!d)
		return -SPT_ENODEVICE;
	while ((de = readdir(d))) {
		if (strncmp(de->d_name, "accel", 5))
			continue;
		snprintf(path, plen, ACCEL_DIR "/%.40s", de->d_name);
		ret = dev_probe(path, drv, drvlen, di);
		if (ret != -SPT_ENODEVICE)
			break;	/* found it, or found it with the wrong ABI */
	}
	closedir(d);
	return ret;
}

static int dev_open(struct spt_ctx *ctx, const struct spt_ctx_opts *o)
{
	struct rt_dev_priv *p = calloc(1, sizeof(*p));
	struct rt_drm_devinfo *di = p ? &p->di : NULL;
	int ret;

	if (!p)
		return -ENOMEM;
	ret = dev_find(o, ctx->device, sizeof(ctx->device), ctx->driver, sizeof(ctx->driver), di);
	/* a whole step is one version-2 command stream, loss and update included */
	if (!ret && !(o->flags & SPT_CTX_QUERY_ONLY) &&
	    (di->cmd_version < 2 || !(di->caps & DRM_SPT_CAP_TRAIN_OPS)))
		ret = -SPT_EVERSION;
	if (!ret && !(o->flags & SPT_CTX_QUERY_ONLY))
		ret = rt_dx_open(ctx->device, &p->dx);
	if (ret) {
		free(p);
		return ret;
	}
	ctx->priv = p;
	ctx->abi_version = di->abi_major << 16 | di->abi_minor;
	if (di->clock_mhz)
		ctx->energy.clock_mhz = di->clock_mhz;
	if (di->mac_array)
		ctx->energy.macs_per_cycle = di->mac_array;
	if (di->dram_mbps)
		ctx->energy.dram_gbytes_per_s = di->dram_mbps / 1000.0;
	return 0;
}

static void dev_close(struct spt_ctx *ctx)
{
	struct rt_dev_priv *p = ctx->priv;

	if (p)
		rt_dx_close(p->dx);
	free(ctx->priv);
	ctx->priv = NULL;
}

static int dev_info(const struct spt_ctx *ctx, struct spt_ctx_info *info)
{
	const struct rt_dev_priv *p = ctx->priv;
	const struct rt_drm_devinfo *di = &p->di;

	info->has_bfp8 = p->dx != NULL;
	info->has_fp32 = false;	/* the chip runs BFP8 only: no sgemm */
	info->hw_version = di->hw_version;
	info->caps = di->caps;
	info->query_only = p->dx == NULL;
	return 0;
}

const struct spt_backend_ops spt_device_backend = {
	.name = "device",
	.open = dev_open,
	.close = dev_close,
	.info = dev_info,
	.buf_alloc = rt_dx_buf_alloc,
	.buf_free = rt_dx_buf_free,
	.encode = rt_dx_encode,
	.encode_t = rt_dx_encode_t,
	.transpose = rt_dx_transpose,
	.decode = rt_dx_decode,
	.gemm = rt_dx_gemm,
	.gemm_t = rt_dx_gemm_t,
	.softmax_xent = rt_dx_softmax_xent,
	.sgd = rt_dx_sgd,
	.sgd_ct = rt_dx_sgd_ct,
	.im2col = rt_dx_im2col,
	.col2im = rt_dx_col2im,
	.colsum = rt_dx_colsum,
	.check_finite = rt_dx_check_finite,
	.relu_mask = rt_dx_relu_mask,
	.submit = rt_dx_submit,
	.sync = rt_dx_sync,
	.device_seconds = rt_dx_device_seconds,
};
