// The Modelfiles' sampling PARAMETERs: `ollama run` must choose tokens as the
// Try page and transformers' generate() do by default, not with Ollama's own
// defaults (temperature 0.8, top_k 40, top_p 0.9, repeat_penalty 1.1). The
// lines are read back here by Ollama's documented syntax (docs/modelfile.md:
// `PARAMETER <parameter> <parametervalue>`, its table of parameters and their
// int / float types), and an export writes the values of the model's own
// generation_config.json.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { resolveSampling, type SamplingDefaults } from '../inference/sampling-settings.js';
import { readGenerationConfig } from '../models/generation-config.js';
import { builtCli, cli, cycleRows, tempDir, tinyModel, writeJsonl } from '../testing/e2e-fixtures.js';
import { ollamaModelfile, ollamaModelfileForModel, ollamaSamplingLines, ollamaTemplateLines } from './modelfile.js';

/**
 * Ollama's instructions and its PARAMETER table (docs/modelfile.md), each parameter's value type; and typical_p,
 * which the table leaves out but `ollama create` takes as any other option (api/types.go Options: TypicalP float32
 * `json:"typical_p"`).
 */
const INSTRUCTIONS = ['FROM', 'PARAMETER', 'TEMPLATE', 'SYSTEM', 'ADAPTER', 'LICENSE', 'MESSAGE'];
const PARAMETER_TYPES: Record<string, 'int' | 'float' | 'string'> = {
  mirostat: 'int', mirostat_eta: 'float', mirostat_tau: 'float', num_ctx: 'int', repeat_last_n: 'int', repeat_penalty: 'float',
  temperature: 'float', seed: 'int', stop: 'string', num_predict: 'int', top_k: 'int', top_p: 'float', min_p: 'float', typical_p: 'float',
};

/** A Modelfile read by its documented grammar: the PARAMETERs (a name may repeat only for stop), every other line checked. */
function parseModelfile(text: string): Map<string, string[]> {
  const parameters = new Map<string, string[]>();
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (line.trim() === '' || line.startsWith('#')) continue;
    const [instruction, ...rest] = line.split(' ');
    expect(INSTRUCTIONS, `line ${i + 1}: ${line}`).toContain(instruction.toUpperCase());
    if (instruction === 'TEMPLATE') {
      // a """-quoted value may span lines: skip to the line that closes it
      const quotes = (l: string) => l.split('"""').length - 1;
      if (quotes(line) === 1) do i++; while (i < lines.length && quotes(lines[i]) === 0);
      continue;
    }
    if (instruction !== 'PARAMETER') continue;
    const [name, value] = [rest[0], rest.slice(1).join(' ')];
    const type = PARAMETER_TYPES[name];
    expect(type, `line ${i + 1}: ${name} is one of Ollama's parameters`).toBeDefined();
    if (type === 'int') expect(value, `line ${i + 1}`).toMatch(/^-?\d+$/);
    if (type === 'float') expect(Number.isFinite(Number(value)) && /^-?\d+(\.\d+)?(e-?\d+)?$/.test(value), `line ${i + 1}: ${value}`).toBe(true);
    if (name !== 'stop') expect(parameters.has(name), `line ${i + 1}: ${name} set twice`).toBe(false);
    parameters.set(name, [...(parameters.get(name) ?? []), value]);
  }
  return parameters;
}

const settingsOf = (p: Map<string, string[]>) => ({
  temperature: Number(p.get('temperature')?.[0]),
  topK: Number(p.get('top_k')?.[0]),
  topP: Number(p.get('top_p')?.[0]),
  repetitionPenalty: Number(p.get('repeat_penalty')?.[0]),
  repeatLastN: p.get('repeat_last_n')?.[0] ?? null,
});

const qwen: SamplingDefaults = {
  file: '/m/generation_config.json', temperature: 0.7, topK: 20, topP: 0.8, minP: 0, typicalP: 1, epsilonCutoff: 0, etaCutoff: 0, repetitionPenalty: 1.05, noRepeatNgramSize: 0, invalid: {},
  fromFile: ['temperature', 'topK', 'topP', 'repetitionPenalty'],
};
/** Qwen3's file: min_p 0 said outright, top_k 20, top_p 0.95; here with min_p 0.05 and an n-gram ban */
const withMinP: SamplingDefaults = { ...qwen, temperature: 0.6, topP: 1, minP: 0.05, noRepeatNgramSize: 3, fromFile: ['temperature', 'topK', 'topP', 'minP', 'noRepeatNgramSize'] };

