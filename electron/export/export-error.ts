// The export command's own refusals: bad options, a source or --out folder it
// cannot use. (A failed reload check is verify.ts's ExportCheckError.)
export class ExportError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ExportError';
  }
}
