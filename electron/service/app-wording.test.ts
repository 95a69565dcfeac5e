// The device and precision advice of the run's messages, in the app's
// words: each text as its producer really makes it (device.ts, precision.ts,
// memory-check.ts, crash-report.ts, with a GPU given as literal data), so a
// reworded source that the rules no longer catch fails here. The CLI keeps
// its own words (those files' tests hold them).
import { describe, expect, it } from 'vitest';
import type { DeviceInfo, MemoryEstimate } from '../engine/native.js';
import { chooseDevice } from '../engine/device.js';
import { choosePrecision } from '../engine/precision.js';
import { outOfMemoryMessage } from '../runs/crash-report.js';
import type { RunEvent } from '../runs/events.js';
import type { TrainConfig } from '../training/config.js';
import type { FitAlternatives } from '../training/fit-alternatives.js';
import { memoryBudget, memoryShortfall } from '../training/memory-check.js';
import { refuseOutputOverInputs } from '../files/output-overlap.js';
import { refuseKernelPath } from '../files/make-folder.js';
import { exportInAppWords, inAppEntry, inAppEvent, inAppWords } from './app-wording.js';

const h200: DeviceInfo = { index: 0, name: 'NVIDIA H200', computeCapability: '9.0', totalBytes: 140 * 2 ** 30, freeBytes: 6 * 2 ** 30, error: '' };
const v100: DeviceInfo = { index: 0, name: 'Tesla V100', computeCapability: '7.0', totalBytes: 16 * 2 ** 30, freeBytes: 16 * 2 ** 30, error: '' };
const t4: DeviceInfo = { index: 1, name: 'Tesla T4', computeCapability: '7.5', totalBytes: 16 * 2 ** 30, freeBytes: 16 * 2 ** 30, error: '' };
/** a GPU the runtime counts but that cannot report itself */
const lost: DeviceInfo = { index: 0, name: '', computeCapability: '', totalBytes: 0, freeBytes: 0, error: 'cudaErrorDevicesUnavailable' };
const estimate: MemoryEstimate = { weightBytes: 3 * 2 ** 30, quantizedBytes: 0, quantizedParams: 0, gradientBytes: 2 ** 30, optimizerBytes: 2 ** 31, activationBytes: 2 ** 30, deviceBytes: 0, totalBytes: 7 * 2 ** 30, trainableParams: 1, totalParams: 1 };
const config = { method: 'lora', batchSize: 4, gradientCheckpointing: false, quantization: null, out: '/runs/r1', precision: 'bf16' } as TrainConfig;

function thrown(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error('expected an error');
}

const NO_FLAG = /--device|--precision|peft-studio train/;

