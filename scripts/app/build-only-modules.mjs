// Production dependencies the desktop app never loads: cmake-js and
// node-addon-api only compile the native addon (package.json lists them under
// "dependencies" because `npm install` builds it), and everything reachable
// only through them. Found from package-lock.json, so a module that some
// runtime dependency also needs stays in.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** Used at build time only; the packaged app ships the compiled addon instead. */
export const BUILD_ONLY = ['cmake-js', 'node-addon-api'];

/** The lock-file key a package at `from` gets for `name`: nearest node_modules up the tree, as Node resolves it. */
function resolveIn(packages, from, name) {
  let base = from;
  for (;;) {
    const key = base ? `${base}/node_modules/${name}` : `node_modules/${name}`;
    if (packages[key]) return key;
    if (!base) return null;
    const cut = base.lastIndexOf('/node_modules/');
    base = cut < 0 ? '' : base.slice(0, cut);
  }
}

function reachable(packages, roots) {
  const seen = new Set();
  const stack = roots.map(([from, name]) => resolveIn(packages, from, name)).filter(Boolean);
  while (stack.length > 0) {
    const key = stack.pop();
    if (seen.has(key)) continue;
    seen.add(key);
    const entry = packages[key];
    for (const name of Object.keys({ ...entry.dependencies, ...entry.optionalDependencies })) {
      const dep = resolveIn(packages, key, name);
      if (dep) stack.push(dep);
    }
  }
  return seen;
}

/** Lock-file keys (node_modules/...) of the modules to leave out of the package. */
export function buildOnlyModules(projectDir) {
  const lock = JSON.parse(readFileSync(join(projectDir, 'package-lock.json'), 'utf8'));
  const packages = lock.packages;
  const runtimeRoots = Object.keys(packages[''].dependencies ?? {}).filter((n) => !BUILD_ONLY.includes(n));
  const needed = reachable(packages, runtimeRoots.map((n) => ['', n]));
  const buildOnly = reachable(packages, BUILD_ONLY.map((n) => ['', n]));
  return [...buildOnly].filter((key) => !needed.has(key)).sort();
}

/** electron-builder `files` patterns that exclude them. */
export function buildOnlyExclusions(projectDir) {
  return buildOnlyModules(projectDir).map((key) => `!${key}{,/**/*}`);
}
