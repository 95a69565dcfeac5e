// The model's chat template, read from where transformers' tokenizer reads it
// (PreTrainedTokenizerBase._from_pretrained and get_chat_template, transformers >= 4.47):
//   1. chat_template.jinja beside tokenizer_config.json (the "default" template) and
//      additional_chat_templates/<name>.jinja (named ones). When any of these files
//      exists they replace tokenizer_config.json's chat_template entirely.
//   2. Otherwise tokenizer_config.json's "chat_template": a string, or a list of
//      {"name", "template"} (or an object name -> template) whose "default" entry is
//      the one apply_chat_template uses.
// chat_template.json is a processor's file (transformers' LEGACY_PROCESSOR_CHAT_TEMPLATE_FILE,
// read by ProcessorMixin only): a tokenizer never reads it, so training does not, and
// neither does the GGUF export, which must carry the template training used.
// Training (models/tokenizer.ts), the export's Modelfile (chat-template-file.ts) and the
// GGUF export (export/gguf-vocab.ts) all read the template here, so they cannot disagree.
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';

export const CHAT_TEMPLATE_FILE = 'chat_template.jinja';
export const CHAT_TEMPLATE_DIR = 'additional_chat_templates';
const CONFIG_FILE = 'tokenizer_config.json';

/** A chat template that cannot be read or is malformed; the message names the file and what to do. */
export class ChatTemplateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ChatTemplateError';
  }
}

export interface ModelChatTemplates {
  /** the template apply_chat_template uses (transformers' "default"); null: the model has none */
  default: string | null;
  /** the other named templates (e.g. "tool_use"), in the order the model gives them */
  named: { name: string; template: string }[];
  /** where the default was read, for messages: a file path, with " (chat_template)" for the inline one */
  source: string | null;
  /** sha256 (hex) of chat_template.jinja's bytes when the default came from it (the inline one is covered by tokenizer_config.json's) */
  fileSha256: string | null;
}

/**
 * The chat templates of a model folder. `tokenizerConfig` is tokenizer_config.json as the caller parsed it
 * (null: the folder has none); the template files are read here.
 */
export async function readChatTemplates(dir: string, tokenizerConfig: Record<string, unknown> | null): Promise<ModelChatTemplates> {
  const files = await templateFiles(dir);
  if (files) return files;
  const inline = tokenizerConfig?.chat_template;
  const where = `${join(dir, CONFIG_FILE)}: "chat_template"`;
  if (inline === undefined || inline === null) return { default: null, named: [], source: null, fileSha256: null };
  if (typeof inline === 'string') {
    return { default: nonEmpty(inline, where), named: [], source: `${join(dir, CONFIG_FILE)} (chat_template)`, fileSha256: null };
  }
  const entries = namedEntries(inline, where);
  return { ...withDefault(entries, where), source: `${join(dir, CONFIG_FILE)} (chat_template, "default")`, fileSha256: null };
}

/** chat_template.jinja and additional_chat_templates/*.jinja, or null when there are none. */
async function templateFiles(dir: string): Promise<ModelChatTemplates | null> {
  const main = await readTemplateFile(join(dir, CHAT_TEMPLATE_FILE));
  const extraDir = join(dir, CHAT_TEMPLATE_DIR);
  const entries: { name: string; template: string }[] = [];
  if (main) entries.push({ name: 'default', template: main.text });
  for (const file of await jinjaFilesIn(extraDir)) {
    const read = await readTemplateFile(join(extraDir, file));
    if (read) entries.push({ name: file.slice(0, -'.jinja'.length), template: read.text }); // null: removed since listed
  }
  if (entries.length === 0) return null;
  if (!main) {
    // transformers then ignores tokenizer_config.json's template too, and has no default to chat with
    const names = entries.map((e) => `"${e.name}"`).join(', ');
    throw new ChatTemplateError(`${extraDir}: holds chat templates (${names}) but the folder has no ${CHAT_TEMPLATE_FILE}, so transformers uses none of tokenizer_config.json's and has no default template for a chat. Add ${CHAT_TEMPLATE_FILE} (the default template) beside ${CONFIG_FILE}.`);
  }
  return { ...withDefault(entries, extraDir), source: join(dir, CHAT_TEMPLATE_FILE), fileSha256: main.sha256 };
}

/** The .jinja files of additional_chat_templates/ in name order (none when the folder is absent). */
async function jinjaFilesIn(dir: string): Promise<string[]> {
  try {
    const listed = await readdir(dir, { withFileTypes: true });
    return listed.filter((e) => e.isFile() && e.name.endsWith('.jinja')).map((e) => e.name).sort();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return [];
    throw new ChatTemplateError(`${dir}: cannot be read (${code ?? String(err)}). Check the model folder's permissions.`);
  }
}

/** A template file's text and the sha256 of its bytes; null when the file does not exist. */
async function readTemplateFile(path: string): Promise<{ text: string; sha256: string } | null> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return null;
    throw new ChatTemplateError(`${path}: cannot be read (${code ?? String(err)}). Fix the file or remove it; transformers reads the model's chat template from it.`);
  }
  return { text: nonEmpty(bytes.toString('utf8'), path), sha256: createHash('sha256').update(bytes).digest('hex') };
}

/** An empty template renders every conversation as nothing: refused rather than trained on. */
function nonEmpty(template: string, where: string): string {
  if (template.trim() === '') throw new ChatTemplateError(`${where} is empty. Write the model's chat template there, or remove it.`);
  return template;
}

/** The list form [{name, template}, ...] or the object form {name: template}, checked entry by entry. */
function namedEntries(value: unknown, where: string): { name: string; template: string }[] {
  const shape = 'a string, a list of {"name": ..., "template": ...} objects, or an object of name -> template';
  if (Array.isArray(value)) {
    return value.map((entry, i) => {
      const e = entry as { name?: unknown; template?: unknown } | null;
      if (typeof e !== 'object' || e === null || typeof e.name !== 'string' || typeof e.template !== 'string') {
        throw new ChatTemplateError(`${where}[${i}] must be an object with a string "name" and a string "template" (found ${preview(entry)}). Download ${CONFIG_FILE} again.`);
      }
      return { name: e.name, template: nonEmpty(e.template, `${where}[${i}] ("${e.name}")`) };
    });
  }
  if (typeof value === 'object' && value !== null) {
    return Object.entries(value).map(([name, template]) => {
      if (typeof template !== 'string') throw new ChatTemplateError(`${where}."${name}" must be a template string (found ${preview(template)}). Download ${CONFIG_FILE} again.`);
      return { name, template: nonEmpty(template, `${where}."${name}"`) };
    });
  }
  throw new ChatTemplateError(`${where} must be ${shape} (found ${preview(value)}). Download ${CONFIG_FILE} again.`);
}

/** The "default" entry and the others, as transformers' get_chat_template picks them. */
function withDefault(entries: { name: string; template: string }[], where: string): Pick<ModelChatTemplates, 'default' | 'named'> {
  const seen = new Set<string>();
  for (const e of entries) {
    if (seen.has(e.name)) throw new ChatTemplateError(`${where} names the template "${e.name}" twice. Keep one of them.`);
    seen.add(e.name);
  }
  const chosen = entries.find((e) => e.name === 'default');
  if (!chosen) {
    const names = entries.map((e) => `"${e.name}"`).join(', ');
    throw new ChatTemplateError(`${where} has no template named "default" (it has ${names}), so transformers would not know which one to use for a chat. Name the model's chat template "default".`);
  }
  return { default: chosen.template, named: entries.filter((e) => e !== chosen) };
}

function preview(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}
