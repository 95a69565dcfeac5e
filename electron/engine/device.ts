// Where a run or a session computes: the CPU, or one NVIDIA GPU. The user
// asks for 'auto' (the default), 'cpu', 'cuda' (the first GPU) or 'cuda:N';
// this turns that into the device the engine gets, with a sentence saying
// why, and refuses a GPU that is not there with what to do about it.
//
// chooseDevice is the decision on plain data (the GPUs the addon listed and
// whether it was built with the CUDA backend), so every branch is testable on
// a machine without a GPU; resolveDevice asks the addon for that data.
import type { DeviceInfo, NativeAddon } from './native.js';

/** What a user may ask for. */
export type DeviceRequest = 'auto' | 'cpu' | 'cuda' | `cuda:${number}`;
/** What the engine is given: always explicit, so run.json says where a run really ran. */
export type EngineDevice = 'cpu' | `cuda:${number}`;

export const DEVICE_REQUEST_HELP = "auto (the first NVIDIA GPU when there is one, else the CPU), cpu, cuda (the first GPU) or cuda:N (the N-th, from 0)";

export interface ResolvedDevice {
  device: EngineDevice;
  /** why this device, in one sentence: "NVIDIA H200 (cuda:0, ...): the first NVIDIA GPU found", "CPU: no NVIDIA GPU found (...)" */
  reason: string;
  /** the GPU's name and memory (null on the CPU) */
  gpu: DeviceInfo | null;
}

/** Whether `text` is a device request ('auto', 'cpu', 'cuda', 'cuda:N'). */
export function isDeviceRequest(text: unknown): text is DeviceRequest {
  return typeof text === 'string' && /^(auto|cpu|cuda|cuda:(0|[1-9]\d{0,3}))$/.test(text);
}

/** A device request from user input; the error names the accepted values. */
export function parseDeviceRequest(text: string, what = '--device'): DeviceRequest {
  if (!isDeviceRequest(text)) throw new Error(`${what}: unknown device '${text}'; use ${DEVICE_REQUEST_HELP}`);
  return text;
}

/** "NVIDIA H200" on a GPU, "the CPU" otherwise (for messages: "Fits on NVIDIA H200"). */
export function deviceName(resolved: Pick<ResolvedDevice, 'gpu'>): string {
  return resolved.gpu ? resolved.gpu.name : 'the CPU';
}

const GiB = 2 ** 30;

/**
 * What the addon knows when it lists no GPU: whether the build has the CUDA
 * backend, and the CUDA runtime's reason for counting none (addon.gpuRuntimeProblem(): '' when unknown).
 */
export interface GpuAbsence {
  haveCudaBuild: boolean;
  runtimeProblem?: string;
}

/** Why a CPU-only answer, from what the addon knows. */
function noGpuWhy({ haveCudaBuild, runtimeProblem }: GpuAbsence): string {
  if (!haveCudaBuild) return 'this build has no CUDA backend';
  return runtimeProblem
    ? `the CUDA backend is built but the CUDA runtime can use no GPU: ${runtimeProblem}`
    : 'the CUDA backend is built but found no usable NVIDIA GPU (is the NVIDIA driver installed and the GPU visible?)';
}

/** What to do when a GPU was asked for and none can be used (the runtime's reason says what to fix; this, the way round it). */
function noGpuRemedy({ haveCudaBuild, runtimeProblem }: GpuAbsence): string {
  if (!haveCudaBuild) return 'use --device cpu, or rebuild the engine with PEFT_STUDIO_CUDA=1 (needs the CUDA toolkit) and install the NVIDIA driver';
  return runtimeProblem ? 'use --device cpu' : 'install or update the NVIDIA driver (nvidia-smi must list the GPU), or use --device cpu';
}

/**
 * Whether the engine's CUDA backend runs on this GPU: compute capability 7.5
 * (Turing) or later, the CudaBackend constructor's rule (its kernels are
 * built for sm_75 and up).
 */
export function isSupportedGpu(gpu: Pick<DeviceInfo, 'computeCapability'>): boolean {
  const [major, minor] = gpu.computeCapability.split('.').map((x) => Number.parseInt(x, 10));
  return Number.isFinite(major) && (major > 7 || (major === 7 && Number.isFinite(minor) && minor >= 5));
}

/** "NVIDIA H200 (cuda:0)"; "GPU 1 (cuda:1)" for one that could not say its name. */
export function gpuLabel(gpu: Pick<DeviceInfo, 'index' | 'name'>): string {
  return `${gpu.name || `GPU ${gpu.index}`} (cuda:${gpu.index})`;
}

function tooOld(gpu: DeviceInfo): string {
  return `${gpuLabel(gpu)} has compute capability ${gpu.computeCapability}; the CUDA backend needs 7.5 (Turing) or later`;
}

/**
 * Why the engine cannot train on this GPU, in one sentence naming it (it
 * could not report itself: the runtime's message; or it is older than 7.5),
 * or null when it can.
 */
