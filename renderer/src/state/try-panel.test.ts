// The try panel's settings are checked before anything is sent.
import { describe, expect, it } from 'vitest';
import { ApiError, STOPPED_BEFORE_START, type ApiTransport, type GenerateRequest, type GenerationDefaults, type RunHistory, type RunIndexEntry } from '../../../electron/api/contract.js';
import { bestModelOf, checkpointStep, checkpointText, computedOnText, defaultsSourceText, formatGenerationTime, generationStats, MAX_NEW_TOKENS_LIMIT, ORIGIN_WORDS, resolvedLayout, samplingRequest, samplingText, trainedModelOf, TryPanel, trySettingsErrors } from './try-panel.svelte.js';
import { TryInput } from './try-input.svelte.js';

const good = { prompt: 'Hello', layout: 'plain' as const, system: '', maxNewTokens: 64, temperature: 0, seed: 0 };

describe('trySettingsErrors', () => {
  it('accepts sensible settings', () => {
    expect(trySettingsErrors(good)).toEqual({});
    expect(trySettingsErrors({ ...good, maxNewTokens: MAX_NEW_TOKENS_LIMIT, temperature: 1.3, seed: 7 })).toEqual({});
  });
  it('names each field that is wrong', () => {
    expect(trySettingsErrors({
      prompt: '  ', layout: 'plain', system: 'Be brief.', maxNewTokens: 0, temperature: -0.5, topK: 2.5, topP: 1.2, minP: 1.5, typicalP: 0, epsilonCutoff: 1, etaCutoff: -0.001,
      repetitionPenalty: 0, noRepeatNgramSize: 2.5, seed: 1.5,
    })).toEqual({
      prompt: 'Write a prompt.',
      system: 'A system message needs the chat or alpaca layout; plain text is continued as written.',
      maxNewTokens: 'A whole number from 1 to 2048.',
      temperature: "A number >= 0, or empty for the model's own.",
      topK: "A whole number >= 0, or empty for the model's own.",
      topP: "A number >= 0 and <= 1, or empty for the model's own.",
      minP: "A number >= 0 and <= 1, or empty for the model's own.",
      // transformers' warpers take (0, 1); typical-p 1 and the cutoffs' 0 are "off"
      typicalP: "A number > 0 and <= 1, or empty for the model's own.",
      epsilonCutoff: "A number >= 0 and < 1, or empty for the model's own.",
      etaCutoff: "A number >= 0 and < 1, or empty for the model's own.",
      repetitionPenalty: "A number > 0, or empty for the model's own.",
      noRepeatNgramSize: "A whole number >= 0, or empty for the model's own.",
      seed: 'A whole number from 0 to 9007199254740991.',
    });
    // the sampling fields may be left empty (null, or undefined as an emptied number box may bind): the model's own
    expect(trySettingsErrors({ ...good, temperature: null, topK: undefined, topP: null, repetitionPenalty: null })).toEqual({});
    expect(trySettingsErrors({ ...good, temperature: 0.7, topK: 0, topP: 0, minP: 0.05, repetitionPenalty: 1.05, noRepeatNgramSize: 3 })).toEqual({});
    expect(trySettingsErrors({ ...good, temperature: 0.7, typicalP: 1, epsilonCutoff: 0, etaCutoff: 0 })).toEqual({});
    expect(trySettingsErrors({ ...good, temperature: 0.7, typicalP: 0.2, epsilonCutoff: 3e-4, etaCutoff: 0.999 })).toEqual({});
    // the service refuses a seed that is no safe integer (Export.test.ts checks the two agree)
    expect(trySettingsErrors({ ...good, seed: 1e30 })).toEqual({ seed: 'A whole number from 0 to 9007199254740991.' });
    expect(trySettingsErrors({ ...good, seed: 2 ** 53 - 1 })).toEqual({});
    // an emptied number box binds to null
    expect(trySettingsErrors({ ...good, maxNewTokens: null as unknown as number })).toEqual({ maxNewTokens: 'A whole number from 1 to 2048.' });
    expect(trySettingsErrors({ ...good, maxNewTokens: 2049 })).toEqual({ maxNewTokens: 'A whole number from 1 to 2048.' });
  });
});

