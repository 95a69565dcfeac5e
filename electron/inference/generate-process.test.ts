// The try page's generation in its own child process (real child, real
// addon, the bundled demo model): it answers exactly what generate() answers
// in this process, and what `peft-studio generate` prints for the same
// settings, keeps two models open between calls, survives the child's death
// with a clear error, and ends the child on release and close.
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { GenerateRequest, GenerateResponse } from '../api/contract.js';
import type { AdapterLora } from '../adapters/peft-config.js';
import { loraTensorShapes } from '../adapters/peft.js';
import { bundledDemoFiles } from '../demo/paths.js';
import { resolveDevice } from '../engine/device.js';
import { loadAddon, packageRoot } from '../engine/load.js';
import { choosePrecision } from '../engine/precision.js';
import { ModelTokenizer } from '../models/tokenizer.js';
import { Prng } from '../random/prng.js';
import { GPU_TAKEN, Generator, STOPPED_BEFORE_START } from '../service/generate.js';
import { openSession, stopTokenIds } from '../session.js';
import { cli, tempDir } from '../testing/e2e-fixtures.js';
import { saveAdapterFolder } from '../training/adapter-files.js';
import { generate } from './generate.js';
import { generationDefaults } from './generation-defaults.js';
import { samplingWords } from './sampling-settings.js';
import { explainGenerationDeath, GenerationProcess } from './generate-process.js';
import { parseFromWorker, parseToWorker } from './generate-protocol.js';

const THREADS = 2;
const model = bundledDemoFiles().model;
const prompt = 'Question: What color is the fox?\nAnswer:';
const request = (over: Partial<GenerateRequest> = {}): GenerateRequest => ({ model, adapter: null, prompt, maxNewTokens: 12, temperature: 0, seed: 1, ...over });

/** Whether a process with this id still exists (signal 0 only checks). */
function exists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * generate() in this process, on the device and precision the child picks for
 * 'auto'; the answer as the service words it. The demo's generation_config.json
 * sets no sampling key, so a setting the request leaves out is transformers'
 * default: greedy, top-k 50, top-p 1, no min-p, typical-p or cutoffs, no repetition penalty, no n-gram ban.
 */
async function inProcess(adapter: string | null, req: GenerateRequest): Promise<Pick<GenerateResponse, 'text' | 'tokens' | 'stoppedBy'>> {
  const session = await openSession(model, { threads: THREADS, adapter, device: 'auto', precision: 'auto' });
  try {
    const ids = session.tokenizer.encode(req.prompt);
    const r = await generate(session.engine, ids, {
      maxNewTokens: req.maxNewTokens,
      temperature: req.temperature ?? 0,
      topK: req.topK ?? 50,
      topP: req.topP ?? 1,
      minP: req.minP ?? 0,
      typicalP: req.typicalP ?? 1,
      epsilonCutoff: req.epsilonCutoff ?? 0,
      etaCutoff: req.etaCutoff ?? 0,
      repetitionPenalty: req.repetitionPenalty ?? 1,
      noRepeatNgramSize: req.noRepeatNgramSize ?? 0,
      seed: req.seed,
      stopTokenIds: await stopTokenIds(session.folder, session.tokenizer),
      maxPositions: session.folder.spec.maxPositionEmbeddings,
    });
    return { text: session.tokenizer.decode(r.tokens, { skipSpecialTokens: true }), tokens: r.tokens.length, stoppedBy: r.stoppedBy };
  } finally {
    session.dispose();
  }
}

let adapterDir: string;
const generators: Generator[] = [];
const generator = (options: ConstructorParameters<typeof Generator>[0] = {}) => {
  const g = new Generator({ threads: THREADS, ...options });
  generators.push(g);
  return g;
};

beforeAll(async () => {
  // a LoRA with non-zero B, so that the adapter changes the answer
  adapterDir = join(tempDir('gen-child'), 'adapter');
  const session = await openSession(model, { threads: THREADS });
  try {
    const lora: AdapterLora = { rank: 4, alpha: 8, dropout: 0, rslora: false, targets: ['q_proj', 'v_proj', 'down_proj'], layers: null, init: 'default' };
    session.engine.setupLora({ ...lora, seed: 3 });
    const rng = new Prng(11);
    for (const { name, shape } of loraTensorShapes(session.folder.spec, lora)) {
      if (name.includes('lora_B')) session.engine.setTensor(name, Float32Array.from({ length: shape[0] * shape[1] }, () => (rng.nextFloat() - 0.5) * 0.5));
    }
    await saveAdapterFolder(adapterDir, { engine: session.engine, spec: session.folder.spec, lora, baseModel: model });
  } finally {
    session.dispose();
  }
});

afterAll(async () => {
  await Promise.all(generators.map((g) => g.close()));
});

