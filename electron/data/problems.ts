// Why a row of a dataset cannot be used. Bad rows are skipped and reported
// (with the physical line the row starts on), never silently dropped; a file
// with no usable row at all is an error (see load-dataset.ts).

/** Short, stable names for the kinds of problems (the report counts them). */
export type ProblemKind =
  | 'malformed' // not parseable (JSON syntax, CSV quoting, field count)
  | 'missing-field' // a field the format needs is absent
  | 'wrong-type' // a field has the wrong JSON type or value
  | 'empty' // an empty completion / output / text / assistant turn
  | 'template' // the chat template refused the conversation
  | 'vocabulary' // a token id outside the model's vocabulary
  | 'nothing-to-learn'; // no trained token left (e.g. the prompt fills the sequence length)

/** A row-level problem, thrown inside the format code and caught per row. */
export class RowError extends Error {
  constructor(readonly kind: ProblemKind, message: string) {
    super(message);
    this.name = 'RowError';
  }
}

/** A skipped row in the report. */
export interface RowProblem {
  /** "file:line" of the physical line the row starts on */
  source: string;
  line: number;
  kind: ProblemKind;
  reason: string;
}

/** "file:line: reason", as the CLI prints it. */
export function formatProblem(p: RowProblem): string {
  return `${p.source}: ${p.reason}`;
}