describe('resolvedLayout', () => {
  it("follows the run's rows for 'trained' (plain when the run is not known), else the choice", () => {
    expect(resolvedLayout('trained', 'chat')).toBe('chat');
    expect(resolvedLayout('trained', null)).toBe('plain');
    expect(resolvedLayout('alpaca', 'chat')).toBe('alpaca');
    expect(resolvedLayout('plain', 'chat')).toBe('plain');
  });
  it('a system message is fine with the chat and alpaca layouts', () => {
    for (const layout of ['chat', 'alpaca'] as const) expect(trySettingsErrors({ ...good, layout, system: 'Be brief.' })).toEqual({});
  });
});

describe('TryPanel.followRun', () => {
  /** A transport whose runHistory answers for each run after its own delay (the other calls are not made here). */
  function transport(answers: Record<string, { format: RunHistory['trainedPromptFormat']; ms: number } | 'no run'>): ApiTransport {
    return {
      call: (async (method: string, request: { runDir: string }) => {
        expect(method).toBe('runHistory');
        const a = answers[request.runDir];
        if (a === 'no run') throw new Error(`${request.runDir}: has no run.json`);
        await new Promise((r) => setTimeout(r, a.ms));
        return { trainedPromptFormat: a.format } as RunHistory;
      }) as ApiTransport['call'],
      onEvent: () => () => {},
    };
  }

  it("keeps the layout of the run chosen last, not of a slower answer for the one before", async () => {
    const panel = new TryPanel(transport({ '/runs/chat': { format: 'chat', ms: 60 }, '/runs/completion': { format: 'plain', ms: 5 } }));
    const first = panel.followRun('/runs/chat');
    const second = panel.followRun('/runs/completion');
    await Promise.all([first, second]);
    expect(panel.trainedFormat).toBe('plain');
    expect(panel.trainedLabel).toBe('As the run was trained (plain text)');
    expect(panel.effectiveLayout).toBe('plain');
  });

  it('says when the layout is not recorded (plain text then), and names the run\'s when it is', async () => {
    const panel = new TryPanel(transport({ '/adapters/x': 'no run', '/runs/chat': { format: 'chat', ms: 1 } }));
    expect(panel.trainedLabel).toBe('As the run was trained');
    await panel.followRun('/adapters/x');
    expect(panel.trainedLabel).toBe('As the run was trained (not recorded: plain text)');
    await panel.followRun('/runs/chat');
    expect(panel.trainedLabel).toBe('As the run was trained (chat template)');
    expect(panel.effectiveLayout).toBe('chat');
  });
});

describe('generationStats', () => {
  it('counts one token in the singular and shows a fast generation in milliseconds', () => {
    // the e2e run's adapter answer: one token in 4.4 ms
    expect(generationStats({ tokens: 1, seconds: 0.0044, stoppedBy: 'eos' })).toBe('1 token in 4 ms (227.3 tokens/s), stopped by end of sequence');
    expect(generationStats({ tokens: 8, seconds: 0.25, stoppedBy: 'length' })).toBe('8 tokens in 0.25 s (32.0 tokens/s), stopped by the length limit');
    expect(generationStats({ tokens: 0, seconds: 0, stoppedBy: 'eos' })).toBe('0 tokens in < 1 ms, stopped by end of sequence');
  });
  it('switches from ms to seconds at 0.1 s', () => {
    expect(formatGenerationTime(0.0004)).toBe('< 1 ms');
    expect(formatGenerationTime(0.0996)).toBe('100 ms');
    expect(formatGenerationTime(0.1)).toBe('0.10 s');
    expect(formatGenerationTime(12.345)).toBe('12.35 s');
    expect(formatGenerationTime(Number.NaN)).toBe('—');
  });
});

