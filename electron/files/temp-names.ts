// The names the atomic writers (atomic.ts) give what is not in place yet, in
// the folder of its target:
//   .NAME.PID.HEX.tmp   writeFileAtomic's temp file, writeFolderAtomic's temp folder
//   .NAME.PID.HEX.old   writeFolderAtomic's old folder, moved aside while the new one goes in
// A write inside a write in progress gets a name of a name: a folder written
// atomically over another's temp folder is "..NAME.PID.HEX.tmp.PID.HEX.tmp".
// Errors must name the path the user chose, not these (intendedPath), and a
// killed writer's leftovers are found by them (write-leftovers.ts).
import { randomBytes } from 'node:crypto';

const TEMP_NAME = /^\.(.+)\.(\d+)\.([0-9a-f]+)\.(tmp|old)$/;

export interface TempName {
  /** the name the write is for (its target, in the same folder) */
  target: string;
  pid: number;
  kind: 'tmp' | 'old';
}

/** Unique among concurrent writers: the process id plus random bits. */
export function writeTag(): string {
  return `${process.pid}.${randomBytes(4).toString('hex')}`;
}

export function tempName(target: string, tag: string, kind: 'tmp' | 'old'): string {
  return `.${target}.${tag}.${kind}`;
}

export function parseTempName(name: string): TempName | null {
  const m = TEMP_NAME.exec(name);
  return m ? { target: m[1], pid: Number(m[2]), kind: m[4] as 'tmp' | 'old' } : null;
}

/**
 * Where `path` will be once every write in progress along it is in place:
 * each ".NAME.PID.HEX.tmp" part of it becomes NAME (repeatedly, for a temp
 * of a temp). The path to name in a message: the user chose that one.
 */
export function intendedPath(path: string): string {
  return path.split(/([\\/])/).map((part) => {
    let name = part;
    for (let t = parseTempName(name); t !== null && t.kind === 'tmp'; t = parseTempName(name)) name = t.target;
    return name;
  }).join('');
}
