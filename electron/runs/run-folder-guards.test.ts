// The --out folder is checked before anything is written: never the model
// folder (or inside / around it), never a non-empty folder that is not a run,
// never a finished run without --overwrite, never under /proc or /sys; and a
// folder that cannot be created gets one line naming it. The dataset report
// reaches run.json and the started event.
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseArgs } from '../cli/args.js';
import { trainConfigFromArgs, trainSpec } from '../cli/commands/train.js';
import { cli, cycleRows, tempDir, tinyModel, writeJsonl } from '../testing/e2e-fixtures.js';
import type { TrainConfig } from '../training/config.js';
import { runTraining } from '../training/run.js';
import type { StartedEvent } from './events.js';
import { executeRun } from './execute.js';

let modelDir: string;
let data: string;
let work: string;

beforeAll(async () => {
  modelDir = (await tinyModel({ seed: 5 })).dir;
  work = tempDir('guards');
  data = writeJsonl(join(work, 'd.jsonl'), [...cycleRows(6, 12), { input_ids: [1, 2, 3], labels: [1, 2] }, { text: 5 }]);
});

function configFor(out: string, flags: string[] = []): TrainConfig {
  return trainConfigFromArgs(parseArgs(trainSpec, ['--model', modelDir, '--data', data, '--out', out, '--steps', '1', '--threads', '2', '--eval-split', '0', ...flags]));
}

async function failure(config: TrainConfig, overwrite = false): Promise<string> {
  const r = await runTraining(config, { stderr: () => {}, stderrIsTTY: false }, { overwrite }).then(() => null, (e: Error) => e.message);
  expect(r, 'the run should have been refused').not.toBeNull();
  return r!;
}

const snapshot = (dir: string) => readdirSync(dir, { recursive: true }).map(String).sort().map((f) => [f, existsSync(join(dir, f)) && !f.endsWith('/') ? safeRead(join(dir, f)) : '']);
const safeRead = (f: string) => {
  try {
    return readFileSync(f).toString('base64');
  } catch {
    return 'dir';
  }
};

describe('--out that would overwrite the model', () => {
  it('refuses the model folder itself (full fine-tuning), leaving its files byte for byte', async () => {
    const before = snapshot(modelDir);
    const m = await failure(configFor(modelDir, ['--method', 'full']));
    expect(m).toBe(`--out ${modelDir}: is the model folder; the run would overwrite the base model's files. Choose a separate folder for the run, e.g. --out ./runs/my-run`);
    expect(snapshot(modelDir)).toEqual(before);
  });

  it('refuses a folder inside the model folder, and one that contains it, before creating anything', async () => {
    const inside = join(modelDir, 'runs', 'r1');
    expect(await failure(configFor(inside))).toContain(`--out ${inside}: is inside the model folder ${modelDir}`);
    expect(existsSync(join(modelDir, 'runs'))).toBe(false);
    const around = dirname(modelDir);
    expect(await failure(configFor(around, ['--method', 'full']))).toContain(`--out ${around}: contains the model folder ${modelDir}`);
  });

  it('refuses a non-empty folder without run.json, touching none of its files', async () => {
    const other = join(work, 'photos');
    mkdirSync(other);
    writeFileSync(join(other, 'cat.jpg'), 'meow');
    const m = await failure(configFor(other));
    expect(m).toBe(`--out ${other}: the folder is not empty (1 item, e.g. cat.jpg) and holds no run.json, so it is not a run folder; the run would mix its files with these. Choose a new or empty folder for --out`);
    expect(readdirSync(other)).toEqual(['cat.jpg']);
  });
});

