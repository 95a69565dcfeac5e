// The messages between the app (or `peft-studio serve`) and its generation
// child (generate-worker.ts). Requests flow down with an id; the child
// answers each id exactly once, with the response or with the error the
// user should see. Everything is plain JSON over the IPC channel, and every
// message the child sends is checked here before the parent uses it: a
// child is a separate program that may be half-dead or of another version.
import type { ApiErrorBody, GenerateRequest, GenerateResponse } from '../api/contract.js';
import { isDeviceRequest, type DeviceRequest } from '../engine/device.js';
import { isPrecision } from '../engine/precision.js';
import type { Precision } from '../engine/native.js';
import { PROMPT_FORMATS, type PromptFormat } from './prompt-format.js';
import { limitWords, SAMPLING_LIMITS, samplingOf, withinLimit, type SamplingKey, type SamplingSettings } from './sampling-settings.js';

const SAMPLING_KEYS = Object.keys(SAMPLING_LIMITS) as SamplingKey[];

/** One generation as the child runs it: the API request and where to compute it. */
export interface GenerateJob extends Omit<GenerateRequest, 'requestId'> {
  promptFormat: PromptFormat;
  system: string;
  device: DeviceRequest;
  precision: Precision;
  threads: number;
  /** send the answer's text as it comes ('progress' messages) */
  stream: boolean;
}

/** parent -> child */
export interface GenerateMessage {
  type: 'generate';
  id: number;
  job: GenerateJob;
}
/** parent -> child: end request `id` at the next token (its answer so far is its answer); an id already answered is ignored */
export interface StopMessage {
  type: 'stop';
  id: number;
}
export type ToWorkerMessage = GenerateMessage | StopMessage;

/** What the child holds after an answer (the parent mirrors it for openSessions and tests). */
export interface WorkerState {
  /** models open now (at most two) */
  openSessions: number;
  /** models this child has opened since it started (a cache hit does not count) */
  opened: number;
}

/** child -> parent */
export type FromWorkerMessage =
  /** the child listens: requests may be sent */
  | { type: 'ready'; pid: number }
  /** the answer of request `id` so far: the text the last tokens settled (text-stream.ts), and the tokens generated */
  | { type: 'progress'; id: number; text: string; tokens: number }
  | { type: 'generated'; id: number; response: GenerateResponse; state: WorkerState }
  | { type: 'failed'; id: number; error: ApiErrorBody; state: WorkerState };

/** A message that is not what the protocol says; the parent ends such a child, the child answers such a request with 'failed'. */
export class ProtocolError extends Error {
  constructor(what: string) {
    super(`a malformed message between PEFT Studio and its generation process (${what}): are both from the same install?`);
    this.name = 'ProtocolError';
  }
}

type Obj = Record<string, unknown>;

function object(value: unknown, what: string): Obj {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ProtocolError(`${what} is not an object`);
  return value as Obj;
}

function string(o: Obj, key: string, what: string): string {
  if (typeof o[key] !== 'string') throw new ProtocolError(`${what}.${key} is not a string`);
  return o[key];
}

function count(o: Obj, key: string, what: string): number {
  const v = o[key];
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new ProtocolError(`${what}.${key} is not a whole number >= 0`);
  return v;
}

function finite(o: Obj, key: string, what: string, min: number): number {
  const v = o[key];
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min) throw new ProtocolError(`${what}.${key} is not a number >= ${min}`);
  return v;
}

/** An optional number within a sampling setting's limits (absent: undefined). */
function samplingSetting(o: Obj, key: SamplingKey, what: string): number | undefined {
  if (o[key] === undefined) return undefined;
  if (!withinLimit(o[key], SAMPLING_LIMITS[key])) throw new ProtocolError(`${what}.${key} is not ${limitWords(SAMPLING_LIMITS[key])}`);
  return o[key];
}

function sampling(value: unknown): SamplingSettings {
  const o = object(value, 'response.sampling');
  const setting = (key: SamplingKey) => {
    const v = samplingSetting(o, key, 'response.sampling');
    if (v === undefined) throw new ProtocolError(`response.sampling.${key} is missing`);
    return v;
  };
  return samplingOf(setting, count(o, 'seed', 'response.sampling'));
}

function oneOf<T extends string>(o: Obj, key: string, values: readonly T[], what: string): T {
  const v = o[key];
  if (typeof v !== 'string' || !(values as readonly string[]).includes(v)) throw new ProtocolError(`${what}.${key} is not one of ${values.join(', ')}`);
  return v as T;
}

