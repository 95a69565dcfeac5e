// Byte counts as messages say them (the UI's format.ts follows the same rule).
/** Bytes in words, one decimal in the largest unit that keeps the figure at 1 or more: "248.3 KiB". */
export function bytesInWords(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${units[unit]}`;
}
