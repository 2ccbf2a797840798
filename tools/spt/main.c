/* SPDX-License-Identifier: MIT */
/* spt: the SPT command line.  Subcommands live one per file. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spt.h"

struct subcommand {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *help;
};

static const struct subcommand subcommands[] = {
	{ "codec", cmd_codec, "quantise, encode, decode and inspect tensors" },
	{ "bench", cmd_bench, "measure the core against memcpy and OpenBLAS" },
	{ "train", cmd_train, "train a model on Fashion-MNIST with sparsity scaling" },
	{ "info", cmd_info, "backend, device, versions and capabilities" },
	{ "top", cmd_top, "live device counters, per-process usage and events" },
};

static void usage(FILE *f)
{
	size_t i;

	fprintf(f, "usage: spt <command> [options]\n\ncommands:\n");
	for (i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++)
		fprintf(f, "  %-8s %s\n", subcommands[i].name, subcommands[i].help);
	fprintf(f, "\n'spt <command> --help' describes a command.\n");
}

int spt_err(const char *fmt, ...)
{
	va_list ap;

	fputs("spt: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

void *spt_read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t cap = 0, n = 0;

	if (!f) {
		spt_err("cannot open %s: %s", path, strerror(errno));
		return NULL;
	}
	for (;;) {
		size_t got;

		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 1 << 16;
			char *nb = realloc(buf, ncap);

			if (!nb) {
				spt_err("%s: out of memory", path);
				goto fail;
			}
			buf = nb;
			cap = ncap;
		}
		got = fread(buf + n, 1, cap - n, f);
		n += got;
		if (got == 0)
			break;
	}
	if (ferror(f)) {
		spt_err("cannot read %s: %s", path, strerror(errno));
		goto fail;
	}
	fclose(f);
	*len = n;
	if (!buf)
		buf = malloc(1);
	return buf;
fail:
	free(buf);
	fclose(f);
	return NULL;
}

int spt_write_file(const char *path, const void *buf, size_t len)
{
	size_t plen = strlen(path);
	char *tmp = malloc(plen + 16);
	const char *p = buf;
	int fd;

	if (!tmp)
		return spt_err("%s: out of memory", path);
	snprintf(tmp, plen + 16, "%s.tmpXXXXXX", path);
	fd = mkstemp(tmp);
	if (fd < 0) {
		spt_err("cannot create %s: %s", path, strerror(errno));
		free(tmp);
		return 1;
	}
	while (len) {
		ssize_t w = write(fd, p, len);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			spt_err("cannot write %s: %s", path, strerror(errno));
			goto fail;
		}
		p += w;
		len -= (size_t)w;
	}
	if (fsync(fd) != 0 && errno != EINVAL) {
		spt_err("cannot sync %s: %s", path, strerror(errno));
		goto fail;
	}
	fchmod(fd, 0644);
	close(fd);
	if (rename(tmp, path) != 0) {
		spt_err("cannot rename to %s: %s", path, strerror(errno));
		unlink(tmp);
		free(tmp);
		return 1;
	}
	free(tmp);
	return 0;
fail:
	close(fd);
	unlink(tmp);
	free(tmp);
	return 1;
}

int spt_parse_u64(const char *s, unsigned long long *v)
{
	char *end;

	if (!s || !*s || *s == '-')
		return -1;
	errno = 0;
	*v = strtoull(s, &end, 0);
	if (errno || *end)
		return -1;
	return 0;
}

int spt_parse_shape(const char *s, unsigned int *rows, unsigned int *cols)
{
	char *end;
	unsigned long r, c;

	if (!s || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	r = strtoul(s, &end, 10);
	if (errno || *end != ',' || end[1] < '0' || end[1] > '9')
		return -1;
	c = strtoul(end + 1, &end, 10);
	if (errno || *end || r == 0 || c == 0 || r > 0xffffffffUL || c > 0xffffffffUL)
		return -1;
	*rows = (unsigned int)r;
	*cols = (unsigned int)c;
	return 0;
}

int main(int argc, char **argv)
{
	size_t i;

	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	for (i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++)
		if (!strcmp(argv[1], subcommands[i].name))
			return subcommands[i].fn(argc - 1, argv + 1);
	spt_err("unknown command '%s'", argv[1]);
	usage(stderr);
	return 2;
}