describe('--out that holds a finished run', () => {
  it('is refused without --overwrite (files untouched) and replaced with it', async () => {
    const out = join(work, 'finished');
    await runTraining(configFor(out), { stderr: () => {}, stderrIsTTY: false });
    const before = snapshot(out);
    const m = await failure(configFor(out, ['--lr', '1e-2']));
    expect(m).toBe(`${out}: the folder holds a finished run (lora, 1 steps) and its adapter; choose another --out, or pass --overwrite to replace it`);
    expect(snapshot(out)).toEqual(before);

    const createdBefore = JSON.parse(readFileSync(join(out, 'run.json'), 'utf8')).created_at;
    await runTraining(configFor(out, ['--lr', '1e-2']), { stderr: () => {}, stderrIsTTY: false }, { overwrite: true });
    const record = JSON.parse(readFileSync(join(out, 'run.json'), 'utf8'));
    expect(record.status).toBe('finished');
    expect(record.config.lr).toBe(1e-2);
    expect(record.created_at).not.toBe(createdBefore);
  });

  it('--overwrite with another method leaves none of the old run\'s files', async () => {
    const out = join(work, 'full-then-lora');
    await runTraining(configFor(out, ['--method', 'full', '--save-every', '1']), { stderr: () => {}, stderrIsTTY: false });
    expect(existsSync(join(out, 'model.safetensors'))).toBe(true);
    await runTraining(configFor(out), { stderr: () => {}, stderrIsTTY: false }, { overwrite: true });
    const names = readdirSync(out).sort();
    expect(names).toContain('adapter_model.safetensors');
    // the full run's model files and checkpoints are gone
    expect(names.filter((n) => n.startsWith('model') || n === 'config.json' || n === 'checkpoints')).toEqual([]);
  });

  it('--overwrite never deletes its own inputs: an --init-adapter or a data file inside --out is refused, the run untouched', async () => {
    const out = join(work, 'self-init');
    await runTraining(configFor(out), { stderr: () => {}, stderrIsTTY: false });
    const inside = writeJsonl(join(out, 'more.jsonl'), cycleRows(6, 12));
    const before = snapshot(out);
    const fromItself = await failure(configFor(out, ['--init-adapter', out]), true);
    expect(fromItself).toBe(`--out ${out}: holds the adapter it starts from (--init-adapter ${out}); the run replaces the files of its --out folder, so it would delete it. ` +
      'Copy it elsewhere first, or choose another --out folder');
    const dataInside = trainConfigFromArgs(parseArgs(trainSpec, ['--model', modelDir, '--data', inside, '--out', out, '--steps', '1', '--threads', '2']));
    expect(await failure(dataInside, true)).toContain(`--out ${out}: holds its data file (--data ${inside})`);
    expect(snapshot(out)).toEqual(before);
  });

  it('the CLI refuses it too and takes --overwrite', async () => {
    const out = join(work, 'cli-finished');
    const argv = ['train', '--model', modelDir, '--data', data, '--out', out, '--steps', '1', '--threads', '2', '--eval-split', '0'];
    expect((await cli(argv)).code).toBe(0);
    const again = await cli(argv);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('the folder holds a finished run (lora, 1 steps) and its adapter; choose another --out, or pass --overwrite to replace it');
    const replaced = await cli([...argv, '--overwrite']);
    expect(replaced.code, replaced.stderr).toBe(0);
  });
});

describe('--out that cannot be created', () => {
  it('under a file: one line naming the folder', async () => {
    const file = join(work, 'plain-file');
    writeFileSync(file, 'x');
    const out = join(file, 'run');
    const m = await failure(configFor(out));
    expect(m).toBe(`--out ${out}: a part of the path is a file, not a folder (${out}); choose another --out`);
    expect(await failure(configFor(file))).toBe(`--out ${file}: is a file, not a folder; choose a new folder name for the run`);
  });

  // root writes anywhere, so this one only runs as an ordinary user
  it.skipIf(process.getuid?.() === 0)('without write permission: one line naming the folder, no raw EACCES text', async () => {
    const locked = join(work, 'locked');
    mkdirSync(locked);
    chmodSync(locked, 0o500);
    const out = join(locked, 'run');
    const m = await failure(configFor(out));
    expect(m).toContain(`--out ${out}: permission denied on`);
    expect(m).not.toContain('EACCES');
  });

  it('under /proc or /sys: refused at once (Node\'s recursive mkdir would spin there)', async () => {
    for (const out of ['/proc/peft-studio-run', '/sys/kernel/peft-studio/run']) {
      const m = await failure(configFor(out));
      expect(m).toMatch(new RegExp(`^--out ${out}: is under /(proc|sys), a kernel file system where no run folder can be made`));
    }
  }, 20_000);
});

describe('the dataset report of a run', () => {
  it('is in run.json (resolved.data) and in the started event', async () => {
    const out = join(work, 'report');
    let started: StartedEvent | null = null;
    const end = await executeRun(configFor(out, ['--seq-len', '8']), { resume: false, emit: (e) => { if (e.type === 'started') started = e; } });
    expect(end.type).toBe('finished');
    const summary = JSON.parse(readFileSync(join(out, 'run.json'), 'utf8')).resolved.data;
    // 8 rows in the file: 6 usable (11 or 12 tokens, truncated to 8), 2 skipped (lines 7 and 8)
    expect(summary.format).toBe('tokenized');
    expect(summary.rows).toEqual({ total: 8, used: 6, skipped: 2 });
    expect(summary.skipped.map((s: { source: string }) => s.source)).toEqual([`${data}:7`, `${data}:8`]);
    expect(summary.skipped[0].reason).toContain('"labels" has 2 entries but "input_ids" has 3');
    expect(summary.truncation.rows).toBe(6);
    expect(summary.truncation.tokensDropped).toBe((12 + 11 + 10) * 2 - 6 * 8); // lengths 12, 11, 10 twice each
    expect(summary.tokens).toEqual({ total: 48, trained: 42 });
    expect(started!.data).toEqual(summary);
  });
});
