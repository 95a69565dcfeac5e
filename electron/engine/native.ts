// The typed contract of the native addon (native-addon/binding). This file is
// the only place that describes what the .node file exports; load.ts is the
// only place that loads it. Keep both sides in step: a change here is a change
// in native-addon/binding/*.cpp.

export type DType = 'F32' | 'F16' | 'BF16';

/** What a WeightRef's bytes may be: a float dtype, or U8 (bitsandbytes' packed 4-bit codes / 8-bit absmax codes). */
export type WeightDType = DType | 'U8';

/**
 * QLoRA's base: the seven linears of every decoder block (q, k, v, o, gate, up,
 * down) held in 4-bit NF4 as bitsandbytes holds them; embeddings, norms and
 * lm_head stay as they are. blocksize: 32..4096 (a power of two), default 64;
 * doubleQuant (default true) quantizes the per-block absmax values too
 * (4.127 bits per weight at blocksize 64). The 4-bit weights are frozen:
 * setupFull is refused, setupLora trains on top (QLoRA).
 */
export interface QuantizationOptions {
  type: 'nf4';
  blocksize: number;
  doubleQuant: boolean;
}

/** The JSON fields of bitsandbytes' "weight.quant_state.bitsandbytes__nf4" for one prequantized weight. */
export interface Nf4QuantState {
  blocksize: number;
  /** [out, in] of the original weight */
  shape: number[];
  doubleQuant: boolean;
  /** with doubleQuant: 256 */
  nestedBlocksize?: number;
  /** with doubleQuant: the mean subtracted from the absmax values */
  nestedOffset?: number;
}

export type RopeScalingType = 'none' | 'linear' | 'llama3';

/** A parsed model configuration (electron/models/ builds it from config.json). */
export interface ModelSpec {
  architecture: string;
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  rmsNormEps: number;
  ropeTheta: number;
  ropeScaling: {
    type: RopeScalingType;
    factor: number;
    lowFreqFactor: number;
    highFreqFactor: number;
    originalMaxPosition: number;
  };
  maxPositionEmbeddings: number;
  tieWordEmbeddings: boolean;
  /** q/k/v projections carry biases (Qwen2). */
  attentionBias: boolean;
  /** per-head RMSNorm of q and k before RoPE (Qwen3). */
  qkNorm: boolean;
}

/**
 * Where one tensor's bytes are in a safetensors file (validated beforehand).
 * A linear that bitsandbytes saved in 4 bits comes as its U8 "…weight" with
 * `nf4` set, plus refs (same names as in the file) to "…weight.absmax",
 * "…weight.quant_map" and, with double quantization,
 * "…weight.nested_absmax" and "…weight.nested_quant_map"; the engine must
 * have quantization nf4 and takes them as they are (no re-quantization).
 */
export interface WeightRef {
  /** Hugging Face name, e.g. "model.layers.0.self_attn.q_proj.weight". */
  name: string;
  file: string;
  /** absolute byte offset of the tensor's data in the file */
  offset: number;
  dtype: WeightDType;
  shape: number[];
  nf4?: Nf4QuantState;
}

export type LoraTarget = 'q_proj' | 'k_proj' | 'v_proj' | 'o_proj' | 'gate_proj' | 'up_proj' | 'down_proj';

export interface LoraOptions {
  rank: number;
  alpha: number;
  dropout: number;
  rslora: boolean;
  targets: LoraTarget[];
  /** layer indices to adapt; null = all (PEFT's layers_to_transform) */
  layers: number[] | null;
  /** PEFT init_lora_weights: true ("default", kaiming-uniform A, B = 0) or "gaussian" */
  init: 'default' | 'gaussian';
  seed: number;
  /**
   * DoRA (PEFT use_dora): a trainable magnitude per output row of each adapted
   * linear, "...lora_magnitude_vector" [out], y = (m / ||W + s B A||_row) (W + s B A) x + b
   * (the norm detached); absent or false: plain LoRA
   */
  dora?: boolean;
}