describe('ollamaSamplingLines', () => {
  it("writes transformers' defaults for a model without generation_config.json: greedy, top_k 50, top_p 1, no penalty", () => {
    const p = parseModelfile(ollamaSamplingLines(null).join('\n'));
    expect(settingsOf(p)).toEqual({ temperature: 0, topK: 50, topP: 1, repetitionPenalty: 1, repeatLastN: null });
  });

  it("writes the file's values, the penalty over the whole context (transformers: the prompt and the answer)", () => {
    const lines = ollamaSamplingLines(qwen);
    expect(settingsOf(parseModelfile(lines.join('\n')))).toEqual({ temperature: 0.7, topK: 20, topP: 0.8, repetitionPenalty: 1.05, repeatLastN: '-1' });
    // top_p below 1 while sampling: the order in which llama.cpp applies them is said
    expect(lines.some((l) => l.startsWith('# llama.cpp') && l.includes('temperature after top_p'))).toBe(true);
    expect(ollamaSamplingLines({ ...qwen, topP: 1 }).some((l) => l.startsWith('# llama.cpp'))).toBe(false);
  });

  it("writes transformers' default for a value the file holds that it would refuse, and says so", () => {
    const lines = ollamaSamplingLines({ ...qwen, topP: 1, invalid: { topP: 'top_p 1.5 must be a number >= 0 and <= 1' } });
    expect(settingsOf(parseModelfile(lines.join('\n'))).topP).toBe(1);
    expect(lines).toContain("# generation_config.json: top_p 1.5 must be a number >= 0 and <= 1, so transformers' default top_p 1 is written.");
  });

  it("writes min_p when the file sets it (Ollama's own default, 0, is transformers' too), and says it acts before the temperature there", () => {
    const lines = ollamaSamplingLines(withMinP);
    const p = parseModelfile(lines.join('\n'));
    expect(p.get('min_p')).toEqual(['0.05']);
    expect(settingsOf(p)).toMatchObject({ temperature: 0.6, topK: 20, topP: 1 });
    expect(lines).toContain('# llama.cpp (and an Ollama model it runs) applies the temperature after min_p, transformers before it: the same settings keep a somewhat different set of tokens.');
    // top_p and min_p both below their no-op values: both named
    expect(ollamaSamplingLines({ ...withMinP, topP: 0.95 })).toContain('# llama.cpp (and an Ollama model it runs) applies the temperature after top_p and min_p, transformers before them: the same settings keep a somewhat different set of tokens.');
    // a file that sets none: no min_p line, as before
    for (const sampling of [qwen, null]) expect(parseModelfile(ollamaSamplingLines(sampling).join('\n')).has('min_p')).toBe(false);
    // a file that sets it to 0 outright: written as set
    expect(parseModelfile(ollamaSamplingLines({ ...withMinP, minP: 0 }).join('\n')).get('min_p')).toEqual(['0']);
    // a bad min_p: transformers' default written, saying so
    const bad = ollamaSamplingLines({ ...withMinP, minP: 0, invalid: { minP: 'min_p 1.5 must be a number >= 0 and <= 1' }, fromFile: ['temperature', 'topK', 'topP', 'noRepeatNgramSize'] });
    expect(parseModelfile(bad.join('\n')).get('min_p')).toEqual(['0']);
    expect(bad).toContain("# generation_config.json: min_p 1.5 must be a number >= 0 and <= 1, so transformers' default min_p 0 is written.");
  });

  it('says that Ollama has no no_repeat_ngram_size when the file sets it, and writes no PARAMETER for it', () => {
    const lines = ollamaSamplingLines(withMinP);
    expect(lines).toContain("# generation_config.json sets no_repeat_ngram_size 3, which Ollama has no parameter for: `ollama run` may repeat a run of 3 tokens that the Try page and transformers' generate() never repeat.");
    expect([...parseModelfile(lines.join('\n')).keys()].some((name) => name.includes('ngram'))).toBe(false);
    expect(ollamaSamplingLines(qwen).some((l) => l.includes('no_repeat_ngram_size'))).toBe(false);
  });

  it("writes typical_p when the file sets it, saying where Ollama applies it; names epsilon_cutoff and eta_cutoff, which Ollama has no parameter for", () => {
    const recipe: SamplingDefaults = { ...qwen, typicalP: 0.9, epsilonCutoff: 3e-4, etaCutoff: 2e-3, fromFile: [...qwen.fromFile, 'typicalP', 'epsilonCutoff', 'etaCutoff'] };
    const lines = ollamaSamplingLines(recipe);
    const p = parseModelfile(lines.join('\n'));
    expect(p.get('typical_p')).toEqual(['0.9']);
    expect(settingsOf(p)).toMatchObject({ temperature: 0.7, topK: 20, topP: 0.8 });
    expect(lines).toContain('# generation_config.json sets typical_p 0.9: Ollama applies it only to a model it runs through llama.cpp, and there before top_p, min_p and the temperature');
    expect(lines).toContain("# (transformers: after them); Ollama's own engine ignores it. `ollama run` may keep other tokens than the Try page and transformers' generate().");
    for (const [key, value] of [['epsilon_cutoff', '0.0003'], ['eta_cutoff', '0.002']]) {
      expect(lines).toContain(`# generation_config.json sets ${key} ${value}, which Ollama has no parameter for: \`ollama run\` may choose tokens below its floor that the Try page and transformers' generate() never choose.`);
    }
    expect([...p.keys()].some((name) => name.includes('epsilon') || name.includes('eta_cutoff'))).toBe(false);
    // a file that sets none of them: no typical_p line, no note, as before
    for (const sampling of [qwen, null]) {
      const plain = ollamaSamplingLines(sampling);
      expect(parseModelfile(plain.join('\n')).has('typical_p')).toBe(false);
      expect(plain.some((l) => /typical_p|epsilon_cutoff|eta_cutoff/.test(l))).toBe(false);
    }
    // typical_p 1 said outright (older transformers wrote it into every file): written as set, Ollama's default too, no note
    const outright = ollamaSamplingLines({ ...qwen, fromFile: [...qwen.fromFile, 'typicalP', 'epsilonCutoff'] });
    expect(parseModelfile(outright.join('\n')).get('typical_p')).toEqual(['1']);
    expect(outright.some((l) => l.startsWith('#') && /typical_p|epsilon_cutoff/.test(l))).toBe(false);
    // values transformers' warpers refuse: typical_p's default written, the cutoffs' default applied, each said
    const bad = ollamaSamplingLines({ ...qwen, invalid: { typicalP: 'typical_p 0 must be a number > 0 and <= 1', etaCutoff: 'eta_cutoff 1 must be a number >= 0 and < 1' } });
    expect(parseModelfile(bad.join('\n')).get('typical_p')).toEqual(['1']);
    expect(bad).toContain("# generation_config.json: typical_p 0 must be a number > 0 and <= 1, so transformers' default typical_p 1 is written.");
    expect(bad).toContain("# generation_config.json: eta_cutoff 1 must be a number >= 0 and < 1, so transformers' default eta_cutoff 0 applies.");
  });

  it('the whole Modelfiles keep to Ollama\'s syntax, with a TEMPLATE and a stop', () => {
    const template = ollamaTemplateLines('chat', false);
    for (const text of [
      ollamaModelfile({ base: { dir: '/models/My Model' }, adapterFile: 'adapter.gguf', architecture: 'qwen2', template, sampling: qwen }),
      ollamaModelfile({ base: { ggufFile: 'base.gguf' }, adapterFile: 'adapter.gguf', architecture: 'llama', sampling: null }),
      ollamaModelfileForModel({ modelFile: 'model.gguf', chatTemplate: false, template, sampling: qwen }),
      ollamaModelfileForModel({ modelFile: 'model.gguf', chatTemplate: false, template, sampling: withMinP }),
      ollamaModelfileForModel({ modelFile: 'model.gguf', chatTemplate: true }),
    ]) {
      const p = parseModelfile(text);
      for (const name of ['temperature', 'top_k', 'top_p', 'repeat_penalty']) expect(p.get(name), `${name} in\n${text}`).toHaveLength(1);
    }
  });
});