export function whyUnusable(gpu: DeviceInfo): string | null {
  if (gpu.error) return `${gpuLabel(gpu)} cannot be used: ${gpu.error}`;
  return isSupportedGpu(gpu) ? null : tooOld(gpu);
}

/** "cuda:0", "cuda:0 or cuda:2", "cuda:0, cuda:2 or cuda:3" */
function orList(gpus: readonly DeviceInfo[]): string {
  const names = gpus.map((d) => `cuda:${d.index}`);
  return names.length > 1 ? `${names.slice(0, -1).join(', ')} or ${names[names.length - 1]}` : names.join('');
}

/**
 * What the device is wanted for, as a verb for the advice ("To evaluate
 * anyway, use --device cpu"): each command says what it does.
 */
export type DevicePurpose = 'train' | 'evaluate' | 'generate' | 'estimate' | 'merge' | 'export';

/**
 * The decision, on plain data: `devices` as addon.devices() lists them, every
 * GPU the runtime counts with its own `index` (the N of cuda:N; an unusable
 * one with its `error`).
 */
export function chooseDevice(devices: readonly DeviceInfo[], requested: DeviceRequest, absence: GpuAbsence, purpose: DevicePurpose = 'train'): ResolvedDevice {
  if (requested === 'cpu') return { device: 'cpu', reason: 'CPU: device cpu was asked for', gpu: null };
  const usable = devices.filter((d) => whyUnusable(d) === null);
  if (requested === 'auto') {
    if (devices.length === 0) return { device: 'cpu', reason: `CPU: no NVIDIA GPU found (${noGpuWhy(absence)})`, gpu: null };
    // the first GPU the backend runs on (one that cannot report itself, or an older card, is passed over, and said so)
    const unusable = devices.map(whyUnusable).filter((why): why is string => why !== null);
    if (usable.length === 0) return { device: 'cpu', reason: `CPU: ${unusable.join('; ')}`, gpu: null };
    const [first, ...rest] = usable;
    const others = rest.length > 0 ? `; ${rest.length} more with --device ${orList(rest)}` : '';
    const skipped = unusable.length > 0 ? `; passed over: ${unusable.join('; ')}` : '';
    return {
      device: `cuda:${first.index}`,
      reason: `${first.name} (cuda:${first.index}, ${(first.freeBytes / GiB).toFixed(1)} of ${(first.totalBytes / GiB).toFixed(1)} GiB free): the first NVIDIA GPU found${others}${skipped}`,
      gpu: first,
    };
  }
  const index = requested === 'cuda' ? 0 : Number(requested.slice('cuda:'.length));
  if (devices.length === 0) {
    throw new Error(`--device ${requested}: no NVIDIA GPU can be used: ${noGpuWhy(absence)}. To ${purpose} anyway, ${noGpuRemedy(absence)}`);
  }
  const gpu = devices.find((d) => d.index === index);
  if (!gpu) {
    const listed = devices.map((d) => `cuda:${d.index} ${d.error ? `${d.name || `GPU ${d.index}`} (cannot be used)` : d.name}`).join(', ');
    throw new Error(`--device ${requested}: there is no GPU ${index}; this machine has ${devices.length} (${listed}). Use one of those, or --device auto`);
  }
  const others = usable.filter((d) => d !== gpu);
  if (gpu.error) {
    const instead = others.length > 0 ? `use --device ${orList(others)} (or auto), or --device cpu` : 'use --device cpu';
    throw new Error(`--device ${requested}: ${whyUnusable(gpu)}. Check the GPU with nvidia-smi (a driver reload or a reboot may bring it back); meanwhile ${instead}`);
  }
  if (!isSupportedGpu(gpu)) throw new Error(`--device ${requested}: ${tooOld(gpu)}. Use --device cpu${others.length > 0 ? ', or --device auto (a newer GPU of this machine)' : ''}`);
  return { device: `cuda:${gpu.index}`, reason: `${gpuLabel(gpu)}: device ${requested} was asked for`, gpu };
}

/** The smallest model the engine accepts: enough to ask it for a backend. */
/** Whether the addon was built with the CUDA backend (a GPU may still be missing). */
export function hasCudaBackend(addon: NativeAddon): boolean {
  return addon.cudaBackend;
}

/** The device to run on for this request, asking the addon which GPUs it can use (free memory as of now). */
export function resolveDevice(addon: NativeAddon, requested: DeviceRequest, purpose: DevicePurpose = 'train'): ResolvedDevice {
  if (requested === 'cpu') return chooseDevice([], 'cpu', { haveCudaBuild: false }, purpose);
  const devices = addon.devices();
  // the runtime's reason is asked only when it lists nothing (it is the same question again)
  const runtimeProblem = devices.length === 0 && hasCudaBackend(addon) ? addon.gpuRuntimeProblem() : '';
  return chooseDevice(devices, requested, { haveCudaBuild: hasCudaBackend(addon), runtimeProblem }, purpose);
}