/** The precision of an engine's dense products (EngineOptions.precision). */
export type Precision = 'fp32' | 'bf16' | 'auto';

export interface EngineOptions {
  /**
   * where the engine runs: 'cpu' (the default when absent), 'cuda' (the first
   * GPU) or 'cuda:N' (the N-th, as devices() lists them); a GPU throws in a
   * build without the CUDA backend (electron/engine/device.ts chooses)
   */
  device?: 'cpu' | 'cuda' | `cuda:${number}`;
  /**
   * precision of the dense products: 'fp32' (the default when absent), 'bf16'
   * (operands rounded to bfloat16, fp32 accumulation: a CUDA GPU with bf16
   * tensor cores, compute capability 8.0+; an error elsewhere) or 'auto'
   * (bf16 where the device has it, else fp32)
   */
  precision?: Precision;
  /** CPU threads (on 'cuda': the host-side work, e.g. converting weights at load) */
  threads: number;
  gradientCheckpointing: boolean;
  /** seed of the counter-based RNG used by dropout */
  seed: number;
  /**
   * NEFTune (transformers' neftune_noise_alpha): while training, noise uniform within
   * alpha / sqrt(seq_len * hidden) added to the input embeddings; absent or 0: off
   */
  neftuneAlpha?: number;
  /** 4-bit base (QLoRA); absent / null: the weights as stored, computed in fp32 */
  quantization?: QuantizationOptions | null;
}

/**
 * One micro-batch, row-major [batchSize, seqLen]. Labels are NOT shifted: as in
 * Hugging Face, the engine predicts labels[t + 1] from position t. -100 = not trained.
 * segments: per-token segment ids; a token attends to earlier tokens of the same
 * segment only (padding: -1). positions: RoPE positions per token.
 */
export interface Batch {
  batchSize: number;
  seqLen: number;
  inputIds: Int32Array;
  labels: Int32Array;
  segments: Int32Array;
  positions: Int32Array;
}

export interface LossResult {
  /** sum of per-token cross-entropy over counted tokens (nats) */
  lossSum: number;
  /** number of counted (non -100, shifted) label tokens */
  tokens: number;
}

export interface OptimizerStep {
  kind: 'adamw' | 'sgd';
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** global-norm clipping threshold; 0 disables clipping */
  maxGradNorm: number;
}

export interface ParameterInfo {
  /** engine name: HF base weight names, LoRA as "model.layers.0.self_attn.q_proj.lora_A.weight" */
  name: string;
  shape: number[];
  trainable: boolean;
}

export interface OptimizerState {
  step: number;
  tensors: { name: string; m: Float32Array; v: Float32Array }[];
}

export interface MemoryUsage {
  /** every parameter once, as fp32 (4-bit linears at their resident size): base weights (mmapped F32 counts too) and adapter tensors */
  weightBytes: number;
  /** the 4-bit linears' part of weightBytes: codes + scales */
  quantizedBytes: number;
  /** parameters held in 4 bits */
  quantizedParams: number;
  /** gradients + optimizer state of the trainable tensors */
  trainableBytes: number;
  /** activation arena (sized for the largest batch seen) */
  activationBytes: number;
  /** generation KV cache */
  kvCacheBytes: number;
  /** peak resident set size of the process so far */
  peakRssBytes: number;
  /** the CPU backend's scratch held now, process-wide (the estimate's deviceBytes on the CPU bounds it) */
  scratchBytes: number;
  /** the most of it held at once so far */
  scratchPeakBytes: number;
}

export type Method = 'lora' | 'full' | 'frozen' | 'prompt' | 'prefix';

export interface PromptTuningOptions {
  numVirtualTokens: number;
  /** [numVirtualTokens * hiddenSize] initial virtual-token embeddings, computed on the Node side (RANDOM / TEXT / SAMPLE_VOCAB) */
  init: Float32Array;
}