function state(value: unknown): WorkerState {
  const o = object(value, 'state');
  return { openSessions: count(o, 'openSessions', 'state'), opened: count(o, 'opened', 'state') };
}

function response(value: unknown): GenerateResponse {
  const o = object(value, 'response');
  const notices = o.notices;
  if (!Array.isArray(notices) || !notices.every((n) => typeof n === 'string')) throw new ProtocolError('response.notices is not a list of strings');
  const on = object(o.computedOn, 'response.computedOn');
  const device = string(on, 'device', 'response.computedOn');
  if (!/^(cpu|cuda:\d+)$/.test(device)) throw new ProtocolError(`response.computedOn.device '${device}' is not cpu or cuda:N`);
  return {
    text: string(o, 'text', 'response'),
    tokens: count(o, 'tokens', 'response'),
    stoppedBy: oneOf(o, 'stoppedBy', ['eos', 'length', 'stopped'] as const, 'response'),
    seconds: finite(o, 'seconds', 'response', 0),
    notices: notices as string[],
    computedOn: { device, name: string(on, 'name', 'response.computedOn'), precision: oneOf(on, 'precision', ['fp32', 'bf16'] as const, 'response.computedOn') },
    prompt: promptOf(o.prompt),
    sampling: sampling(o.sampling),
  };
}

function promptOf(value: unknown): GenerateResponse['prompt'] {
  const o = object(value, 'response.prompt');
  return { text: string(o, 'text', 'response.prompt'), tokens: count(o, 'tokens', 'response.prompt'), layout: string(o, 'layout', 'response.prompt') };
}

function errorBody(value: unknown): ApiErrorBody {
  const o = object(value, 'error');
  const body: ApiErrorBody = { code: oneOf(o, 'code', ['invalid', 'failed', 'forbidden'] as const, 'error'), message: string(o, 'message', 'error') };
  if (o.field !== undefined) body.field = string(o, 'field', 'error');
  return body;
}

/** A message from the child, checked field by field (a ProtocolError names the first bad one). */
export function parseFromWorker(value: unknown): FromWorkerMessage {
  const o = object(value, 'message');
  const type = oneOf(o, 'type', ['ready', 'progress', 'generated', 'failed'] as const, 'message');
  switch (type) {
    case 'ready':
      return { type, pid: count(o, 'pid', 'message') };
    case 'progress':
      return { type, id: count(o, 'id', 'message'), text: string(o, 'text', 'message'), tokens: count(o, 'tokens', 'message') };
    case 'generated':
      return { type, id: count(o, 'id', 'message'), response: response(o.response), state: state(o.state) };
    case 'failed':
      return { type, id: count(o, 'id', 'message'), error: errorBody(o.error), state: state(o.state) };
  }
}

/** The sampling settings a job gives (each one absent: the model's default). */
function samplingRequest(j: Obj): Pick<GenerateJob, SamplingKey> {
  const given: Pick<GenerateJob, SamplingKey> = {};
  for (const key of SAMPLING_KEYS) {
    const v = samplingSetting(j, key, 'job');
    if (v !== undefined) given[key] = v;
  }
  return given;
}

/** A message from the parent, checked the same way (the child answers a bad one with a 'failed'). */
export function parseToWorker(value: unknown): ToWorkerMessage {
  const o = object(value, 'message');
  const type = oneOf(o, 'type', ['generate', 'stop'] as const, 'message');
  const id = count(o, 'id', 'message');
  if (type === 'stop') return { type, id };
  const j = object(o.job, 'job');
  const adapter = j.adapter === null ? null : string(j, 'adapter', 'job');
  if (!isDeviceRequest(j.device)) throw new ProtocolError('job.device is not auto, cpu, cuda or cuda:N');
  if (!isPrecision(j.precision)) throw new ProtocolError('job.precision is not auto, fp32 or bf16');
  const threads = count(j, 'threads', 'job');
  if (threads < 1) throw new ProtocolError('job.threads is below 1');
  return {
    type: 'generate',
    id,
    job: {
      model: string(j, 'model', 'job'),
      adapter,
      prompt: string(j, 'prompt', 'job'),
      promptFormat: oneOf(j, 'promptFormat', PROMPT_FORMATS, 'job'),
      system: string(j, 'system', 'job'),
      maxNewTokens: count(j, 'maxNewTokens', 'job'),
      ...samplingRequest(j),
      seed: count(j, 'seed', 'job'),
      device: j.device,
      precision: j.precision,
      threads,
      stream: j.stream === true,
    },
  };
}
