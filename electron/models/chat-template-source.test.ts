// Where the model's chat template is read, with transformers' precedence
// (tokenization_utils_base.py _from_pretrained / get_chat_template):
// chat_template.jinja (and additional_chat_templates/) replace tokenizer_config.json's
// chat_template; a named set's "default" is used; chat_template.json is a processor's
// file, which a tokenizer never reads. Every template below is a distinct literal, so a
// test passes only when the reader picked the one transformers picks.
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CHAT_TEMPLATE_DIR, CHAT_TEMPLATE_FILE, ChatTemplateError, readChatTemplates } from './chat-template-source.js';
import { hasChatTemplate } from './chat-template-file.js';

const INLINE = "{% for m in messages %}inline:{{ m['content'] }}{% endfor %}";
const JINJA = "{% for m in messages %}jinja:{{ m['content'] }}{% endfor %}\n";
const TOOL_USE = "{% for m in messages %}tool:{{ m['content'] }}{% endfor %}";

/** A model folder with this tokenizer_config.json (none when null) and these extra files (relative path -> text). */
function folder(config: Record<string, unknown> | null, files: Record<string, string> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'ps-template-'));
  if (config) writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify(config));
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  return dir;
}

const sha256 = (text: string) => createHash('sha256').update(Buffer.from(text, 'utf8')).digest('hex');

