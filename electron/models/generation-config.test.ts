import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readGenerationConfig } from './generation-config.js';

let root: string;
let n = 0;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'gencfg-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

async function folderWith(text: string | null): Promise<string> {
  const dir = await mkdtemp(join(root, `f${n++}-`));
  if (text !== null) await writeFile(join(dir, 'generation_config.json'), text);
  return dir;
}

describe('readGenerationConfig', () => {
  it('is null for a missing, unparsable or non-object file', async () => {
    for (const text of [null, '{broken', 'null', '[1, 2]']) expect(await readGenerationConfig(await folderWith(text))).toBeNull();
  });

  it('samples only with do_sample: true, as transformers does', async () => {
    expect(await readGenerationConfig(await folderWith('{"temperature": 0.6, "top_p": 0.9}')))
      .toEqual({ eosTokenIds: null, temperature: 0, topP: 1 });
    expect(await readGenerationConfig(await folderWith('{"do_sample": true, "temperature": 0.6, "top_p": 0.9}')))
      .toEqual({ eosTokenIds: null, temperature: 0.6, topP: 0.9 });
    expect(await readGenerationConfig(await folderWith('{"do_sample": true}')))
      .toEqual({ eosTokenIds: null, temperature: 1, topP: 1 });
  });

  it('reads eos_token_id as one id or a list, and ignores anything else', async () => {
    expect((await readGenerationConfig(await folderWith('{"eos_token_id": 7}')))?.eosTokenIds).toEqual([7]);
    expect((await readGenerationConfig(await folderWith('{"eos_token_id": [7, 9]}')))?.eosTokenIds).toEqual([7, 9]);
    for (const bad of ['[]', '"7"', '[7, 1.5]', 'null']) {
      expect((await readGenerationConfig(await folderWith(`{"eos_token_id": ${bad}}`)))?.eosTokenIds).toBeNull();
    }
  });
});
