// The policy is stated twice on purpose: as a header (both servers of the
// built renderer) and in renderer/index.html's meta tag (so the page is
// protected even where a header is lost, e.g. opened from disk). They must
// not drift apart.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

import { packageRoot } from '../engine/load.js';
import { CONTENT_SECURITY_POLICY_DIRECTIVES } from './content-security-policy.js';

/** The directives of the meta tag in renderer/index.html, as written. */
function metaDirectives(): string[] {
  const html = readFileSync(join(packageRoot(), 'renderer', 'index.html'), 'utf8');
  const m = /http-equiv="Content-Security-Policy"\s+content="([^"]+)"/.exec(html);
  if (!m) throw new Error('renderer/index.html has no Content-Security-Policy meta tag');
  return m[1].split(';').map((d) => d.trim()).filter((d) => d !== '');
}

describe('the renderer Content-Security-Policy', () => {
  it("index.html's meta tag states the header's policy (a meta tag cannot carry frame-ancestors)", () => {
    const header = CONTENT_SECURITY_POLICY_DIRECTIVES.filter((d) => !d.startsWith('frame-ancestors'));
    expect(metaDirectives()).toEqual(header);
  });
  it('allows nothing inline and nothing remote', () => {
    for (const d of CONTENT_SECURITY_POLICY_DIRECTIVES) {
      expect(d).not.toMatch(/unsafe-inline|unsafe-eval|https?:|\*/);
    }
  });
});
