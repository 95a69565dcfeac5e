// The CLI's error paths and help, run in process. None of these need the
// native engine: they fail (or finish) before it would be loaded.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli, cycleRows, tempDir, tinyModel, writeJsonl } from '../testing/e2e-fixtures.js';
import { errorLine } from './dispatch.js';

describe('peft-studio dispatch', () => {
  it('prints the command list for --help and exits 0; no command is a usage error', async () => {
    const help = await cli(['--help']);
    expect(help.code).toBe(0);
    for (const name of ['inspect', 'train', 'eval', 'generate', 'merge']) expect(help.stdout).toContain(`  ${name}`);
    expect((await cli([])).code).toBe(2);
  });

  it('prints per-command help', async () => {
    const r = await cli(['train', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Usage: peft-studio train [options]');
    for (const flag of ['--model', '--data', '--method', '--out', '--rank', '--alpha', '--dropout', '--targets', '--rslora', '--lr', '--optimizer',
      '--weight-decay', '--scheduler', '--warmup-steps', '--steps', '--epochs', '--batch-size', '--grad-accum', '--seq-len', '--clip', '--seed',
      '--threads', '--eval-split', '--eval-every', '--save-every', '--init-adapter', '--gradient-checkpointing', '--lora-init', '--layers']) {
      expect(r.stdout).toMatch(new RegExp(`^  ${flag}\\b`, 'm'));
    }
  });

  it('an unknown command or flag exits 2 with one clear line naming it', async () => {
    const cmd = await cli(['trian']);
    expect(cmd.code).toBe(2);
    expect(cmd.stderr).toMatch(/^peft-studio: unknown command 'trian'\. Commands: inspect, train, eval, generate, merge/);
    const flag = await cli(['eval', '--model', 'm', '--data', 'd', '--sequence-length', '5']);
    expect(flag.code).toBe(2);
    expect(flag.stderr.split('\n')[0]).toBe(
      "peft-studio: unknown flag --sequence-length for 'eval'. Valid flags: --model, --adapter, --data, --role, --format, --all-tokens, --seq-len, --batch-size, --threads, --device, --precision, --quant, --quant-blocksize, --no-double-quant, --help",
    );
    expect(flag.stderr).toContain("Run 'peft-studio eval --help' for usage.");
    expect(flag.stderr).not.toMatch(/\n\s+at /); // no stack trace
  });

  it('bad numbers, missing flags and conflicting flags are usage errors', async () => {
    const out = ['--model', 'm', '--data', 'd', '--out', 'o'];
    expect((await cli(['train', ...out, '--rank', 'eight'])).stderr).toContain("peft-studio: --rank expects an integer >= 1, got 'eight'");
    expect((await cli(['train', ...out, '--lr', '-0.1'])).stderr).toContain('peft-studio: --lr expects a number >= 0 and <= 3.4028234663852886e+38, got -0.1');
    expect((await cli(['train', '--data', 'd', '--out', 'o'])).stderr).toContain('peft-studio: train needs --model');
    expect((await cli(['train', ...out, '--steps', '3', '--epochs', '2'])).stderr).toContain('give either --steps or --epochs, not both');
    expect((await cli(['train', ...out, '--method', 'full', '--rank', '4'])).stderr).toContain('--rank applies to --method lora and qlora only');
    expect((await cli(['train', ...out, '--init-adapter', 'a', '--alpha', '4'])).stderr).toContain('--alpha cannot be combined with --init-adapter');
    const r = await cli(['train', ...out, '--targets', 'q_proj,lm_head']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("--targets must be one of q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj, all-linear; got 'lm_head'");
  });

  it('a missing model folder fails with exit 1 and names the folder', async () => {
    const missing = join(tempDir('cli'), 'no-such-model');
    const r = await cli(['train', '--model', missing, '--data', 'd.jsonl', '--out', join(tempDir('cli'), 'out')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`peft-studio: ${missing}: no such folder. Pick the folder that holds the model's config.json and .safetensors files.\n`);
  });

  it('a malformed data row is skipped with its file:line; a file with no usable row fails naming them', async () => {
    const model = await tinyModel();
    const dir = tempDir('cli');
    const data = writeJsonl(join(dir, 'bad.jsonl'), [...cycleRows(2, 8), { input_ids: [1, 2, 3], labels: [1, 2] }]);
    const r = await cli(['train', '--model', model.dir, '--data', data, '--out', join(dir, 'out'), '--steps', '1', '--threads', '2']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(`note: 1 of 3 rows skipped; first: ${data}:3: "labels" has 2 entries but "input_ids" has 3; they must match\n`);

    const allBad = writeJsonl(join(dir, 'all-bad.jsonl'), [{ input_ids: [1, 2, 3], labels: [1, 2] }, { input_ids: [1, 'x'] }]);
    const none = await cli(['train', '--model', model.dir, '--data', allBad, '--out', join(dir, 'out2')]);
    expect(none.code).toBe(1);
    expect(none.stderr.split('\n')).toHaveLength(2); // one line
    expect(none.stderr).toContain(`peft-studio: ${allBad}: none of its 2 rows can be used`);
    expect(none.stderr).toContain(`${allBad}:1: "labels" has 2 entries but "input_ids" has 3`);
    expect(none.stderr).toContain(`${allBad}:2: "input_ids"[1] is "x", not an integer token id`);
  });

  it('a --seq-len beyond the model is explained before anything runs', async () => {
    const model = await tinyModel({ maxPosition: 32 });
    const dir = tempDir('cli');
    const data = writeJsonl(join(dir, 'd.jsonl'), cycleRows(2, 8));
    const r = await cli(['train', '--model', model.dir, '--data', data, '--out', join(dir, 'out'), '--seq-len', '64']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("--seq-len 64 exceeds the model's max_position_embeddings (32)");
  });

  it('--layers beyond the model is explained', async () => {
    const model = await tinyModel();
    const dir = tempDir('cli');
    const data = writeJsonl(join(dir, 'd.jsonl'), cycleRows(2, 8));
    const r = await cli(['train', '--model', model.dir, '--data', data, '--out', join(dir, 'out'), '--layers', '0,2']);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('peft-studio: --layers: layer 2 does not exist; the model has layers 0..1\n');
    expect((await cli(['train', '--model', model.dir, '--data', data, '--out', join(dir, 'out'), '--layers', '0,x'])).stderr).toContain("--layers expects non-negative layer indices, got 'x'");
  });

  it('errorLine keeps one program prefix and one line', () => {
    expect(errorLine(new Error('peft-studio: the native engine is not built'))).toBe('peft-studio: the native engine is not built\n');
    expect(errorLine(new Error('a\n  b'))).toBe('peft-studio: a b\n');
  });
});
