// The demo's report in words: the before/after table, the sample answers and
// where the result is.
import type { DemoReport } from './run-demo.js';
import type { Sample } from './measure.js';
import { countOf } from '../text/plural.js';

function pct(x: number): string {
  return `${(100 * x).toFixed(1)}%`;
}

function mib(bytes: number): string {
  return bytes >= 1024 * 1024 ? `${(bytes / 1024 / 1024).toFixed(2)} MiB` : `${(bytes / 1024).toFixed(1)} KiB`;
}

function oneLine(text: string): string {
  return JSON.stringify(text);
}

function sampleLines(label: string, samples: readonly Sample[]): string[] {
  return [
    `${label}:`,
    ...samples.map((s) => `  ${s.correct ? '✓' : '✗'} ${oneLine(s.prompt)} -> ${oneLine(s.generated)} (expected ${oneLine(s.expected)})`),
  ];
}

export function formatReport(r: DemoReport): string {
  const rows: [string, string, string][] = [
    ['task accuracy (held-out)', `${pct(r.before.accuracy)} (${r.before.correct}/${r.before.questions})`, `${pct(r.after.accuracy)} (${r.after.correct}/${r.after.questions})`],
    ['task eval loss', r.before.eval_loss.toFixed(4), r.after.eval_loss.toFixed(4)],
    ['base-corpus perplexity', r.before.base_perplexity.toFixed(4), `${r.after.base_perplexity.toFixed(4)} (${r.perplexity_change >= 0 ? '+' : ''}${pct(r.perplexity_change)})`],
  ];
  const w0 = Math.max(...rows.map((x) => x[0].length));
  const w1 = Math.max('before'.length, ...rows.map((x) => x[1].length));
  const what = r.method === 'full' ? 'fully fine-tuned model' : r.method === 'dora' ? 'DoRA adapter' : 'LoRA adapter';
  const lines = [
    `PEFT Studio demo: ${r.method === 'full' ? 'full fine-tuning' : r.method === 'dora' ? 'LoRA with DoRA' : 'LoRA'} of the bundled model on ${r.training.train_questions} questions + ${r.training.replay_documents} replay documents, ${r.training.steps} steps, ${countOf(r.threads, 'thread')}`,
    '',
    `${''.padEnd(w0)}  ${'before'.padEnd(w1)}  after`,
    ...rows.map(([a, b, c]) => `${a.padEnd(w0)}  ${b.padEnd(w1)}  ${c}`),
    '',
    ...sampleLines('answers before', r.before.samples),
    ...sampleLines('answers after', r.after.samples),
    '',
    `training ${r.training.seconds.toFixed(1)} s; whole demo ${r.wall_seconds.toFixed(1)} s; peak memory of the process ${mib(r.peak_rss_bytes)}`,
    `training memory (the check's estimate): ${mib(r.training_memory.totalBytes)} = weights ${mib(r.training_memory.weightBytes)} + gradients ${mib(r.training_memory.gradientBytes)} ` +
      `+ optimizer state ${mib(r.training_memory.optimizerBytes)} + activations ${mib(r.training_memory.activationBytes)} ` +
      `+ CPU threads' scratch ${mib(r.training_memory.deviceBytes)} + the training process (Node, tokenizer) ${mib(r.training_memory.processBytes)}; ` +
      `${r.training_memory.trainableParams.toLocaleString('en')} of ${r.training_memory.totalParams.toLocaleString('en')} parameters trained`,
    `${what}: ${r.result_dir} (${mib(r.result_bytes)}; the base model is ${mib(r.base_model_bytes)})`,
    `figures: ${r.out}/demo.json`,
  ];
  return lines.join('\n') + '\n';
}
