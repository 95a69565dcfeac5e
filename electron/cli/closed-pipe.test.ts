// The built `peft-studio` executable writing into a pipe whose reader is
// gone (`peft-studio runs | head -1` once head has its line): it ends quietly,
// 0 for stdout (the reader had what it wanted), 1 for stderr (the messages
// are lost and the command did not finish), never with a stack trace.
// The pipe is a FIFO whose only reader is closed before the child starts, so
// its very first write fails: no race with how fast the child writes.
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, constants, openSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { builtCli, tempDir } from '../testing/e2e-fixtures.js';
import { commitOf, demoModelDir, filesOf, writeCachedRevision } from '../models/hf-cache-fixture.js';
import { CLOSED_STDERR_EXIT, CLOSED_STDOUT_EXIT } from './closed-pipe.js';

/** The write end of a pipe nobody reads any more (a write to it fails with EPIPE). */
function closedPipe(): number {
  const fifo = join(tempDir('closed-pipe'), 'fifo');
  execFileSync('mkfifo', [fifo]);
  const reader = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK); // a writer may open it only while a reader has
  const writer = openSync(fifo, constants.O_WRONLY);
  closeSync(reader);
  return writer;
}

function runWith(argv: string[], stdio: ['ignore', number | 'pipe', number | 'pipe'], env: Record<string, string>) {
  const r = spawnSync(process.execPath, [builtCli(), ...argv], { stdio, encoding: 'utf8', env: { ...process.env, ...env }, timeout: 120_000 });
  for (const fd of stdio) if (typeof fd === 'number') closeSync(fd);
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

describe('the reader of the output goes away', () => {
  it('stdout closed (runs | head -1): exit 0, nothing on stderr', () => {
    const home = tempDir('closed-pipe-home');
    const r = runWith(['runs'], ['ignore', closedPipe(), 'pipe'], { PEFT_STUDIO_HOME: home });
    expect(r.stderr).toBe('');
    expect(r.signal).toBeNull();
    expect(r.code).toBe(CLOSED_STDOUT_EXIT);
    expect(CLOSED_STDOUT_EXIT).toBe(0);
    // the same command into an open pipe prints its line: the closed pipe is what changed
    const open = runWith(['runs'], ['ignore', 'pipe', 'pipe'], { PEFT_STUDIO_HOME: home });
    expect(open.code).toBe(0);
    expect(open.stdout).toBe(`no runs yet (index: ${join(home, 'runs.json')})\n`);
  });

  it('stderr closed while the command still has work (inspect org/name after its note): exit 1, nothing on stdout', () => {
    // the note about the cache snapshot is written to stderr before the model is read, so the command is cut short there
    const cache = tempDir('closed-pipe-hf');
    writeCachedRevision(cache, 'org/demo', commitOf('closed-pipe'), filesOf(demoModelDir()));
    const r = runWith(['inspect', 'org/demo', '--device', 'cpu'], ['ignore', 'pipe', closedPipe()], { HF_HUB_CACHE: cache });
    expect(r.signal).toBeNull();
    expect(r.code).toBe(CLOSED_STDERR_EXIT);
    expect(CLOSED_STDERR_EXIT).toBe(1);
    expect(r.stdout).toBe('');
    // with stderr open the same command prints its report
    const open = runWith(['inspect', 'org/demo', '--device', 'cpu'], ['ignore', 'pipe', 'pipe'], { HF_HUB_CACHE: cache });
    expect(open.code, open.stderr).toBe(0);
    expect(JSON.parse(open.stdout)).toMatchObject({ architecture: 'LlamaForCausalLM' });
  }, 60_000);
});
