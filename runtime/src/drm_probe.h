/* SPDX-License-Identifier: MIT */
#ifndef SPT_RT_DRM_PROBE_H
#define SPT_RT_DRM_PROBE_H

#include <stddef.h>
#include <stdint.h>

/* What DRM_IOCTL_SPT_DEV_QUERY reported, in plain types. */
struct rt_drm_devinfo {
	uint32_t abi_major, abi_minor, hw_version, caps, formats, cmd_version;
	uint32_t mac_array, sram_kib, clock_mhz, dram_mbps;
};

/*
 * 0 if @path is a DRM node whose driver is "spt" and whose ABI this build
 * understands; fills @drv ("name major.minor.patch") and @info.
 * -ENODEV: not an spt node; -EPROTO: ABI, hardware or format version this
 * build does not know; other negative errno from open/ioctl.
 */
int rt_drm_probe(const char *path, char *drv, size_t drvlen, struct rt_drm_devinfo *info);

#endif
