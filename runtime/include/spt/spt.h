/* SPDX-License-Identifier: MIT */
/*
 * libspt: train neural networks on the SPT sparsity-scaling training chip.
 *
 * One context (struct spt_ctx) per backend: the device (an SPT accelerator
 * through the DRM accel driver) or the CPU (the chip's golden model,
 * libsptcore, run in-process).  A model (struct spt_model) is a stack of
 * GEMM layers (Linear, Conv2d 3x3) with fused ReLU, ending in softmax
 * cross-entropy, trained by SGD with momentum on FP32 master weights.
 *
 * Sparsity scaling: for every GEMM layer and each of its tensor classes
 * (ACT: the layer's input activations, ERR: the error dL/dY at its output,
 * WCOPY: the BFP8 copy of its weights, WGRAD: its weight gradient) a mode
 * (off, static threshold, target sparsity) and a pruning kind (deterministic,
 * stochastic).  Target mode runs the closed-loop threshold controller of
 * docs/runtime.md; its state is readable after every step.  The network input
 * and dL/dlogits are never pruned.
 *
 * Conventions (liburing style):
 *  - opaque handles, no global state, no printing;
 *  - every function validates its arguments and returns 0 (or a count) on
 *    success and a negative error code on failure: a negative errno value
 *    or one of the negative SPT_E* codes below; spt_strerror() names both;
 *  - a handle is used by one thread at a time;
 *  - figures of energy, cycles and TOPS/W come from the chip's analytic
 *    model: they are modeled, not measured.
 */
#ifndef SPT_SPT_H
#define SPT_SPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "spt/core.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define SPT_API __attribute__((visibility("default")))
#else
#define SPT_API
#endif

#define SPT_VERSION_MAJOR 0
#define SPT_VERSION_MINOR 2
#define SPT_VERSION_PATCH 0

/* ---- errors -------------------------------------------------------------- */

/* Library-specific error codes, returned negated (-SPT_EBADMAGIC). */
enum spt_error {
	SPT_EBADMAGIC = 1001,	/* file does not start with the expected magic */
	SPT_ETRUNCATED = 1002,	/* file shorter than its header says */
	SPT_EMISMATCH = 1003,	/* sizes or shapes disagree (images vs labels, model vs checkpoint) */
	SPT_ECHECKSUM = 1004,	/* checksum mismatch: the file is corrupt */
	SPT_EVERSION = 1005,	/* unsupported file or ABI version */
	SPT_ENODEVICE = 1006,	/* no SPT device found */
	SPT_ENOBACKEND = 1007,	/* backend not built or not usable here */
	SPT_EDIVERGED = 1008,	/* loss or weights became NaN/Inf */
	SPT_EBADFILE = 1009,	/* malformed file content (bad dimension, trailing data) */
};

/* A static message for a negative error code (errno or SPT_E*); never NULL. */
SPT_API const char *spt_strerror(int err);

/* The library's version (the SPT_VERSION_* of the built library). */
SPT_API void spt_version(int *major, int *minor, int *patch);

/* ---- datasets (IDX files, e.g. Fashion-MNIST) ---------------------------- */

struct spt_dataset;

/* Where Debian's dataset-fashion-mnist package installs the files. */
#define SPT_FASHION_MNIST_DIR "/usr/share/datasets/fashion-mnist"

/*
 * Load an IDX3 image file (u8, magic 0x00000803) and an IDX1 label file
 * (u8, magic 0x00000801); either may be gzip-compressed.  Errors:
 * -SPT_EBADMAGIC, -SPT_ETRUNCATED (fewer bytes than the header promises),
 * -SPT_EBADFILE (zero or oversized dimensions, trailing bytes, label > 255
 * classes impossible), -SPT_EMISMATCH (image and label counts differ),
 * -ENOENT/-EACCES/-EIO from the file system, -ENOMEM.
 */
SPT_API int spt_dataset_load_idx(const char *images_path, const char *labels_path,
				 struct spt_dataset **out);

/* Fashion-MNIST from @dir (NULL: SPT_FASHION_MNIST_DIR), train or test split. */
SPT_API int spt_dataset_load_fashion_mnist(const char *dir, bool train,
					   struct spt_dataset **out);

/* Number of samples, image rows and columns, number of classes (max label + 1). */
SPT_API int spt_dataset_shape(const struct spt_dataset *ds, uint32_t *count,
			      uint32_t *rows, uint32_t *cols, uint32_t *classes);

/* Keep only the first @count samples (count <= current count, > 0). */
SPT_API int spt_dataset_truncate(struct spt_dataset *ds, uint32_t count);

