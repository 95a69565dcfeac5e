// llama.cpp itself, for the tests that check our GGUF files with the real
// loader. The library is the linux-x64 build published on npm for
// node-llama-cpp (scripts/reference/llama-cpp/package.json pins it; `npm run
// reference:llama-cpp` or CI installs it); scripts/reference/llama-cpp/probe.cpp
// is a small C++ program over its C API, compiled here on first use.
//
// Where the package is not installed (another OS, or a checkout that skipped
// it) `openLlamaCpp` returns the reason instead, and the tests skip saying so.
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** scripts/reference/llama-cpp of this checkout, from the sources (vitest) or from dist/. */
function findReferenceDir(): string {
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    const candidate = join(dir, 'scripts', 'reference', 'llama-cpp');
    if (existsSync(join(candidate, 'probe.cpp'))) return candidate;
    if (dirname(dir) === dir) throw new Error('scripts/reference/llama-cpp/probe.cpp not found above ' + fileURLToPath(import.meta.url));
  }
}

const referenceDir = findReferenceDir();
const libDir = join(referenceDir, 'node_modules', '@node-llama-cpp', 'linux-x64', 'bins', 'linux-x64');
const probeSource = join(referenceDir, 'probe.cpp');
/** The library files of the pinned release (package.json here pins the package that holds them). */
const LIBLLAMA = 'libllama.v0.5.0.so';
const LIBGGML = 'libggml.v0.5.0.so';

/** The installed package's version: a probe is built per version, so a new pin rebuilds it. */
function installedVersion(): string {
  try {
    return (JSON.parse(readFileSync(join(libDir, '..', '..', 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'none';
  }
}
const probeBinary = join(referenceDir, 'build', `llama-cpp-probe-${installedVersion()}`);

/** What llama.cpp printed as warnings or errors while doing what was asked. */
export interface LlamaCppOutput<T> {
  value: T;
  /** the "llama.cpp warn:" / "llama.cpp error:" lines of the run (an empty list: none) */
  warnings: string[];
}

export interface LlamaCpp {
  /** Every position's logits [tokens.length][vocab] of the model (with a LoRA adapter at `scale`). */
  logits(model: string, tokens: readonly number[], lora?: { file: string; scale: number }): Promise<LlamaCppOutput<{ vocab: number; logits: Float32Array }>>;
  /** llama.cpp's token ids for `text` (special tokens in the text parsed as such; BOS added when add_special). */
  tokenize(model: string, text: string, addSpecial: boolean): Promise<LlamaCppOutput<number[]>>;
  /** ggml's own Q8_0 blocks for rows of `perRow` values. */
  quantizeQ8_0(values: Float32Array, perRow: number): Promise<Uint8Array>;
  /**
   * Generation speed with llama.cpp's default context (F16 KV cache, flash
   * attention auto): `prompt` as one batch, then `gen` one token at a time;
   * the better of two passes.
   */
  speed(model: string, prompt: readonly number[], gen: readonly number[], threads: number): Promise<{ prefillMs: number; decodeMs: number }>;
}

export type LlamaCppAvailability = { available: true; llamaCpp: LlamaCpp } | { available: false; reason: string };

async function buildProbe(): Promise<void> {
  if (existsSync(probeBinary) && statSync(probeBinary).mtimeMs >= statSync(probeSource).mtimeMs) return;
  await mkdir(join(referenceDir, 'build'), { recursive: true });
  // built beside the target and renamed: another test process never runs half a binary
  const partial = `${probeBinary}.${process.pid}.tmp`;
  await run('g++', ['-std=c++17', '-O1', '-o', partial, probeSource, `-L${libDir}`, `-l:${LIBLLAMA}`, `-l:${LIBGGML}`, '-l:libggml-base.so', `-Wl,-rpath,${libDir}`]);
  await rename(partial, probeBinary);
}

async function probe(args: string[]): Promise<{ stdout: string; warnings: string[] }> {
  try {
    const { stdout, stderr } = await run(probeBinary, args, { env: { ...process.env, LLAMA_CPP_PROBE_LIB_DIR: libDir }, maxBuffer: 64 << 20 });
    return { stdout, warnings: stderr.split('\n').filter((line) => line.startsWith('llama.cpp ')) };
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`llama-cpp-probe ${args[0]} failed: ${e.stderr?.trim() || e.message}`);
  }
}

async function withScratch<T>(work: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'llama-cpp-probe-'));
  try {
    return await work(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function bytesOf(view: ArrayBufferView): Uint8Array {
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}

const llamaCpp: LlamaCpp = {
  logits: (model, tokens, lora) =>
    withScratch(async (dir) => {
      await writeFile(join(dir, 'tokens.i32'), bytesOf(Int32Array.from(tokens)));
      const args = ['logits', model, join(dir, 'tokens.i32'), join(dir, 'logits.f32')];
      if (lora) args.push(lora.file, String(lora.scale));
      const { stdout, warnings } = await probe(args);
      const raw = await readFile(join(dir, 'logits.f32'));
      const logits = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
      return { value: { vocab: Number(stdout.trim()), logits }, warnings };
    }),
  tokenize: (model, text, addSpecial) =>
    withScratch(async (dir) => {
      await writeFile(join(dir, 'text.txt'), text, 'utf8');
      const { warnings } = await probe(['tokenize', model, join(dir, 'text.txt'), join(dir, 'ids.i32'), addSpecial ? 'add-special' : 'no-special']);
      const raw = await readFile(join(dir, 'ids.i32'));
      return { value: Array.from(new Int32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength))), warnings };
    }),
  quantizeQ8_0: (values, perRow) =>
    withScratch(async (dir) => {
      await writeFile(join(dir, 'in.f32'), bytesOf(values));
      await probe(['quantize', 'q8_0', join(dir, 'in.f32'), String(perRow), join(dir, 'out.bin')]);
      return new Uint8Array(await readFile(join(dir, 'out.bin')));
    }),
  speed: (model, prompt, gen, threads) =>
    withScratch(async (dir) => {
      await writeFile(join(dir, 'prompt.i32'), bytesOf(Int32Array.from(prompt)));
      await writeFile(join(dir, 'gen.i32'), bytesOf(Int32Array.from(gen)));
      const { stdout } = await probe(['speed', model, join(dir, 'prompt.i32'), join(dir, 'gen.i32'), String(threads)]);
      const r = JSON.parse(stdout) as { prefill_ms: number; decode_ms: number };
      return { prefillMs: r.prefill_ms, decodeMs: r.decode_ms };
    }),
};

function whyUnavailable(): string | null {
  if (process.platform !== 'linux' || process.arch !== 'x64') return `the llama.cpp reference build is linux-x64 only (this is ${process.platform}-${process.arch})`;
  if (!existsSync(join(libDir, LIBLLAMA))) return 'llama.cpp is not installed for the tests: run `npm run reference:llama-cpp` (npm test does)';
  return null;
}

/**
 * llama.cpp when its package is installed here (building the probe once),
 * else why not — or, with PEFT_STUDIO_REQUIRE_LLAMA_CPP=1 (CI), an error.
 */
export async function openLlamaCpp(): Promise<LlamaCppAvailability> {
  const reason = whyUnavailable();
  if (reason) {
    if (process.env.PEFT_STUDIO_REQUIRE_LLAMA_CPP === '1') throw new Error(`PEFT_STUDIO_REQUIRE_LLAMA_CPP=1 but ${reason}`);
    return { available: false, reason };
  }
  await buildProbe();
  return { available: true, llamaCpp };
}
