// For the serve tests: a stand-in for dist/renderer (a page and one asset)
// inside a fresh temp folder, with a secret file BESIDE it that no request may
// ever return (the traversal tests ask for it every way they can).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface StaticFixture {
  base: string;
  staticDir: string;
  /** a file next to staticDir, outside it */
  secretFile: string;
  secretText: string;
  indexHtml: string;
  assetJs: string;
  /** an empty folder the service may browse (--root) */
  root: string;
  cleanup(): void;
}

export function makeStaticFixture(): StaticFixture {
  const base = mkdtempSync(join(tmpdir(), 'peft-serve-'));
  const staticDir = join(base, 'renderer');
  mkdirSync(join(staticDir, 'assets'), { recursive: true });
  const indexHtml = '<!doctype html><html><head><script type="module" src="./assets/app.js"></script></head><body>studio</body></html>\n';
  const assetJs = 'console.log("peft studio asset");\n';
  writeFileSync(join(staticDir, 'index.html'), indexHtml);
  writeFileSync(join(staticDir, 'assets', 'app.js'), assetJs);
  const secretText = `secret-${Math.random().toString(36).slice(2)}`;
  const secretFile = join(base, 'secret.txt');
  writeFileSync(secretFile, secretText);
  const root = join(base, 'root');
  mkdirSync(root);
  return { base, staticDir, secretFile, secretText, indexHtml, assetJs, root, cleanup: () => rmSync(base, { recursive: true, force: true }) };
}
