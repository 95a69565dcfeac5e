// What a resume computes with, checked in the run.json it comes from: a field
// lost by a hand edit or damage would otherwise become "undefined" and NaN deep
// in the run ("--seq-len undefined = NaN tokens per step") instead of a clear
// refusal. Only the resume checks: listing and comparing runs read what is there.
/** The config fields every run.json has held since the first version (later ones get run-record.ts LATER_DEFAULTS). */
const ALWAYS_WRITTEN: Record<string, 'number' | 'string' | 'boolean'> = {
  model: 'string', data: 'string', method: 'string', optimizer: 'string', scheduler: 'string',
  lr: 'number', adamEpsilon: 'number', weightDecay: 'number', warmupSteps: 'number', epochs: 'number', batchSize: 'number',
  gradAccum: 'number', seqLen: 'number', clip: 'number', seed: 'number', threads: 'number', evalSplit: 'number',
  evalEvery: 'number', saveEvery: 'number', gradientCheckpointing: 'boolean',
};

export function missingConfigField(config: Record<string, unknown>): { field: string; kind: string; found: string } | null {
  const found = (field: string) => (field in config ? JSON.stringify(config[field]) ?? 'undefined' : 'missing');
  for (const [field, kind] of Object.entries(ALWAYS_WRITTEN)) {
    if (typeof config[field] !== kind || (kind === 'number' && !Number.isFinite(config[field]))) return { field, kind: `a ${kind}`, found: found(field) };
  }
  // steps: null means "by epochs"
  if (config.steps !== null && !Number.isFinite(config.steps)) return { field: 'steps', kind: 'a number, or null to train by epochs', found: found('steps') };
  // a later field (absent: warmup in steps); a resumed run says it again (its log, the Runs page), so a damaged one is refused by name
  const ratio = config.warmupRatio;
  if (ratio !== undefined && ratio !== null && !(typeof ratio === 'number' && ratio >= 0 && ratio < 1)) {
    return { field: 'warmupRatio', kind: 'a number from 0 up to but not including 1, or null for warmup in steps', found: found('warmupRatio') };
  }
  return null;
}