describe('inAppWords: the device and precision advice as a choice in the app', () => {
  it('a GPU that is not there (engine/device.ts): choose cpu, or another GPU, in the Resume options', () => {
    const noBuild = thrown(() => chooseDevice([], 'cuda:0', { haveCudaBuild: false }));
    expect(noBuild).toContain('To train anyway, use --device cpu, or rebuild');
    expect(inAppWords(noBuild, 'resume')).toBe(
      'device cuda:0: no NVIDIA GPU can be used: this build has no CUDA backend. To train anyway, choose cpu as the device in the Resume options, or rebuild the engine with PEFT_STUDIO_CUDA=1 (needs the CUDA toolkit) and install the NVIDIA driver');
    const noDriver = inAppWords(thrown(() => chooseDevice([], 'cuda', { haveCudaBuild: true })), 'resume');
    expect(noDriver).toMatch(/^device cuda: no NVIDIA GPU can be used: .*\(nvidia-smi must list the GPU\), or choose cpu as the device in the Resume options$/);
    expect(inAppWords(thrown(() => chooseDevice([h200], 'cuda:1', { haveCudaBuild: true })), 'resume')).toBe(
      'device cuda:1: there is no GPU 1; this machine has 1 (cuda:0 NVIDIA H200). Choose one of those as the device in the Resume options, or auto');
    expect(inAppWords(thrown(() => chooseDevice([v100, t4], 'cuda:0', { haveCudaBuild: true })), 'resume')).toBe(
      'device cuda:0: Tesla V100 (cuda:0) has compute capability 7.0; the CUDA backend needs 7.5 (Turing) or later. Choose cpu as the device in the Resume options, or auto (a newer GPU of this machine)');
    const unreported = inAppWords(thrown(() => chooseDevice([lost, { ...t4, index: 1 }, { ...h200, index: 2 }], 'cuda:0', { haveCudaBuild: true })), 'resume');
    expect(unreported).toMatch(/^device cuda:0: GPU 0 \(cuda:0\) cannot be used: cudaErrorDevicesUnavailable\. .*; meanwhile choose cpu as the device in the Resume options \(or another GPU: cuda:1 or cuda:2, or auto\)$/);
    expect(inAppWords(thrown(() => chooseDevice([lost], 'cuda:0', { haveCudaBuild: true })), 'resume')).toMatch(/; meanwhile choose cpu as the device in the Resume options$/);
    // before a run starts, the same choice is the form's
    expect(inAppWords(noBuild, 'start')).toContain('To train anyway, choose cpu as the Device on the Hyperparameters page (advanced settings), or rebuild');
  });

  it('bf16 where it cannot be had (engine/precision.ts), named as a flag or as a field: choose fp32 or auto', () => {
    for (const what of ['--precision', 'precision']) {
      expect(inAppWords(thrown(() => choosePrecision('bf16', null, what)), 'resume')).toBe(
        'precision bf16: the CPU computes in fp32 only; bf16 needs an NVIDIA GPU with bf16 tensor cores (compute capability 8.0 or later). Choose fp32 or auto as the precision in the Resume options, or a GPU that has them');
      expect(inAppWords(thrown(() => choosePrecision('bf16', t4, what)), 'resume')).toBe(
        'precision bf16: Tesla T4 (compute capability 7.5) has no bf16 tensor cores (they start with compute capability 8.0, Ampere). Choose fp32 or auto as the precision in the Resume options');
    }
  });

  it('a run that does not fit on its GPU (training/memory-check.ts): the CPU is one item of the list, as a Resume option', () => {
    for (const precision of ['bf16', 'fp32'] as const) {
      const cli = memoryShortfall(estimate, memoryBudget({ gpu: h200 }), { ...config, precision })!;
      expect(cli).toContain(precision === 'bf16' ? ', --device cpu --precision fp32; or pass' : ', --device cpu; or pass');
      const app = inAppWords(cli, 'resume');
      expect(app).toContain(', the CPU (choose cpu as the device in the Resume options); or tick "Resume even if the memory check says it does not fit" in the Resume options.');
      expect(app).toContain('gradient checkpointing (tick it in the Resume options)');
      expect(app).not.toMatch(NO_FLAG);
      expect(app).not.toMatch(/--gradient-checkpointing|--ignore-memory-check/);
      // everything else as it was
      expect(app.slice(0, app.indexOf(', the CPU'))).toBe(
        cli.slice(0, cli.indexOf(', --device cpu')).replace('--gradient-checkpointing', 'gradient checkpointing (tick it in the Resume options)'));
    }
    // in RAM there is no device advice: only checkpointing and "start anyway" become Resume options
    const inRam = memoryShortfall(estimate, memoryBudget({ gpu: null }, 2 ** 30), config)!;
    expect(inAppWords(inRam, 'resume')).toBe(inRam
      .replace('--gradient-checkpointing', 'gradient checkpointing (tick it in the Resume options)')
      .replace('pass --ignore-memory-check to start anyway', 'tick "Resume even if the memory check says it does not fit" in the Resume options'));
  });

  it('a resumed run that fits with gradient checkpointing (training/fit-alternatives.ts): the setting as a Resume option, with its estimate', () => {
    const fit: FitAlternatives = {
      alternatives: [{ changes: ['gradient-checkpointing'], flags: '--gradient-checkpointing', form: { gradientCheckpointing: true }, effectiveBatch: null, totalBytes: 5 * 2 ** 30, longerRows: null }],
      tried: ['gradient-checkpointing'], leanest: null, resumed: true,
    };
    const cli = memoryShortfall(estimate, memoryBudget({ gpu: null }, 6 * 2 ** 30), config, fit)!;
    expect(cli).toContain('This fits: --gradient-checkpointing (5.00 GiB); or pass --ignore-memory-check to start anyway.');
    const app = inAppWords(cli, 'resume');
    expect(app).toContain('This fits: gradient checkpointing (tick it in the Resume options; 5.00 GiB); or tick "Resume even if the memory check says it does not fit" in the Resume options.');
    expect(app).not.toMatch(/--gradient-checkpointing|--ignore-memory-check/);
    // nothing fits, on a GPU: checkpointing would still need more; the CPU is the other way
    const none: FitAlternatives = {
      alternatives: [], tried: ['gradient-checkpointing'], resumed: true,
      leanest: { changes: ['gradient-checkpointing'], flags: '--gradient-checkpointing', form: { gradientCheckpointing: true }, effectiveBatch: null, totalBytes: 6.5 * 2 ** 30, longerRows: null },
    };
    const onGpu = memoryShortfall(estimate, memoryBudget({ gpu: h200 }), config, none)!;
    expect(onGpu).toContain('Nothing tried fits on this device: with --gradient-checkpointing it still needs about 6.50 GiB (a resumed run keeps its batch size, sequence length and method); another device: --device cpu --precision fp32; or pass');
    const onGpuApp = inAppWords(onGpu, 'resume');
    expect(onGpuApp).toContain('with gradient checkpointing (tick it in the Resume options) it still needs about 6.50 GiB');
    expect(onGpuApp).toContain('; another device: the CPU (choose cpu as the device in the Resume options); or tick "Resume even if');
    expect(onGpuApp).not.toMatch(NO_FLAG);
    expect(onGpuApp).not.toMatch(/--gradient-checkpointing|--ignore-memory-check/);
  });

  it('a new run that nothing tried makes fit: gradient checkpointing named in words, with the lighter method joined to it', () => {
    const none: FitAlternatives = {
      alternatives: [], tried: ['shorter-sequence', 'gradient-checkpointing', 'qlora'], resumed: false,
      leanest: { changes: ['gradient-checkpointing', 'qlora'], flags: '--gradient-checkpointing --method qlora', form: { gradientCheckpointing: true }, effectiveBatch: null, totalBytes: 6.5 * 2 ** 30, longerRows: null },
    };
    const cli = memoryShortfall(estimate, memoryBudget({ gpu: null }, 6 * 2 ** 30, { memoryLimitBytes: null, memoryHeadroomBytes: null }), config, none)!;
    expect(cli).toContain('Nothing tried fits on this device (a shorter --seq-len, --gradient-checkpointing, --method qlora, alone or together): even --gradient-checkpointing --method qlora needs about 6.50 GiB');
    const app = inAppWords(cli, 'start');
    expect(app).toContain('Nothing tried fits on this device (a shorter Sequence length, gradient checkpointing, the method qlora, alone or together): even gradient checkpointing with the method qlora needs about 6.50 GiB; or start it anyway from the Hyperparameters page.');
    expect(app).not.toMatch(/--/);
  });

  it('out of memory on a GPU mid-run (runs/crash-report.ts): continue on the CPU is Resume with cpu chosen', () => {
    const memory = { estimateBytes: 5 * 2 ** 30, availableBytes: 6 * 2 ** 30, where: 'on NVIDIA H200', gpu: true };
    for (const precision of ['bf16', 'fp32'] as const) {
      const cli = outOfMemoryMessage('cudaMalloc failed', memory, { ...config, precision }, 'at step 3');
      expect(cli).toContain(`continue on the CPU with peft-studio train --resume /runs/r1 --device cpu${precision === 'bf16' ? ' --precision fp32' : ''}, or start`);
      const app = inAppWords(cli, 'resume');
      expect(app).toContain('(nvidia-smi lists what holds the GPU), continue on the CPU: Resume with cpu chosen as the device in the Resume options, or start a new run');
      expect(app).not.toMatch(NO_FLAG);
    }
  });

  it('a resumed bf16 run refused where it was (runs/execute.ts\'s addition): choose cpu, fp32 follows', () => {
    const text = `${thrown(() => chooseDevice([], 'cuda:0', { haveCudaBuild: false }))}. This run computed in bf16 (its run.json says so); to continue it on the CPU, resume with --device cpu --precision fp32`;
    expect(inAppWords(text, 'resume')).toMatch(/; to continue it on the CPU, choose cpu as the device in the Resume options \(it computes in fp32\)$/);
  });

  it('paths that hold the flags\' names, or spaces, are left whole', () => {
    const memory = { estimateBytes: 5 * 2 ** 30, availableBytes: 6 * 2 ** 30, where: 'on NVIDIA H200', gpu: true };
    const cli = outOfMemoryMessage('cudaMalloc failed', memory, { ...config, out: '/home/u/My Runs/exp--device-sweep', precision: 'bf16' }, 'at step 3');
    const app = inAppWords(cli, 'resume');
    expect(app).toContain('continue on the CPU: Resume with cpu chosen as the device in the Resume options, or start a new run');
    expect(app).not.toContain('My Runs');  // the command (and its folder) is gone, not half of it
    const text = 'cannot read /m/llama--precision-study/config.json or /runs/exp--device-sweep/run.json';
    expect(inAppWords(text, 'resume')).toBe(text);
    expect(inAppWords('--device cuda:3: there is no GPU 3', 'resume')).toBe('device cuda:3: there is no GPU 3');
  });

  it('a message without device or precision advice is left as it is', () => {
    const text = 'the data file changed since the run started (its sha256 differs); a resumed run must see the same data. Restore the file, or start a new run with another --out.';
    expect(inAppWords(text, 'resume')).toBe(text);
  });
});

