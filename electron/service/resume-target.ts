// Where a resumed run will continue, checked before it launches. The rules
// are the run's own (resolveDevice, choosePrecision: the worker applies them
// again when it starts, and run.json records what they gave); checking them
// here too means the app hears "no such GPU" or "bf16 on the CPU" as an
// error on the Resume options' device or precision field, in its own words,
// right away, and not as a run that failed.
import type { NativeAddon } from '../engine/native.js';
import { resolveDevice, type ResolvedDevice } from '../engine/device.js';
import { choosePrecision } from '../engine/precision.js';
import { loadAddon } from '../engine/load.js';
import { BF16_RESUME_NOTE } from '../runs/execute.js';
import type { TrainConfig } from '../training/config.js';
import { inAppWords } from './app-wording.js';
import { invalid } from './errors.js';

const messageOf = (e: unknown) => (e instanceof Error ? e.message : String(e));

/**
 * Refuses a resume whose device or precision cannot be had on this machine
 * (an ApiError 'invalid' naming 'device' or 'precision'). `config` is the
 * resumed configuration (run.json with the request's device / precision);
 * `precisionGiven`: the request chose the precision (else run.json's holds).
 */
export function checkResumeTarget(config: TrainConfig, precisionGiven: boolean, addon: NativeAddon = loadAddon()): void {
  // A bf16 run (run.json says so) that cannot stay where it was moves to the CPU only in fp32: the
  // same addition the worker makes (runs/execute.ts), so both say it the same way.
  const bf16Note = config.precision === 'bf16' && !precisionGiven ? BF16_RESUME_NOTE : '';
  let device: ResolvedDevice;
  try {
    device = resolveDevice(addon, config.device);
  } catch (e) {
    throw invalid('device', inAppWords(messageOf(e) + bf16Note, 'resume'));
  }
  try {
    choosePrecision(config.precision, device.gpu, 'precision');
  } catch (e) {
    throw invalid('precision', inAppWords(messageOf(e) + bf16Note, 'resume'));
  }
}