export interface PrefixTuningOptions {
  numVirtualTokens: number;
  /**
   * PEFT prefix_projection: an MLP Linear(tokenDim -> encoderHiddenSize) -> tanh -> Linear(-> numLayers*2*kvDim),
   * training only. tokenDim is PEFT's token_dim, which for grouped-query attention is kvDim (= numKvHeads * headDim;
   * = hiddenSize without GQA): prefix_encoder.embedding.weight is [nvt, kvDim], transform.0.weight [enc, kvDim].
   */
  projection: { encoderHiddenSize: number } | null;
  /** seeds the init: embedding N(0, 1) as nn.Embedding; MLP Linear layers as torch's default (kaiming-uniform a=sqrt(5), bias U(-1/sqrt(fan_in), 1/sqrt(fan_in))) */
  seed: number;
}

export interface MemoryEstimateOptions {
  method: Method;
  batchSize: number;
  seqLen: number;
  lora?: Pick<LoraOptions, 'rank' | 'targets' | 'layers' | 'dora'> & { dropout?: number };
  prompt?: { numVirtualTokens: number };
  prefix?: { numVirtualTokens: number; encoderHiddenSize: number | null };
  gradientCheckpointing: boolean;
  optimizer: 'adamw' | 'sgd';
  /** a 4-bit base (QLoRA: method 'lora'; 'full' is refused) */
  quantization?: QuantizationOptions | null;
  /**
   * the checkpoint's stored dtype (default F32): frozen 16-bit tensors stay
   * 16-bit (the block linears, the embedding and the lm_head; under
   * quantization the embedding and lm_head), full fine-tuning holds fp32
   */
  weightDType?: 'F32' | 'F16' | 'BF16';
  /** where the run computes (default 'cpu'): the backend's own memory (deviceBytes) depends on it */
  device?: 'cpu' | 'cuda' | `cuda:${number}`;
  /** the engine's CPU threads (EngineOptions.threads; default: the hardware's): on the CPU each holds its own scratch */
  threads?: number;
  /**
   * the run's precision (default 'fp32'): on a CUDA device bf16 adds the operand copies ('auto' counted as bf16,
   * the larger) and keeps activations in bf16 ('auto' counted as fp32, the larger); pass the resolved precision
   */
  precision?: Precision;
}

/** The one formula behind both `inspect` and the engine's own buffers. */
export interface MemoryEstimate {
  /** base (4-bit linears at their resident size) + adapter */
  weightBytes: number;
  /** the 4-bit linears' part of weightBytes: codes + scales (4.127 bits/param at blocksize 64 with double quantization) */
  quantizedBytes: number;
  quantizedParams: number;
  gradientBytes: number;
  optimizerBytes: number;
  activationBytes: number;
  /**
   * the backend's own memory beyond the engine's tensors (core/memory_estimate.h
   * estimate_device_memory): on a CUDA device the context allowance, the
   * cuBLASLt workspace, the widened weight chunk, the bf16 operand copies, the
   * fused LoRA kernels' partial sums; on the CPU the threads' scratch (the
   * attention's packed keys and per-thread partials, the GEMMs' packing buffers)
   */
  deviceBytes: number;
  /**
   * Host RAM, not in totalBytes: on a GPU, the most the weights' load holds in host memory at once
   * (quantizing: the largest linear's fp32 copy and its 4-bit codes before upload); 0 on the CPU
   * (absent from an addon built before it: 0)
   */
  hostLoadBytes?: number;
  device?: {
    contextBytes: number; workspaceBytes: number; weightChunkBytes: number; bf16CopyBytes: number; loraPartialsBytes: number;
    cpuAttentionBytes?: number; cpuAttentionPartialsBytes?: number; cpuGemmBytes?: number; cpuWeightGemmBytes?: number;
  };
  /** every part above, deviceBytes included */
  totalBytes: number;
  trainableParams: number;
  totalParams: number;
}

