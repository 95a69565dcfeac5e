// The setup every renderer page test shares, said once: a fresh studio home,
// the real StudioService in this process behind the preload bridge the
// desktop app has, the page component loaded only after that bridge is set
// (the app's api module picks the bridge when it is first loaded), the
// bundled demo's paths, and the page mounted into the document, unmounted
// after each test. What differs between files is explicit in the options:
// the folders the service may browse, the GPUs the form is built for, a
// wrapper around the bridge, and which component.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mount, unmount, type Component } from 'svelte';
import { afterAll, afterEach, beforeAll } from 'vitest';

import type { DemoPaths, PreloadBridge } from '../../../electron/api/contract.js';
import type { DeviceInfo } from '../../../electron/engine/native.js';
import { createStudioService, type StudioService } from '../../../electron/service/service.js';
import { Studio } from '../state/studio.svelte.js';
import { demoPathsOf, serviceBridge } from './service-bridge.js';

// the props a Svelte component takes (svelte's own `mount` asks for this shape)
type PropsObject = Record<string, any>;

export interface PageHarnessOptions {
  /** the name the temp PEFT_STUDIO_HOME starts with (it is made now and removed after all tests) */
  homePrefix: string;
  /** the folders the service may browse (null: any), as createStudioService takes them */
  allowedRoots: string[] | null;
  /** the GPUs the Hyperparameters form is built for (none: the service's own answer) */
  gpus?: () => DeviceInfo[];
  /** wraps the bridge the page gets, e.g. to hold some calls back */
  bridge?: (bridge: PreloadBridge) => PreloadBridge;
  /** the page, imported by the test file: `() => import('./Train.svelte')` */
  load: () => Promise<{ default: unknown }>;
}

export interface PageHarness<Props> {
  /** the studio home folder (PEFT_STUDIO_HOME) */
  readonly home: string;
  /** the service and the demo: read them in tests and hooks, not at a file's top level */
  readonly service: StudioService;
  readonly demo: DemoPaths;
  /** mounts the page into a fresh element in the document and returns that element */
  mount(props: Props): HTMLElement;
  /** mounts another component the same way (it is unmounted after the test too) */
  mountComponent<Q extends PropsObject>(component: Component<Q>, props: Q): HTMLElement;
  /** unmounts what is mounted and empties the document, as after each test */
  unmount(): void;
}

// the first import of a page compiles it and its components: slow on a busy machine
const SETUP_TIMEOUT_MS = 60_000;

/** Registers the hooks (call it at a test file's top level) and returns the accessors. */
export function pageHarness<Props extends PropsObject>(options: PageHarnessOptions): PageHarness<Props> {
  const home = mkdtempSync(join(tmpdir(), options.homePrefix));
  process.env.PEFT_STUDIO_HOME = home;

  let service: StudioService | null = null;
  let demo: DemoPaths | null = null;
  let page: Component<Props> | null = null;
  let mounted: ReturnType<typeof mount> | null = null;

  beforeAll(async () => {
    service = createStudioService({ mode: 'browser', allowedRoots: options.allowedRoots });
    const bridge = serviceBridge(service, options.gpus ?? (() => []));
    // set before the page is loaded: the app's api module picks the bridge when it loads
    window.peftStudio = options.bridge ? options.bridge(bridge) : bridge;
    page = (await options.load()).default as Component<Props>;
    demo = await demoPathsOf(service);
  }, SETUP_TIMEOUT_MS);

  const unmountAll = (): void => {
    if (mounted) void unmount(mounted);
    mounted = null;
    document.body.innerHTML = '';
  };
  afterEach(unmountAll);

  afterAll(async () => {
    await service?.close();
    rmSync(home, { recursive: true, force: true });
  });

  const mountComponent = <Q extends PropsObject>(component: Component<Q>, props: Q): HTMLElement => {
    const root = document.createElement('div');
    document.body.append(root);
    mounted = mount(component, { target: root, props });
    return root;
  };

  const ready = <T>(value: T | null, what: string): T => {
    if (value === null) throw new Error(`the page harness's ${what} is read before its beforeAll has run`);
    return value;
  };

  return {
    home,
    get service() {
      return ready(service, 'service');
    },
    get demo() {
      return ready(demo, 'demo paths');
    },
    mount: (props) => mountComponent(ready(page, 'page'), props),
    mountComponent,
    unmount: unmountAll,
  };
}

/** A studio as the Hyperparameters step finds it: the demo model, LoRA, and the demo's task data chosen. */
export function demoLoraStudio(demo: DemoPaths): Studio {
  const studio = new Studio();
  studio.model = demo.model;
  studio.method = 'lora';
  studio.data = demo.datasets.find((d) => d.name === 'task-train')!.path;
  return studio;
}
