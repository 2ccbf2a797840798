// SPDX-License-Identifier: MIT
/* libdrm calls, kept apart from the rest of libspt. */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <xf86drm.h>

#include "drm/spt_accel.h"
#include "drm_probe.h"

#define RT_HW_MAJOR 1u		/* SPT_HW_VERSION_MAJOR this build speaks */
#define RT_FMT_CT_V1 (1u << 0)	/* SPT_FMT_CT_V1 */

static int query_device(int fd, struct rt_drm_devinfo *info)
{
	struct drm_spt_query_device qd;
	struct drm_spt_dev_query q;

	memset(&qd, 0, sizeof(qd));
	memset(&q, 0, sizeof(q));
	q.type = DRM_SPT_QUERY_DEVICE;
	q.size = sizeof(qd);
	q.pointer = (uintptr_t)&qd;
	if (drmIoctl(fd, DRM_IOCTL_SPT_DEV_QUERY, &q))
		return -errno;
	info->abi_major = qd.abi_major;
	info->abi_minor = qd.abi_minor;
	info->hw_version = qd.hw_version;
	info->caps = qd.caps;
	info->formats = qd.formats;
	info->cmd_version = qd.cmd_version;
	info->mac_array = qd.mac_array;
	info->sram_kib = qd.sram_kib;
	info->clock_mhz = qd.clock_mhz;
	info->dram_mbps = qd.dram_mbps;
	if (qd.abi_major != DRM_SPT_ABI_VERSION_MAJOR || (qd.hw_version >> 16) != RT_HW_MAJOR ||
	    !(qd.formats & RT_FMT_CT_V1) || qd.cmd_version < 1)
		return -EPROTO;
	return 0;
}

int rt_drm_probe(const char *path, char *drv, size_t drvlen, struct rt_drm_devinfo *info)
{
	drmVersionPtr v;
	int fd, ret;

	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	v = drmGetVersion(fd);
	if (!v) {
		close(fd);
		return -ENODEV;
	}
	ret = (v->name && !strcmp(v->name, "spt")) ? 0 : -ENODEV;
	if (!ret && drv)
		snprintf(drv, drvlen, "%s %d.%d.%d", v->name, v->version_major,
			 v->version_minor, v->version_patchlevel);
	drmFreeVersion(v);
	if (!ret)
		ret = query_device(fd, info);
	close(fd);
	return ret;
}