describe('inAppEvent / inAppEntry', () => {
  it('rewords a failed event and a log line; other events and messages without advice are the same objects', () => {
    const message = thrown(() => choosePrecision('bf16', null));
    const failed: RunEvent = { type: 'failed', kind: 'error', message, step: null, checkpoint: null, resumable: true } as RunEvent;
    expect(inAppEvent(failed, 'resume')).toEqual({ ...failed, message: inAppWords(message, 'resume') });
    expect(failed.type === 'failed' && failed.message).toBe(message); // the original is not changed
    const log: RunEvent = { type: 'log', level: 'warning', message: memoryShortfall(estimate, memoryBudget({ gpu: h200 }), config)! };
    expect((inAppEvent(log, 'start') as { message: string }).message).toContain('the CPU (choose cpu as the Device on the Hyperparameters page (advanced settings))');
    const step = { type: 'paused', step: 3 } as RunEvent;
    expect(inAppEvent(step, 'resume')).toBe(step);
    const plain: RunEvent = { type: 'log', level: 'info', message: 'checkpoint at step 4' };
    expect(inAppEvent(plain, 'resume')).toBe(plain);
  });

  it('rewords a run folder\'s ending message (the Runs page), leaves null alone', () => {
    const message = outOfMemoryMessage('bad_alloc', { estimateBytes: 1, availableBytes: 2, gpu: true }, config, 'after step 2');
    expect(inAppEntry({ dir: '/runs/r1', message }).message).toBe(inAppWords(message, 'resume'));
    const none = { dir: '/runs/r2', message: null };
    expect(inAppEntry(none)).toBe(none);
  });
});

