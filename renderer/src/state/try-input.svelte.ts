// What the user sets in the Export page's Try panel (the prompt, its layout,
// the sampling fields, the seed), apart from the panel (try-panel.svelte.ts)
// because it outlives it: see TryInput.
import type { PromptFormat } from '../../../electron/api/contract.js';
import { DEFAULT_SEED, type SamplingKey } from '../../../electron/inference/sampling-settings.js';

/** How the prompt is laid out: 'trained' follows the run's training rows (chat rows: chat; completion and text rows: plain). */
export type PromptLayoutChoice = 'trained' | PromptFormat;

/** A sampling field: a number, or empty (null; a number box emptied may bind undefined) for the model's own. */
export type SamplingField = number | null | undefined;

/**
 * What the user sets in the Try panel, and what the model's settings last
 * filled in (a field still holding that is not the user's). The app keeps one
 * for its whole life (Studio.tryInput): the page's TryPanel is made anew on
 * each visit, and would otherwise lose the prompt and the edits whenever the
 * user goes to Runs (the only way to choose another run). The answers are not
 * in it: they belong to the visit, and the run, they were generated for.
 * The page binds its fields here (`trial.input.prompt`), and the panel reads
 * them here when it generates: one place holds each value.
 */
export class TryInput {
  prompt = $state('');
  layout = $state<PromptLayoutChoice>('trained');
  system = $state('');
  maxNewTokens = $state(64);
  /** empty (null): the model's own, as for the other sampling fields; filled from it once read (TryPanel.followModel) */
  temperature = $state<SamplingField>(null);
  topK = $state<SamplingField>(null);
  topP = $state<SamplingField>(null);
  minP = $state<SamplingField>(null);
  typicalP = $state<SamplingField>(null);
  epsilonCutoff = $state<SamplingField>(null);
  etaCutoff = $state<SamplingField>(null);
  repetitionPenalty = $state<SamplingField>(null);
  noRepeatNgramSize = $state<SamplingField>(null);
  /** the CLI's default seed too */
  seed = $state(DEFAULT_SEED);
  /** what followModel last put in each field: a field still holding it is not the user's, and follows the next model */
  filled = $state.raw<Partial<Record<SamplingKey, number>>>({});
  /**
   * the model whose settings were asked for last, by any visit's panel: an
   * answer for another one (a visit before, or a model chosen meanwhile) fills nothing
   */
  defaultsFor: string | null = null;
}
