// The checks the Electron shell's security rests on, under plain Node.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { APP_INDEX_URL, isAppUrl, isExternalLinkAllowed, isRequestAllowed, rendererFileFor, senderRefusal } from './origin.js';

describe('isAppUrl', () => {
  it('accepts the app origin only', () => {
    expect(isAppUrl(APP_INDEX_URL)).toBe(true);
    expect(isAppUrl('app://studio/assets/index-abc.js')).toBe(true);
    expect(isAppUrl('app://other/index.html')).toBe(false);
    expect(isAppUrl('app://user:pw@studio/index.html')).toBe(false);
    expect(isAppUrl('file:///tmp/index.html')).toBe(false);
    expect(isAppUrl('https://studio/index.html')).toBe(false);
    expect(isAppUrl('about:blank')).toBe(false);
    expect(isAppUrl('not a url')).toBe(false);
  });
});

describe('requests and links', () => {
  it('loads no remote content', () => {
    expect(isRequestAllowed('app://studio/assets/app.css')).toBe(true);
    expect(isRequestAllowed('data:image/png;base64,AAAA')).toBe(true);
    expect(isRequestAllowed('https://cdn.example.com/font.woff2')).toBe(false);
    expect(isRequestAllowed('http://127.0.0.1:8080/api')).toBe(false);
    expect(isRequestAllowed('ws://127.0.0.1:8080/api')).toBe(false);
    expect(isRequestAllowed('file:///etc/passwd')).toBe(false);
  });
  it('opens only https links in the OS browser', () => {
    expect(isExternalLinkAllowed('https://huggingface.co/docs/peft')).toBe(true);
    expect(isExternalLinkAllowed('http://example.com')).toBe(false);
    expect(isExternalLinkAllowed('file:///home/user/.bashrc')).toBe(false);
    expect(isExternalLinkAllowed('javascript:alert(1)')).toBe(false);
    expect(isExternalLinkAllowed('smb://host/share')).toBe(false);
  });
});

describe('rendererFileFor', () => {
  const root = mkdtempSync(join(tmpdir(), 'ps-renderer-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('maps app URLs into the renderer folder', () => {
    expect(rendererFileFor(root, 'app://studio/')).toBe(join(root, 'index.html'));
    expect(rendererFileFor(root, 'app://studio/index.html')).toBe(join(root, 'index.html'));
    expect(rendererFileFor(root, 'app://studio/assets/a%20b.js?v=1#x')).toBe(join(root, 'assets', 'a b.js'));
  });
  it('never leaves the folder', () => {
    // the URL parser folds '..' and '%2e%2e' segments at the root...
    expect(rendererFileFor(root, 'app://studio/../../etc/passwd')).toBe(join(root, 'etc', 'passwd'));
    expect(rendererFileFor(root, 'app://studio/%2e%2e/%2e%2e/etc/passwd')).toBe(join(root, 'etc', 'passwd'));
    // ...but not an encoded slash, which only decoding reveals
    expect(rendererFileFor(root, 'app://studio/assets/..%2f..%2f..%2fetc%2fpasswd')).toBeNull();
    expect(rendererFileFor(root, 'app://studio/a%00.js')).toBeNull();
    expect(rendererFileFor(root, 'app://studio/%E0%A4%A')).toBeNull();
    expect(rendererFileFor(root, 'app://evil/index.html')).toBeNull();
    expect(rendererFileFor(root, 'file:///etc/passwd')).toBeNull();
    const inside = rendererFileFor(root, 'app://studio/assets/x.js')!;
    expect(resolve(inside).startsWith(resolve(root))).toBe(true);
  });
});

describe('senderRefusal', () => {
  const ours = { senderId: 7, windowContentsId: 7, frameUrl: 'app://studio/index.html', isMainFrame: true };
  it('accepts our window showing our app', () => {
    expect(senderRefusal(ours)).toBeNull();
  });
  it('refuses everything else, saying why', () => {
    expect(senderRefusal({ ...ours, senderId: 8 })).toMatch(/did not come from the PEFT Studio window/);
    expect(senderRefusal({ ...ours, windowContentsId: null })).toMatch(/did not come from/);
    expect(senderRefusal({ ...ours, frameUrl: null })).toMatch(/frame is gone/);
    expect(senderRefusal({ ...ours, isMainFrame: false })).toMatch(/subframe/);
    expect(senderRefusal({ ...ours, frameUrl: 'https://evil.example/' })).toMatch(/is not the PEFT Studio app/);
    expect(senderRefusal({ ...ours, frameUrl: 'file:///tmp/index.html' })).toMatch(/is not the PEFT Studio app/);
  });
});
