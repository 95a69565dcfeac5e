// The run's own messages in the app's words where they tell the user to
// type a flag. The worker and the device / precision checks word their
// advice for the command line ("resume with --device cpu --precision fp32");
// the CLI prints that as it is (its tests hold it), while the app's user
// cannot type a flag: there the same advice is a choice on a page (the
// Resume options, or the Hyperparameters page for a run not yet started).
//
// The device and precision advice is reworded, and the memory check's
// gradient checkpointing and "start anyway" (the Resume options offer all
// four); each rule is tested against the text its producer really makes
// (app-wording.test.ts), so a reworded source shows.
//
// The run's settings are named the same way: a refusal the form shows
// (settingRefusalInAppWords) names each setting by its label on the page
// ("LoRA alpha", '"Pack short rows" (Data page)'), never by its key or flag,
// and says a limit as the form's help does ("more than 0").

import type { FieldError } from '../api/contract.js';
import type { FieldNamer } from '../training/settings.js';
import { formLabel, FORM_LABELS, HYPER_LABELS } from './form-labels.js';

/** Where the message is read: after Resume (its options can change device and precision) or after Start (the form can). */
export type AppContext = 'resume' | 'start';

const CHOOSE_CPU: Record<AppContext, string> = {
  resume: 'choose cpu as the device in the Resume options',
  start: 'choose cpu as the Device on the Hyperparameters page (advanced settings)',
};
const CHOOSE_PRECISION: Record<AppContext, string> = {
  resume: 'choose fp32 or auto as the precision in the Resume options',
  start: 'choose fp32 or auto as the Precision on the Hyperparameters page (advanced settings)',
};
const CHOOSE_DEVICE: Record<AppContext, string> = {
  resume: 'as the device in the Resume options',
  start: 'as the Device on the Hyperparameters page',
};

const CHECKPOINTING: Record<AppContext, string> = {
  resume: 'tick it in the Resume options',
  start: 'Gradient checkpointing on the Hyperparameters page',
};
const IGNORE_MEMORY: Record<AppContext, string> = {
  resume: 'tick "Resume even if the memory check says it does not fit" in the Resume options',
  start: 'start it anyway from the Hyperparameters page',
};
const IGNORE_DISK: Record<AppContext, string> = {
  resume: 'tick "Resume even if the disk check says it does not fit" in the Resume options',
  start: 'start it anyway from the Hyperparameters page',
};

const RESUME_IT: Record<AppContext, string> = {
  resume: 'resume it again (Resume)',
  start: 'resume it (Resume)',
};

const capitalized = (text: string) => text[0].toUpperCase() + text.slice(1);

/** The settings whose flag stands for a field of the form (device and precision, and checkpointing, have their own rules above). */
const FLAG_FIELDS = [...Object.keys(HYPER_LABELS), 'pack', 'method'].filter((k) => !['device', 'precision', 'gradientCheckpointing'].includes(k));
const kebab = (key: string) => key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
/** "--batch-size" -> "Batch size", only where it stands as a flag (longest first: --early-stop-delta before --early-stop) */
const SETTING_FLAG = new RegExp(`(?<=^|[\\s('"\`])--(${FLAG_FIELDS.map(kebab).sort((a, b) => b.length - a.length).join('|')})(?=[\\s:=,;)]|$)`, 'g');
const FIELD_OF_FLAG = new Map(FLAG_FIELDS.map((k) => [kebab(k), k]));

/** Where packing is changed, and what can pack, for prompt tuning's refusal (settings.ts and training/run.ts word it for the CLI). */
const PACK_WAY_OUT = '. Untick "Pack short rows" on the Data page, or choose prefix tuning or LoRA on the Method page (they can pack)';

/** A pattern and its app wording (`groups[1]` is the pattern's first group). */
type Rule = [RegExp, (context: AppContext, groups: string[]) => string];

