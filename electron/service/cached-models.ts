// cachedModels: the models already in the Hugging Face hub cache, for the
// Model page. In browser mode only those inside the folders the server may
// use are listed (as `recent` does), and the cache folder is named only then.
import type { CachedModels } from '../api/contract.js';
import { listCachedModels } from '../models/hf-cache-list.js';
import type { PathPolicy } from './paths.js';

export async function cachedModels(policy: PathPolicy, env: NodeJS.ProcessEnv = process.env): Promise<CachedModels> {
  const list = await listCachedModels(env);
  const models = list.models.filter((m) => policy.permits(m.snapshot ?? m.repoDir));
  return { cacheDir: policy.permits(list.cacheDir) ? list.cacheDir : null, models, hidden: list.models.length - models.length };
}