describe('the sampling settings', () => {
  it('sends the fields set and leaves the empty ones to the model', () => {
    expect(samplingRequest({ temperature: null, topK: undefined, topP: null, repetitionPenalty: null })).toEqual({});
    expect(samplingRequest({ temperature: 0, topK: 20, topP: null, repetitionPenalty: 1.05 })).toEqual({ temperature: 0, topK: 20, repetitionPenalty: 1.05 });
  });

  it('says what an answer was generated with', () => {
    expect(samplingText({ sampling: { temperature: 0, topK: 50, topP: 1, minP: 0, typicalP: 1, epsilonCutoff: 0, etaCutoff: 0, repetitionPenalty: 1.05, noRepeatNgramSize: 0, seed: 42 } })).toBe('greedy decoding, repetition penalty 1.05');
    expect(samplingText({ sampling: { temperature: 0.7, topK: 20, topP: 0.8, minP: 0.05, typicalP: 1, epsilonCutoff: 0, etaCutoff: 0, repetitionPenalty: 1, noRepeatNgramSize: 3, seed: 42 } })).toBe('sampling at temperature 0.7, top-k 20, top-p 0.8, min-p 0.05, no repeated 3-grams, seed 42');
  });

  it("starts from the model's own settings and the CLI's seed (42), and asks both sides with what is set", async () => {
    const asked: GenerateRequest[] = [];
    const entry = { dir: '/runs/r', model: '/models/base', method: 'lora', status: 'finished', created: '', updated: '', steps_done: 4, total_steps: 4, best_eval_loss: null, adapter: '/runs/r', resumable: false, message: null } as RunIndexEntry;
    const transport: ApiTransport = {
      call: (async (method: string, request: GenerateRequest) => {
        if (method === 'runHistory') return { entry, trainedPromptFormat: 'plain' } as RunHistory;
        if (method === 'generate') {
          asked.push(request);
          return { text: 'x', tokens: 1, stoppedBy: 'eos', seconds: 0.01, notices: [], computedOn: { device: 'cpu', name: 'CPU', precision: 'fp32' }, prompt: { text: 'p', tokens: 1, layout: 'plain text' }, sampling: { temperature: 0, topK: 50, topP: 1, minP: 0, typicalP: 1, epsilonCutoff: 0, etaCutoff: 0, repetitionPenalty: 1, noRepeatNgramSize: 0, seed: 42 } };
        }
        throw new Error(`unexpected ${method}`);
      }) as ApiTransport['call'],
      onEvent: () => () => {},
    };
    const panel = new TryPanel(transport);
    expect([panel.input.temperature, panel.input.topK, panel.input.topP, panel.input.repetitionPenalty, panel.input.seed]).toEqual([null, null, null, null, 42]);
    panel.input.prompt = 'Hello';
    await panel.generate('/models/base', '/runs/r');
    const settingsOf = (r: GenerateRequest) => ({ temperature: r.temperature, topK: r.topK, topP: r.topP, repetitionPenalty: r.repetitionPenalty, seed: r.seed });
    expect(asked.map(settingsOf)).toEqual([
      { temperature: undefined, topK: undefined, topP: undefined, repetitionPenalty: undefined, seed: 42 },
      { temperature: undefined, topK: undefined, topP: undefined, repetitionPenalty: undefined, seed: 42 },
    ]);
    panel.input.temperature = 0.8;
    panel.input.repetitionPenalty = 1.1;
    await panel.generate('/models/base', '/runs/r');
    expect(asked.slice(2).map(settingsOf)).toEqual([
      { temperature: 0.8, topK: undefined, topP: undefined, repetitionPenalty: 1.1, seed: 42 },
      { temperature: 0.8, topK: undefined, topP: undefined, repetitionPenalty: 1.1, seed: 42 },
    ]);
    // text the browser cannot read as a number is an error, not "the model's own" (its value reads empty)
    panel.input.topP = null;
    panel.setNotNumber('topP', true);
    expect(panel.errors.topP).toBe("Not a number: type one, or clear the field for the model's own.");
    expect(panel.canGenerate('/models/base', '/runs/r')).toBe(false);
    panel.setNotNumber('topP', false);
    expect(panel.errors.topP).toBeUndefined();
    expect(panel.canGenerate('/models/base', '/runs/r')).toBe(true);
  });
});

