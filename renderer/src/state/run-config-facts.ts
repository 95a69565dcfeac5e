// A run's configuration as label / value lines for the Runs page: the
// settings people compare between runs, not every field of run.json.
import type { TrainConfig } from '../../../electron/api/contract.js';
import { METHOD_LABELS } from '../components/methods.js';
import { countOf } from '../format.js';

export interface Fact {
  label: string;
  value: string;
}

export function runConfigFacts(c: TrainConfig): Fact[] {
  const facts: Fact[] = [
    { label: 'Model', value: c.model },
    { label: 'Data', value: c.data },
    { label: 'Method', value: METHOD_LABELS[c.method] },
    { label: 'Learning rate', value: String(c.lr) },
    { label: 'Length', value: c.steps === null ? countOf(c.epochs, 'epoch') : countOf(c.steps, 'step') },
    {
      label: 'Batch',
      value: c.gradAccum === 1 ? String(c.batchSize) : `${c.batchSize} × ${c.gradAccum} accumulated micro-batches (effective ${c.batchSize * c.gradAccum})`,
    },
    { label: 'Sequence length', value: String(c.seqLen) },
    { label: 'Scheduler', value: `${c.scheduler}, ${countOf(c.warmupSteps, 'warmup step')}` },
    { label: 'Optimizer', value: `${c.optimizer}, weight decay ${c.weightDecay}, clip ${c.clip === 0 ? 'off' : c.clip}` },
    { label: 'Seed', value: String(c.seed) },
  ];
  if (c.lora) {
    // dora is absent from the run.json of a version before DoRA: plain LoRA
    facts.push({
      label: 'LoRA',
      value: `${c.lora.dora === true ? 'DoRA (weight-decomposed), ' : ''}rank ${c.lora.rank}, alpha ${c.lora.alpha}${c.lora.rslora ? ' (rsLoRA)' : ''}, dropout ${c.lora.dropout}, on ${c.lora.targets.join(', ')}`,
    });
  }
  if (c.prompt) facts.push({ label: 'Prompt tuning', value: `${c.prompt.numVirtualTokens} virtual tokens, init ${c.prompt.init}` });
  if (c.prefix) facts.push({ label: 'Prefix tuning', value: `${c.prefix.numVirtualTokens} virtual tokens${c.prefix.projection ? ', with projection' : ''}` });
  const when = c.evalEvery === 0 ? 'at the end' : `every ${countOf(c.evalEvery, 'step')}`;
  // evalData is absent from the run.json of an older version: no evaluation file
  if (c.evalData) facts.push({ label: 'Evaluation', value: `on the file ${c.evalData}, ${when}` });
  else if (c.evalSplit > 0) facts.push({ label: 'Evaluation', value: `${Math.round(c.evalSplit * 1000) / 10}% held out, ${when}` });
  return facts;
}
