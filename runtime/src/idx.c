// SPDX-License-Identifier: MIT
/* IDX datasets (Fashion-MNIST), plain or gzip-compressed. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "internal.h"

#define IDX_MAX_BYTES (1u << 30)
#define IDX_MAGIC_IMAGES 0x00000803u
#define IDX_MAGIC_LABELS 0x00000801u

struct spt_dataset {
	uint32_t count, rows, cols, classes;
	uint8_t *pixels;	/* count * rows * cols */
	uint8_t *labels;	/* count */
};

/* Read a whole (possibly gzip-compressed) file. */
static int idx_slurp(const char *path, uint8_t **out, size_t *len)
{
	gzFile f;
	uint8_t *buf = NULL;
	size_t cap = 0, n = 0;
	int ret = 0;

	errno = 0;
	f = gzopen(path, "rb");
	if (!f)
		return errno ? -errno : -ENOMEM;
	for (;;) {
		int got;

		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 1 << 20;
			uint8_t *nb;

			if (ncap > IDX_MAX_BYTES + 1)
				ncap = IDX_MAX_BYTES + 1;
			if (n == ncap) {
				ret = -SPT_EBADFILE;	/* larger than any IDX file we accept */
				goto fail;
			}
			nb = realloc(buf, ncap);
			if (!nb) {
				ret = -ENOMEM;
				goto fail;
			}
			buf = nb;
			cap = ncap;
		}
		got = gzread(f, buf + n, (unsigned int)(cap - n));
		if (got < 0) {
			int zerr;

			gzerror(f, &zerr);
			/* a corrupt or cut gzip stream reads like a truncated file */
			ret = zerr == Z_ERRNO ? -EIO : -SPT_ETRUNCATED;
			goto fail;
		}
		if (got == 0)
			break;
		n += (size_t)got;
	}
	gzclose(f);
	*out = buf;
	*len = n;
	return 0;
fail:
	gzclose(f);
	free(buf);
	return ret;
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Check an IDX header with @ndims dimensions; return the payload offset. */
static int idx_header(const uint8_t *b, size_t len, uint32_t magic, unsigned int ndims,
		      uint32_t dims[3])
{
	uint64_t total = 1;
	unsigned int i;

	if (len < 4 || be32(b) != magic)
		return -SPT_EBADMAGIC;
	if (len < 4 + 4 * (size_t)ndims)
		return -SPT_ETRUNCATED;
	for (i = 0; i < ndims; i++) {
		dims[i] = be32(b + 4 + 4 * i);
		if (dims[i] == 0 || dims[i] > (1u << 28))
			return -SPT_EBADFILE;
		total *= dims[i];
		if (total > IDX_MAX_BYTES)
			return -SPT_EBADFILE;
	}
	if (len - 4 - 4 * ndims < total)
		return -SPT_ETRUNCATED;
	if (len - 4 - 4 * ndims > total)
		return -SPT_EBADFILE;	/* trailing bytes */
	return 0;
}

SPT_API int spt_dataset_load_idx(const char *images_path, const char *labels_path,
				 struct spt_dataset **out)
{
	uint8_t *ib = NULL, *lb = NULL;
	size_t ilen, llen;
	uint32_t idims[3], ldims[3], i;
	struct spt_dataset *ds = NULL;
	int ret;

	if (!images_path || !labels_path || !out)
		return -EINVAL;
	*out = NULL;
	ret = idx_slurp(images_path, &ib, &ilen);
	if (ret)
		return ret;
	ret = idx_header(ib, ilen, IDX_MAGIC_IMAGES, 3, idims);
	if (ret)
		goto out;
	ret = idx_slurp(labels_path, &lb, &llen);
	if (ret)
		goto out;
	ret = idx_header(lb, llen, IDX_MAGIC_LABELS, 1, ldims);
	if (ret)
		goto out;
	if (ldims[0] != idims[0]) {
		ret = -SPT_EMISMATCH;
		goto out;
	}
	ds = rt_zalloc(sizeof(*ds));
	if (!ds) {
		ret = -ENOMEM;
		goto out;
	}
	ds->count = idims[0];
	ds->rows = idims[1];
	ds->cols = idims[2];
	ds->pixels = malloc((size_t)ds->count * ds->rows * ds->cols);
	ds->labels = malloc(ds->count);
	if (!ds->pixels || !ds->labels) {
		ret = -ENOMEM;
		goto out;
	}
	memcpy(ds->pixels, ib + 16, (size_t)ds->count * ds->rows * ds->cols);
	memcpy(ds->labels, lb + 8, ds->count);
	for (i = 0; i < ds->count; i++)
		if ((uint32_t)ds->labels[i] + 1 > ds->classes)
			ds->classes = ds->labels[i] + 1u;
	*out = ds;
	ds = NULL;
	ret = 0;
out:
	spt_dataset_free(ds);
	free(ib);
	free(lb);
	return ret;
}

SPT_API int spt_dataset_load_fashion_mnist(const char *dir, bool train,
					   struct spt_dataset **out)
{
	char ip[4096], lp[4096];
	const char *pfx = train ? "train" : "t10k";
	int n1, n2;

	if (!out)
		return -EINVAL;
	if (!dir)
		dir = SPT_FASHION_MNIST_DIR;
	n1 = snprintf(ip, sizeof(ip), "%s/%s-images-idx3-ubyte.gz", dir, pfx);
	n2 = snprintf(lp, sizeof(lp), "%s/%s-labels-idx1-ubyte.gz", dir, pfx);
	if (n1 < 0 || n2 < 0 || (size_t)n1 >= sizeof(ip) || (size_t)n2 >= sizeof(lp))
		return -ENAMETOOLONG;
	return spt_dataset_load_idx(ip, lp, out);
}

SPT_API int spt_dataset_shape(const struct spt_dataset *ds, uint32_t *count,
			      uint32_t *rows, uint32_t *cols, uint32_t *classes)
{
	if (!ds)
		return -EINVAL;
	if (count)
		*count = ds->count;
	if (rows)
		*rows = ds->rows;
	if (cols)
		*cols = ds->cols;
	if (classes)
		*classes = ds->classes;
	return 0;
}

SPT_API int spt_dataset_truncate(struct spt_dataset *ds, uint32_t count)
{
	if (!ds || count == 0 || count > ds->count)
		return -EINVAL;
	ds->count = count;
	return 0;
}

SPT_API int spt_dataset_gather(const struct spt_dataset *ds, const uint32_t *idx,
			       uint32_t n, float *x, uint8_t *labels)
{
	size_t px, i, j;

	if (!ds || !idx || !x || n == 0)
		return -EINVAL;
	for (i = 0; i < n; i++)
		if (idx[i] >= ds->count)
			return -EINVAL;
	px = (size_t)ds->rows * ds->cols;
	for (i = 0; i < n; i++) {
		const uint8_t *p = ds->pixels + idx[i] * px;

		for (j = 0; j < px; j++)
			x[i * px + j] = (float)p[j] * (1.0f / 255.0f);
		if (labels)
			labels[i] = ds->labels[idx[i]];
	}
	return 0;
}

SPT_API void spt_dataset_free(struct spt_dataset *ds)
{
	if (!ds)
		return;
	free(ds->pixels);
	free(ds->labels);
	free(ds);
}