describe("the fields start from the model's own settings", () => {
  /** A model's defaults: Qwen3-like from its file, or transformers' when it has none. */
  const qwen3: GenerationDefaults = {
    sampling: { temperature: 0.6, topK: 20, topP: 0.95, minP: 0, typicalP: 1, epsilonCutoff: 0, etaCutoff: 0, repetitionPenalty: 1, noRepeatNgramSize: 0, seed: 42 },
    file: '/models/qwen3/generation_config.json', fromFile: ['temperature', 'topK', 'topP', 'minP'], problems: [], unapplied: null,
  };
  const bare: GenerationDefaults = {
    sampling: { temperature: 0, topK: 50, topP: 1, minP: 0, typicalP: 1, epsilonCutoff: 0, etaCutoff: 0, repetitionPenalty: 1, noRepeatNgramSize: 0, seed: 42 },
    file: null, fromFile: [], problems: [], unapplied: null,
  };
  const fields = (p: TryInput) => [p.temperature, p.topK, p.topP, p.minP, p.repetitionPenalty, p.noRepeatNgramSize];

  /** A transport whose generationDefaults answers when the test says (`answer(model)`), in any order; it records generate's requests. */
  function transport(byModel: Record<string, GenerationDefaults | Error>) {
    const waiting = new Map<string, () => void>();
    const asked: GenerateRequest[] = [];
    const entry = { dir: '/runs/r', model: '/models/qwen3', method: 'lora', status: 'finished', created: '', updated: '', steps_done: 4, total_steps: 4, best_eval_loss: null, adapter: '/runs/r', resumable: false, message: null } as RunIndexEntry;
    const api: ApiTransport = {
      call: (async (method: string, request: { model: string } & GenerateRequest) => {
        if (method === 'generationDefaults') {
          await new Promise<void>((resolve) => waiting.set(request.model, resolve));
          const d = byModel[request.model];
          if (d instanceof Error) throw d;
          return d;
        }
        if (method === 'runHistory') return { entry, trainedPromptFormat: 'plain' } as RunHistory;
        if (method === 'generate') {
          asked.push(request);
          return { text: 'x', tokens: 1, stoppedBy: 'eos', seconds: 0.01, notices: [], computedOn: { device: 'cpu', name: 'CPU', precision: 'fp32' }, prompt: { text: 'p', tokens: 1, layout: 'plain text' }, sampling: qwen3.sampling };
        }
        throw new Error(`unexpected ${method}`);
      }) as ApiTransport['call'],
      onEvent: () => () => {},
    };
    /** Lets the pending generationDefaults call for `model` answer. */
    const answer = async (model: string) => {
      await expect.poll(() => waiting.has(model)).toBe(true);
      waiting.get(model)!();
      waiting.delete(model);
    };
    return { api, answer, asked };
  }

  it("fills every sampling field with the model's values and says they came from its generation_config.json, or are defaults", async () => {
    const t = transport({ '/models/qwen3': qwen3, '/models/bare': bare });
    const panel = new TryPanel(t.api);
    expect(fields(panel.input)).toEqual([null, null, null, null, null, null]);
    expect(panel.origin('topP')).toBeNull(); // not read yet
    const read = panel.followModel('/models/qwen3');
    await t.answer('/models/qwen3');
    await read;
    expect(fields(panel.input)).toEqual([0.6, 20, 0.95, 0, 1, 0]);
    expect(['temperature', 'topK', 'topP', 'minP', 'repetitionPenalty', 'noRepeatNgramSize'].map((k) => panel.origin(k as never))).toEqual(['file', 'file', 'file', 'file', 'default', 'default']);
    expect(defaultsSourceText(panel.defaults!)).toBe("Filled in from the model's generation_config.json (temperature, top-k, top-p, min-p); the others are transformers' defaults.");
    expect(panel.anyEdited).toBe(false);
    const other = panel.followModel('/models/bare');
    await t.answer('/models/bare');
    await other;
    expect(fields(panel.input)).toEqual([0, 50, 1, 0, 1, 0]);
    expect(panel.origin('temperature')).toBe('default');
    expect(defaultsSourceText(panel.defaults!)).toBe("Filled in with transformers' defaults: the model has no generation_config.json.");
    expect(defaultsSourceText({ file: '/m/generation_config.json', fromFile: [], problems: [] })).toBe("Filled in with transformers' defaults: the model's generation_config.json sets none of these.");
    // a file that is there but cannot be used (not JSON, or only refused values) is not said to be missing, nor to set nothing
    const broken = { file: '/m/generation_config.json', fromFile: [], problems: ['/m/generation_config.json: not valid JSON (…), so it is ignored: …'] };
    expect(defaultsSourceText(broken)).toBe("Filled in with transformers' defaults: the model's generation_config.json cannot be used for them (below).");
  });

  it("keeps what the user typed when another model's settings arrive, and puts the model's back on reset", async () => {
    const t = transport({ '/models/qwen3': qwen3, '/models/bare': bare });
    const panel = new TryPanel(t.api);
    const first = panel.followModel('/models/qwen3');
    // typed before the model's settings came: the user's value stays
    panel.input.topP = 0.5;
    await t.answer('/models/qwen3');
    await first;
    expect(fields(panel.input)).toEqual([0.6, 20, 0.5, 0, 1, 0]);
    expect(panel.origin('topP')).toBe('edited');
    panel.input.noRepeatNgramSize = 3;
    expect(panel.anyEdited).toBe(true);
    const second = panel.followModel('/models/bare');
    await t.answer('/models/bare');
    await second;
    // the untouched fields follow the new model, the edited ones stay
    expect(fields(panel.input)).toEqual([0, 50, 0.5, 0, 1, 3]);
    expect([panel.origin('topK'), panel.origin('topP'), panel.origin('noRepeatNgramSize')]).toEqual(['default', 'edited', 'edited']);
    panel.setNotNumber('minP', true);
    panel.resetToModel();
    expect(fields(panel.input)).toEqual([0, 50, 1, 0, 1, 0]);
    expect(panel.anyEdited).toBe(false);
    expect(panel.errors.minP).toBeUndefined();
  });

  it("keeps the settings of the model chosen last, not of a slower answer for the one before; says when they cannot be read", async () => {
    const t = transport({ '/models/qwen3': qwen3, '/models/bare': bare, '/models/gone': new Error('/models/gone: is not a folder') });
    const panel = new TryPanel(t.api);
    const slow = panel.followModel('/models/qwen3');
    const last = panel.followModel('/models/bare');
    await t.answer('/models/bare');
    await last;
    await t.answer('/models/qwen3'); // answers after: passed over
    await slow;
    expect(fields(panel.input)).toEqual([0, 50, 1, 0, 1, 0]);
    expect(panel.defaults?.file).toBeNull();
    const gone = panel.followModel('/models/gone');
    await t.answer('/models/gone');
    await gone;
    expect([panel.defaults, panel.defaultsError]).toEqual([null, '/models/gone: is not a folder']);
    expect(fields(panel.input)).toEqual([0, 50, 1, 0, 1, 0]); // left as they were
  });

  it('asks both sides with the values the fields show', async () => {
    const t = transport({ '/models/qwen3': qwen3 });
    const panel = new TryPanel(t.api);
    const read = panel.followModel('/models/qwen3');
    await t.answer('/models/qwen3');
    await read;
    panel.input.minP = 0.1;
    panel.input.prompt = 'Hello';
    await panel.generate('/models/qwen3', '/runs/r');
    const settingsOf = (r: GenerateRequest) => ({ temperature: r.temperature, topK: r.topK, topP: r.topP, minP: r.minP, repetitionPenalty: r.repetitionPenalty, noRepeatNgramSize: r.noRepeatNgramSize, seed: r.seed });
    const shown = { temperature: 0.6, topK: 20, topP: 0.95, minP: 0.1, repetitionPenalty: 1, noRepeatNgramSize: 0, seed: 42 };
    expect(t.asked.map(settingsOf)).toEqual([shown, shown]);
  });

  it("marks an emptied field as the model's own (its file's value, the default, or what the problems name), not the user's", async () => {
    // top_p 1.5 in the file: transformers' default filled in, the problem said; top-k and min-p from the file
    const refused: GenerationDefaults = {
      sampling: { temperature: 0.7, topK: 20, topP: 1, minP: 0.05, typicalP: 1, epsilonCutoff: 0, etaCutoff: 0, repetitionPenalty: 1, noRepeatNgramSize: 0, seed: 42 },
      file: '/models/bad/generation_config.json', fromFile: ['temperature', 'topK', 'minP'],
      problems: ["/models/bad/generation_config.json: top_p 1.5 must be a number >= 0 and <= 1, so transformers' default top_p 1 is filled in; fix the file (or remove top_p)"], unapplied: null,
    };
    const t = transport({ '/models/qwen3': qwen3, '/models/bare': bare, '/models/bad': refused });
    const panel = new TryPanel(t.api);
    const read = async (model: string) => {
      const reading = panel.followModel(model);
      await t.answer(model);
      await reading;
    };
    await read('/models/qwen3');
    panel.input.topK = null; // the file's 20: an empty field is left out of the request, which then takes the file's
    panel.input.noRepeatNgramSize = undefined; // transformers' 0: the file does not set it
    expect([panel.origin('topK'), panel.origin('noRepeatNgramSize')]).toEqual(['file', 'default']);
    expect([ORIGIN_WORDS.file, ORIGIN_WORDS.default]).toEqual(["the model's", 'default']);
    expect(panel.anyEdited).toBe(true); // reset fills them in again
    expect(samplingRequest(panel.input)).toEqual({ temperature: 0.6, topP: 0.95, minP: 0, typicalP: 1, epsilonCutoff: 0, etaCutoff: 0, repetitionPenalty: 1 });
    // text the browser cannot read is the user's, though it reads empty
    panel.setNotNumber('topK', true);
    expect(panel.origin('topK')).toBe('edited');
    panel.setNotNumber('topK', false);
    // a file with a refused value: which key it is, the problems say; an emptied field is the model's own then
    await read('/models/bad');
    panel.input.topP = null;
    expect(panel.origin('topP')).toBe('own');
    expect(ORIGIN_WORDS.own).toBe("the model's own");
    expect(panel.origin('topK')).toBe('file'); // still empty, and the file gives top_k
    panel.resetToModel();
    expect(fields(panel.input)).toEqual([0.7, 20, 1, 0.05, 1, 0]);
    expect([panel.origin('topP'), panel.anyEdited]).toEqual(['default', false]);
    await read('/models/bare');
    panel.input.minP = null;
    expect(panel.origin('minP')).toBe('default');
  });

  it('typical-p and the epsilon and eta cutoffs are fields like the others: from the file, saying so, edited, sent, reset', async () => {
    const recipe: GenerationDefaults = {
      sampling: { ...qwen3.sampling, typicalP: 0.9, epsilonCutoff: 0, etaCutoff: 0.002 },
      file: '/models/recipe/generation_config.json', fromFile: ['temperature', 'topK', 'topP', 'typicalP', 'etaCutoff'], problems: [], unapplied: null,
    };
    const t = transport({ '/models/recipe': recipe, '/models/bare': bare });
    const panel = new TryPanel(t.api);
    const late = () => [panel.input.typicalP, panel.input.epsilonCutoff, panel.input.etaCutoff];
    const origins = () => (['typicalP', 'epsilonCutoff', 'etaCutoff'] as const).map((k) => panel.origin(k));
    expect(late()).toEqual([null, null, null]);
    const read = panel.followModel('/models/recipe');
    await t.answer('/models/recipe');
    await read;
    expect(late()).toEqual([0.9, 0, 0.002]);
    expect(origins()).toEqual(['file', 'default', 'file']);
    // named in the file's order, between min-p and the repetition penalty, as transformers applies them
    expect(defaultsSourceText(panel.defaults!)).toBe("Filled in from the model's generation_config.json (temperature, top-k, top-p, typical-p, eta cutoff); the others are transformers' defaults.");
    panel.input.epsilonCutoff = 3e-4;
    expect(origins()).toEqual(['file', 'edited', 'file']);
    panel.input.prompt = 'Hello';
    await panel.generate('/models/recipe', '/runs/r');
    expect(t.asked.map((r) => [r.typicalP, r.epsilonCutoff, r.etaCutoff])).toEqual([[0.9, 3e-4, 0.002], [0.9, 3e-4, 0.002]]);
    // the next model fills the fields not changed; the edited one stays until reset
    const next = panel.followModel('/models/bare');
    await t.answer('/models/bare');
    await next;
    expect(late()).toEqual([1, 3e-4, 0]);
    panel.resetToModel();
    expect([late(), origins()]).toEqual([[1, 0, 0], ['default', 'default', 'default']]);
    // out of their range: the field says so, and nothing is sent
    panel.input.typicalP = 0;
    panel.input.etaCutoff = 1;
    expect([panel.errors.typicalP, panel.errors.etaCutoff]).toEqual(["A number > 0 and <= 1, or empty for the model's own.", "A number >= 0 and < 1, or empty for the model's own."]);
    expect(panel.canGenerate('/models/bare', '/runs/r')).toBe(false);
  });

  // what the user set lives in a TryInput the app keeps (Studio.tryInput): the page makes a new TryPanel on each visit
  it('a panel made for the next visit shows the prompt and the edits; the next model fills only the fields not changed', async () => {
    const t = transport({ '/models/qwen3': qwen3, '/models/bare': bare });
    const kept = new TryInput();
    const visit = new TryPanel(t.api, kept);
    const read = visit.followModel('/models/qwen3');
    await t.answer('/models/qwen3');
    await read;
    visit.input.prompt = 'Hello';
    visit.input.layout = 'chat';
    visit.input.system = 'Be brief.';
    visit.input.maxNewTokens = 12;
    visit.input.seed = 7;
    visit.input.temperature = 0.9;
    visit.input.topK = null;
    // the page is left (Runs, to choose another run on another model) and opened again: a new panel on the same input
    const next = new TryPanel(t.api, kept);
    expect([next.input.prompt, next.input.layout, next.input.system, next.input.maxNewTokens, next.input.seed]).toEqual(['Hello', 'chat', 'Be brief.', 12, 7]);
    expect(fields(next.input)).toEqual([0.9, null, 0.95, 0, 1, 0]);
    const other = next.followModel('/models/bare');
    await t.answer('/models/bare');
    await other;
    expect(fields(next.input)).toEqual([0.9, null, 1, 0, 1, 0]);
    expect(['temperature', 'topK', 'topP'].map((k) => next.origin(k as never))).toEqual(['edited', 'default', 'default']);
    next.resetToModel();
    expect(fields(kept)).toEqual([0, 50, 1, 0, 1, 0]);
  });

  it("an answer a left page asked for does not fill the fields after the next visit's model", async () => {
    const t = transport({ '/models/qwen3': qwen3, '/models/bare': bare });
    const kept = new TryInput();
    const left = new TryPanel(t.api, kept);
    const slow = left.followModel('/models/qwen3'); // the visit ends before it answers
    const next = new TryPanel(t.api, kept);
    const read = next.followModel('/models/bare');
    await t.answer('/models/bare');
    await read;
    await t.answer('/models/qwen3');
    await slow;
    expect(fields(next.input)).toEqual([0, 50, 1, 0, 1, 0]);
    expect(next.anyEdited).toBe(false);
  });
});