/** A tensor holding non-finite values (NativeEngine.nonFiniteTensors). */
export interface NonFiniteTensor {
  name: string;
  /** an adapter / trainable tensor; false: a base weight */
  trainable: boolean;
  nan: number;
  inf: number;
}

export interface NativeEngine {
  /**
   * Memory-maps the files and takes every tensor the spec needs (throws naming any missing one).
   * With quantization nf4 the block linears are quantized on load (no fp32 copy stays), or taken
   * as they are when bitsandbytes saved them in 4 bits.
   */
  loadWeights(refs: WeightRef[]): void;
  setupLora(options: LoraOptions): void;
  /** refused on a 4-bit base */
  setupFull(): void;
  setupPromptTuning(options: PromptTuningOptions): void;
  setupPrefixTuning(options: PrefixTuningOptions): void;
  /** prefix tuning: the [numVirtualTokens, numLayers * 2 * kvDim] table PEFT saves as prompt_embeddings (projection applied, in eval mode) */
  prefixTable(): Float32Array;
  parameters(): ParameterInfo[];
  /** a base weight (a 4-bit one dequantized) or a trainable tensor; setTensor on a 4-bit weight quantizes */
  getTensor(name: string): Float32Array;
  setTensor(name: string, data: Float32Array): void;
  /** accumulated gradient of a trainable tensor (tests) */
  getGradient(name: string): Float32Array;
  /**
   * Every tensor holding NaN / Inf values, in parameters() order: base weights as stored (fp32, 16-bit,
   * a 4-bit one dequantized) and the trainable / adapter tensors. Reads every value (seconds on a large
   * model): call it once a loss, gradient norm or logits came out non-finite, not on every load.
   */
  nonFiniteTensors(): Promise<NonFiniteTensor[]>;
  /**
   * Accumulates gradients of gradScale * lossSum into the trainable tensors. Prompt tuning: the last virtual
   * token predicts labels[0] (PEFT prepends nvt x -100 to the labels), so a row whose labels[0] != -100 counts
   * one token more than without it; rows that pack several sequences are refused.
   */
  forwardBackward(batch: Batch, gradScale: number): Promise<LossResult>;
  evaluate(batch: Batch): Promise<LossResult>;
  /** Applies one optimizer step to the accumulated gradients, then zeroes them. */
  optimizerStep(step: OptimizerStep): Promise<{ gradNorm: number }>;
  getOptimizerState(): OptimizerState;
  setOptimizerState(state: OptimizerState): void;
  /** dropout masks are keyed by a counter that advances once per forwardBackward (exact resume) */
  dropoutCounter(): number;
  setDropoutCounter(counter: number): void;
  /**
   * Starts a new generation with room for maxTokens real positions. With prompt / prefix tuning the cache
   * starts with the numVirtualTokens virtual positions (the soft prompt run through the model, or the prefix
   * table copied in), so decode() of the real prompt continues at position numVirtualTokens.
   */
  resetCache(maxTokens: number): void;
  /** Appends tokens to the KV cache; resolves with the logits [vocab] of the last one. */
  decode(tokens: Int32Array): Promise<Float32Array>;
  memory(): MemoryUsage;
  /** backend, kernels and threads in words */
  describe(): string;
  dispose(): void;
}

export interface CpuInfo {
  avx2: boolean;
  fma: boolean;
  hardwareThreads: number;
  kernel: string;
}

/**
 * A GPU the CUDA runtime counts (addon.devices()). Every one is listed, in
 * index order, even one that cannot report itself: that one has only its
 * index and `error` (name '', computeCapability '0.0', bytes 0).
 */
export interface DeviceInfo {
  /** the CUDA runtime's device number: the N of 'cuda:N' */
  index: number;
  /** e.g. "NVIDIA GeForce RTX 4090"; '' when `error` is set */
  name: string;
  /** e.g. "8.9" */
  computeCapability: string;
  totalBytes: number;
  /** free when devices() was called */
  freeBytes: number;
  /** why this GPU cannot be used (the driver's or runtime's message); '' when it can */
  error: string;
}

