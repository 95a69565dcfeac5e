// Installs llama.cpp for the GGUF tests (`npm run reference:llama-cpp`, run
// by `npm test`): the pinned prebuilt package, from the npm registry, into
// scripts/reference/llama-cpp/node_modules. It exists for linux-x64 only;
// elsewhere, or when the registry cannot be reached, the tests that need it
// skip and say why — unless PEFT_STUDIO_REQUIRE_LLAMA_CPP=1 (CI), where a
// failed install fails.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const required = process.env.PEFT_STUDIO_REQUIRE_LLAMA_CPP === '1';
const installed = join(here, 'node_modules', '@node-llama-cpp', 'linux-x64', 'package.json');

if (process.platform !== 'linux' || process.arch !== 'x64') {
  console.log(`llama.cpp reference: not installed, it is built for linux-x64 only (this is ${process.platform}-${process.arch}); the GGUF tests that load files with it will skip`);
  process.exit(required ? 1 : 0);
}
if (existsSync(installed)) process.exit(0);
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const r = spawnSync(npm, ['ci', '--prefix', here, '--ignore-scripts', '--no-audit', '--no-fund'], { stdio: 'inherit' });
if (r.status !== 0) {
  console.log('llama.cpp reference: npm ci failed (see above); the GGUF tests that load files with llama.cpp will skip');
  process.exit(required ? 1 : 0);
}
