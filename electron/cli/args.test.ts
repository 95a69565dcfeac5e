import { describe, expect, it } from 'vitest';
import { formatHelp, parseArgs, UsageError, type CommandSpec } from './args.js';

const spec: CommandSpec = {
  name: 'demo',
  summary: 'A demo command.',
  positionals: [],
  flags: [
    { name: 'model', kind: 'string', help: 'model folder', valueName: 'DIR' },
    { name: 'rank', kind: 'int', help: 'LoRA rank', min: 1, defaultText: '8' },
    { name: 'lr', kind: 'number', help: 'learning rate', min: 0 },
    { name: 'dropout', kind: 'number', help: 'dropout', min: 0, below: 1 },
    { name: 'rslora', kind: 'boolean', help: 'rank-stabilized scaling' },
    { name: 'method', kind: 'string', help: 'method', choices: ['lora', 'full'] },
    { name: 'targets', kind: 'list', help: 'modules', choices: ['q_proj', 'v_proj'] },
  ],
};

describe('argument parser', () => {
  it('parses every kind, in both --flag value and --flag=value forms', () => {
    const a = parseArgs(spec, ['--model', 'm', '--rank=4', '--lr', '1e-3', '--rslora', '--targets', 'q_proj,v_proj', '--method=full']);
    expect(a.string('model')).toBe('m');
    expect(a.number('rank')).toBe(4);
    expect(a.number('lr')).toBe(1e-3);
    expect(a.boolean('rslora')).toBe(true);
    expect(a.boolean('other')).toBe(false);
    expect(a.list('targets')).toEqual(['q_proj', 'v_proj']);
    expect(a.string('method')).toBe('full');
    expect(a.has('dropout')).toBe(false);
    expect(a.number('dropout')).toBeUndefined();
  });

  it('an unknown flag names itself and lists the valid ones', () => {
    expect(() => parseArgs(spec, ['--rnak', '4'])).toThrow(UsageError);
    expect(() => parseArgs(spec, ['--rnak', '4'])).toThrow(
      "unknown flag --rnak for 'demo'. Valid flags: --model, --rank, --lr, --dropout, --rslora, --method, --targets, --help",
    );
    expect(() => parseArgs(spec, ['-x'])).toThrow(/unknown flag -x/);
  });

  it('numbers are validated with the flag name', () => {
    expect(() => parseArgs(spec, ['--rank', 'abc'])).toThrow("--rank expects an integer >= 1, got 'abc'");
    expect(() => parseArgs(spec, ['--rank', '2.5'])).toThrow(/--rank expects an integer/);
    expect(() => parseArgs(spec, ['--rank', '0'])).toThrow('--rank expects an integer >= 1, got 0');
    expect(() => parseArgs(spec, ['--lr', '-1'])).toThrow('--lr expects a number >= 0, got -1');
    expect(() => parseArgs(spec, ['--lr', '1e-3x'])).toThrow(/--lr expects a number/);
    const hinted = { name: 'hinted', summary: '', positionals: [], flags: [{ name: 'warm', kind: 'int' as const, min: 0, help: '', refusedHint: (raw: string) => (raw === '0.5' ? 'try --ratio 0.5' : undefined) }] };
    expect(() => parseArgs(hinted, ['--warm', '0.5'])).toThrow("--warm expects an integer >= 0, got '0.5'; try --ratio 0.5");
    expect(() => parseArgs(hinted, ['--warm', '-1'])).toThrow(/^--warm expects an integer >= 0, got -1$/);
    expect(() => parseArgs(spec, ['--dropout', '1'])).toThrow('--dropout expects a number >= 0 and < 1, got 1');
    expect(() => parseArgs(spec, ['--lr', ''])).toThrow(/--lr expects a number/);
  });

  it('choices, missing values, repeats and switches with values are errors', () => {
    expect(() => parseArgs(spec, ['--method', 'qlora'])).toThrow("--method must be one of lora, full; got 'qlora'");
    expect(() => parseArgs(spec, ['--targets', 'q_proj,o_proj'])).toThrow(/--targets must be one of q_proj, v_proj; got 'o_proj'/);
    expect(() => parseArgs(spec, ['--model'])).toThrow('--model needs a value (DIR)');
    expect(() => parseArgs(spec, ['--model', '--rank', '3'])).toThrow('--model needs a value (DIR)');
    expect(() => parseArgs(spec, ['--rank', '3', '--rank', '4'])).toThrow('--rank is given more than once');
    expect(() => parseArgs(spec, ['--rslora=true'])).toThrow(/is a switch and takes no value/);
    expect(() => parseArgs(spec, ['stray'])).toThrow(/takes 0 positional arguments; unexpected: stray/);
  });

  it('positionals are required and counted', () => {
    const withPos: CommandSpec = { ...spec, name: 'inspect', positionals: [{ name: 'modelDir', help: 'folder' }] };
    expect(parseArgs(withPos, ['m', '--rank', '2']).positionals).toEqual(['m']);
    expect(() => parseArgs(withPos, [])).toThrow("'inspect' needs <modelDir>");
    expect(parseArgs(withPos, ['--', '--odd-name']).positionals).toEqual(['--odd-name']);
  });

  it('requireString names the missing flag', () => {
    expect(() => parseArgs(spec, []).requireString('model')).toThrow('demo needs --model');
  });

  it('--help anywhere asks for help and skips validation', () => {
    const a = parseArgs(spec, ['--rank', 'bad', '--help']);
    expect(a.help).toBe(true);
    const text = formatHelp(spec);
    expect(text).toContain('Usage: peft-studio demo [options]');
    expect(text).toMatch(/--rank N\s+LoRA rank \(default: 8\)/);
    expect(text).toMatch(/--method VALUE\s+method \(one of: lora, full\)/);
    expect(text).toMatch(/--help\s+show this help/);
  });
});
