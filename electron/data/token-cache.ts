// The token cache: a dataset file is tokenized once. Each data file's
// expensive, setting-independent reading (tokenized-file.ts: every record's
// tokens and labels or why it cannot be used, the container's problems) is
// kept in <studio home>/cache/tokenized/, one entry per key
// (token-cache-entry.ts), so a later load of the same file with the same
// tokenizer skips parsing and tokenizing, whatever its sequence length,
// packing or eval split (those are applied on every load).
//
// The key is the sha256 of everything the entry depends on: the file's bytes
// and name (its extension picks the container), the tokenizer (tokenizer.json
// and tokenizer_config.json, so the chat template; its folder, which row
// messages name; its special token ids, which config.json can set), the row
// format option, completionOnly, the vocabulary size and CACHE_VERSION. An
// entry that is cut short, corrupt, of another version or unreadable is no
// entry: the file is tokenized again and the entry replaced. A folder that
// cannot be written only means no cache (one notice per load). Entries are
// kept under PEFT_STUDIO_TOKEN_CACHE_MAX_BYTES (default 4 GiB; 0 turns the
// cache off), the least recently used removed first.
import { createHash } from 'node:crypto';
import { open, utimes } from 'node:fs/promises';
import { constants as bufferLimits } from 'node:buffer';
import { basename, join, resolve } from 'node:path';
import { codeAndCause, FileWriteError, writeFileAtomic } from '../files/atomic.js';
import { makeFolder } from '../files/make-folder.js';
import { fileSha256 } from '../files/sha256.js';
import type { ModelTokenizer } from '../models/tokenizer.js';
import { studioHome } from '../runs/run-index.js';
import { DataError } from '../training/data.js';
import type { DatasetOptions } from './options.js';
import { cacheContents, entryName, evictToBound, removeCacheFile, type CacheEntryFile } from './token-cache-bound.js';
import { decodeEntry, entryChunks, fitsEntry } from './token-cache-entry.js';
import type { TokenizedFile } from './tokenized-file.js';

/**
 * Bump when the same file and tokenizer would now read or tokenize differently:
 * a change to what prepare-row.ts, mask.ts, chat-template.ts, formats/,
 * detect-format.ts, containers/, models/tokenizer.ts or training/data.ts
 * exampleFromRow (pre-tokenized rows) produce, or to what an entry keeps
 * (tokenized-file.ts, token-cache-entry.ts). Each of those files says so in a
 * line. Old entries are then never read, and are removed at the next write.
 */
export const CACHE_VERSION = 2;

/** Room left for an entry's header and checksum below the largest buffer it is read into. */
const MAX_HEADER_BYTES = 64 * 1024 ** 2;
const MAX_LENGTH = bufferLimits.MAX_LENGTH;

export const TOKEN_CACHE_MAX_BYTES_ENV = 'PEFT_STUDIO_TOKEN_CACHE_MAX_BYTES';
export const DEFAULT_TOKEN_CACHE_MAX_BYTES = 4 * 1024 ** 3;

/** <studio home>/cache/tokenized */
export function tokenCacheDir(): string {
  return join(studioHome(), 'cache', 'tokenized');
}

/** The size bound from PEFT_STUDIO_TOKEN_CACHE_MAX_BYTES (bytes; 0: no cache). */
export function tokenCacheMaxBytes(): number {
  const raw = process.env[TOKEN_CACHE_MAX_BYTES_ENV];
  if (raw === undefined || raw.trim() === '') return DEFAULT_TOKEN_CACHE_MAX_BYTES;
  if (!/^\d+$/.test(raw.trim()) || !Number.isSafeInteger(Number(raw))) {
    throw new DataError(`${TOKEN_CACHE_MAX_BYTES_ENV}=${raw}: expected a whole number of bytes (e.g. ${DEFAULT_TOKEN_CACHE_MAX_BYTES} for 4 GiB, or 0 to turn the token cache off)`);
  }
  return Number(raw);
}

/** The cache of the studio home, as the environment bounds it; null when turned off. */
export function defaultTokenCache(): TokenCache | null {
  const maxBytes = tokenCacheMaxBytes();
  return maxBytes > 0 ? new TokenCache(tokenCacheDir(), maxBytes) : null;
}

export class TokenCache {
  constructor(
    readonly dir: string,
    readonly maxBytes: number,
    /** CACHE_VERSION; another value only in tests */
    readonly version = CACHE_VERSION,
  ) {}

  /** The cache for one load with this tokenizer and these options. */
  forLoad(tokenizer: ModelTokenizer, options: DatasetOptions): TokenCacheLoad {
    return new TokenCacheLoad(this, [this.version, tokenizerIdentity(tokenizer), options.format, options.completionOnly, options.vocabSize]);
  }
}

/**
 * What a tokenizer's output depends on, as a string: the files it was built from (their bytes as it read
 * them: a file changed since cannot pair these tokens with its new bytes), its folder, the ids as loaded
 * (config.json's eos_token_id stands in for a missing eos_token) and the template in use.
 */
