import { realpathSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { contentType } from '../renderer-files/content-types.js';
import { checkRendererBuilt, lookupStatic } from './static.js';
import { makeStaticFixture } from './testing/static-fixture.js';

const fx = makeStaticFixture();
const root = realpathSync(fx.staticDir);
symlinkSync(fx.secretFile, join(fx.staticDir, 'assets', 'escape.txt'));
afterAll(() => fx.cleanup());

describe('lookupStatic', () => {
  it('maps / to index.html and finds assets', () => {
    expect(lookupStatic(root, '/')).toEqual({ ok: true, file: join(root, 'index.html'), isIndex: true, size: Buffer.byteLength(fx.indexHtml) });
    expect(lookupStatic(root, '/index.html')).toEqual({ ok: true, file: join(root, 'index.html'), isIndex: true, size: Buffer.byteLength(fx.indexHtml) });
    expect(lookupStatic(root, '/assets/app.js')).toEqual({ ok: true, file: join(root, 'assets', 'app.js'), isIndex: false, size: Buffer.byteLength(fx.assetJs) });
    expect(lookupStatic(root, '/assets/%61pp.js')).toMatchObject({ ok: true, file: join(root, 'assets', 'app.js') });
  });

  it.each([
    '/../secret.txt',
    '/%2e%2e/secret.txt',
    '/%2E%2E/secret.txt',
    '/assets/../../secret.txt',
    '/assets/..%2f..%2fsecret.txt',
    '/%2e%2e%2fsecret.txt',
    '/..%5csecret.txt',
    '/assets/escape.txt',
    '/' + fx.secretFile,
    '/%00/../secret.txt',
  ])('never resolves %s to a file outside the folder', (path) => {
    const found = lookupStatic(root, path);
    expect(found.ok).toBe(false);
  });

  it('answers 404 for folders and missing files, 400 for undecodable paths', () => {
    expect(lookupStatic(root, '/assets')).toEqual({ ok: false, status: 404 });
    expect(lookupStatic(root, '/missing.js')).toEqual({ ok: false, status: 404 });
    expect(lookupStatic(root, '/%E0%A4%A')).toEqual({ ok: false, status: 400 });
  });

  it('names the build step when the renderer is missing', () => {
    expect(() => checkRendererBuilt(join(fx.base, 'nowhere'))).toThrow(/npm run build:renderer/);
    expect(() => checkRendererBuilt(fx.staticDir)).not.toThrow();
  });
});

describe('contentType', () => {
  it('knows what Vite emits', () => {
    expect(contentType('a/index.html')).toBe('text/html; charset=utf-8');
    expect(contentType('x.JS')).toBe('text/javascript; charset=utf-8');
    expect(contentType('x.css')).toBe('text/css; charset=utf-8');
    expect(contentType('x.svg')).toBe('image/svg+xml');
    expect(contentType('x.woff2')).toBe('font/woff2');
    expect(contentType('x.unknown')).toBe('application/octet-stream');
  });
});
