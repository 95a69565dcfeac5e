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

const capitalized = (text: string) => text[0].toUpperCase() + text.slice(1);

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
  [/; or pass --ignore-memory-check to start anyway\./g, (c) => `; or ${IGNORE_MEMORY[c]}.`],
  // bf16 where it cannot be had (engine/precision.ts, named --precision or precision)
  [/\bUse (?:--)?precision fp32 or auto\b/g, (c) => capitalized(CHOOSE_PRECISION[c])],
  // the run's evaluation file named by its flag (training/eval-file.ts): the Data page calls it the evaluation file
  [/ \(--eval-data\)/g, () => ''],
  // anything left: the flag as the field's name ("--device cuda:1: there is no GPU 1" -> "device cuda:1: …"),
  // only where it stands as a flag (not inside a path such as /runs/exp--device-sweep)
  [/(?<=^|[\s('"`])--device(?=[\s:=]|$)/g, () => 'device'],
  [/(?<=^|[\s('"`])--precision(?=[\s:=]|$)/g, () => 'precision'],
];

/** `message` with its device and precision advice in the app's words. */
export function inAppWords(message: string, context: AppContext): string {
  let text = message;
  for (const [pattern, replacement] of RULES) text = text.replace(pattern, (...groups: string[]) => replacement(context, groups));
  return text;
}

/** A run event as the app shows it: the message of a failure or a log line in the app's words; other events as they are. */
export function inAppEvent<E extends { type: string; message?: string }>(event: E, context: AppContext): E {
  if ((event.type !== 'failed' && event.type !== 'log') || typeof event.message !== 'string') return event;
  const message = inAppWords(event.message, context);
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
