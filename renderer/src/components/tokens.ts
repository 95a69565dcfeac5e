// How one token's text piece is drawn in the mask preview.

/** Special tokens as tokenizers spell them: <|begin_of_text|>, <s>, </s>, <unk>, [INST]. */
export function isSpecialPiece(piece: string): boolean {
  return /^<\|[^|]*\|>$/.test(piece) || /^<\/?(s|unk|pad)>$/.test(piece) || /^\[\/?[A-Z_]+\]$/.test(piece);
}

/** Newlines and tabs drawn so a token made only of them is still visible (the newline still breaks the line). */
export function visiblePiece(piece: string): string {
  return piece.replace(/\t/g, '⇥\t').replace(/\r?\n/g, '↵\n');
}