/*
 * Gather samples @idx[0..n) as FP32 images scaled to [0, 1] into @x
 * (n * rows * cols floats) and their labels into @labels (may be NULL).
 */
SPT_API int spt_dataset_gather(const struct spt_dataset *ds, const uint32_t *idx,
			       uint32_t n, float *x, uint8_t *labels);

SPT_API void spt_dataset_free(struct spt_dataset *ds);

/* ---- contexts and backends ------------------------------------------------ */

enum spt_backend {
	SPT_BACKEND_CPU = 0,	/* libsptcore in-process (BFP8) and OpenBLAS (FP32) */
	SPT_BACKEND_DEVICE = 1,	/* an SPT accelerator through /dev/accel/accel* */
};

/* spt_ctx_opts.flags: open the device only to query it (spt_ctx_info). */
#define SPT_CTX_QUERY_ONLY (1u << 0)

struct spt_ctx_opts {
	enum spt_backend backend;
	/* Device node; NULL: $SPT_DEVICE, else the first accel node whose DRM
	 * driver is "spt".  Ignored by the CPU backend. */
	const char *device_path;
	uint32_t flags;		/* 0 or SPT_CTX_QUERY_ONLY */
};

struct spt_ctx;

/*
 * Open a backend.  The device backend fails with -SPT_ENODEVICE when no SPT
 * device is present, -SPT_EVERSION when the driver's ABI, the hardware
 * interface or the tensor format version is one this build does not know
 * or (unless SPT_CTX_QUERY_ONLY) the device lacks command-stream version 2
 * or the TRAIN_OPS opcodes, which run a whole training step as one job,
 * and -SPT_ENOBACKEND when this build cannot submit work to the device
 * (unless SPT_CTX_QUERY_ONLY is set: then only spt_ctx_info() works and
 * spt_model_finalize() fails with -SPT_ENOBACKEND).
 */
SPT_API int spt_ctx_open(const struct spt_ctx_opts *opts, struct spt_ctx **out);
SPT_API void spt_ctx_close(struct spt_ctx *ctx);

struct spt_ctx_info {
	enum spt_backend backend;
	char backend_name[16];	/* "cpu" or "device" */
	char device[64];	/* device node, or a description of the CPU path */
	char driver[32];	/* DRM driver name and version, "" for the CPU */
	char isa[16];		/* SIMD path of libsptcore ("scalar", "avx2", ...) */
	uint32_t ct_format_version;	/* SPT_CT_VERSION understood */
	uint32_t abi_version;	/* kernel ABI (device), 0 for the CPU */
	uint32_t lib_major, lib_minor, lib_patch;
	bool has_fp32;		/* can run the FP32 dense baseline */
	bool has_bfp8;		/* can run BFP8 sparse GEMMs */
	bool query_only;	/* opened with SPT_CTX_QUERY_ONLY: cannot train */
	uint32_t hw_version;	/* device: SPT_HW_VERSION (major << 16 | minor), else 0 */
	uint32_t caps;		/* device: DRM_SPT_CAP_* bits, else 0 */
	struct spt_energy_model energy;	/* model constants used for modeled figures */
};

SPT_API int spt_ctx_info(const struct spt_ctx *ctx, struct spt_ctx_info *info);

/* Replace the energy/cycle model constants (checked by spt_energy_model_check). */
SPT_API int spt_ctx_set_energy_model(struct spt_ctx *ctx, const struct spt_energy_model *m);

/* ---- models --------------------------------------------------------------- */

enum spt_precision {
	SPT_PRECISION_BFP8 = 0,	/* every GEMM on the chip's BFP8 compressed operands */
	SPT_PRECISION_FP32 = 1,	/* dense FP32 baseline (OpenBLAS); no pruning */
};

enum spt_tensor_class {
	SPT_CLASS_ACT = 0,
	SPT_CLASS_ERR = 1,
	SPT_CLASS_WCOPY = 2,
	SPT_CLASS_WGRAD = 3,
	SPT_CLASS_COUNT = 4,
};

enum spt_sparsity_mode {
	SPT_SPARSITY_OFF = 0,
	SPT_SPARSITY_STATIC = 1,	/* fixed threshold tau */
	SPT_SPARSITY_TARGET = 2,	/* controller drives tau toward a target sparsity */
};

