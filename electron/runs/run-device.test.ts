// The device of a run, end to end through `train`: --device auto resolves
// before anything is written, run.json records the device actually used (as
// it records the quantization actually used), a GPU that is not there is
// refused with what to do and leaves no folder, and run.json files from
// before the device choice read back as CPU runs.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { resolveDevice } from '../engine/device.js';
import { choosePrecision } from '../engine/precision.js';
import { loadAddon } from '../engine/load.js';
import { cli, cycleRows, tempDir, tinyModel, writeJsonl } from '../testing/e2e-fixtures.js';
import { readRunRecord } from './run-record.js';

const auto = resolveDevice(loadAddon(), 'auto');
const autoPrecision = choosePrecision('auto', auto.gpu);

describe('the device of a run', () => {
  it('auto trains where resolveDevice says and run.json records that device, with the reason', async () => {
    const model = await tinyModel({ seed: 71 });
    const dir = tempDir('run-device');
    const data = writeJsonl(join(dir, 'd.jsonl'), cycleRows(2, 8));
    const out = join(dir, 'out');
    const r = await cli(['train', '--model', model.dir, '--data', data, '--out', out, '--steps', '1', '--threads', '2']);
    expect(r.code, r.stderr).toBe(0);
    const record = JSON.parse(readFileSync(join(out, 'run.json'), 'utf8'));
    expect(record.config.device).toBe(auto.device);
    expect(record.resolved.device).toBe(auto.reason);
    // the precision too: what auto resolved to there, never 'auto'
    expect(record.config.precision).toBe(autoPrecision.precision);
    expect(record.resolved.precision).toBe(autoPrecision.reason);
    expect(record.resolved.gpu).toEqual(auto.gpu);
    // the engine says the same thing in its own words
    expect(record.resolved.engine.startsWith(auto.device === 'cpu' ? 'cpu' : 'cuda')).toBe(true);
  }, 60_000);

  it('a GPU asked for where there is none is refused before anything is written', async () => {
    if (auto.gpu) return; // a GPU machine: cuda is there
    const model = await tinyModel({ seed: 72 });
    const dir = tempDir('run-device');
    const data = writeJsonl(join(dir, 'd.jsonl'), cycleRows(2, 8));
    const out = join(dir, 'out');
    const r = await cli(['train', '--model', model.dir, '--data', data, '--out', out, '--steps', '1', '--device', 'cuda']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/--device cuda: no NVIDIA GPU can be used: .*--device cpu/);
    expect(existsSync(out)).toBe(false);
  }, 60_000);

  it('eval and generate take --device too: a bad name is a usage error, a missing GPU the same advice', async () => {
    const model = await tinyModel({ seed: 73 });
    const data = writeJsonl(join(tempDir('run-device'), 'd.jsonl'), cycleRows(2, 8));
    const bad = await cli(['eval', '--model', model.dir, '--data', data, '--device', 'gpu']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("--device: unknown device 'gpu'; use auto");
    const cpu = await cli(['eval', '--model', model.dir, '--data', data, '--device', 'cpu', '--threads', '1']);
    expect(cpu.code, cpu.stderr).toBe(0);
    expect(JSON.parse(cpu.stdout).tokens).toBeGreaterThan(0);
    if (auto.gpu) return;
    const gen = await cli(['generate', '--model', model.dir, '--prompt', 'hi', '--max-new-tokens', '1', '--device', 'cuda']);
    expect(gen.code).not.toBe(0);
    expect(gen.stderr).toMatch(/--device cuda: no NVIDIA GPU can be used/);
  }, 60_000);

  it('a run.json from before the device choice reads back as a CPU run, in fp32', async () => {
    const dir = join(tempDir('run-device'), 'old');
    mkdirSync(dir);
    writeFileSync(join(dir, 'run.json'), JSON.stringify({ config: { model: '/m', data: '/d', out: dir, method: 'lora' }, status: 'finished' }));
    expect((await readRunRecord(dir))!.config.device).toBe('cpu');
    expect((await readRunRecord(dir))!.config.precision).toBe('fp32');
  });

  it('--precision: train records fp32 on the CPU, bf16 where there is none is refused before anything is written', async () => {
    const model = await tinyModel({ seed: 74 });
    const dir = tempDir('run-precision');
    const data = writeJsonl(join(dir, 'd.jsonl'), cycleRows(2, 8));
    const cpu = join(dir, 'cpu');
    const r = await cli(['train', '--model', model.dir, '--data', data, '--out', cpu, '--steps', '1', '--threads', '2', '--device', 'cpu', '--precision', 'fp32']);
    expect(r.code, r.stderr).toBe(0);
    const record = JSON.parse(readFileSync(join(cpu, 'run.json'), 'utf8'));
    expect(record.config.precision).toBe('fp32');
    expect(record.resolved.precision).toBe('fp32: asked for (exact)');
    const bf16 = join(dir, 'bf16');
    const refused = await cli(['train', '--model', model.dir, '--data', data, '--out', bf16, '--steps', '1', '--device', 'cpu', '--precision', 'bf16']);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('--precision bf16: the CPU computes in fp32 only; bf16 needs an NVIDIA GPU with bf16 tensor cores (compute capability 8.0 or later). Use --precision fp32 or auto');
    expect(existsSync(bf16)).toBe(false);
    const bad = await cli(['train', '--model', model.dir, '--data', data, '--out', bf16, '--precision', 'fp16']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("--precision: unknown precision 'fp16'; use auto");
  }, 60_000);

  it('a bf16 run resumed on the CPU: one error that names both flags, then it continues in fp32', async () => {
    const model = await tinyModel({ seed: 75 });
    const dir = tempDir('run-precision');
    const data = writeJsonl(join(dir, 'd.jsonl'), cycleRows(2, 8));
    const out = join(dir, 'run');
    const first = await cli(['train', '--model', model.dir, '--data', data, '--out', out, '--steps', '2', '--save-every', '1', '--threads', '2', '--device', 'cpu']);
    expect(first.code, first.stderr).toBe(0);
    // as a GPU run in bf16 would have recorded it, stopped after its first step
    const path = join(out, 'run.json');
    const record = JSON.parse(readFileSync(path, 'utf8'));
    record.config.precision = 'bf16';
    record.status = 'interrupted';
    writeFileSync(path, JSON.stringify(record));
    const refused = await cli(['train', '--resume', out, '--device', 'cpu']);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('This run computed in bf16 (its run.json says so); to continue it on the CPU, resume with --device cpu --precision fp32');
    const resumed = await cli(['train', '--resume', out, '--device', 'cpu', '--precision', 'fp32', '--threads', '2']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(JSON.parse(readFileSync(path, 'utf8')).config.precision).toBe('fp32');
    // a precision run.json cannot have written is an error naming the file, not 'auto'
    const damaged = JSON.parse(readFileSync(path, 'utf8'));
    damaged.config.precision = 'fp16';
    damaged.status = 'interrupted';
    writeFileSync(path, JSON.stringify(damaged));
    const bad = await cli(['train', '--resume', out, '--device', 'cpu']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain(`${out}/run.json: config.precision 'fp16' is not a precision`);
  }, 90_000);

  it('eval and generate take --precision too: a bad name is a usage error, bf16 on the CPU the same advice', async () => {
    const model = await tinyModel({ seed: 75 });
    const data = writeJsonl(join(tempDir('run-precision'), 'd.jsonl'), cycleRows(2, 8));
    const bad = await cli(['eval', '--model', model.dir, '--data', data, '--precision', 'fp16']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("--precision: unknown precision 'fp16'; use auto");
    const fp32 = await cli(['eval', '--model', model.dir, '--data', data, '--device', 'cpu', '--precision', 'fp32', '--threads', '1']);
    expect(fp32.code, fp32.stderr).toBe(0);
    const auto32 = await cli(['eval', '--model', model.dir, '--data', data, '--device', 'cpu', '--threads', '1']);
    // on the CPU auto is fp32: the same bits
    expect(JSON.parse(auto32.stdout)).toEqual(JSON.parse(fp32.stdout));
    const gen = await cli(['generate', '--model', model.dir, '--prompt', 'hi', '--max-new-tokens', '1', '--device', 'cpu', '--precision', 'bf16']);
    expect(gen.code).not.toBe(0);
    expect(gen.stderr).toContain('--precision bf16: the CPU computes in fp32 only');
  }, 60_000);
});
