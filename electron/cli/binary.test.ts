// The real `peft-studio` executable (tsc output run by node as a child
// process): exit codes, one-line errors, and a train -> eval -> generate flow.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cycleRows, runBinary, tempDir, tinyModel, writeJsonl } from '../testing/e2e-fixtures.js';

describe('peft-studio binary', () => {
  it('starts with a node shebang and prints help', () => {
    const r = runBinary(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Usage: peft-studio <command> [options]');
    expect(readFileSync(join(import.meta.dirname, '..', '..', 'dist', 'electron', 'cli', 'main.js'), 'utf8').startsWith('#!/usr/bin/env node\n')).toBe(true);
  });

  it('an unknown flag exits 2 naming the flag', () => {
    const r = runBinary(['inspect', 'x', '--rnak', '4']);
    expect(r.code).toBe(2);
    expect(r.stderr.split('\n')[0]).toBe("peft-studio: unknown flag --rnak for 'inspect'. Valid flags: --model, --batch-size, --seq-len, --rank, --targets, --dora, --virtual-tokens, --encoder-hidden-size, --optimizer, --gradient-checkpointing, --quant-blocksize, --no-double-quant, --device, --precision, --help");
  });

  it('a missing model folder exits 1 with one line, a stack only with PEFT_STUDIO_DEBUG=1', () => {
    const missing = join(tempDir('bin'), 'nope');
    const r = runBinary(['eval', '--model', missing, '--data', 'd.jsonl']);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`peft-studio: ${missing}: no such folder. Pick the folder that holds the model's config.json and .safetensors files.\n`);
    const debug = runBinary(['eval', '--model', missing, '--data', 'd.jsonl'], { PEFT_STUDIO_DEBUG: '1' });
    expect(debug.code).toBe(1);
    expect(debug.stderr).toMatch(/\n\s+at /);
  });

  it('a bad data row exits 1 naming file:line', async () => {
    const model = await tinyModel({ seed: 51 });
    const dir = tempDir('bin');
    const data = join(dir, 'bad.jsonl');
    writeJsonl(data, [{ text: 3 }, { text: ['typo'] }]);
    const r = runBinary(['train', '--model', model.dir, '--data', data, '--out', join(dir, 'out')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`peft-studio: ${data}: none of its 2 rows can be used (format: text). First problems: ${data}:1: "text" must be a string, got 3; ${data}:2: "text" must be a string, got ["typo"]\n`);
  });

  it('train, eval and generate work end to end', async () => {
    const model = await tinyModel({ seed: 52 });
    const dir = tempDir('bin');
    const data = writeJsonl(join(dir, 'd.jsonl'), cycleRows(8, 16));
    const out = join(dir, 'run');
    const t = runBinary(['train', '--model', model.dir, '--data', data, '--out', out, '--steps', '12', '--lr', '1e-2', '--batch-size', '3', '--targets', 'all-linear', '--threads', '2']);
    expect(t.code, t.stderr).toBe(0);
    expect(t.stderr).toMatch(/step 12\/12 .*ETA 0s/);
    const base = JSON.parse(runBinary(['eval', '--model', model.dir, '--data', data, '--threads', '2']).stdout);
    const tuned = JSON.parse(runBinary(['eval', '--model', model.dir, '--adapter', out, '--data', data, '--threads', '2']).stdout);
    expect(Object.keys(tuned).sort()).toEqual(['loss', 'perplexity', 'tokens']);
    expect(tuned.tokens).toBe(base.tokens);
    expect(tuned.loss).toBeLessThan(base.loss - 1);
    const g1 = runBinary(['generate', '--model', model.dir, '--adapter', out, '--prompt', 'the cat', '--max-new-tokens', '5', '--temperature', '0', '--threads', '2']);
    const g2 = runBinary(['generate', '--model', model.dir, '--adapter', out, '--prompt', 'the cat', '--max-new-tokens', '5', '--temperature', '0', '--threads', '2']);
    expect(g1.code, g1.stderr).toBe(0);
    expect(g1.stdout.length).toBeGreaterThan(1);
    expect(g2.stdout).toBe(g1.stdout);
  });
});