/* Sparsity configuration of one tensor class of one layer. */
struct spt_sparsity {
	enum spt_sparsity_mode mode;
	enum spt_prune_mode kind;	/* SPT_PRUNE_DETERMINISTIC or _STOCHASTIC (not _OFF) */
	float tau;			/* STATIC: the threshold (>= 0) */
	float target;			/* TARGET: final sparsity in [0, 0.999] */
};

enum spt_lr_schedule {
	SPT_LR_CONSTANT = 0,
	SPT_LR_COSINE = 1,	/* lr * (min_frac + (1-min_frac) * (1 + cos(pi*t/T)) / 2) */
	SPT_LR_STEP = 2,	/* lr * 0.1 at 50% and 0.01 at 75% of total steps */
};

/* The closed-loop threshold controller; defaults from spt_train_opts_init(). */
struct spt_controller_opts {
	uint32_t warmup_steps;	/* dense steps before pruning starts */
	uint32_t ramp_steps;	/* cubic ramp of the target from s_i to s_f */
	float eta;		/* gain: tau <- tau * exp(clamp(eta * ema * (s* - s), +-0.1)) */
	float ema;		/* s_ema <- (1-ema) * s_ema + ema * s (e.g. 0.1) */
	uint32_t backoff_window;	/* consecutive rising-loss steps that trigger a back-off (0: never) */
	float backoff_step;	/* target reduction per back-off */
	float backoff_floor;	/* never back off below this target */
};

struct spt_train_opts {
	enum spt_precision precision;
	uint32_t batch;		/* largest batch a step may take (1..65536) */
	float lr, momentum, weight_decay;
	enum spt_lr_schedule lr_schedule;
	float lr_min_frac;	/* cosine floor as a fraction of lr */
	uint64_t total_steps;	/* length of the run, for the lr and ramp schedules */
	uint64_t seed;		/* weight init, stochastic rounding and pruning draws */
	struct spt_controller_opts ctl;
	uint32_t flags;		/* must be zero */
};

/* Defaults: BFP8, batch 64, lr 0.05, momentum 0.9, wd 5e-4, cosine, seed 1,
 * warm-up 5% and ramp 25% of @total_steps (set them after total_steps). */
SPT_API void spt_train_opts_init(struct spt_train_opts *o, uint64_t total_steps);

struct spt_model;

/*
 * Start a model whose input is @in_c x @in_h x @in_w (channels, height,
 * width; samples are given height-major, channels last) with @classes
 * outputs.  Add layers, then spt_model_finalize().
 */
SPT_API int spt_model_create(struct spt_ctx *ctx, uint32_t in_c, uint32_t in_h,
			     uint32_t in_w, uint32_t classes, struct spt_model **out);
/* Fully connected layer (flattens its input). */
SPT_API int spt_model_add_linear(struct spt_model *m, uint32_t out_features);
/* 3x3 convolution with @stride (1 or 2) and @padding (0 or 1), lowered to GEMMs via im2col. */
SPT_API int spt_model_add_conv2d(struct spt_model *m, uint32_t out_channels,
				 uint32_t stride, uint32_t padding);
/* ReLU after the previous Linear/Conv2d (fused into its GEMM epilogue). */
SPT_API int spt_model_add_relu(struct spt_model *m);
/* Flatten (a no-op on the channels-last layout; Linear flattens anyway). */
SPT_API int spt_model_add_flatten(struct spt_model *m);

/*
 * Presets for 1 x 28 x 28 inputs and 10 classes:
 *  "mlp": Linear 784-512, ReLU, Linear 512-256, ReLU, Linear 256-10;
 *  "cnn": Conv 1->16 s1 p1, ReLU, Conv 16->32 s2 p1, ReLU, Conv 32->32 s2 p1,
 *         ReLU, Flatten, Linear 1568-128, ReLU, Linear 128-10.
 * The model is created but not finalised.
 */
SPT_API int spt_model_create_preset(struct spt_ctx *ctx, const char *name,
				    struct spt_model **out);

/*
 * Allocate buffers and initialise weights (He normal from opts->seed, zero
 * biases).  The last layer must be Linear with @classes outputs.  Sparsity
 * defaults to off everywhere.
 */
SPT_API int spt_model_finalize(struct spt_model *m, const struct spt_train_opts *opts);
SPT_API void spt_model_free(struct spt_model *m);

/* Number of GEMM layers (Linear and Conv2d); per-layer calls index these. */
SPT_API int spt_model_num_layers(const struct spt_model *m);

struct spt_layer_info {
	char kind[8];		/* "linear" or "conv2d" */
	uint32_t in_c, in_h, in_w, out_c, out_h, out_w, stride, padding;
	bool relu;
	uint32_t gemm_k, gemm_n;	/* weights are gemm_n x gemm_k (out x in) */
	uint64_t params;
};
SPT_API int spt_model_layer_info(const struct spt_model *m, int layer,
				 struct spt_layer_info *info);