describe('computedOnText', () => {
  it('names the GPU or the CPU and the precision the child computed in', () => {
    expect(computedOnText({ computedOn: { device: 'cuda:0', name: 'NVIDIA H200', precision: 'bf16' } })).toBe('generated on NVIDIA H200 (bf16)');
    expect(computedOnText({ computedOn: { device: 'cpu', name: 'CPU', precision: 'fp32' } })).toBe('generated on CPU (fp32)');
  });
});

describe('trainedModelOf', () => {
  const entry = (over: Partial<RunIndexEntry>): RunIndexEntry => ({
    dir: '/runs/r', model: '/models/base', method: 'lora', status: 'finished', created: '', updated: '', steps_done: 4, total_steps: 4,
    best_eval_loss: null, adapter: '/runs/r', resumable: false, message: null, ...over,
  });
  it('tries a full fine-tune as its own model (run folder, else newest checkpoint), with no adapter', () => {
    expect(trainedModelOf('/runs/r', entry({ method: 'full' }))).toEqual({ model: '/runs/r', adapter: null, checkpoint: null });
    expect(trainedModelOf('/runs/r', entry({ method: 'full', status: 'running', adapter: '/runs/r/checkpoints/step-8' }))).toEqual({
      model: '/runs/r/checkpoints/step-8', adapter: null, checkpoint: '/runs/r/checkpoints/step-8',
    });
  });
  it('tries any other run as its base model with the run folder as the adapter', () => {
    expect(trainedModelOf('/runs/r', entry({}))).toEqual({ model: '/models/base', adapter: '/runs/r', checkpoint: null });
    expect(trainedModelOf('/runs/r', entry({ status: 'paused', adapter: '/runs/r/checkpoints/step-2' }))).toEqual({
      model: '/models/base', adapter: '/runs/r', checkpoint: '/runs/r/checkpoints/step-2',
    });
  });
  it('says so when the run has saved nothing yet', () => {
    expect(() => trainedModelOf('/runs/r', entry({ method: 'full', status: 'running', adapter: null }))).toThrow(
      'The run has saved no model yet: try it once it has written its first checkpoint, or when it finishes.',
    );
    expect(() => trainedModelOf('/runs/r', entry({ status: 'running', adapter: null }))).toThrow('The run has saved no adapter yet');
  });
  it('names a checkpoint by its step', () => {
    expect(checkpointStep('/runs/r/checkpoints/step-400')).toBe(400);
    expect(checkpointStep('C:\\runs\\r\\checkpoints\\step-12\\')).toBe(12);
    expect(checkpointStep('/runs/r')).toBeNull();
    expect(checkpointText('/runs/r/checkpoints/step-400')).toBe('the newest checkpoint, step 400 (the run has not finished)');
  });
});

