// The built renderer (dist/renderer: index.html + assets/) as files over HTTP.
// A request path is only ever resolved inside that folder: it is decoded,
// normalized, joined and then checked to still lie under the folder (after
// symlinks too), so `..` in any spelling cannot reach package.json or $HOME.
import { createReadStream, existsSync, realpathSync, statSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { join, posix, resolve, sep } from 'node:path';

import { packageRoot } from '../engine/load.js';
import { sendText, setSecurityHeaders } from './headers.js';
import { contentType } from '../renderer-files/content-types.js';

/** Where `npm run build:renderer` writes; PEFT_STUDIO_RENDERER overrides (tests, packaging). */
export function rendererDir(): string {
  const fromEnv = process.env.PEFT_STUDIO_RENDERER;
  return fromEnv ? resolve(fromEnv) : join(packageRoot(), 'dist', 'renderer');
}

/** Throws the actionable error when the renderer has not been built. */
export function checkRendererBuilt(dir: string): void {
  if (!existsSync(join(dir, 'index.html'))) {
    throw new Error(`the browser UI is not built (no index.html in ${dir}): run \`npm run build:renderer\` first`);
  }
}

export type StaticLookup = { ok: true; file: string; isIndex: boolean; size: number } | { ok: false; status: 400 | 404 };

/**
 * The file a URL path names inside `root` (the real path of the static
 * folder), or why there is none. Pure path logic plus one realpath and one
 * stat, whose size is the answer's: a second stat could throw when the file
 * is deleted in between (a rebuild while serving).
 */
export function lookupStatic(root: string, pathname: string): StaticLookup {
  let decoded: string;
  try {
    decoded = decodeURIComponent(pathname);
  } catch {
    return { ok: false, status: 400 };
  }
  // NUL and backslashes have no place in our asset names; refusing them keeps
  // Windows-style traversal (..\) out as well.
  if (decoded.includes('\0') || decoded.includes('\\')) return { ok: false, status: 400 };
  const normalized = posix.normalize(`/${decoded}`);
  const relative = normalized === '/' ? 'index.html' : normalized.slice(1);
  const candidate = resolve(root, relative);
  if (!candidate.startsWith(root + sep)) return { ok: false, status: 404 };
  let real: string;
  let size: number;
  try {
    real = realpathSync(candidate);
    const info = statSync(real);
    if (!info.isFile()) return { ok: false, status: 404 };
    size = info.size;
  } catch {
    return { ok: false, status: 404 };
  }
  if (!real.startsWith(root + sep)) return { ok: false, status: 404 };
  return { ok: true, file: real, isIndex: relative === 'index.html', size };
}

/** Answers a GET/HEAD for a static file (headers, body, 404). */
export function serveStatic(res: ServerResponse, root: string, pathname: string, extraHeaders: Record<string, string> = {}): void {
  const found = lookupStatic(root, pathname);
  if (!found.ok) {
    sendText(res, found.status, found.status === 400 ? 'Bad request path.' : 'Not found.', extraHeaders);
    return;
  }
  setSecurityHeaders(res);
  res.writeHead(200, {
    'Content-Type': contentType(found.file),
    'Content-Length': String(found.size),
    // The page is small and must never be served stale after a rebuild; the
    // hashed assets could be cached, but this is a local tool: no-cache keeps
    // it simple and still allows revalidation.
    'Cache-Control': found.isIndex ? 'no-store' : 'no-cache',
    ...extraHeaders,
  });
  if (res.req.method === 'HEAD') {
    res.end();
    return;
  }
  // a file removed since the lookup fails here: the connection is cut (the headers are out)
  const stream = createReadStream(found.file);
  stream.on('error', () => res.destroy());
  stream.pipe(res);
}
