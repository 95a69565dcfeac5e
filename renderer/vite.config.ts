// Builds the renderer (renderer/ -> dist/renderer/). Relative asset URLs
// (base './') so the same build loads from Electron's file:// or app
// protocol and from `peft-studio serve` at any path.
import { fileURLToPath } from 'node:url';

import { svelte } from '@sveltejs/vite-plugin-svelte';
import { defineConfig } from 'vite';

const root = fileURLToPath(new URL('.', import.meta.url));

export default defineConfig({
  root,
  base: './',
  plugins: [svelte({ configFile: false })],
  build: {
    outDir: fileURLToPath(new URL('../dist/renderer', import.meta.url)),
    emptyOutDir: true,
    // chart.js is the one large dependency; a single chunk of it is expected
    chunkSizeWarningLimit: 800,
  },
});