describe('readChatTemplates', () => {
  it('a string in tokenizer_config.json', async () => {
    const config = { chat_template: INLINE };
    const dir = folder(config);
    expect(await readChatTemplates(dir, config)).toEqual({ default: INLINE, named: [], source: `${join(dir, 'tokenizer_config.json')} (chat_template)`, fileSha256: null });
  });

  it('a list of named templates: "default" is the chat template, the others are kept in order', async () => {
    const config = { chat_template: [{ name: 'tool_use', template: TOOL_USE }, { name: 'default', template: INLINE }, { name: 'rag', template: JINJA }] };
    const t = await readChatTemplates(folder(config), config);
    expect(t.default).toBe(INLINE);
    expect(t.named).toEqual([{ name: 'tool_use', template: TOOL_USE }, { name: 'rag', template: JINJA }]);
  });

  it('an object of name -> template (what transformers holds after reading the list)', async () => {
    const config = { chat_template: { default: INLINE, tool_use: TOOL_USE } };
    const t = await readChatTemplates(folder(config), config);
    expect([t.default, t.named]).toEqual([INLINE, [{ name: 'tool_use', template: TOOL_USE }]]);
  });

  it('only chat_template.jinja: read, and its bytes hashed', async () => {
    const dir = folder({ bos_token: '<s>' }, { [CHAT_TEMPLATE_FILE]: JINJA });
    const t = await readChatTemplates(dir, { bos_token: '<s>' });
    expect(t).toEqual({ default: JINJA, named: [], source: join(dir, CHAT_TEMPLATE_FILE), fileSha256: sha256(JINJA) });
    // no tokenizer_config.json at all
    expect((await readChatTemplates(folder(null, { [CHAT_TEMPLATE_FILE]: JINJA }), null)).default).toBe(JINJA);
  });

  it('both: chat_template.jinja wins over tokenizer_config.json, string or list', async () => {
    for (const inline of [INLINE, [{ name: 'default', template: INLINE }]]) {
      const config = { chat_template: inline };
      const t = await readChatTemplates(folder(config, { [CHAT_TEMPLATE_FILE]: JINJA }), config);
      expect(t.default).toBe(JINJA);
      expect(t.named).toEqual([]);
    }
  });

  it('additional_chat_templates/<name>.jinja are the named ones beside chat_template.jinja (the inline list is not used)', async () => {
    const config = { chat_template: [{ name: 'default', template: INLINE }, { name: 'old', template: INLINE }] };
    const dir = folder(config, { [CHAT_TEMPLATE_FILE]: JINJA, [`${CHAT_TEMPLATE_DIR}/tool_use.jinja`]: TOOL_USE, [`${CHAT_TEMPLATE_DIR}/notes.txt`]: 'not a template' });
    const t = await readChatTemplates(dir, config);
    expect(t.default).toBe(JINJA);
    expect(t.named).toEqual([{ name: 'tool_use', template: TOOL_USE }]);
  });

  it('chat_template.json (a processor\'s file) is not the tokenizer\'s template', async () => {
    const dir = folder({ bos_token: '<s>' }, { 'chat_template.json': JSON.stringify({ chat_template: INLINE }) });
    expect((await readChatTemplates(dir, { bos_token: '<s>' })).default).toBeNull();
    expect(await hasChatTemplate(dir)).toBe(false);
  });

  it('no template anywhere', async () => {
    expect(await readChatTemplates(folder({ bos_token: '<s>' }), { bos_token: '<s>' })).toEqual({ default: null, named: [], source: null, fileSha256: null });
    expect(await readChatTemplates(folder({ chat_template: null }), { chat_template: null })).toEqual({ default: null, named: [], source: null, fileSha256: null });
  });

  it('refuses malformed templates, naming the file, the field and what to do', async () => {
    const refusal = async (config: Record<string, unknown> | null, files: Record<string, string> = {}) => {
      const dir = folder(config, files);
      const err = await readChatTemplates(dir, config).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ChatTemplateError);
      return { dir, message: (err as Error).message };
    };
    let r = await refusal({ chat_template: [{ name: 'tool_use', template: TOOL_USE }, { name: 'rag', template: INLINE }] });
    expect(r.message).toBe(`${join(r.dir, 'tokenizer_config.json')}: "chat_template" has no template named "default" (it has "tool_use", "rag"), so transformers would not know which one to use for a chat. Name the model's chat template "default".`);
    r = await refusal({ chat_template: [{ name: 'default', template: INLINE }, { name: 'tool_use' }] });
    expect(r.message).toMatch(/tokenizer_config\.json: "chat_template"\[1\] must be an object with a string "name" and a string "template" \(found \{"name":"tool_use"\}\)/);
    r = await refusal({ chat_template: 42 });
    expect(r.message).toMatch(/"chat_template" must be a string, a list of .* \(found 42\)/);
    r = await refusal({ chat_template: { default: INLINE, tool_use: 7 } });
    expect(r.message).toMatch(/"chat_template"\."tool_use" must be a template string \(found 7\)/);
    r = await refusal({ chat_template: [{ name: 'default', template: INLINE }, { name: 'default', template: TOOL_USE }] });
    expect(r.message).toMatch(/names the template "default" twice/);
    r = await refusal({ chat_template: '  \n' });
    expect(r.message).toMatch(/"chat_template" is empty/);
    r = await refusal(null, { [CHAT_TEMPLATE_FILE]: '\n' });
    expect(r.message).toBe(`${join(r.dir, CHAT_TEMPLATE_FILE)} is empty. Write the model's chat template there, or remove it.`);
    r = await refusal({ chat_template: INLINE }, { [`${CHAT_TEMPLATE_DIR}/tool_use.jinja`]: TOOL_USE });
    expect(r.message).toMatch(new RegExp(`${CHAT_TEMPLATE_DIR}: holds chat templates \\("tool_use"\\) but the folder has no chat_template\\.jinja`));
    // a chat_template.jinja that is not a file
    r = await refusal(null, { [`${CHAT_TEMPLATE_FILE}/x`]: JINJA });
    expect(r.message).toMatch(/chat_template\.jinja: cannot be read \(EISDIR\)/);
  });

  it('hasChatTemplate reads every form the tokenizer reads', async () => {
    expect(await hasChatTemplate(folder({ chat_template: INLINE }))).toBe(true);
    expect(await hasChatTemplate(folder({ chat_template: [{ name: 'default', template: INLINE }] }))).toBe(true);
    expect(await hasChatTemplate(folder({ bos_token: '<s>' }, { [CHAT_TEMPLATE_FILE]: JINJA }))).toBe(true);
    expect(await hasChatTemplate(folder(null, { [CHAT_TEMPLATE_FILE]: JINJA }))).toBe(true);
    expect(await hasChatTemplate(folder({ bos_token: '<s>' }))).toBe(false);
    await expect(hasChatTemplate(folder({ chat_template: [{ name: 'rag', template: INLINE }] }))).rejects.toThrow(/no template named "default" \(it has "rag"\)/);
  });
});
