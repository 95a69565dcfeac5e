// jsdom has no layout, so no ResizeObserver; chart.js's responsive mode needs
// the constructor only (sizes come from the canvas mock). A setup file of
// renderer/vitest.config.ts, so every test that mounts a chart has it.
class NoLayoutResizeObserver {
  observe(): void {}
  unobserve(): void {}
  disconnect(): void {}
}

if (!('ResizeObserver' in globalThis)) (globalThis as Record<string, unknown>).ResizeObserver = NoLayoutResizeObserver;