/*
 * Set the sparsity of one class of one layer (@layer -1: every layer).
 * Requests that would prune the network input (ACT of layer 0) or
 * dL/dlogits (ERR of the last layer) are ignored for those tensors when
 * @layer is -1 and rejected with -EINVAL otherwise.  BFP8 only: -ENOTSUP on
 * an FP32 model for any mode but off.
 */
SPT_API int spt_model_set_sparsity(struct spt_model *m, int layer,
				   enum spt_tensor_class cls, const struct spt_sparsity *s);

/*
 * Spread a mean interim (ACT and ERR) sparsity target over the layers:
 * every prunable ACT gets @target in TARGET mode with @act_kind, every
 * prunable ERR gets @target with SPT_PRUNE_STOCHASTIC.  (Errors of hidden
 * layers inherit most of their zeros from the ReLU mask of the pruned
 * activations, so the controller prunes them only as far as needed.)
 */
SPT_API int spt_model_set_target_sparsity(struct spt_model *m, float target,
					  enum spt_prune_mode act_kind);

/* ---- training -------------------------------------------------------------- */

/* Per class of one layer, for the last step. */
struct spt_class_stats {
	uint64_t elements;	/* tensor size */
	uint64_t natural_zeros;	/* zero before pruning (ReLU zeros, masked errors) */
	uint64_t pruned;	/* zeroed by the threshold (or quantised to zero) */
	uint64_t nonzeros;	/* stored nonzeros */
	float tau;		/* threshold used this step */
};

/* Controller state of one class of one layer, after the last step. */
struct spt_controller_state {
	enum spt_sparsity_mode mode;
	enum spt_prune_mode kind;
	uint32_t phase;		/* 0 off, 1 warm-up, 2 ramp, 3 steady */
	float tau;		/* threshold for the next step */
	float target;		/* s* for the last step */
	float final_target;	/* s_f (after back-offs) */
	float s_ema;		/* smoothed measured sparsity */
	float s_natural;	/* smoothed natural sparsity */
	uint32_t backoffs;	/* back-offs applied to this class */
};

struct spt_layer_stats {
	struct spt_class_stats cls[SPT_CLASS_COUNT];
	struct spt_counters pass[3];	/* SPT_PASS_FWD/BWD/WG, modeled cycles/energy filled */
	struct spt_counters total;	/* sum of the passes and re-blocking transposes */
};

struct spt_step_stats {
	uint64_t step;		/* steps completed, including this one */
	uint32_t samples;
	uint32_t correct;
	float loss;
	float lr;
	/* interim tensors: hidden activations and all errors (incl. dL/dlogits) */
	uint64_t interim_elements;
	uint64_t interim_zeros;
	double interim_sparsity;	/* zeros / elements */
	struct spt_counters total;	/* all GEMMs of the step (modeled cycles/energy) */
	double bytes_vs_fp16;	/* bytes moved / bytes dense FP16 would move */
	double host_seconds;	/* wall time of the step on the host */
	/*
	 * Device busy time of the step, in seconds: from the device's own
	 * timestamps around the step's command streams (QEMU's virtual clock on
	 * the emulated chip).  0 on the CPU backend.  host_seconds /
	 * device_seconds is the step's overhead over its device-side compute.
	 */
	double device_seconds;
};

/*
 * One training step on @n samples (n <= opts.batch): forward, loss, backward,
 * weight gradients, update, controller.  @x holds n * in_c*in_h*in_w floats,
 * @labels n labels < classes.  @st may be NULL.  -SPT_EDIVERGED if the loss or
 * a gradient is not finite: the step is then checked before the update
 * runs, so weights, momentum and the step count are left as they were.
 * The same as spt_model_train_step_submit() then spt_model_train_step_wait();
 * -EBUSY while steps submitted that way are outstanding.
 */
SPT_API int spt_model_train_step(struct spt_model *m, const float *x,
				 const uint8_t *labels, uint32_t n,
				 struct spt_step_stats *st);

