// SPDX-License-Identifier: MIT
/* One FENCE job through a fresh file; exit 0 when the value landed. */
#include "spt_test.h"

int main(void)
{
	struct spt_bo cmd, data;
	struct spt_cs cs;
	struct spt_submit_args a = { 0 };
	uint32_t q, s;
	int fd = spt_open();

	if (fd < 0)
		return 2;
	if (spt_bo_new(fd, 4096, 0, &cmd) || spt_bo_new(fd, 4096, 0, &data) ||
	    spt_queue_new(fd, 1, &q) || spt_syncobj_new(fd, false, &s))
		return 3;
	cs.buf = cmd.map;
	cs.len = 0;
	cs.cap = cmd.size;
	spt_cs_fence(&cs, data.va, 0x5eed);
	a.queue = q;
	a.cmd_handle = cmd.handle;
	a.cmd_size = cs.len;
	a.out_sync = s;
	if (spt_submit(fd, &a) || spt_syncobj_wait(fd, s, 0, 20000))
		return 4;
	if (spt_syncobj_status(fd, s) != 1 || ((uint64_t *)data.map)[0] != 0x5eed)
		return 5;
	close(fd);
	return 0;
}