describe('export writes the sampling of the model\'s generation_config.json', () => {
  it('into the adapter and the model Modelfiles: the values the Try page uses by default', { timeout: 300_000 }, async () => {
    const model = await tinyModel({ seed: 53 });
    writeFileSync(join(model.dir, 'generation_config.json'), JSON.stringify({
      bos_token_id: 0, eos_token_id: 1, do_sample: true, temperature: 0.7, top_p: 0.8, top_k: 20, min_p: 0.05, typical_p: 0.95, eta_cutoff: 0.001, repetition_penalty: 1.05, no_repeat_ngram_size: 4,
    }));
    const dir = tempDir('modelfile-sampling');
    builtCli();
    const data = writeJsonl(join(dir, 'rows.jsonl'), cycleRows(8, 20));
    const run = join(dir, 'run');
    const trained = await cli(['train', '--model', model.dir, '--data', data, '--out', run, '--steps', '2', '--rank', '4', '--seq-len', '64', '--threads', '2']);
    expect(trained.code, trained.stderr).toBe(0);
    const out = join(dir, 'export');
    const r = await cli(['export', run, '--format', 'gguf,gguf-model', '--gguf-type', 'f32', '--out', out, '--threads', '2']);
    expect(r.code, r.stderr).toBe(0);
    // what generation takes when nothing is given: the CLI and the Try page resolve it so
    const tryPage = resolveSampling(await readGenerationConfig(model.dir), {}, () => '');
    expect(tryPage).toMatchObject({ temperature: 0.7, topK: 20, topP: 0.8, minP: 0.05, typicalP: 0.95, etaCutoff: 0.001, repetitionPenalty: 1.05, noRepeatNgramSize: 4 });
    for (const format of ['gguf', 'gguf-model']) {
      const text = readFileSync(join(out, format, 'Modelfile'), 'utf8');
      const parameters = parseModelfile(text);
      expect(settingsOf(parameters), format).toEqual({ temperature: tryPage.temperature, topK: tryPage.topK, topP: tryPage.topP, repetitionPenalty: tryPage.repetitionPenalty, repeatLastN: '-1' });
      expect(parameters.get('min_p'), format).toEqual([String(tryPage.minP)]);
      expect(parameters.get('typical_p'), format).toEqual([String(tryPage.typicalP)]);
      expect(text, format).toContain('sets eta_cutoff 0.001, which Ollama has no parameter for');
      expect(text, format).toContain('sets no_repeat_ngram_size 4, which Ollama has no parameter for');
    }
  });
});
