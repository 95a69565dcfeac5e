// jsdom's real Location, History and sessionStorage.
import { beforeEach, describe, expect, it } from 'vitest';

import { socketUrl, takeToken } from './token.js';

const place = () => ({ location: window.location, history: window.history, storage: window.sessionStorage });

describe('the access token', () => {
  beforeEach(() => {
    window.sessionStorage.clear();
    window.history.replaceState(null, '', '/');
  });

  it('is taken from the address, kept for the tab and removed from the address bar', () => {
    window.history.replaceState(null, '', '/index.html?token=abc123&x=1#top');
    expect(takeToken(place())).toBe('abc123');
    expect(window.location.pathname + window.location.search + window.location.hash).toBe('/index.html?x=1#top');
    expect(window.sessionStorage.getItem('peft-studio-token')).toBe('abc123');
    // a reload of the cleaned address still finds it
    expect(takeToken(place())).toBe('abc123');
  });

  it('is empty when neither the address nor the tab has one', () => {
    expect(takeToken(place())).toBe('');
  });

  it('goes in the WebSocket URL on the page host, ws for http and wss for https', () => {
    expect(socketUrl('http://127.0.0.1:8686/?x=1#a', '/api', 'a b')).toBe('ws://127.0.0.1:8686/api?token=a+b');
    expect(socketUrl('https://box.example:443/studio/index.html', '/api', 't')).toBe('wss://box.example/api?token=t');
    expect(socketUrl('http://[::1]:9000/', '/api', '')).toBe('ws://[::1]:9000/api');
  });
});