describe('trying the best adapter (keep-best)', () => {
  it('a full fine-tune\'s best/ is its own model; any other run\'s is an adapter on the base', () => {
    expect(bestModelOf({ dir: '/runs/r/best', step: 20 }, '/models/base', true)).toEqual({ model: '/runs/r/best', adapter: null, checkpoint: null, bestStep: 20 });
    expect(bestModelOf({ dir: '/runs/r/best', step: 20 }, '/models/base', false)).toEqual({ model: '/models/base', adapter: '/runs/r/best', checkpoint: null, bestStep: 20 });
  });

  it('with useBest the trained answer is asked of best/, without it of the run', async () => {
    const asked: { model: string; adapter: string | null }[] = [];
    const entry = { dir: '/runs/r', model: '/models/base', method: 'lora', status: 'finished', created: '', updated: '', steps_done: 40, total_steps: 40, best_eval_loss: 1, adapter: '/runs/r', resumable: false, message: null } as RunIndexEntry;
    const transport: ApiTransport = {
      call: (async (method: string, request: { model: string; adapter: string | null }) => {
        if (method === 'runHistory') return { entry, trainedPromptFormat: 'plain' } as RunHistory;
        if (method === 'generate') {
          asked.push({ model: request.model, adapter: request.adapter });
          return { text: 'x', tokens: 1, stoppedBy: 'eos', seconds: 0.01, notices: [], computedOn: { device: 'cpu', name: 'CPU', precision: 'fp32' }, prompt: { text: 'p', tokens: 1, layout: 'plain text' }, sampling: { temperature: 0, topK: 50, topP: 1, minP: 0, typicalP: 1, epsilonCutoff: 0, etaCutoff: 0, repetitionPenalty: 1, noRepeatNgramSize: 0, seed: 42 } };
        }
        throw new Error(`unexpected ${method}`);
      }) as ApiTransport['call'],
      onEvent: () => () => {},
    };
    const panel = new TryPanel(transport);
    panel.input.prompt = 'Hello';
    const best = { dir: '/runs/r/best', step: 20 };
    await panel.generate('/models/base', '/runs/r', best);
    expect(asked[1]).toEqual({ model: '/models/base', adapter: '/runs/r' });
    panel.useBest = true;
    await panel.generate('/models/base', '/runs/r', best);
    expect(asked[3]).toEqual({ model: '/models/base', adapter: '/runs/r/best' });
    expect(panel.trained?.bestStep).toBe(20);
    // a run without best/ tries its final adapter whatever useBest says
    await panel.generate('/models/base', '/runs/r', null);
    expect(asked[5]).toEqual({ model: '/models/base', adapter: '/runs/r' });
  });
});

