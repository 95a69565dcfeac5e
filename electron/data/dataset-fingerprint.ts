// What a resumed run checks its data against (run.json's data_sha256): the
// sha256 of the data file, or for a folder (containers/dataset-folder.ts) the
// sha256 of the list of the files read, each with its path under the folder
// and its own sha256: a shard added, removed, renamed or changed is a
// different dataset, a folder moved elsewhere whole is the same one.
import { createHash } from 'node:crypto';
import { relative, sep } from 'node:path';
import { fileSha256 } from '../files/sha256.js';
import { datasetFiles, type DatasetRole } from './containers/dataset-folder.js';

export async function datasetSha256(path: string, role: DatasetRole = 'train'): Promise<string> {
  const { files, root } = datasetFiles(path, role);
  if (files.length === 1 && files[0] === path) return fileSha256(path);
  const hash = createHash('sha256');
  for (const file of files) hash.update(`${relative(root, file).split(sep).join('/')}\0${await fileSha256(file)}\n`);
  return hash.digest('hex');
}
