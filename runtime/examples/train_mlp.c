// SPDX-License-Identifier: MIT
/*
 * The smallest complete libspt program: train the MLP preset on
 * Fashion-MNIST for one epoch at 90% interim sparsity on the CPU backend and
 * print the test accuracy.  Steps go through the asynchronous API, one step
 * ahead, so on a device the next batch is gathered while the current one
 * trains (on the CPU backend the two simply alternate).
 *
 *   cc train_mlp.c $(pkg-config --cflags --libs spt) -o train_mlp
 */
#include <stdio.h>
#include <stdlib.h>

#include <spt/spt.h>

#define CHECK(call)                                                            \
	do {                                                                   \
		int ret_ = (call);                                             \
		if (ret_ < 0) {                                                \
			fprintf(stderr, "%s: %s\n", #call, spt_strerror(ret_)); \
			exit(1);                                               \
		}                                                              \
	} while (0)

int main(void)
{
	struct spt_ctx_opts co = { .backend = SPT_BACKEND_CPU };
	struct spt_ctx *ctx;
	struct spt_dataset *train, *test;
	struct spt_model *m;
	struct spt_train_opts o;
	struct spt_step_stats st;
	uint32_t n, nt, i, b, idx[64], correct;
	static float x[10000 * 784];
	static uint8_t lab[10000];
	double loss;

	CHECK(spt_ctx_open(&co, &ctx));
	CHECK(spt_dataset_load_fashion_mnist(NULL, true, &train));
	CHECK(spt_dataset_load_fashion_mnist(NULL, false, &test));
	CHECK(spt_dataset_shape(train, &n, NULL, NULL, NULL));

	CHECK(spt_model_create_preset(ctx, "mlp", &m));
	spt_train_opts_init(&o, n / 64);	/* one epoch: sets the lr and ramp schedules */
	CHECK(spt_model_finalize(m, &o));
	CHECK(spt_model_set_target_sparsity(m, 0.9f, SPT_PRUNE_DETERMINISTIC));

	for (b = 0; b + 64 <= n; b += 64) {
		for (i = 0; i < 64; i++)
			idx[i] = (b + i * 937u) % n;	/* a cheap fixed permutation */
		CHECK(spt_dataset_gather(train, idx, 64, x, lab));
		/* one step ahead: this gather ran while the previous step trained */
		CHECK(spt_model_train_step_submit(m, x, lab, 64));
		if (b)
			CHECK(spt_model_train_step_wait(m, &st));
	}
	CHECK(spt_model_train_step_wait(m, &st));
	printf("last step: loss %.3f, interim sparsity %.3f, bytes %.2fx FP16, %.1f TOPS/W (modeled)\n",
	       st.loss, st.interim_sparsity, st.bytes_vs_fp16, st.total.eff_tops_per_w);

	CHECK(spt_dataset_shape(test, &nt, NULL, NULL, NULL));
	{	/* the whole test set in one call; evaluate batches internally */
		uint32_t *all = malloc(nt * sizeof(*all));

		for (i = 0; i < nt; i++)
			all[i] = i;
		CHECK(spt_dataset_gather(test, all, nt, x, lab));
		free(all);
	}
	CHECK(spt_model_evaluate(m, x, lab, nt, &loss, &correct, NULL));
	printf("test accuracy %.4f\n", (double)correct / nt);

	spt_model_free(m);
	spt_dataset_free(train);
	spt_dataset_free(test);
	spt_ctx_close(ctx);
	return 0;
}
