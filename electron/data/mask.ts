// Tokens and labels of a rendered row, with an exact mask.
//
// The whole text is tokenized ONCE, so the ids are exactly those of
// tokenizing the rendered string in one go (tokenizing the prompt and the
// completion separately can merge or split differently at the boundary). The
// trained character ranges are then mapped onto those tokens through each
// token's byte offsets (ModelTokenizer.tokenByteStarts): a token is trained
// when any of its bytes lies inside a trained range. So a token that
// straddles the seam (Llama 3 reads prompt "…12" + completion "34" as "123"
// "4"; prompt "… " + completion "Japan" as " Japan") is trained: the model
// must learn to produce it to produce the completion. For tokenizers whose
// pieces cannot be spelled back (an unknown decoder or a normalizer that
// rewrites the text) the text is tokenized piece by piece at the range
// boundaries instead, and that is only accepted when the pieces give exactly
// the ids of the whole; otherwise the row is refused rather than masked
// approximately.
// A change to the tokens, labels or row errors this gives needs token-cache.ts CACHE_VERSION bumped.
import type { ModelTokenizer } from '../models/tokenizer.js';
import { IGNORE_INDEX } from '../training/data.js';
import type { CharSpan, RenderedRow } from './formats/row.js';
import { RowError } from './problems.js';

export interface TokenizedRow {
  inputIds: number[];
  labels: number[];
}

/** UTF-8 byte offsets of sorted character offsets, in one pass over the text. */
function byteOffsets(text: string, sortedCharIndices: readonly number[]): number[] {
  const out: number[] = [];
  let bytes = 0;
  let i = 0;
  for (const target of sortedCharIndices) {
    for (; i < target; i++) {
      const c = text.charCodeAt(i);
      if (c < 0x80) bytes += 1;
      else if (c < 0x800) bytes += 2;
      else if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
        bytes += 4; // a surrogate pair is one 4-byte character
        i++;
      } else bytes += 3;
    }
    out.push(bytes);
  }
  return out;
}

/** Whether each token of `ids` (= encode(text, no specials)) overlaps a trained range. */
export function trainedTokenFlags(tokenizer: ModelTokenizer, text: string, ids: readonly number[], spans: readonly CharSpan[]): boolean[] {
  const starts = tokenizer.tokenByteStarts(text, ids);
  if (starts) {
    const flat = byteOffsets(text, spans.flat());
    const byteSpans = spans.map((_, k) => [flat[2 * k], flat[2 * k + 1]] as const);
    const flags: boolean[] = new Array(ids.length);
    let k = 0;
    for (let t = 0; t < ids.length; t++) {
      const [b, end] = [starts[t], starts[t + 1]];
      while (k < byteSpans.length && byteSpans[k][1] <= b) k++;
      // overlap of [b, end) with [s, e); a zero-byte token counts by its position
      flags[t] = k < byteSpans.length && (end > b ? b < byteSpans[k][1] && end > byteSpans[k][0] : b >= byteSpans[k][0]);
    }
    return flags;
  }
  return piecewiseFlags(tokenizer, text, ids, spans);
}

function piecewiseFlags(tokenizer: ModelTokenizer, text: string, ids: readonly number[], spans: readonly CharSpan[]): boolean[] {
  const flags: boolean[] = [];
  const pieces: number[] = [];
  let at = 0;
  const add = (end: number, trained: boolean) => {
    if (end <= at) return;
    const part = tokenizer.encode(text.slice(at, end), { addSpecialTokens: false });
    for (const id of part) {
      pieces.push(id);
      flags.push(trained);
    }
    at = end;
  };
  for (const [s, e] of spans) {
    add(s, false);
    add(e, true);
  }
  add(text.length, false);
  if (pieces.length !== ids.length || pieces.some((id, i) => id !== ids[i])) {
    throw new RowError('template', 'the tokens at the edge of a trained part depend on the text around it and this tokenizer gives no offsets, so the mask would not be exact; use --all-tokens');
  }
  return flags;
}

function startsWith(ids: readonly number[], prefix: readonly number[]): boolean {
  return prefix.length > 0 && prefix.length <= ids.length && prefix.every((id, i) => ids[i] === id);
}

/**
 * ids and labels of a rendered row. completionOnly=false trains every token
 * (the labels are the ids); otherwise only tokens inside trainSpans, the
 * post-processor's tokens next to trained text, and the appended EOS.
 */
export function tokenizeRendered(tokenizer: ModelTokenizer, row: RenderedRow, completionOnly: boolean): TokenizedRow {
  const body = tokenizer.encode(row.text, { addSpecialTokens: false });
  const flags = completionOnly ? trainedTokenFlags(tokenizer, row.text, body, row.trainSpans) : body.map(() => true);
  const added = row.addSpecialTokens ? tokenizer.specialTokensAround() : { prefix: [], suffix: [] };
  // Text that already starts with the post-processor's tokens (a chat rendered to text with
  // apply_chat_template(tokenize=False) begins with the BOS text) does not get them twice: a
  // doubled BOS is what TRL trains there (trl#1400), and never what the model is prompted with.
  const around = { prefix: startsWith(body, added.prefix) ? [] : added.prefix, suffix: added.suffix };
  const inputIds = [...around.prefix, ...body, ...around.suffix];
  // The post-processor's tokens go with the text next to them (a text row
  // trained from its first token keeps BOS's label, as encodeForTraining did;
  // BOS is never predicted either way: labels shift).
  const startsTrained = flags.length > 0 && flags[0];
  const endsTrained = flags.length > 0 && flags[flags.length - 1];
  const trained = [...around.prefix.map(() => startsTrained), ...flags, ...around.suffix.map(() => endsTrained)];
  if (row.appendEos) {
    if (tokenizer.eosId === null) throw new RowError('missing-field', `the tokenizer in ${tokenizer.dir} has no EOS token (tokenizer_config.json eos_token), so examples cannot be terminated`);
    if (inputIds[inputIds.length - 1] !== tokenizer.eosId) {
      inputIds.push(tokenizer.eosId);
      trained.push(true);
    }
  }
  const labels = inputIds.map((id, i) => (trained[i] ? id : IGNORE_INDEX));
  return { inputIds, labels };
}
