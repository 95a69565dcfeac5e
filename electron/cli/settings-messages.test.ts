// Messages for settings a user gets wrong: each names the flag, the limit and
// what to do, never an impossible advice.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli, cycleRows, tempDir, tinyModel, writeJsonl } from '../testing/e2e-fixtures.js';
import { checkSeqLenFits } from '../training/config.js';
import type { ModelSpec } from '../engine/native.js';

describe('too many virtual tokens', () => {
  it('says the most --virtual-tokens the model allows, not a negative --seq-len', async () => {
    const model = await tinyModel({ seed: 61, maxPosition: 256 });
    const dir = tempDir('vt');
    const data = writeJsonl(join(dir, 'd.jsonl'), cycleRows(2, 8));
    const r = await cli(['train', '--model', model.dir, '--data', data, '--out', join(dir, 'out'), '--method', 'prompt', '--virtual-tokens', '300', '--steps', '1', '--threads', '1']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('--virtual-tokens must be at most 254 for this model (max_position_embeddings 256, and at least 2 positions for the text); got 300');
    expect(r.stderr).not.toMatch(/--seq-len -?\d+ or less/);
  });

  it('allows exactly max_position_embeddings - 2', () => {
    const spec = { maxPositionEmbeddings: 256 } as ModelSpec;
    expect(() => checkSeqLenFits(2, spec, 254)).not.toThrow();
    expect(() => checkSeqLenFits(2, spec, 255)).toThrow(/^--virtual-tokens must be at most 254 /);
    expect(() => checkSeqLenFits(3, spec, 254)).toThrow("--seq-len 3 exceeds the model's max_position_embeddings (256) minus the 254 virtual tokens; use --seq-len 2 or less");
    expect(() => checkSeqLenFits(2, spec, 255, 'the adapter\'s num_virtual_tokens')).toThrow(/^the adapter's num_virtual_tokens must be at most 254 /);
  });
});

describe('a run folder passed as the model', () => {
  it('inspect and eval say to pass it as --adapter with the base model from run.json', async () => {
    const model = await tinyModel({ seed: 62 });
    const dir = tempDir('runasmodel');
    const data = writeJsonl(join(dir, 'd.jsonl'), cycleRows(2, 8));
    const run = join(dir, 'run');
    expect((await cli(['train', '--model', model.dir, '--data', data, '--out', run, '--steps', '1', '--threads', '1'])).code).toBe(0);
    const advice = `${run}: is a training run folder (run.json), not a model. Pass it as --adapter ${run} (eval, generate, merge; train: --init-adapter) and its base model as --model ${model.dir} (from run.json)`;
    for (const argv of [['inspect', run], ['eval', '--model', run, '--data', data]]) {
      const r = await cli(argv);
      expect(r.code, argv[0]).not.toBe(0);
      expect(r.stderr, argv[0]).toContain(advice);
    }
  });
});

describe('--device cuda without a GPU', () => {
  it('inspect words the advice for what it does', async () => {
    const { loadAddon } = await import('../engine/load.js');
    if (loadAddon().devices().length > 0) return; // a machine with a GPU cannot show this message
    const model = await tinyModel({ seed: 63 });
    const r = await cli(['inspect', model.dir, '--device', 'cuda']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/--device cuda: no NVIDIA GPU can be used: .*\. To estimate anyway, /);
    expect(r.stderr).not.toContain('To train anyway');
  });
});

describe('--init-adapter that is not there', () => {
  it('says "no such folder", not that the folder lacks adapter_config.json', async () => {
    const model = await tinyModel({ seed: 64 });
    const dir = tempDir('initmissing');
    const data = writeJsonl(join(dir, 'd.jsonl'), cycleRows(2, 8));
    const missing = join(dir, 'nonexistent');
    const r = await cli(['train', '--model', model.dir, '--data', data, '--out', join(dir, 'out'), '--init-adapter', missing, '--steps', '1', '--threads', '1']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(`--init-adapter ${missing}: no such folder. Give the folder of a PEFT adapter (adapter_config.json and adapter_model.safetensors), such as a finished run's --out`);
  });
});
