// The field a failed request names ("model", "hyper.lr"), in the words the
// pages use for it, so the error banner never shows an internal key.
const WORDS: Record<string, string> = {
  model: 'the model folder',
  data: 'the dataset file',
  evalData: 'the evaluation file',
  out: 'the output folder',
  path: 'the path',
  method: 'the method',
  dataFormat: 'the data format',
  completionOnly: 'train on answers only',
  pack: 'pack short rows',
  ignoreMemoryCheck: 'start anyway',
  lr: 'learning rate',
  seqLen: 'sequence length',
  maxNewTokens: 'maximum new tokens',
  evalSplit: 'evaluation split',
  evalEvery: 'evaluate every',
  warmupSteps: 'warmup steps',
  warmupRatio: 'warmup fraction of the run',
  gradAccum: 'gradient accumulation',
  batchSize: 'batch size',
  quantBlocksize: 'quantization block size',
};

/** "hyper.lr" -> "learning rate"; an unknown camelCase key -> its words ("maxGradNorm" -> "max grad norm"). */
export function fieldWords(field: string): string {
  const key = field.startsWith('hyper.') ? field.slice('hyper.'.length) : field;
  return WORDS[key] ?? key.replace(/([a-z0-9])([A-Z])/g, '$1 $2').toLowerCase();
}
