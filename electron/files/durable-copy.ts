// A copy whose bytes are on disk before the caller renames the folder that
// holds it into place (writeFolderAtomic syncs the folder's entries, not the
// data of files copied into it): after a power loss the folder is there whole,
// or not at all, never with an empty tokenizer file inside.
import { copyFile, open } from 'node:fs/promises';

export async function copyFileDurable(from: string, to: string): Promise<void> {
  await copyFile(from, to);
  const h = await open(to, 'r+');
  try {
    await h.sync();
  } finally {
    await h.close();
  }
}