describe('exportInAppWords', () => {
  async function refusal(p: Promise<void>): Promise<string> {
    try {
      await p;
    } catch (e) {
      return (e as Error).message;
    }
    throw new Error('expected a refusal');
  }

  it('names the export folder where the exporter names its flag (the producers\' real texts)', async () => {
    const inside = await refusal(refuseOutputOverInputs('/runs/r1/export', [{ path: '/runs/r1', what: 'the run folder' }], 'the export'));
    expect(inside).toMatch(/^--out \/runs\/r1\/export: lies inside the run folder/);
    const worded = exportInAppWords(inside);
    expect(worded).not.toContain('--out');
    expect(worded).toBe('The export folder /runs/r1/export: lies inside the run folder /runs/r1; the export replaces the whole export folder, so it would delete its own input. ' +
      'Choose a separate export folder that neither holds nor lies inside /runs/r1');
    const kernel = exportInAppWords(await refusal(refuseKernelPath('/proc/x/y', '--out')));
    expect(kernel).not.toContain('--out');
    expect(kernel).toMatch(/^The export folder \/proc\/x\/y: is under \/proc/);
    // a path that holds the flag's letters stays whole
    expect(exportInAppWords('/data/exp--out-1: is a file')).toBe('/data/exp--out-1: is a file');
  });
});