function tokenizerIdentity(tokenizer: ModelTokenizer): string {
  const { fileSha256, bosId, eosId, padId, chatTemplate } = tokenizer;
  // the template file it read (chat_template.jinja), and the BOS / EOS a LlamaTokenizerFast-class tokenizer adds
  // from its flags: config.json's model_type can decide that class, and config.json is not hashed above
  return JSON.stringify([fileSha256.tokenizer, fileSha256.config, fileSha256.template, resolve(tokenizer.dir), bosId, eosId, padId, chatTemplate,
    tokenizer.rebuiltPostProcessor]);
}

export class TokenCacheLoad {
  /** why entries could not be written (once per load) */
  notice: string | null = null;
  /** the folder's entries, listed at the first write of this load and kept up to date */
  private inventory: Map<string, CacheEntryFile> | null = null;

  constructor(
    private readonly cache: TokenCache,
    private readonly settings: unknown[],
  ) {}

  /** The key of `file` whose bytes hash to `contentSha256` (lookup hashes the file as it is; a fresh read, the bytes it parsed). */
  keyOf(file: string, contentSha256: string): string {
    return createHash('sha256').update(JSON.stringify(['peft-studio token cache', contentSha256, basename(file), ...this.settings])).digest('hex');
  }

  private path(key: string): string {
    return join(this.cache.dir, entryName(this.cache.version, key));
  }

  /**
   * The entry of `file` as it is now; null when there is none (a bad entry
   * is removed, best effort), or the file cannot be read (reading it says why).
   */
  async lookup(file: string): Promise<TokenizedFile | null> {
    let contentSha256: string;
    try {
      contentSha256 = await fileSha256(file);
    } catch {
      return null;
    }
    const key = this.keyOf(file, contentSha256);
    const path = this.path(key);
    const bytes = await readWhole(path);
    if (bytes === null) return null;
    const tokenized = decodeEntry(bytes, key, this.cache.version);
    if (tokenized === null) {
      await removeCacheFile(this.cache.dir, entryName(this.cache.version, key));
      return null;
    }
    const now = new Date();
    await utimes(path, now, now).catch(() => {}); // least recently used goes first; a read-only cache still reads
    const listed = this.inventory?.get(entryName(this.cache.version, key));
    if (listed) listed.usedMs = now.getTime();
    return tokenized;
  }

  /** Keeps `tokenized` under `key`; never throws: a failure is this load's notice and ends its writing. */
  async store(key: string, tokenized: TokenizedFile): Promise<void> {
    if (this.notice !== null) return;
    let tokens = 0;
    for (const r of tokenized.records) if ('row' in r) tokens += r.row.inputIds.length;
    // an entry over the whole bound would evict everything and then itself; one over a buffer's limit could not be read back
    const size = 4 * (3 * tokenized.records.length + 2 * tokens);
    if (size > this.cache.maxBytes || size > MAX_LENGTH - MAX_HEADER_BYTES || !fitsEntry(tokenized)) return;
    const name = entryName(this.cache.version, key);
    try {
      await makeFolder(this.cache.dir);
      if (this.inventory === null) {
        const contents = await cacheContents(this.cache.dir, this.cache.version);
        this.inventory = new Map((await evictToBound(this.cache.dir, contents, Infinity)).map((e) => [e.name, e]));
      }
      let bytes = 0;
      await writeFileAtomic(this.path(key), async (handle) => {
        for (const chunk of entryChunks(key, this.cache.version, tokenized)) {
          for (let at = 0; at < chunk.length;) at += (await handle.write(chunk, at, chunk.length - at)).bytesWritten;
          bytes += chunk.length;
        }
      });
      this.inventory.set(name, { name, bytes, usedMs: Date.now() });
      const total = [...this.inventory.values()].reduce((n, e) => n + e.bytes, 0);
      if (total > this.cache.maxBytes) {
        const kept = await evictToBound(this.cache.dir, { entries: [...this.inventory.values()], stale: [] }, this.cache.maxBytes);
        this.inventory = new Map(kept.map((e) => [e.name, e]));
      }
    } catch (e) {
      // the code in words (EROFS: the file system is read-only); the folder is named once, in the notice
      const cause = typeof (e as { code?: unknown }).code === 'string' ? codeAndCause(e) : e instanceof FileWriteError ? e.problem : (e as Error).message;
      this.notice = `the token cache ${this.cache.dir} cannot be written (${cause}), so this dataset is tokenized again on every load; free disk space or make the folder writable, or set PEFT_STUDIO_HOME to a writable folder (${TOKEN_CACHE_MAX_BYTES_ENV}=0 turns the cache off)`;
    }
  }
}

/** A file's bytes in one buffer (entries may pass the 2 GiB that readFile refuses); null when it cannot be read. */
async function readWhole(path: string): Promise<Buffer | null> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch {
    return null;
  }
  try {
    const size = (await handle.stat()).size;
    const bytes = Buffer.allocUnsafe(size);
    for (let at = 0; at < size;) {
      const { bytesRead } = await handle.read(bytes, at, Math.min(size - at, 1 << 30), at);
      if (bytesRead === 0) return bytes.subarray(0, at); // shrank meanwhile: the checksum will say
      at += bytesRead;
    }
    return bytes;
  } catch {
    return null;
  } finally {
    await handle.close().catch(() => {});
  }
}