/** In order: the whole phrases first, then what is left of a flag as the field's name. */
const RULES: Rule[] = [
  // a resumed bf16 run refused on its recorded device (runs/execute.ts): the move to the CPU is a Resume option either way
  [/resume with --device cpu --precision fp32/g, () => `${CHOOSE_CPU.resume} (it computes in fp32)`],
  // out of memory on a GPU (runs/crash-report.ts): "continue on the CPU with peft-studio train --resume DIR --device cpu [--precision fp32]"
  // (the folder may hold spaces: up to the first " --device cpu")
  [/ with peft-studio train --resume .+? --device cpu(?: --precision fp32)?/g, () => ': Resume with cpu chosen as the device in the Resume options'],
  // a GPU that is missing or too old (engine/device.ts): "use --device cpu", "Use --device cpu"
  [/\buse --device cpu\b/g, (c) => CHOOSE_CPU[c]],
  [/\bUse --device cpu\b/g, (c) => capitalized(CHOOSE_CPU[c])],
  [/\bUse one of those, or --device auto\b/g, (c) => `Choose one of those ${CHOOSE_DEVICE[c]}, or auto`],
  [/, or --device auto\b/g, () => ', or auto'],
  // a GPU that cannot report itself, with others that can: "meanwhile use --device cuda:1 or cuda:2 (or auto), or --device cpu"
  [/\buse --device (cuda:\d+(?:(?:, | or )cuda:\d+)*) \(or auto\), or --device cpu\b/g, (c, g) => `choose cpu ${CHOOSE_DEVICE[c]} (or another GPU: ${g[1]}, or auto)`],
  // the pre-flight memory check on a GPU (training/memory-check.ts): one item of its "Try …;" list
  [/--device cpu(?: --precision fp32)?(?=;)/g, (c) => `the CPU (${CHOOSE_CPU[c]})`],
  // the memory check's other ways out that the Resume options (or the form) offer
  [/(?<=Try (?:[^;]*, )?)--gradient-checkpointing(?=[,;])/g, (c) => `gradient checkpointing (${CHECKPOINTING[c]})`],
  // the settings that would fit (training/fit-alternatives.ts), listed with their estimate: "This fits: --gradient-checkpointing (5.20 GiB)"
  [/(?<=fits?: (?:[^;]*; )?)--gradient-checkpointing \(/g, (c) => `gradient checkpointing (${CHECKPOINTING[c]}; `],
  // and when nothing does: "with --gradient-checkpointing it still needs about …"
  [/(?<=with )--gradient-checkpointing(?= it still needs)/g, (c) => `gradient checkpointing (${CHECKPOINTING[c]})`],
  // "Nothing tried fits on this device (…, --gradient-checkpointing, …): even --gradient-checkpointing --method qlora needs …"
  [/(?<=Nothing tried fits on this device \([^)]*?)--gradient-checkpointing(?=[,)])/g, () => 'gradient checkpointing'],
  [/(?<=even )--gradient-checkpointing(?= needs)/g, () => 'gradient checkpointing'],
  [/(?<=even )--gradient-checkpointing (?=\S)/g, () => 'gradient checkpointing with '],
  [/; or pass --ignore-memory-check to start anyway\./g, (c) => `; or ${IGNORE_MEMORY[c]}.`],
  // the disk check (runs/disk-need.ts): a resumed run keeps its settings in the app, so its one-checkpoint way out goes
  [/; --ignore-disk-check starts it anyway\./g, (c) => `; or ${IGNORE_DISK[c]}.`],
  [/(?:,| or) keep one checkpoint \(--keep-checkpoints 1: about [^)]*\)/g, (c, g) => (c === 'resume' ? '' : g[0])],
  // a write that failed mid-run (runs/execute.ts runWriteMessage): the way on is the app's Resume, not the command line
  // (the folder may hold spaces: up to the ": it …" that follows it, or " continues" / " starts over")
  [/, then run peft-studio train --resume .+?(?=: it (?:continues|writes) )/g, (c) => `, then ${RESUME_IT[c]}`],
  [/(?<=is kept; )peft-studio train --resume .+?(?= continues from it once)/g, () => 'Resume'],
  [/(?<=, so )peft-studio train --resume .+?(?= starts over from step 0 once)/g, () => 'Resume'],
  // bf16 where it cannot be had (engine/precision.ts, named --precision or precision)
  [/\bUse (?:--)?precision fp32 or auto\b/g, (c) => capitalized(CHOOSE_PRECISION[c])],
  // the run's evaluation file named by its flag (training/eval-file.ts): the Data page calls it the evaluation file
  [/ \(--eval-data\)/g, () => ''],
  // anything left: the flag as the field's name ("--device cuda:1: there is no GPU 1" -> "device cuda:1: …"),
  // only where it stands as a flag (not inside a path such as /runs/exp--device-sweep)
  [/(?<=^|[\s('"`])--device(?=[\s:=]|$)/g, () => 'device'],
  [/(?<=^|[\s('"`])--precision(?=[\s:=]|$)/g, () => 'precision'],
  // before a run starts, the form can change every setting: prompt tuning's refusal of packing (training/settings.ts,
  // training/run.ts) says where packing is switched off, and a setting named by its flag (training/config.ts: "lower
  // --batch-size (raise --grad-accum …) or --seq-len") is named by its label. A resumed run keeps its settings, so
  // there the run's own words stay.
];

/** Settings named by their flags, in the form's words (not for the run's log, which is the command line's). */
const SETTING_RULES: Rule[] = [
  [/(?:; drop --pack)? \(prefix tuning and LoRA can pack\)/g, (c, g) => (c === 'start' ? PACK_WAY_OUT : g[0])],
  [SETTING_FLAG, (c, g) => (c === 'start' ? formLabel(FIELD_OF_FLAG.get(g[1])!) : g[0])],
];

/** `message` with its device and precision advice, and the settings it names by their flags, in the app's words. */
export function inAppWords(message: string, context: AppContext, options: { settings?: boolean } = {}): string {
  let text = message;
  const rules = options.settings === false ? RULES : [...RULES, ...SETTING_RULES];
  for (const [pattern, replacement] of rules) text = text.replace(pattern, (...groups: string[]) => replacement(context, groups));
  return text;
}

/**
 * A run event as the app shows it: the message of a failure or a log line in the app's words; other events as
 * they are. A log line keeps the settings' flags: the log is the run's, the same lines the command line prints
 * (the form shows its warnings in its own words beside the fields).
 */
export function inAppEvent<E extends { type: string; message?: string }>(event: E, context: AppContext): E {
  if ((event.type !== 'failed' && event.type !== 'log') || typeof event.message !== 'string') return event;
  const message = inAppWords(event.message, context, { settings: event.type !== 'log' });
  return message === event.message ? event : { ...event, message };
}

/** A run folder's record as the Runs page shows it: its ending's message in the app's words (the way on from it is Resume). */
export function inAppEntry<E extends { message: string | null }>(entry: E): E {
  if (entry.message === null) return entry;
  const message = inAppWords(entry.message, 'resume');
  return message === entry.message ? entry : { ...entry, message };
}

/**
 * An export's refusal in the app's words: the exporter names its folder by
 * the CLI's flag ("--out X: lies inside the run folder …; choose a separate
 * --out folder"); the Export page calls it the export folder.
 */
export function exportInAppWords(message: string): string {
  return message
    .replace(/^--out (?=\S)/, 'The export folder ')
    .replace(/(?<=^|[\s('"`])--out folder\b/g, 'export folder')
    .replace(/(?<=^|[\s('"`])--out(?=[\s:]|$)/g, 'the export folder')
    // "the GGUF type f32 (--gguf-type f32)": the app's type menu needs no flag
    .replace(/ \(--gguf-type [a-z0-9_]+\)/g, '');
}

/** How the resolver (training/settings.ts) names a setting in the app: by its label on the page. */
export const appSettingName: FieldNamer = formLabel;

type Comparison = { op: '>=' | '>' | '<=' | '<'; at: string };

/** A limit as the form's help says it: "more than 0", "from 0 up to but not including 1", "a whole number of at least 1". */
function limitInWords(kind: string, comparisons: Comparison[]): string {
  const low = comparisons.find((c) => c.op === '>=' || c.op === '>');
  const high = comparisons.find((c) => c.op === '<=' || c.op === '<');
  const words = (c: Comparison) => `${{ '>=': 'at least', '>': 'more than', '<=': 'at most', '<': 'less than' }[c.op]} ${c.at}`;
  const range = low?.op === '>=' && high ? `from ${low.at} ${high.op === '<=' ? 'to' : 'up to but not including'} ${high.at}` : null;
  const bounds = range ?? [low, high].filter((c): c is Comparison => c !== undefined).map(words).join(' and ');
  if (kind === 'an integer') return bounds === '' ? 'a whole number' : `a whole number ${range ? '' : 'of '}${bounds}`;
  return bounds === '' ? 'a number' : bounds;
}

/** describeLimit's phrase (training/settings.ts): "an integer >= 1", "a number >= 0 and < 1" */
const LIMIT_PHRASE = /(?<=\b(?:be|expects) |\()(an integer|a number)((?:(?: and)? (?:>=|>|<=|<) -?[\d.]+(?:e[+-]?\d+)?)+)?/g;

/** The command line's placeholder after a setting's name ("give --eval-data FILE", "needs --eval-every N above 0"): the form has a box for it. */
const escaped = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const PLACEHOLDER = new RegExp(`(?<=(?:${FORM_LABELS.map(escaped).join('|')})) (?:N|FILE)(?=[\\s,;.)]|$)`, 'g');

/**
 * A refusal of the run form's settings (checkRun's FieldError) as the form
 * shows it: a message that begins with the field's key (the request's
 * reader names it so: "hyper.alpha must be a number > 0, got 0") begins
 * with its label instead ("LoRA alpha must be more than 0, got 0"); the
 * limit, the flags and the device advice are in the app's words too.
 */
export function settingRefusalInAppWords(error: FieldError): FieldError {
  let message = inAppWords(error.message, 'start');
  if (message.startsWith(`${error.field} `) || message.startsWith(`${error.field}:`)) {
    message = formLabel(error.field.replace(/^hyper\./, '')) + message.slice(error.field.length);
  }
  message = message.replace(LIMIT_PHRASE, (_all, kind: string, limits: string | undefined) => {
    const comparisons = [...(limits ?? '').matchAll(/(>=|>|<=|<) (\S+)/g)].map((m) => ({ op: m[1] as Comparison['op'], at: m[2] }));
    return limitInWords(kind, comparisons);
  });
  message = message.replace(PLACEHOLDER, '');
  // a sentence that begins with a setting's name ("the method …" from the resolver) begins with a capital
  const named = FORM_LABELS.some((label) => message.startsWith(`${label} `));
  return { ...error, message: named ? capitalized(message) : message };
}
