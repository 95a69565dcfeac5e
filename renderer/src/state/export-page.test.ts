// Where an export goes when the user does not say.
import { describe, expect, it } from 'vitest';
import { defaultExportFolder } from './export-page.svelte.js';

describe('defaultExportFolder', () => {
  it('is the run folder\'s export/ subfolder, in the path\'s own separator', () => {
    expect(defaultExportFolder('/home/me/.peft-studio/runs/20261128-220958-lora')).toBe('/home/me/.peft-studio/runs/20261128-220958-lora/export');
    expect(defaultExportFolder('/data/run/')).toBe('/data/run/export');
    expect(defaultExportFolder('C:\\Users\\me\\runs\\r1')).toBe('C:\\Users\\me\\runs\\r1\\export');
    expect(defaultExportFolder('C:\\Users\\me\\runs\\r1\\')).toBe('C:\\Users\\me\\runs\\r1\\export');
  });
});
