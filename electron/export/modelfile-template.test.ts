// The Modelfile's TEMPLATE for a model with no chat template: it lays a
// prompt out exactly as generation (and so training) does for the run's rows
// (rendered here by a reading of Go's template semantics for the two forms
// it uses: {{ if .System }}…{{ else }}…{{ end }} and {{ .Field }}), and an
// export of a run trained on chat rows writes it into both Modelfiles, while
// a run on pre-tokenized rows gets none.
import { existsSync, readFileSync } from 'node:fs';
import { gguf as hfGguf } from '@huggingface/gguf';
import { FALLBACK_CHAT_TEMPLATE } from '../data/chat-template.js';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { layOutPrompt } from '../inference/prompt-format.js';
import { ModelTokenizer } from '../models/tokenizer.js';
import { builtCli, cli, cycleRows, tempDir, tinyModel, writeJsonl } from '../testing/e2e-fixtures.js';
import { OLLAMA_TEMPLATES, ollamaModelfile, ollamaTemplateLines } from './modelfile.js';

/** Go's text/template for {{ if .System }}A{{ else }}B{{ end }} / {{ if .System }}A{{ end }} and {{ .System }} / {{ .Prompt }}. */
function renderGo(template: string, system: string, prompt: string): string {
  const branched = template.replace(/\{\{ if \.System \}\}(.*?)(?:\{\{ else \}\}(.*?))?\{\{ end \}\}/gs, (_, then: string, otherwise?: string) => (system !== '' ? then : (otherwise ?? '')));
  return branched.replaceAll('{{ .System }}', system).replaceAll('{{ .Prompt }}', prompt);
}

describe('ollamaTemplateLines', () => {
  it("lays a prompt out as generation does for the run's rows (with and without a system message)", async () => {
    const model = await tinyModel({ seed: 3 });
    const tokenizer = await ModelTokenizer.load(model.dir);
    expect(tokenizer.chatTemplate).toBeNull();
    const bos = tokenizer.decode(tokenizer.specialTokensAround().prefix, { skipSpecialTokens: false });
    for (const layout of ['chat', 'alpaca'] as const) {
      for (const system of ['', 'Answer in one word.']) {
        const generation = layOutPrompt(tokenizer, layout, 'Name a colour.', system).text;
        // Ollama puts BOS first itself
        expect(bos + renderGo(OLLAMA_TEMPLATES[layout], system, 'Name a colour.'), `${layout} / ${JSON.stringify(system)}`).toBe(generation);
      }
    }
  });

  it('writes none for plain text, an unknown layout, or a model with a chat template', () => {
    expect(ollamaTemplateLines('plain', false)).toEqual([]);
    expect(ollamaTemplateLines(null, false)).toEqual([]);
    expect(ollamaTemplateLines('chat', true)).toEqual([]);
    expect(ollamaTemplateLines('chat', false)[1]).toBe(`TEMPLATE """${OLLAMA_TEMPLATES.chat}"""`);
  });
});

describe('ollamaModelfile', () => {
  it('leaves FROM commented out for a bitsandbytes 4-bit base folder (Ollama cannot import it), saying what to point it at', () => {
    const lines = (base4bit: boolean) => ollamaModelfile({ base: { dir: '/models/llama-bnb-4bit' }, adapterFile: 'adapter.gguf', architecture: 'llama', base4bit }).split('\n');
    expect(lines(false)).toContain('FROM /models/llama-bnb-4bit');
    const fourBit = lines(true);
    expect(fourBit.filter((l) => l.startsWith('FROM'))).toEqual([]);
    expect(fourBit).toContain('# FROM /models/llama-bnb-4bit');
    expect(fourBit.join('\n')).toContain('bitsandbytes 4-bit weights, which Ollama cannot import: point FROM at the original');
    // the way out when an Ollama refuses ADAPTER lines
    expect(fourBit.join('\n')).toContain('export --format gguf-model instead');
  });
});

describe('export of a run trained on chat rows, for a model with no chat template', () => {
  it('writes the TEMPLATE and a stop into the adapter and the model Modelfiles, and the trained layout as the chat template of the merged folder and model.gguf; a pre-tokenized run gets none', { timeout: 300_000 }, async () => {
    const model = await tinyModel({ seed: 52 });
    const dir = tempDir('modelfile-template');
    builtCli();
    const chat = writeJsonl(join(dir, 'chat.jsonl'), Array.from({ length: 8 }, (_, i) => ({ messages: [{ role: 'user', content: `the cat ${i}` }, { role: 'assistant', content: 'the dog' }] })));
    const tokens = writeJsonl(join(dir, 'tokens.jsonl'), cycleRows(8, 20));
    for (const [data, name] of [[chat, 'chat'], [tokens, 'tokens']] as const) {
      const run = join(dir, `${name}-run`);
      const trained = await cli(['train', '--model', model.dir, '--data', data, '--out', run, '--steps', '2', '--rank', '4', '--seq-len', '64', '--threads', '2']);
      expect(trained.code, trained.stderr).toBe(0);
      const out = join(dir, `${name}-export`);
      const r = await cli(['export', run, '--format', 'gguf,gguf-model,merged', '--gguf-type', 'f32', '--gguf-base', '--out', out, '--threads', '2']);
      expect(r.code, r.stderr).toBe(0);
      // where transformers and llama.cpp read a chat template: the layout the run trained on (it had none before:
      // apply_chat_template refused, llama.cpp chatted in ChatML)
      const jinja = join(out, 'merged', 'chat_template.jinja');
      const templateIn = async (file: string) => ((await hfGguf(file, { allowLocalFile: true })).metadata as Record<string, unknown>)['tokenizer.chat_template'];
      const ggufTemplate = await templateIn(join(out, 'gguf-model', 'model.gguf'));
      // and base.gguf beside the GGUF adapter (llama-cli -m base.gguf --lora adapter.gguf)
      expect(await templateIn(join(out, 'gguf', 'base.gguf'))).toBe(ggufTemplate);
      if (name === 'chat') {
        expect(readFileSync(jinja, 'utf8')).toBe(FALLBACK_CHAT_TEMPLATE);
        expect(ggufTemplate).toBe(FALLBACK_CHAT_TEMPLATE);
        // and the merged folder's tokenizer lays a chat out as training did
        const merged = await ModelTokenizer.load(join(out, 'merged'));
        expect(merged.chatTemplate).toBe(FALLBACK_CHAT_TEMPLATE);
      } else {
        expect(existsSync(jinja)).toBe(false);
        expect(ggufTemplate).toBeUndefined();
      }
      for (const format of ['gguf', 'gguf-model']) {
        const modelfile = readFileSync(join(out, format, 'Modelfile'), 'utf8');
        if (name === 'chat') {
          expect(modelfile, format).toContain(`\nTEMPLATE """${OLLAMA_TEMPLATES.chat}"""\nPARAMETER stop "### User:"\n`);
        } else {
          expect(modelfile, format).not.toMatch(/^TEMPLATE/m);
        }
      }
    }
  });
});
