// `peft-studio token-cache [--clear] [--json]`: the token cache
// (electron/data/token-cache.ts), where each dataset file's tokens are kept so
// it is tokenized once: where it is, how much it holds against its bound, and
// --clear to empty it (nothing is lost: a file is tokenized again when next read).
import type { CommandSpec } from '../args.js';
import type { Command } from '../command.js';
import { cacheContents, clearCache } from '../../data/token-cache-bound.js';
import { CACHE_VERSION, DEFAULT_TOKEN_CACHE_MAX_BYTES, TOKEN_CACHE_MAX_BYTES_ENV, tokenCacheDir, tokenCacheMaxBytes } from '../../data/token-cache.js';
import { bytesInWords } from '../../text/bytes.js';
import { countOf } from '../../text/plural.js';

export const tokenCacheSpec: CommandSpec = {
  name: 'token-cache',
  summary: 'Show the token cache (datasets tokenized once, kept in the studio home): its folder, entries and size; --clear empties it.',
  positionals: [],
  flags: [
    { name: 'clear', kind: 'boolean', help: 'remove every entry (each dataset file is tokenized again when next read)' },
    { name: 'json', kind: 'boolean', help: 'print {dir, entries, bytes, maxBytes, staleFiles} (with --clear: {dir, removedFiles, removedBytes, failed}) as JSON' },
  ],
  notes: [
    'The cache is $PEFT_STUDIO_HOME/cache/tokenized (default ~/.peft-studio/cache/tokenized): one file per data file, tokenizer and row settings.',
    `${TOKEN_CACHE_MAX_BYTES_ENV} bounds it (bytes; default ${DEFAULT_TOKEN_CACHE_MAX_BYTES}, 4 GiB; 0 turns it off): the least recently used entries go first.`,
  ],
};

export const tokenCacheCommand: Command = {
  spec: tokenCacheSpec,
  async run(args, io) {
    const dir = tokenCacheDir();
    const maxBytes = tokenCacheMaxBytes();
    if (args.boolean('clear')) {
      const cleared = await clearCache(dir, CACHE_VERSION);
      if (args.boolean('json')) io.stdout(JSON.stringify({ dir, removedFiles: cleared.files, removedBytes: cleared.bytes, failed: cleared.failed }, null, 2) + '\n');
      else io.stdout(`removed ${countOf(cleared.files, 'file')} (${bytesInWords(cleared.bytes)}) from ${dir}\n`);
      if (cleared.failed > 0) throw new Error(`${dir}: ${countOf(cleared.failed, 'file')} could not be removed; check the folder's permissions, or remove them by hand`);
      return;
    }
    const { entries, stale } = await cacheContents(dir, CACHE_VERSION);
    const bytes = entries.reduce((n, e) => n + e.bytes, 0);
    const staleBytes = stale.reduce((n, e) => n + e.bytes, 0);
    if (args.boolean('json')) {
      io.stdout(JSON.stringify({ dir, entries: entries.length, bytes, maxBytes, staleFiles: stale.length }, null, 2) + '\n');
      return;
    }
    const bound = maxBytes === 0 ? `the cache is off (${TOKEN_CACHE_MAX_BYTES_ENV}=0)` : `bound ${bytesInWords(maxBytes)} (${TOKEN_CACHE_MAX_BYTES_ENV})`;
    io.stdout(`${dir}: ${countOf(entries.length, 'entry', 'entries')}, ${bytesInWords(bytes)}; ${bound}\n`);
    if (stale.length > 0) io.stdout(`and ${countOf(stale.length, 'file')} of another cache version or an interrupted write (${bytesInWords(staleBytes)}), removed at the next write or by --clear\n`);
  },
};
