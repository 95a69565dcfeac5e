// A folder write killed between its two renames leaves its target missing,
// the old content in ".NAME.PID.HEX.old" and the new in ".NAME.PID.HEX.tmp".
// The next write into that folder (an export, a merge: writeFolderAtomic, and
// export's early check) puts the old folder back, removes the rest, and says
// so; a live process's leftovers are its writes in progress and stay. The
// leftovers are made by a real child process that then SIGKILLs itself.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { tempDir } from '../testing/e2e-fixtures.js';
import { checkExportDestination } from '../export/export-target.js';
import { FolderExistsError, writeFolderAtomic } from './atomic.js';

/** Does what writeFolderAtomic does up to between its two renames, then is killed there. */
function killedBetweenRenames(parent: string, name: string): void {
  const script = `
    const fs = require('node:fs'), path = require('node:path');
    const [parent, name] = process.argv.slice(1);
    const tag = process.pid + '.0badf00d';
    const temp = path.join(parent, '.' + name + '.' + tag + '.tmp');
    fs.mkdirSync(temp);
    fs.writeFileSync(path.join(temp, 'new.txt'), 'the new export');
    fs.renameSync(path.join(parent, name), path.join(parent, '.' + name + '.' + tag + '.old'));
    process.kill(process.pid, 'SIGKILL');`;
  const r = spawnSync(process.execPath, ['-e', script, parent, name]);
  expect(r.signal).toBe('SIGKILL');
}

function folderWithOldExport(tag: string): { parent: string; out: string } {
  const parent = tempDir(tag);
  const out = join(parent, 'export');
  mkdirSync(out);
  writeFileSync(join(out, 'old.txt'), 'the export the user had');
  return { parent, out };
}

const sleepers: ReturnType<typeof spawn>[] = [];
afterAll(() => {
  for (const p of sleepers) p.kill();
});

describe('the leftovers of a folder write killed between its renames', () => {
  it('writeFolderAtomic puts the old folder back before judging it, removes the temp, and says so', async () => {
    const { parent, out } = folderWithOldExport('leftovers-write');
    killedBetweenRenames(parent, 'export');
    expect(existsSync(out)).toBe(false);

    // without overwrite: the folder the user had is back, so it is refused as any existing folder
    await expect(writeFolderAtomic(out, async () => {})).rejects.toBeInstanceOf(FolderExistsError);
    expect(readFileSync(join(out, 'old.txt'), 'utf8')).toBe('the export the user had');
    expect(readdirSync(parent).sort()).toEqual(['export']);

    // a second kill, then a write that replaces it: the note says what was put back and removed
    killedBetweenRenames(parent, 'export');
    const notes: string[] = [];
    const cleanup = await writeFolderAtomic(out, async (temp) => writeFileSync(join(temp, 'x.txt'), 'x'), { overwrite: true, onCleanup: (n) => notes.push(n) });
    expect(cleanup.restored.map((r) => r.to)).toEqual([out]);
    expect(cleanup.removed).toHaveLength(1);
    expect(notes).toEqual([`put ${out} back from ${cleanup.restored[0].from} (a write killed while replacing it had moved it aside); removed what killed writes left: ${cleanup.removed[0]}`]);
    expect(cleanup.removed[0]).toMatch(/\.export\.\d+\.0badf00d\.tmp$/);
    expect(readdirSync(out)).toEqual(['x.txt']);
    expect(readdirSync(parent).sort()).toEqual(['export']);
  });

  it("export's early check puts --out back and refuses it as the folder the user had, naming what it did", async () => {
    const { parent, out } = folderWithOldExport('leftovers-export');
    killedBetweenRenames(parent, 'export');
    const error = await checkExportDestination(out, [], { howToOverwrite: 'pass --overwrite' }).then(() => null, (e: Error) => e);
    expect(error).toBeInstanceOf(FolderExistsError);
    expect(error!.message).toMatch(new RegExp(`^put ${out} back from ${parent}/\\.export\\.\\d+\\.0badf00d\\.old \\(a write killed while replacing it had moved it aside\\); ` +
      `removed what killed writes left: ${parent}/\\.export\\.\\d+\\.0badf00d\\.tmp\\. ${out}: the folder already exists and is not empty\\.`));
    expect(readFileSync(join(out, 'old.txt'), 'utf8')).toBe('the export the user had');
  });

  it("leaves a live process's temp folder alone (a write in progress), and other targets' leftovers", async () => {
    const parent = tempDir('leftovers-live');
    const sleeper = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)']);
    sleepers.push(sleeper);
    const live = join(parent, `.export.${sleeper.pid}.0badf00d.tmp`);
    mkdirSync(live);
    const other = join(parent, `.other.${endedProcessPid()}.0badf00d.tmp`);
    mkdirSync(other);
    const cleanup = await writeFolderAtomic(join(parent, 'export'), async () => {});
    expect(cleanup).toEqual({ restored: [], removed: [] });
    expect(existsSync(live) && existsSync(other)).toBe(true);
  });
});

/** The pid of a process that has ended. */
function endedProcessPid(): number {
  return spawnSync(process.execPath, ['-e', '0']).pid!;
}
