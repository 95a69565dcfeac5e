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
import { clearWriteLeftovers } from './write-leftovers.js';

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

describe('a pid that another process holds now', () => {
  // The kernel hands out the pid after /proc/sys/kernel/ns_last_pid next (root in a pid namespace it owns; skipped elsewhere).
  const canChoosePid = (() => {
    try {
      writeFileSync('/proc/sys/kernel/ns_last_pid', readFileSync('/proc/sys/kernel/ns_last_pid', 'utf8'));
      return true;
    } catch {
      return false;
    }
  })();

  /** A live process that got pid `pid` (another process may take it first: then a few more tries, each with a new pid). */
  function sleeperWithPid(pid: number): ReturnType<typeof spawn> | null {
    writeFileSync('/proc/sys/kernel/ns_last_pid', String(pid - 1));
    const p = spawn('sleep', ['60']);
    sleepers.push(p);
    return p.pid === pid ? p : null;
  }

  it.skipIf(!canChoosePid)('a leftover older than the live process with its pid is a dead writer\'s: removed; a newer one of it stays', async () => {
    const parent = tempDir('leftovers-reused-pid');
    const pidMax = Number(readFileSync('/proc/sys/kernel/pid_max', 'utf8'));
    let sleeper: ReturnType<typeof spawn> | null = null;
    let old = '';
    for (let attempt = 0; attempt < 5 && sleeper === null; attempt++) {
      const pid = Math.min(pidMax - 10, Number(readFileSync('/proc/sys/kernel/ns_last_pid', 'utf8')) + 5000 + attempt * 100);
      // a write of pid `pid` that was killed (the temp it left), before the process now holding the number started
      old = join(parent, `.export.${pid}.0badf00d.tmp`);
      mkdirSync(old);
      // (past the 1 s margin, twice over)
      await new Promise((r) => setTimeout(r, 2000));
      sleeper = sleeperWithPid(pid);
    }
    expect(sleeper, 'no attempt got the chosen pid').not.toBeNull();
    // the live process's own temp (made after it started) is a write in progress
    const live = join(parent, `.export.${sleeper!.pid}.0badf00d.old`);
    mkdirSync(live);
    mkdirSync(join(parent, 'export'));
    const cleanup = await clearWriteLeftovers(parent, 'export');
    expect(cleanup).toEqual({ restored: [], removed: [old] });
    expect(existsSync(live)).toBe(true);
  }, 30_000);
});

/** The pid of a process that has ended. */
function endedProcessPid(): number {
  return spawnSync(process.execPath, ['-e', '0']).pid!;
}