describe('Stop before any text came', () => {
  it('the call that failed as stopped before it started leaves no error; another failure still shows', async () => {
    const entry = { dir: '/runs/r', model: '/models/base', method: 'lora', status: 'finished', created: '', updated: '', steps_done: 4, total_steps: 4, best_eval_loss: null, adapter: '/runs/r', resumable: false, message: null } as RunIndexEntry;
    let fail: (e: Error) => void = () => {};
    const transport: ApiTransport = {
      call: (async (method: string) => {
        if (method === 'runHistory') return { entry, trainedPromptFormat: 'plain' } as RunHistory;
        if (method === 'generate') return new Promise((_, reject) => (fail = reject));
        if (method === 'stopGenerate') {
          fail(new ApiError({ code: 'failed', message: STOPPED_BEFORE_START }));
          return {};
        }
        throw new Error(`unexpected ${method}`);
      }) as ApiTransport['call'],
      onEvent: () => () => {},
    };
    const panel = new TryPanel(transport);
    panel.input.prompt = 'Hello';
    const running = panel.generate('/models/base', '/runs/r');
    await expect.poll(() => panel.generating).toBe('base');
    await panel.stop();
    await running;
    expect(panel.error).toBeNull();
    expect(panel.base).toBeNull();
    expect(panel.adapter).toBeNull(); // the other side was not started
    // without Stop pressed, the same message is an error to show
    const again = panel.generate('/models/base', '/runs/r');
    await expect.poll(() => panel.generating).toBe('base');
    fail(new ApiError({ code: 'failed', message: STOPPED_BEFORE_START }));
    await again;
    expect(panel.error).toBe(STOPPED_BEFORE_START);
  });
});
