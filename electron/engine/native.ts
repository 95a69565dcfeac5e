// The typed contract of the native addon (native-addon/binding). This file is
// the only place that describes what the .node file exports; load.ts is the
// only place that loads it. Keep both sides in step: a change here is a change
// in native-addon/binding/*.cpp.

export type DType = 'F32' | 'F16' | 'BF16';

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

/** Where one tensor's bytes are in a safetensors file (validated beforehand). */
export interface WeightRef {
  /** Hugging Face name, e.g. "model.layers.0.self_attn.q_proj.weight". */
  name: string;
  file: string;
  /** absolute byte offset of the tensor's data in the file */
  offset: number;
  dtype: DType;
  shape: number[];
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
}

export interface EngineOptions {
  threads: number;
  gradientCheckpointing: boolean;
  /** seed of the counter-based RNG used by dropout */
  seed: number;
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
  /** every parameter once, as fp32: base weights (mmapped F32 counts too) and adapter tensors */
  weightBytes: number;
  /** gradients + optimizer state of the trainable tensors */
  trainableBytes: number;
  /** activation arena (sized for the largest batch seen) */
  activationBytes: number;
  /** generation KV cache */
  kvCacheBytes: number;
  /** peak resident set size of the process so far */
  peakRssBytes: number;
}

export type Method = 'lora' | 'full' | 'frozen';

export interface MemoryEstimateOptions {
  method: Method;
  batchSize: number;
  seqLen: number;
  lora?: Pick<LoraOptions, 'rank' | 'targets' | 'layers'> & { dropout?: number };
  gradientCheckpointing: boolean;
  optimizer: 'adamw' | 'sgd';
}

/** The one formula behind both `inspect` and the engine's own buffers. */
export interface MemoryEstimate {
  weightBytes: number;
  gradientBytes: number;
  optimizerBytes: number;
  activationBytes: number;
  totalBytes: number;
  trainableParams: number;
  totalParams: number;
}

export interface NativeEngine {
  /** Memory-maps the files and takes every tensor the spec needs (throws naming any missing one). */
  loadWeights(refs: WeightRef[]): void;
  setupLora(options: LoraOptions): void;
  setupFull(): void;
  parameters(): ParameterInfo[];
  getTensor(name: string): Float32Array;
  setTensor(name: string, data: Float32Array): void;
  /** accumulated gradient of a trainable tensor (tests) */
  getGradient(name: string): Float32Array;
  /** Accumulates gradients of gradScale * lossSum into the trainable tensors. */
  forwardBackward(batch: Batch, gradScale: number): Promise<LossResult>;
  evaluate(batch: Batch): Promise<LossResult>;
  /** Applies one optimizer step to the accumulated gradients, then zeroes them. */
  optimizerStep(step: OptimizerStep): Promise<{ gradNorm: number }>;
  getOptimizerState(): OptimizerState;
  setOptimizerState(state: OptimizerState): void;
  /** dropout masks are keyed by a counter that advances once per forwardBackward (exact resume) */
  dropoutCounter(): number;
  setDropoutCounter(counter: number): void;
  /** Starts a new generation with room for maxTokens positions. */
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

export type GemmLayout = 'nt' | 'nn' | 'tn';

/** Low-level ops, for tests, benchmarks and merging. Synchronous. */
export interface NativeOps {
  /** C = alpha * op(A) op(B) + beta * C, layouts as in native-addon/core/backend.h */
  gemm(layout: GemmLayout, M: number, N: number, K: number, alpha: number, A: Float32Array,
    B: Float32Array, beta: number, C: Float32Array, threads?: number): void;
}

export interface NativeAddon {
  version: string;
  cpuInfo(): CpuInfo;
  estimateMemory(spec: ModelSpec, options: MemoryEstimateOptions): MemoryEstimate;
  Engine: new (spec: ModelSpec, options: EngineOptions) => NativeEngine;
  ops: NativeOps;
}
