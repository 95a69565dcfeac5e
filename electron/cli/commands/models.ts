// `peft-studio models`: the models already in the Hugging Face hub cache, so
// a user sees what `--model org/name` can name without downloading anything:
// each snapshot with its revision, size, and whether it opens here (or why not).
import type { CommandSpec } from '../args.js';
import type { Command } from '../command.js';
import { listCachedModels, type CachedModel } from '../../models/hf-cache-list.js';
import { bytesInWords } from '../../service/recommend.js';
import { HUB_CACHE_RULE } from '../../models/hf-cache.js';

export const modelsSpec: CommandSpec = {
  name: 'models',
  summary: 'List the models in the Hugging Face cache (what --model org/name can use), with size and whether each opens.',
  positionals: [],
  flags: [{ name: 'json', kind: 'boolean', help: 'print the list as JSON ({cacheDir, exists, models: [{repoId, snapshot, revision, refs, bytes, usable, reason, ...}]})' }],
  notes: [`The cache is ${HUB_CACHE_RULE}. Nothing is downloaded.`],
};

function table(models: CachedModel[]): string {
  const rows = models.map((m) => [
    m.repoId,
    m.revision ? m.revision.slice(0, 12) + (m.refs.length ? ` (${m.refs.join(', ')})` : '') : '-',
    bytesInWords(m.bytes),
    m.usable ? 'yes' : `no: ${m.reason}`,
  ]);
  const header = ['MODEL', 'REVISION', 'SIZE', 'OPENS'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]))).join('  ');
  return [line(header), ...rows.map(line)].join('\n') + '\n';
}

export const modelsCommand: Command = {
  spec: modelsSpec,
  async run(args, io) {
    const list = await listCachedModels();
    if (args.boolean('json')) {
      io.stdout(JSON.stringify(list, null, 2) + '\n');
      return;
    }
    if (!list.exists || list.models.length === 0) {
      io.stdout(`no models in the Hugging Face cache (${list.cacheDir}${list.exists ? '' : ' does not exist'})\n`);
      return;
    }
    io.stdout(table(list.models));
    io.stderr(`cache: ${list.cacheDir}; use one as --model org/name (a revision other than refs/main: pass its snapshot folder)\n`);
  },
};