export type GemmLayout = 'nt' | 'nn' | 'tn';

/** Low-level ops, for tests, benchmarks and merging. Synchronous. */
/**
 * A linear weight [rows = out, cols = in] in 4-bit NF4 as bitsandbytes holds it
 * (shared/reference/nf4.md): `codes` two per byte, element 2j in the high nibble.
 * Without double quantization `absmax` is one fp32 per block; with it, one
 * 8-bit code per block into `nestedQuantMap`, one fp32 `nestedAbsmax` per
 * `nestedBlocksize` (256) blocks and the subtracted mean `nestedOffset`.
 */
export interface Nf4Tensor {
  rows: number;
  cols: number;
  blocksize: number;
  codes: Uint8Array;
  absmax: Float32Array | Uint8Array;
  nestedAbsmax?: Float32Array;
  nestedOffset?: number;
  nestedBlocksize?: number;
  /** the 16 NF4 values (bitsandbytes' weight.quant_map) */
  quantMap?: Float32Array;
  /** the 256-entry signed dynamic map (weight.nested_quant_map); defaults to bitsandbytes' */
  nestedQuantMap?: Float32Array;
  /** bytes of codes + scales (set by nf4Quantize) */
  residentBytes?: number;
}

export interface Nf4QuantizeOptions {
  /** 32, 64 (default), 128, ..., 4096 */
  blocksize?: number;
  /** quantize the absmax values too (QLoRA's double quantization); default true */
  doubleQuant?: boolean;
}

export interface NativeOps {
  /** C = alpha * op(A) op(B) + beta * C, layouts as in native-addon/core/backend.h */
  gemm(layout: GemmLayout, M: number, N: number, K: number, alpha: number, A: Float32Array,
    B: Float32Array, beta: number, C: Float32Array, threads?: number): void;
  /** w [rows, cols] (row-major fp32) -> NF4, exactly as bitsandbytes' quantize_4bit */
  nf4Quantize(w: Float32Array, rows: number, cols: number, options?: Nf4QuantizeOptions): Nf4Tensor & { residentBytes: number };
  /** the fp32 weight [rows * cols] */
  nf4Dequantize(q: Nf4Tensor, threads?: number): Float32Array;
  /** Y[M, rows] = alpha * X[M, cols] · W^T + beta * Y (fused dequantize-GEMM; M <= 4: GEMV) */
  nf4Matmul(X: Float32Array, M: number, q: Nf4Tensor,
    options?: { alpha?: number; beta?: 0 | 1; Y?: Float32Array; threads?: number }): Float32Array;
  /**
   * LoRA forward over a frozen base: Y = X W^T + scale * (X A^T) B^T and H = X A^T,
   * A [r, cols], B [rows, r]; base in NF4 (QLoRA) or fp32.
   */
  loraMatmul(X: Float32Array, M: number, base: Nf4Tensor | { weight: Float32Array; rows: number; cols: number },
    A: Float32Array, B: Float32Array, r: number, scale: number, threads?: number): { Y: Float32Array; H: Float32Array };
}

export interface NativeAddon {
  version: string;
  cpuInfo(): CpuInfo;
  /** every CUDA device the runtime counts (an unusable one with its `error`): [] without the CUDA backend (the default build) or without a GPU */
  devices(): DeviceInfo[];
  /**
   * Why the CUDA runtime counts no GPU, with what to do ("the NVIDIA driver
   * supports CUDA 12.4, older than the CUDA 13.0 runtime …: update the NVIDIA
   * driver …"); '' when it counts one, or without the CUDA backend.
   */
  gpuRuntimeProblem(): string;
  /** whether this build has the CUDA backend (PEFT_STUDIO_CUDA=1), GPU or not */
  cudaBackend: boolean;
  estimateMemory(spec: ModelSpec, options: MemoryEstimateOptions): MemoryEstimate;
  Engine: new (spec: ModelSpec, options: EngineOptions) => NativeEngine;
  ops: NativeOps;
}
