// `train --method prompt|prefix` flags: what they become in the run
// configuration, and the combinations refused before anything runs.
import { describe, expect, it } from 'vitest';
import { parseArgs, UsageError } from './args.js';
import { trainConfigFromArgs, trainSpec } from './commands/train.js';

const BASE = ['--model', 'm', '--data', 'd.jsonl', '--out', 'o'];
const config = (...argv: string[]) => trainConfigFromArgs(parseArgs(trainSpec, [...BASE, ...argv]));
const refused = (message: RegExp | string, ...argv: string[]) => {
  let error: unknown;
  try {
    config(...argv);
  } catch (e) {
    error = e;
  }
  expect(error, `${argv.join(' ')} should be refused`).toBeInstanceOf(UsageError);
  if (typeof message === 'string') expect((error as Error).message).toContain(message);
  else expect((error as Error).message).toMatch(message);
};

describe('train --method prompt', () => {
  it('defaults: 20 virtual tokens, RANDOM, lr 3e-2, no LoRA, no 4-bit base', () => {
    const c = config('--method', 'prompt');
    expect(c.prompt).toEqual({ numVirtualTokens: 20, init: 'RANDOM', initText: null });
    expect(c.prefix).toBeNull();
    expect(c.lora).toBeNull();
    expect(c.lr).toBe(3e-2);
    expect(c.quantization).toBeNull();
  });

  it('--prompt-init text|sample-vocab, --prompt-init-text, --virtual-tokens, --quant nf4', () => {
    expect(config('--method', 'prompt', '--virtual-tokens', '8', '--prompt-init', 'sample-vocab').prompt).toEqual({ numVirtualTokens: 8, init: 'SAMPLE_VOCAB', initText: null });
    expect(config('--method', 'prompt', '--prompt-init', 'text', '--prompt-init-text', 'Answer:').prompt).toEqual({ numVirtualTokens: 20, init: 'TEXT', initText: 'Answer:' });
    // the text alone implies TEXT
    expect(config('--method', 'prompt', '--prompt-init-text', 'Answer:').prompt!.init).toBe('TEXT');
    expect(config('--method', 'prompt', '--quant', 'nf4').quantization).toEqual({ type: 'nf4', blocksize: 64, doubleQuant: true });
    expect(config('--method', 'prompt', '--quant', 'nf4', '--quant-blocksize', '128', '--no-double-quant').quantization).toEqual({ type: 'nf4', blocksize: 128, doubleQuant: false });
  });

  it('refuses what does not fit', () => {
    refused('--prompt-init text needs --prompt-init-text', '--method', 'prompt', '--prompt-init', 'text');
    refused('--prompt-init-text applies to --prompt-init text, not random', '--method', 'prompt', '--prompt-init', 'random', '--prompt-init-text', 'x');
    refused(/--pack cannot be used with --method prompt: prompt tuning prepends the virtual tokens to each sequence/, '--method', 'prompt', '--pack');
    refused('--rank applies to --method lora and qlora only', '--method', 'prompt', '--rank', '4');
    refused('--dropout applies to --method lora and qlora only', '--method', 'prompt', '--dropout', '0.1');
    refused('--prefix-projection applies to --method prefix only', '--method', 'prompt', '--prefix-projection');
    refused('--virtual-tokens cannot be combined with --init-adapter', '--method', 'prompt', '--init-adapter', 'a', '--virtual-tokens', '4');
    refused('--prompt-init cannot be combined with --init-adapter', '--method', 'prompt', '--init-adapter', 'a', '--prompt-init', 'random');
    refused('--quant-blocksize applies to --method qlora only (or to prompt / prefix with --quant nf4)', '--method', 'prompt', '--quant-blocksize', '128');
    refused(/--virtual-tokens expects an integer >= 1/, '--method', 'prompt', '--virtual-tokens', '0');
    refused(/--prompt-init must be one of/, '--method', 'prompt', '--prompt-init', 'zeros');
  });
});

describe('train --method prefix', () => {
  it('defaults and the projection flags', () => {
    const c = config('--method', 'prefix');
    expect(c.prefix).toEqual({ numVirtualTokens: 20, projection: false, encoderHiddenSize: null });
    expect(c.lr).toBe(1e-2);
    expect(config('--method', 'prefix', '--prefix-projection').prefix).toEqual({ numVirtualTokens: 20, projection: true, encoderHiddenSize: null });
    expect(config('--method', 'prefix', '--prefix-projection', '--encoder-hidden-size', '48', '--virtual-tokens', '5').prefix).toEqual({ numVirtualTokens: 5, projection: true, encoderHiddenSize: 48 });
    // prefix tuning packs: every document sees the prefix
    expect(config('--method', 'prefix', '--pack').pack).toBe(true);
    expect(config('--method', 'prefix', '--quant', 'nf4').quantization?.type).toBe('nf4');
  });

  it('refuses what does not fit', () => {
    refused('--encoder-hidden-size needs --prefix-projection', '--method', 'prefix', '--encoder-hidden-size', '48');
    refused('--prompt-init applies to --method prompt only', '--method', 'prefix', '--prompt-init', 'random');
    refused('--targets applies to --method lora and qlora only', '--method', 'prefix', '--targets', 'q_proj');
    refused('--prefix-projection cannot be combined with --init-adapter', '--method', 'prefix', '--init-adapter', 'a', '--prefix-projection');
  });
});

describe('the new flags elsewhere', () => {
  it('are refused for LoRA and full fine-tuning', () => {
    refused('--virtual-tokens applies to --method prompt and prefix only', '--virtual-tokens', '4');
    refused('--virtual-tokens applies to --method prompt and prefix only', '--method', 'full', '--virtual-tokens', '4');
    refused('--prompt-init-text applies to --method prompt only', '--prompt-init-text', 'x');
    refused('--encoder-hidden-size applies to --method prefix only', '--method', 'qlora', '--encoder-hidden-size', '4');
    refused('--quant applies to --method prompt and prefix (for LoRA on a 4-bit base use --method qlora)', '--quant', 'nf4');
    refused('full fine-tuning cannot train 4-bit weights', '--method', 'full', '--quant', 'nf4');
    refused('--quant-blocksize applies to --method qlora only', '--quant-blocksize', '128');
    // LoRA settings are unchanged
    const lora = config('--rank', '4');
    expect(lora.lora?.rank).toBe(4);
    expect(lora.prompt).toBeNull();
    expect(lora.prefix).toBeNull();
  });
});
