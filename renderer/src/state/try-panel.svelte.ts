// The Try panel: one prompt, generated twice with the same settings and
// seed, by the base model alone and with the trained adapter, so the two
// answers differ only by the adapter.
import type { ApiTransport, GenerateResponse } from '../../../electron/api/contract.js';

export const MAX_NEW_TOKENS_LIMIT = 2048;

export interface TrySettings {
  prompt: string;
  maxNewTokens: number;
  temperature: number;
  seed: number;
}

/** Why these settings cannot be sent, field by field (empty: they can). */
export function trySettingsErrors(s: TrySettings): Partial<Record<keyof TrySettings, string>> {
  const errors: Partial<Record<keyof TrySettings, string>> = {};
  if (s.prompt.trim() === '') errors.prompt = 'Write a prompt.';
  if (!Number.isInteger(s.maxNewTokens) || s.maxNewTokens < 1 || s.maxNewTokens > MAX_NEW_TOKENS_LIMIT) {
    errors.maxNewTokens = `A whole number from 1 to ${MAX_NEW_TOKENS_LIMIT}.`;
  }
  if (!Number.isFinite(s.temperature) || s.temperature < 0) errors.temperature = 'A number from 0 (greedy) up.';
  if (!Number.isInteger(s.seed) || s.seed < 0) errors.seed = 'A whole number, 0 or more.';
  return errors;
}

/** A generation's time: milliseconds below 0.1 s ("4 ms", "< 1 ms"), else seconds with two decimals. */
export function formatGenerationTime(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '—';
  if (seconds >= 0.1) return `${seconds.toFixed(2)} s`;
  const ms = Math.round(seconds * 1000);
  return ms < 1 ? '< 1 ms' : `${ms} ms`;
}

/** "1 token in 4 ms (250.0 tokens/s), stopped by end of sequence". */
export function generationStats(r: Pick<GenerateResponse, 'tokens' | 'seconds' | 'stoppedBy'>): string {
  const rate = r.seconds > 0 ? ` (${(r.tokens / r.seconds).toFixed(1)} tokens/s)` : '';
  const tokens = `${r.tokens} ${r.tokens === 1 ? 'token' : 'tokens'}`;
  return `${tokens} in ${formatGenerationTime(r.seconds)}${rate}, stopped by ${r.stoppedBy === 'eos' ? 'end of sequence' : 'the length limit'}`;
}

/** Where the answer was computed: "generated on NVIDIA H200 (bf16)", "generated on CPU (fp32)". */
export function computedOnText(r: Pick<GenerateResponse, 'computedOn'>): string {
  return `generated on ${r.computedOn.name} (${r.computedOn.precision})`;
}

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

export class TryPanel {
  prompt = $state('');
  maxNewTokens = $state(64);
  temperature = $state(0);
  seed = $state(0);
  /** which side is being generated now */
  generating = $state<'base' | 'adapter' | null>(null);
  base = $state.raw<GenerateResponse | null>(null);
  adapter = $state.raw<GenerateResponse | null>(null);
  error = $state<string | null>(null);

  constructor(private readonly api: ApiTransport) {}

  get errors(): Partial<Record<keyof TrySettings, string>> {
    return trySettingsErrors({ prompt: this.prompt, maxNewTokens: this.maxNewTokens, temperature: this.temperature, seed: this.seed });
  }

  canGenerate(model: string | null, adapterDir: string | null): boolean {
    return model !== null && adapterDir !== null && this.generating === null && Object.keys(this.errors).length === 0;
  }

  /** Base first, then with the adapter (one after the other: they share the CPU). */
  async generate(model: string | null, adapterDir: string | null): Promise<void> {
    if (!model || !adapterDir || !this.canGenerate(model, adapterDir)) return;
    const common = { model, prompt: this.prompt, maxNewTokens: this.maxNewTokens, temperature: this.temperature, seed: this.seed };
    this.error = null;
    this.base = null;
    this.adapter = null;
    try {
      this.generating = 'base';
      this.base = await this.api.call('generate', { ...common, adapter: null });
      this.generating = 'adapter';
      this.adapter = await this.api.call('generate', { ...common, adapter: adapterDir });
    } catch (e) {
      this.error = messageOf(e);
    } finally {
      this.generating = null;
    }
  }
}
