// Where an export goes when the user does not say.
import { describe, expect, it } from 'vitest';
import { defaultExportFolder, notExportableYet } from './export-page.svelte.js';

describe('defaultExportFolder', () => {
  it('is beside the run folder (the service refuses an export inside its source), named after the run', () => {
    expect(defaultExportFolder('/home/me/.peft-studio/runs/20261128-220958-lora')).toBe('/home/me/.peft-studio/runs/20261128-220958-lora-export');
    expect(defaultExportFolder('/data/run/')).toBe('/data/run-export');
    expect(defaultExportFolder('C:\\Users\\me\\runs\\r1')).toBe('C:\\Users\\me\\runs\\r1-export');
    expect(defaultExportFolder('C:\\Users\\me\\runs\\r1\\')).toBe('C:\\Users\\me\\runs\\r1-export');
  });
  it('numbers the later defaults from 2', () => {
    expect([1, 2, 3].map((n) => defaultExportFolder('/r/run', n))).toEqual(['/r/run-export', '/r/run-export-2', '/r/run-export-3']);
  });
});

describe('notExportableYet', () => {
  it('lets a finished run (or a folder that is no run) be exported', () => {
    expect(notExportableYet('finished')).toBeNull();
    expect(notExportableYet(null)).toBeNull();
  });
  it('says in the app\'s words why a run that has not finished cannot be exported', () => {
    expect(notExportableYet('running')).toBe('The run is still training: export it once it has finished. Try it below meanwhile (it uses the newest checkpoint).');
    expect(notExportableYet('interrupted')).toBe('The run was interrupted before its last step: resume it from Runs, and export it once it has finished.');
    expect(notExportableYet('failed')).toBe('The run failed before its last step: resume it from Runs, and export it once it has finished.');
    for (const s of ['running', 'paused', 'cancelled', 'failed', 'interrupted', 'missing'] as const) expect(notExportableYet(s)).not.toMatch(/--|train |resume [/]/);
  });
});