describe('the generation child', () => {
  it('answers token for token what generate() answers in this process (greedy and sampled, base and adapter), and says where it computed', async () => {
    const g = generator();
    const base = await g.generate(request());
    const tuned = await g.generate(request({ adapter: adapterDir }));
    const sampled = await g.generate(request({ adapter: adapterDir, temperature: 0.9, seed: 7 }));
    expect(base).toMatchObject(await inProcess(null, request()));
    expect(tuned).toMatchObject(await inProcess(adapterDir, request()));
    expect(sampled).toMatchObject(await inProcess(adapterDir, request({ temperature: 0.9, seed: 7 })));
    expect(base.tokens).toBeGreaterThan(0);
    expect(tuned.text).not.toBe(base.text); // the adapter reached the child
    // the device and precision 'auto' resolves to on this machine, asked of the addon here
    const device = resolveDevice(loadAddon(), 'auto');
    const computedOn = { device: device.device, name: device.gpu?.name ?? 'CPU', precision: choosePrecision('auto', device.gpu).precision };
    for (const r of [base, tuned, sampled]) expect(r.computedOn).toEqual(computedOn);
    // and with what settings: the demo's generation_config.json sets none, so transformers' defaults
    expect(base.sampling).toEqual({ temperature: 0, topK: 50, topP: 1, minP: 0, typicalP: 1, epsilonCutoff: 0, etaCutoff: 0, repetitionPenalty: 1, noRepeatNgramSize: 0, seed: 1 });
    expect(sampled.sampling).toEqual({ temperature: 0.9, topK: 50, topP: 1, minP: 0, typicalP: 1, epsilonCutoff: 0, etaCutoff: 0, repetitionPenalty: 1, noRepeatNgramSize: 0, seed: 7 });
  });

  it('answers token for token what `peft-studio generate` prints for the same settings, min-p, typical-p, the cutoffs and the n-gram ban included', async () => {
    const g = generator();
    // given on both sides
    const cases: Partial<GenerateRequest>[] = [
      { temperature: 1.2, topK: 0, topP: 1, minP: 0.1, seed: 7 },
      { temperature: 0, noRepeatNgramSize: 2, repetitionPenalty: 1.1 },
      { temperature: 0.9, topK: 40, topP: 0.9, minP: 0.05, noRepeatNgramSize: 3, seed: 3 },
      { temperature: 1.3, topK: 0, topP: 1, typicalP: 0.6, seed: 9 },
      { temperature: 1.2, topK: 0, topP: 1, epsilonCutoff: 0.01, etaCutoff: 0.02, seed: 11 },
      { temperature: 1.5, topK: 60, topP: 0.98, minP: 0.02, typicalP: 0.5, epsilonCutoff: 0.001, etaCutoff: 0.004, seed: 5 },
    ];
    const flags: Record<string, string> = {
      temperature: '--temperature', topK: '--top-k', topP: '--top-p', minP: '--min-p', typicalP: '--typical-p', epsilonCutoff: '--epsilon-cutoff', etaCutoff: '--eta-cutoff',
      repetitionPenalty: '--repetition-penalty', noRepeatNgramSize: '--no-repeat-ngram-size', seed: '--seed',
    };
    for (const over of cases) {
      const req = request({ ...over, maxNewTokens: 24 });
      const answer = await g.generate(req);
      const argv = ['generate', '--model', model, '--prompt', prompt, '--max-new-tokens', '24', '--threads', String(THREADS)];
      for (const [key, flag] of Object.entries(flags)) if (req[key as keyof GenerateRequest] !== undefined) argv.push(flag, String(req[key as keyof GenerateRequest]));
      const printed = await cli(argv);
      expect(printed.code, printed.stderr).toBe(0);
      expect(printed.stdout, JSON.stringify(over)).toBe(`${answer.text}\n`);
      expect(printed.stderr).toContain(`note: ${samplingWords(answer.sampling)}`);
      expect(answer, JSON.stringify(over)).toMatchObject(await inProcess(null, req));
    }
    // the n-gram ban reached the child: the demo model repeats "The fox eats honey." without it
    const repeats = await g.generate(request({ maxNewTokens: 40 }));
    const banned = await g.generate(request({ maxNewTokens: 40, noRepeatNgramSize: 3 }));
    expect(banned.text).not.toBe(repeats.text);
    expect(banned.sampling.noRepeatNgramSize).toBe(3);
    // typical-p and the cutoffs reached the child: the same seed draws otherwise without them
    for (const over of cases.slice(3)) {
      const { typicalP: _, epsilonCutoff: __, etaCutoff: ___, ...without } = over;
      expect((await g.generate(request({ ...without, maxNewTokens: 24 }))).text, JSON.stringify(over)).not.toBe((await g.generate(request({ ...over, maxNewTokens: 24 }))).text);
    }
  });

  it("with nothing given, a model whose generation_config.json sets min_p, typical_p, the cutoffs and no_repeat_ngram_size answers as the CLI without flags, from the settings the Try page starts from", async () => {
    const folder = join(tempDir('gen-minp-config'), 'model');
    cpSync(model, folder, { recursive: true });
    writeFileSync(join(folder, 'generation_config.json'), JSON.stringify({
      bos_token_id: 0, eos_token_id: 1, do_sample: true, temperature: 1.1, top_k: 0, min_p: 0.08, typical_p: 0.9, epsilon_cutoff: 0.001, eta_cutoff: 0.003, no_repeat_ngram_size: 2,
    }));
    const defaults = await generationDefaults(folder);
    expect(defaults.sampling).toEqual({ temperature: 1.1, topK: 0, topP: 1, minP: 0.08, typicalP: 0.9, epsilonCutoff: 0.001, etaCutoff: 0.003, repetitionPenalty: 1, noRepeatNgramSize: 2, seed: 42 });
    expect(defaults.unapplied).toBeNull(); // none of them is named as not applied any more
    const g = generator();
    const { temperature: _, seed: __, ...nothing } = request({ model: folder, maxNewTokens: 24 });
    const leftOut = await g.generate({ ...nothing, seed: 42 });
    // the Try page sends the values it was filled with: the same answer
    const filled = await g.generate(request({ model: folder, maxNewTokens: 24, ...defaults.sampling }));
    const printed = await cli(['generate', '--model', folder, '--prompt', prompt, '--max-new-tokens', '24', '--threads', String(THREADS)]);
    expect(printed.code, printed.stderr).toBe(0);
    for (const answer of [leftOut, filled]) {
      expect(`${answer.text}\n`).toBe(printed.stdout);
      expect(answer.sampling).toEqual(defaults.sampling);
      expect(answer.notices.some((n) => n.includes('PEFT Studio does not'))).toBe(false);
    }
    expect(printed.stderr).toContain(`note: ${samplingWords(defaults.sampling)}\n`);
  });

  it("takes the model's defaults for the settings a request leaves out, and the ones it gives (top-k, top-p, repetition penalty)", async () => {
    const g = generator();
    const { temperature: _, ...noTemperature } = request();
    const byDefault = await g.generate(noTemperature);
    expect(byDefault).toMatchObject(await inProcess(null, request({ temperature: 0 })));
    expect(byDefault.sampling.temperature).toBe(0);
    const given = request({ temperature: 1.2, topK: 3, topP: 0.7, repetitionPenalty: 1.3, seed: 4, maxNewTokens: 20 });
    const answer = await g.generate(given);
    expect(answer).toMatchObject(await inProcess(null, given));
    expect(answer.sampling).toEqual({ temperature: 1.2, topK: 3, topP: 0.7, minP: 0, typicalP: 1, epsilonCutoff: 0, etaCutoff: 0, repetitionPenalty: 1.3, noRepeatNgramSize: 0, seed: 4 });
    // the penalty alone changes the greedy answer of the demo model (it repeats itself without one)
    const penalized = await g.generate(request({ repetitionPenalty: 1.3, maxNewTokens: 40 }));
    expect(penalized.text).not.toBe((await g.generate(request({ maxNewTokens: 40 }))).text);
    // a top-k / top-p given for a greedy answer is said to be unused (they choose among sampled tokens)
    const greedyWithTopP = await g.generate(request({ temperature: 0, topP: 0.5 }));
    expect(greedyWithTopP.notices).toContain('the answer was decoded greedily (temperature 0), so the top-p given was not used: it applies when sampling');
    expect((await g.generate(request({ temperature: 0, topK: 5, minP: 0.1 }))).notices).toContain('the answer was decoded greedily (temperature 0), so the top-k and min-p given were not used: they apply when sampling');
    expect((await g.generate(request({ temperature: 0, typicalP: 0.5, epsilonCutoff: 0.01, etaCutoff: 0.01 }))).notices)
      .toContain('the answer was decoded greedily (temperature 0), so the typical-p, epsilon cutoff and eta cutoff given were not used: they apply when sampling');
    expect(answer.notices.some((n) => n.includes('decoded greedily'))).toBe(false);
    // the model's own values sent back (the Try page's fields start from them) are no news
    expect((await g.generate(request({ temperature: 0, topK: 50, topP: 1, minP: 0, typicalP: 1, epsilonCutoff: 0, etaCutoff: 0 }))).notices.some((n) => n.includes('decoded greedily'))).toBe(false);
  });

  it("names generation_config.json and its key when a value there is wrong, by the setting's field", async () => {
    const folder = join(tempDir('gen-bad-config'), 'model');
    cpSync(model, folder, { recursive: true });
    const file = join(folder, 'generation_config.json');
    writeFileSync(file, JSON.stringify({ eos_token_id: 1, do_sample: true, temperature: 0.7, top_p: 0, top_k: -5, no_repeat_ngram_size: 4, typical_p: 0.9, min_new_tokens: 2 }));
    const g = generator();
    await expect(g.generate(request({ model: folder, temperature: undefined }))).rejects.toMatchObject({
      body: { code: 'invalid', field: 'topK', message: `${file}: top_k -5 must be a whole number >= 0; fix the file (or remove top_k), or give Top-k in the Try page's sampling settings` },
    });
    // given on the page instead: it generates, top_p 0 (transformers keeps the most likely token), the file's typical_p and n-gram ban
    // included, and says what it ignored
    const answer = await g.generate(request({ model: folder, temperature: undefined, topK: 10 }));
    expect(answer.sampling).toEqual({ temperature: 0.7, topK: 10, topP: 0, minP: 0, typicalP: 0.9, epsilonCutoff: 0, etaCutoff: 0, repetitionPenalty: 1, noRepeatNgramSize: 4, seed: 1 });
    expect(answer).toMatchObject(await inProcess(null, request({ temperature: 0.7, topK: 10, topP: 0, typicalP: 0.9, noRepeatNgramSize: 4 })));
    expect(answer.notices).toContain(`${file}: sets min_new_tokens 2, which transformers' generate() applies and PEFT Studio does not, so its answers can differ from model.generate()'s`);
    // a typical_p transformers' warper refuses (0) is named by the file and key, like top_k
    writeFileSync(file, JSON.stringify({ eos_token_id: 1, do_sample: true, temperature: 0.7, typical_p: 0 }));
    await expect(g.generate(request({ model: folder, temperature: undefined }))).rejects.toMatchObject({
      body: { code: 'invalid', field: 'typicalP', message: `${file}: typical_p 0 must be a number > 0 and <= 1; fix the file (or remove typical_p), or give Typical-p in the Try page's sampling settings` },
    });
  });

  it("lays the prompt out as asked, says what the model was given, and refuses a system message in the plain layout by field", async () => {
    const g = generator();
    const plain = await g.generate(request());
    // the demo's chat template writes a user turn as "Question: …\nAnswer:", the plain prompt above
    const chat = await g.generate(request({ prompt: 'What color is the fox?', promptFormat: 'chat' }));
    expect(chat).toMatchObject({ text: plain.text, tokens: plain.tokens, stoppedBy: plain.stoppedBy });
    const tokenizer = await ModelTokenizer.load(model);
    expect(plain.prompt).toEqual({ text: `<s>${prompt}`, tokens: tokenizer.encode(prompt).length, layout: 'the text as written' });
    expect(chat.prompt).toEqual({ text: `<s>${prompt}`, tokens: plain.prompt.tokens, layout: "the model's chat template" });
    await expect(g.generate(request({ system: 'Be brief.' }))).rejects.toMatchObject({ body: { code: 'invalid', field: 'system' } });
  });

  it('keeps the last two models open: a repeat call opens nothing, a third model evicts the least recently used', async () => {
    const g = generator();
    await g.generate(request());
    expect([g.openSessions, g.modelsOpened]).toEqual([1, 1]);
    await g.generate(request({ adapter: adapterDir }));
    expect([g.openSessions, g.modelsOpened]).toEqual([2, 2]);
    const pid = g.workerPid;
    await g.generate(request({ prompt: 'Question: Where does the fox live?\nAnswer:' }));
    await g.generate(request({ adapter: adapterDir, maxNewTokens: 3 }));
    expect([g.openSessions, g.modelsOpened]).toEqual([2, 2]);
    expect(g.workerPid).toBe(pid); // one long-lived child
    // new adapter files (a later checkpoint) are another model: the base is the oldest and goes
    const later = new Date(Date.now() + 5_000);
    utimesSync(join(adapterDir, 'adapter_model.safetensors'), later, later);
    await g.generate(request({ adapter: adapterDir }));
    expect([g.openSessions, g.modelsOpened]).toEqual([2, 3]);
    await g.generate(request({ adapter: adapterDir }));
    expect(g.modelsOpened).toBe(3);
    await g.generate(request());
    expect([g.openSessions, g.modelsOpened]).toEqual([2, 4]);
  });

  it('a child killed while a call waits on it gives a clear error, and the next call starts a fresh child that answers the same', async () => {
    const g = generator();
    const before = await g.generate(request());
    const first = g.workerPid!;
    const call = g.generate(request({ maxNewTokens: 200 }));
    process.kill(first, 'SIGKILL');
    await expect(call).rejects.toThrow(/^the generation process was killed \(SIGKILL\), most likely .*memory.*press Generate again/);
    expect(g.openSessions).toBe(0);
    const after = await g.generate(request());
    expect(after).toMatchObject({ text: before.text, tokens: before.tokens });
    const second = g.workerPid!;
    expect(second).not.toBe(first);
    expect(g.modelsOpened).toBe(1);
    // a native crash reads as one
    const crashing = g.generate(request({ maxNewTokens: 200 }));
    process.kill(second, 'SIGSEGV');
    await expect(crashing).rejects.toThrow(/^the generation process crashed \(SIGSEGV\), a fault in the engine.*press Generate again/);
    expect((await g.generate(request())).text).toBe(before.text);
  });

  it('an error in the child comes back as the user should read it (field included), and the child lives on', async () => {
    const g = generator();
    await expect(g.generate(request({ maxNewTokens: 1000 }))).rejects.toMatchObject({ body: { code: 'invalid', field: 'maxNewTokens', message: expect.stringMatching(/exceed the model's 256 positions; ask for at most \d+ new tokens, or shorten the prompt$/) } });
    // a prompt that alone fills the positions: the prompt is what to change, not the budget
    await expect(g.generate(request({ prompt: 'fox '.repeat(300), maxNewTokens: 5 }))).rejects.toMatchObject({ body: { code: 'invalid', field: 'prompt', message: expect.stringMatching(/^the prompt \(\d+ tokens\) leaves no room for an answer in the model's 256 positions: shorten the prompt$/) } });
    const pid = g.workerPid;
    const missing = join(tempDir('gen-missing'), 'nothing-here');
    await expect(g.generate(request({ adapter: missing }))).rejects.toMatchObject({ body: { code: 'failed', message: expect.stringContaining(`${missing}: holds no adapter_config.json`) } });
    expect((await g.generate(request())).tokens).toBeGreaterThan(0);
    expect(g.workerPid).toBe(pid);
  });

  it('release ends the child (its models are freed); the next call starts a new one', async () => {
    const g = generator();
    await g.generate(request());
    const pid = g.workerPid!;
    expect(exists(pid)).toBe(true);
    await g.release();
    expect([g.openSessions, g.workerPid, exists(pid)]).toEqual([0, null, false]);
    await g.generate(request());
    expect(g.workerPid).not.toBe(pid);
    expect(g.openSessions).toBe(1);
  });

  it('release during a call ends the child at once: the call fails saying so, the next one answers', async () => {
    const g = generator();
    const before = await g.generate(request());
    const pid = g.workerPid!;
    const call = g.generate(request({ maxNewTokens: 200 }));
    await new Promise((resolve) => setImmediate(resolve));  // the call is with the child now
    await g.release();
    await expect(call).rejects.toThrow(/^the generation process was ended \(its models were freed\)/);
    expect([g.workerPid, exists(pid)]).toEqual([null, false]);
    expect((await g.generate(request())).text).toBe(before.text);
  });

  it('while a run may hold the GPU, calls generate on the CPU and say so', async () => {
    let busy = true;
    const g = generator({ gpuBusy: () => busy });
    const r = await g.generate(request());
    expect(r.computedOn).toMatchObject({ device: 'cpu', precision: 'fp32' });
    expect(r.notices).toContain(GPU_TAKEN);
    busy = false;
    expect((await g.generate(request())).notices).not.toContain(GPU_TAKEN);
  });

  it('an idle child is ended after the idle time', async () => {
    const g = generator({ idleMs: 100 });
    await g.generate(request());
    const pid = g.workerPid!;
    // ended, and reaped (a zombie still answers kill 0): up to 10 s on a busy machine
    await vi.waitFor(() => expect([g.openSessions, g.workerPid, exists(pid)]).toEqual([0, null, false]), { timeout: 10_000, interval: 50 });
  });

  it.runIf(process.platform === 'linux')('the calling process never loads the engine: only the child maps the addon', async () => {
    // a fresh Node process as the app: the built Generator, one generation, then both processes' memory maps
    const script = `
      import { readFileSync } from 'node:fs';
      const { Generator } = await import(${JSON.stringify(pathToFileURL(join(packageRoot(), 'dist', 'electron', 'service', 'generate.js')).href)});
      const g = new Generator({ threads: ${THREADS} });
      const r = await g.generate(${JSON.stringify(request({ maxNewTokens: 3 }))});
      const maps = (pid) => readFileSync('/proc/' + pid + '/maps', 'utf8').includes('peft_studio.node');
      console.log(JSON.stringify({ tokens: r.tokens, parent: maps('self'), child: maps(g.workerPid) }));
      await g.close();`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ tokens: 3, parent: false, child: true });
  });

  it('close ends the child and refuses later calls', async () => {
    const g = generator();
    await g.generate(request());
    const pid = g.workerPid!;
    await g.close();
    expect([g.workerPid, exists(pid)]).toEqual([null, false]);
    await expect(g.generate(request())).rejects.toThrow(/shutting down/);
  });
});

describe('streaming and stopping an answer', () => {
  // sampled, so that the demo model talks for a while instead of ending at once
  const long = (over: Partial<GenerateRequest> = {}) => request({ maxNewTokens: 200, temperature: 1, seed: 5, ...over });

  it('a streamed answer is the same answer; its pieces come as it is generated and are its text (up to a held-back end)', async () => {
    const g = generator();
    const plain = await g.generate(long());
    const pieces: { text: string; tokens: number }[] = [];
    const streamed = await g.generate(long({ requestId: 'streamed-1' }), (text, tokens) => pieces.push({ text, tokens }));
    expect(streamed).toMatchObject({ text: plain.text, tokens: plain.tokens, stoppedBy: plain.stoppedBy });
    expect(plain.tokens).toBeGreaterThan(10);
    expect(pieces.length).toBeGreaterThan(3);
    const joined = pieces.map((p) => p.text).join('');
    expect(plain.text.startsWith(joined)).toBe(true);
    expect(plain.text.length - joined.length).toBeLessThanOrEqual(4);
    // token counts rise with the pieces, up to the answer's
    for (let i = 1; i < pieces.length; i++) expect(pieces[i].tokens).toBeGreaterThan(pieces[i - 1].tokens);
    expect(pieces[pieces.length - 1].tokens).toBeLessThanOrEqual(plain.tokens);
  });

  it('stop ends a running answer at its next token: the answer so far, the start of the unstopped one', async () => {
    const g = generator();
    const whole = await g.generate(long());
    let stopped = false;
    const answer = await g.generate(long({ requestId: 'stop-me' }), () => {
      if (!stopped) stopped = g.stop('stop-me');
    });
    expect(stopped).toBe(true);
    // a stop's round trip takes far less than the rest of a long answer
    expect(whole.tokens).toBeGreaterThan(40);
    expect(answer.stoppedBy).toBe('stopped');
    expect(answer.tokens).toBeGreaterThan(0);
    expect(answer.tokens).toBeLessThan(whole.tokens / 2);
    expect(whole.text.startsWith(answer.text)).toBe(true);
    // once it has ended, there is nothing to stop
    expect(g.stop('stop-me')).toBe(false);
    expect(g.stop('never-was')).toBe(false);
  });

  it('a call stopped while it waits for the one before it fails as stopped before it started; the first answers in full', async () => {
    const g = generator();
    const first = g.generate(long({ requestId: 'first' }), () => {});
    const second = g.generate(long({ requestId: 'second' }), () => {});
    expect(g.stop('second')).toBe(true);
    await expect(second).rejects.toThrow(STOPPED_BEFORE_START);
    expect((await first).stoppedBy).not.toBe('stopped');
  });

  it('a requestId in use by an answer still being generated is refused', async () => {
    const g = generator();
    const first = g.generate(long({ requestId: 'same' }));
    await expect(g.generate(long({ requestId: 'same' }))).rejects.toThrow(/requestId same is in use/);
    await first;
    // free again once answered
    await expect(g.generate(request({ requestId: 'same' }))).resolves.toMatchObject({ stoppedBy: expect.any(String) });
  });
});

describe('a stop before any text came', () => {
  // A stand-in child speaking the protocol: a request whose prompt is "slow load" answers only
  // 300 ms after its stop (a model still loading); any other answers at once.
  const state = { openSessions: 1, opened: 1 };
  const response = { text: '', tokens: 0, stoppedBy: 'stopped', seconds: 0.3, notices: [], computedOn: { device: 'cpu', name: 'cpu', precision: 'fp32' }, prompt: { text: 'Q', tokens: 2, layout: 'the text as written' }, sampling: { temperature: 0, topK: 50, topP: 1, minP: 0, typicalP: 1, epsilonCutoff: 0, etaCutoff: 0, repetitionPenalty: 1, noRepeatNgramSize: 0, seed: 42 } };
  const worker = join(mkdtempSync(join(tmpdir(), 'ps-stand-in-worker-')), 'worker.mjs');
  writeFileSync(worker, `
    const response = ${JSON.stringify(response)};
    const state = ${JSON.stringify(state)};
    const slow = new Set();
    process.on('message', (m) => {
      if (m.type === 'generate' && m.job.prompt === 'slow load') slow.add(m.id);
      else if (m.type === 'generate') process.send({ type: 'generated', id: m.id, response: { ...response, text: 'quick', tokens: 1, stoppedBy: 'eos' }, state });
      else if (m.type === 'stop' && slow.has(m.id)) setTimeout(() => process.send({ type: 'generated', id: m.id, response, state }), 300);
    });
    process.send({ type: 'ready', pid: process.pid });
  `);
  const job = { ...request(), promptFormat: 'plain' as const, system: '', device: 'cpu' as const, precision: 'fp32' as const, threads: 1 };

  it('fails at once as stopped before it started; the child stays, its late answer passed over, the next call answered', async () => {
    const child = new GenerationProcess({ workerPath: worker });
    try {
      const controller = new AbortController();
      const pieces: string[] = [];
      const slow = child.generate({ ...job, prompt: 'slow load' }, { onProgress: (t) => pieces.push(t), signal: controller.signal });
      await new Promise((r) => setTimeout(r, 50)); // the request is with the child, loading
      const stoppedAt = performance.now();
      controller.abort();
      await expect(slow).rejects.toThrow(STOPPED_BEFORE_START);
      expect(performance.now() - stoppedAt).toBeLessThan(250); // not the child's 300 ms
      expect(pieces).toEqual([]);
      await new Promise((r) => setTimeout(r, 400)); // the late answer arrives, and is passed over
      expect(child.alive).toBe(true);
      await expect(child.generate({ ...job, prompt: 'next' })).resolves.toMatchObject({ text: 'quick' });
    } finally {
      await child.stop();
    }
  });
});

describe('the generation protocol', () => {
  const state = { openSessions: 1, opened: 1 };
  const sampling = { temperature: 0.7, topK: 20, topP: 0.8, minP: 0.05, typicalP: 0.9, epsilonCutoff: 3e-4, etaCutoff: 0, repetitionPenalty: 1.05, noRepeatNgramSize: 3, seed: 42 };
  const response = { text: 'brown', tokens: 1, stoppedBy: 'eos', seconds: 0.01, notices: [], computedOn: { device: 'cuda:0', name: 'NVIDIA H200', precision: 'bf16' }, prompt: { text: 'Q', tokens: 2, layout: 'the text as written' }, sampling };

  it('takes well-formed messages from the child as they are', () => {
    expect(parseFromWorker({ type: 'ready', pid: 42 })).toEqual({ type: 'ready', pid: 42 });
    expect(parseFromWorker({ type: 'progress', id: 3, text: ' brown', tokens: 2 })).toEqual({ type: 'progress', id: 3, text: ' brown', tokens: 2 });
    expect(parseFromWorker({ type: 'generated', id: 3, response: { ...response, stoppedBy: 'stopped' }, state }).type).toBe('generated');
    expect(parseFromWorker({ type: 'generated', id: 3, response, state })).toEqual({ type: 'generated', id: 3, response, state });
    const error = { code: 'invalid', field: 'prompt', message: 'the prompt is empty' };
    expect(parseFromWorker({ type: 'failed', id: 3, error, state })).toEqual({ type: 'failed', id: 3, error, state });
  });

  it('refuses a malformed message from the child, naming what is wrong', () => {
    const bad: [unknown, RegExp][] = [
      [null, /message is not an object/],
      [{ type: 'hello' }, /message\.type is not one of ready, progress, generated, failed/],
      [{ type: 'progress', id: 1, text: 5, tokens: 1 }, /message\.text is not a string/],
      [{ type: 'progress', id: 1, text: 'a', tokens: -1 }, /message\.tokens is not a whole number/],
      [{ type: 'generated', id: -1, response, state }, /message\.id is not a whole number/],
      [{ type: 'generated', id: 1, response: { ...response, tokens: 1.5 }, state }, /response\.tokens is not a whole number/],
      [{ type: 'generated', id: 1, response: { ...response, stoppedBy: 'stop' }, state }, /response\.stoppedBy is not one of eos, length, stopped/],
      [{ type: 'generated', id: 1, response: { ...response, seconds: Number.NaN }, state }, /response\.seconds is not a number/],
      [{ type: 'generated', id: 1, response: { ...response, notices: [1] }, state }, /response\.notices is not a list of strings/],
      [{ type: 'generated', id: 1, response: { ...response, computedOn: { ...response.computedOn, device: 'gpu' } }, state }, /computedOn\.device 'gpu' is not cpu or cuda:N/],
      [{ type: 'generated', id: 1, response: { ...response, computedOn: { ...response.computedOn, precision: 'fp16' } }, state }, /computedOn\.precision is not one of fp32, bf16/],
      [{ type: 'generated', id: 1, response: { ...response, prompt: { ...response.prompt, tokens: -1 } }, state }, /response\.prompt\.tokens is not a whole number/],
      [{ type: 'generated', id: 1, response: { ...response, prompt: undefined }, state }, /response\.prompt is not an object/],
      [{ type: 'generated', id: 1, response: { ...response, sampling: undefined }, state }, /response\.sampling is not an object/],
      [{ type: 'generated', id: 1, response: { ...response, sampling: { ...sampling, topP: 1.5 } }, state }, /response\.sampling\.topP is not a number >= 0 and <= 1/],
      [{ type: 'generated', id: 1, response: { ...response, sampling: { ...sampling, topK: undefined } }, state }, /response\.sampling\.topK is missing/],
      [{ type: 'generated', id: 1, response: { ...response, sampling: { ...sampling, minP: undefined } }, state }, /response\.sampling\.minP is missing/],
      [{ type: 'generated', id: 1, response: { ...response, sampling: { ...sampling, noRepeatNgramSize: 1.5 } }, state }, /response\.sampling\.noRepeatNgramSize is not a whole number >= 0/],
      [{ type: 'generated', id: 1, response: { ...response, sampling: { ...sampling, typicalP: undefined } }, state }, /response\.sampling\.typicalP is missing/],
      [{ type: 'generated', id: 1, response: { ...response, sampling: { ...sampling, etaCutoff: 1 } }, state }, /response\.sampling\.etaCutoff is not a number >= 0 and < 1/],
      [{ type: 'generated', id: 1, response }, /state is not an object/],
      [{ type: 'failed', id: 1, error: { code: 'boom', message: 'x' }, state }, /error\.code is not one of/],
      [{ type: 'failed', id: 1, error: { code: 'failed', message: 'x', field: 3 }, state }, /error\.field is not a string/],
    ];
    for (const [message, why] of bad) expect(() => parseFromWorker(message), JSON.stringify(message)).toThrow(why);
  });

  it('checks the parent\'s requests too', () => {
    const job = { ...request(), promptFormat: 'plain', system: '', device: 'auto', precision: 'auto', threads: 2, stream: false };
    expect(parseToWorker({ type: 'generate', id: 1, job })).toEqual({ type: 'generate', id: 1, job });
    expect(parseToWorker({ type: 'generate', id: 1, job: { ...job, stream: true } })).toEqual({ type: 'generate', id: 1, job: { ...job, stream: true } });
    expect(parseToWorker({ type: 'stop', id: 4 })).toEqual({ type: 'stop', id: 4 });
    expect(() => parseToWorker({ type: 'stop', id: 'x' })).toThrow(/message\.id is not a whole number/);
    expect(() => parseToWorker({ type: 'pause', id: 1 })).toThrow(/message\.type is not one of generate, stop/);
    expect(() => parseToWorker({ type: 'generate', id: 1, job: { ...job, device: 'tpu' } })).toThrow(/job\.device/);
    expect(() => parseToWorker({ type: 'generate', id: 1, job: { ...job, threads: 0 } })).toThrow(/job\.threads is below 1/);
    expect(() => parseToWorker({ type: 'generate', id: 1, job: { ...job, prompt: 5 } })).toThrow(/job\.prompt is not a string/);
    expect(() => parseToWorker({ type: 'generate', id: 1, job: { ...job, promptFormat: 'markdown' } })).toThrow(/job\.promptFormat is not one of plain, chat, alpaca/);
    expect(() => parseToWorker({ type: 'generate', id: 1, job: { ...job, system: null } })).toThrow(/job\.system is not a string/);
    // each sampling setting may be left out (the model's default) or given within its limits
    const { temperature: _, ...noTemperature } = job;
    expect(parseToWorker({ type: 'generate', id: 1, job: noTemperature })).toEqual({ type: 'generate', id: 1, job: noTemperature });
    const given = { ...job, topK: 20, topP: 0.8, minP: 0.05, typicalP: 0.9, epsilonCutoff: 3e-4, etaCutoff: 2e-3, repetitionPenalty: 1.05, noRepeatNgramSize: 3 };
    expect(parseToWorker({ type: 'generate', id: 1, job: given })).toEqual({ type: 'generate', id: 1, job: given });
    expect(() => parseToWorker({ type: 'generate', id: 1, job: { ...job, topK: 2.5 } })).toThrow(/job\.topK is not a whole number >= 0/);
    expect(() => parseToWorker({ type: 'generate', id: 1, job: { ...job, repetitionPenalty: 0 } })).toThrow(/job\.repetitionPenalty is not a number > 0/);
    expect(() => parseToWorker({ type: 'generate', id: 1, job: { ...job, temperature: -1 } })).toThrow(/job\.temperature is not a number >= 0/);
    expect(() => parseToWorker({ type: 'generate', id: 1, job: { ...job, minP: 1.2 } })).toThrow(/job\.minP is not a number >= 0 and <= 1/);
    expect(() => parseToWorker({ type: 'generate', id: 1, job: { ...job, noRepeatNgramSize: -2 } })).toThrow(/job\.noRepeatNgramSize is not a whole number >= 0/);
    expect(() => parseToWorker({ type: 'generate', id: 1, job: { ...job, typicalP: 0 } })).toThrow(/job\.typicalP is not a number > 0 and <= 1/);
    expect(() => parseToWorker({ type: 'generate', id: 1, job: { ...job, epsilonCutoff: 1 } })).toThrow(/job\.epsilonCutoff is not a number >= 0 and < 1/);
  });

  it('explains each way a child can die, with its last output', () => {
    expect(explainGenerationDeath(null, 'SIGKILL', [])).toMatch(/^the generation process was killed \(SIGKILL\), most likely by the system because memory ran out/);
    expect(explainGenerationDeath(null, 'SIGABRT', ['terminate called', 'Aborted'])).toMatch(/crashed \(SIGABRT\).*Last output: terminate called \| Aborted$/);
    expect(explainGenerationDeath(null, 'SIGTERM', [])).toMatch(/was ended from outside \(SIGTERM\)/);
    expect(explainGenerationDeath(3, null, [])).toMatch(/exited unexpectedly \(exit code 3\)/);
  });
});
