// SPDX-License-Identifier: MIT
/* Error messages, version and small helpers. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

SPT_API const char *spt_strerror(int err)
{
	switch (-err) {
	case 0: return "success";
	case SPT_EBADMAGIC: return "bad magic number: not a file of the expected type";
	case SPT_ETRUNCATED: return "file is truncated: shorter than its header says";
	case SPT_EMISMATCH: return "sizes or shapes do not match";
	case SPT_ECHECKSUM: return "checksum mismatch: the file is corrupt";
	case SPT_EVERSION: return "unsupported format or ABI version";
	case SPT_ENODEVICE: return "no SPT device found";
	case SPT_ENOBACKEND: return "backend not available in this build";
	case SPT_EDIVERGED: return "training diverged: loss or gradient not finite";
	case SPT_EBADFILE: return "malformed file content";
	case EINVAL: return "invalid argument";
	case ENOMEM: return "out of memory";
	case ENOTSUP: return "operation not supported";
	case EDOM: return "value not finite (NaN or infinity)";
	case ENOSPC: return "output buffer too small";
	case EBADMSG: return "malformed compressed tensor";
	case E2BIG: return "size beyond the format's limits";
	case ENOENT: return "no such file or directory";
	case EACCES: return "permission denied";
	case EIO: return "input/output error";
	case EBUSY: return "busy";
	case ETIMEDOUT: return "timed out";
	case EINTR: return "interrupted";
	default: break;
	}
	if (err < 0 && -err < 1000)
		return strerror(-err);	/* static strings in glibc for valid codes */
	return "unknown error";
}

SPT_API void spt_version(int *major, int *minor, int *patch)
{
	if (major)
		*major = SPT_VERSION_MAJOR;
	if (minor)
		*minor = SPT_VERSION_MINOR;
	if (patch)
		*patch = SPT_VERSION_PATCH;
}

void *rt_zalloc(size_t n)
{
	return calloc(1, n ? n : 1);
}

/* splitmix64 */
uint64_t rt_rng_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

double rt_rng_normal(uint64_t *s)
{
	double u1 = ((double)(rt_rng_next(s) >> 11) + 0.5) * 0x1.0p-53;
	double u2 = (double)(rt_rng_next(s) >> 11) * 0x1.0p-53;

	return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

double rt_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}