/*
 * Asynchronous steps, so that the host prepares the next batch while the
 * device trains on the current one.
 *
 * spt_model_train_step_submit() checks its arguments as
 * spt_model_train_step() does, copies @x and @labels into the model's
 * backend memory (on a device: the batch's upload; the caller may reuse
 * both buffers on return) and queues the step.  At most two steps are
 * outstanding (submitted and not yet waited for): a third submit fails
 * with -EBUSY.  Steps run one after the other in submission order; the
 * first starts at once (on the device: its whole command stream is
 * submitted), the second only when the first has been waited for, since
 * its pruning thresholds come from the first's statistics.  So with
 *
 *     submit(b0); for (i = 1; ...; i++) { gather(b_i); submit(b_i); wait(); }
 *
 * the gather and upload of batch i overlap the device running step i - 1,
 * and the numbers are exactly those of spt_model_train_step() on the same
 * batches.  The CPU backend runs a step when it starts, in the call that
 * starts it.
 *
 * spt_model_train_step_wait() waits for the oldest outstanding step, fills
 * @st (may be NULL) and returns its result (0, -SPT_EDIVERGED, a device
 * error ...); a failed step does not cancel the next one.  Then it starts
 * the next step, if one was submitted.  -EINVAL if no step is outstanding.
 *
 * While steps are outstanding, spt_model_layer_stats() and
 * spt_model_controller_state() report the last step waited for (as the
 * synchronous API would after it), spt_model_steps() counts the steps
 * waited for, and the calls that read or change weights or configuration
 * (spt_model_train_step, _gradients, _evaluate, _get_params, _set_params,
 * _set_sparsity, _set_target_sparsity, _save, _load) fail with -EBUSY;
 * spt_model_free() waits for them and drops their results.
 */
SPT_API int spt_model_train_step_submit(struct spt_model *m, const float *x,
					const uint8_t *labels, uint32_t n);
SPT_API int spt_model_train_step_wait(struct spt_model *m, struct spt_step_stats *st);

/*
 * Forward pass only (the same arithmetic and pruning as training; no
 * statistics or controller updates).  Writes the summed loss to @loss_sum
 * (may be NULL), the number of correct predictions to @correct (may be NULL)
 * and the logits to @logits (n * classes, may be NULL).  Any n >= 1.
 */
SPT_API int spt_model_evaluate(struct spt_model *m, const float *x,
			       const uint8_t *labels, uint32_t n,
			       double *loss_sum, uint32_t *correct, float *logits);

SPT_API int spt_model_layer_stats(const struct spt_model *m, int layer,
				  struct spt_layer_stats *st);
SPT_API int spt_model_controller_state(const struct spt_model *m, int layer,
				       enum spt_tensor_class cls,
				       struct spt_controller_state *cs);

/* Steps taken so far (restored by spt_model_load). */
SPT_API uint64_t spt_model_steps(const struct spt_model *m);

/*
 * Read/write one layer's FP32 master weights and bias: weights are
 * gemm_n x gemm_k row-major (outputs x inputs; for Conv2d the inputs are
 * ordered (ky, kx, in_channel)), bias gemm_n.
 */
SPT_API int spt_model_get_params(const struct spt_model *m, int layer, float *w, float *b);
SPT_API int spt_model_set_params(struct spt_model *m, int layer, const float *w, const float *b);

/*
 * Compute the FP32 weight and bias gradients of the mean loss over a batch
 * without updating anything (the same passes as training; exact for FP32
 * models).  @gw/@gb as in spt_model_get_params.  The step count and the
 * controller are left unchanged; the layer statistics describe this pass.
 * For tests and tools.
 */
SPT_API int spt_model_gradients(struct spt_model *m, const float *x, const uint8_t *labels,
				uint32_t n, int layer, float *gw, float *gb);

/* ---- checkpoints ---------------------------------------------------------- */

/*
 * Save weights, momentum, controller state, step count and user data
 * (@user, @user_len <= 4096 bytes, may be NULL/0) to @path: versioned,
 * CRC-32 checksummed, written to a temporary file in the same directory,
 * fsync()ed and renamed over @path, so a crash never leaves a partial file.
 */
SPT_API int spt_model_save(const struct spt_model *m, const char *path,
			   const void *user, size_t user_len);

/*
 * Load a checkpoint into a finalised model of the same architecture and
 * precision.  -SPT_EBADMAGIC, -SPT_EVERSION, -SPT_ETRUNCATED, -SPT_ECHECKSUM,
 * -SPT_EMISMATCH (other architecture).  @user (capacity @user_cap) receives
 * the user data and @user_len its length (both may be NULL).  On error the
 * model is unchanged.
 */
SPT_API int spt_model_load(struct spt_model *m, const char *path, void *user,
			   size_t user_cap, size_t *user_len);

#ifdef __cplusplus
}
#endif

#endif /* SPT_SPT_H */
