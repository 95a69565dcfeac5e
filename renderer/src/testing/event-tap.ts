// A tap on the page's event listeners behind the real service's bridge, so a
// test can send what the service would (a burst of steps, an ending) at the
// moment it chooses; the service's own events still reach the page.
import type { ApiEvent, PreloadBridge } from '../../../electron/api/contract.js';

export function eventTap(): { bridge: (bridge: PreloadBridge) => PreloadBridge; send: (e: ApiEvent) => void } {
  const listeners = new Set<(e: ApiEvent) => void>();
  return {
    bridge: (bridge) => ({
      ...bridge,
      onEvent: (listener) => {
        listeners.add(listener);
        const off = bridge.onEvent(listener);
        return () => {
          listeners.delete(listener);
          off();
        };
      },
    }),
    send: (e) => {
      for (const l of listeners) l(e);
    },
  };
}
