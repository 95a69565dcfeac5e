// How numbers read in the UI. Bytes in binary units with one decimal
// (MiB / GiB, as memory is sold and reported), parameter counts with
// thousands separators, durations in the two largest units. Written out by
// hand rather than with Intl so the text is the same in every locale and
// the tests can pin it.

const UNITS = ['KiB', 'MiB', 'GiB', 'TiB'] as const;

/** 512 -> "512 B", 1536 -> "1.5 KiB", 3*2^30 -> "3.0 GiB". */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes)) return '—';
  const sign = bytes < 0 ? '-' : '';
  let value = Math.abs(bytes);
  if (value < 1024) return `${sign}${Math.round(value)} B`;
  // Step up while the rounded figure would read 1024 or more, so
  // 1023.96 KiB reads "1.0 MiB", not "1024.0 KiB".
  let unit = 0;
  value /= 1024;
  while (unit < UNITS.length - 1 && Number(value.toFixed(1)) >= 1024) {
    value /= 1024;
    unit++;
  }
  return `${sign}${value.toFixed(1)} ${UNITS[unit]}`;
}

/** 1234567 -> "1,234,567". */
export function formatCount(n: number): string {
  if (!Number.isFinite(n)) return '—';
  const sign = n < 0 ? '-' : '';
  const digits = String(Math.round(Math.abs(n)));
  return sign + digits.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/** 1234567 -> "1.2 M" (for tight places; the exact count goes in a title). */
export function formatCountShort(n: number): string {
  const a = Math.abs(n);
  if (a >= 1e9) return `${(n / 1e9).toFixed(1)} B`;
  if (a >= 1e6) return `${(n / 1e6).toFixed(1)} M`;
  if (a >= 1e4) return `${(n / 1e3).toFixed(1)} K`;
  return formatCount(n);
}

/** part of whole as a percentage: "100%", "12.5%", "3.14%", "0.052%" (two significant digits below 1%). */
export function formatPercent(part: number, whole: number): string {
  if (!(whole > 0) || !Number.isFinite(part)) return '—';
  const p = (part / whole) * 100;
  if (p === 0) return '0%';
  if (p >= 99.95) return p < 100.05 ? '100%' : `${p.toFixed(1)}%`;
  if (p >= 10) return `${p.toFixed(1)}%`;
  if (p >= 1) return `${p.toFixed(2)}%`;
  return `${Number(p.toPrecision(2))}%`;
}

/** Seconds as "0.4 s", "42 s", "3 min 05 s", "2 h 07 min", "3 d 04 h". */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '—';
  if (seconds < 10) return `${(Math.round(seconds * 10) / 10).toFixed(1)} s`;
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  const pad = (n: number) => String(n).padStart(2, '0');
  if (s < 3600) return `${Math.floor(s / 60)} min ${pad(s % 60)} s`;
  const m = Math.round(s / 60);
  if (m < 24 * 60) return `${Math.floor(m / 60)} h ${pad(m % 60)} min`;
  const h = Math.round(m / 60);
  return `${Math.floor(h / 24)} d ${pad(h % 24)} h`;
}

/** A count with its noun: countOf(1, 'row') -> "1 row", countOf(1200, 'row') -> "1,200 rows" (regular plurals only). */
export function countOf(n: number, noun: string): string {
  return `${formatCount(n)} ${n === 1 ? noun : `${noun}s`}`;
}
