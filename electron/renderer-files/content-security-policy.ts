// The Content-Security-Policy of the built renderer, sent as a header by both
// ways it is served (electron/app's app:// protocol, electron/serve's HTTP);
// renderer/index.html carries the same policy in a meta tag (all but
// frame-ancestors, which a meta tag cannot set), and a test keeps the two equal.
// Nothing inline, nothing remote: scripts, styles, fonts and connections
// come from the page's own origin ('self' also admits browser mode's
// same-origin WebSocket).
export const CONTENT_SECURITY_POLICY_DIRECTIVES: readonly string[] = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "font-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
];

export const CONTENT_SECURITY_POLICY = CONTENT_SECURITY_POLICY_DIRECTIVES.join('; ');
