// One StudioService per service test file, over a studio home of its own:
// opened before the file's tests (the bundled demo's paths read), closed
// after them, every event it emits kept (for the run tests).
import { afterAll, beforeAll } from 'vitest';
import type { ApiEvent, ApiMethod, DemoPaths } from '../api/contract.js';
import { createStudioService, type StudioService } from '../service/service.js';
import { tempDir } from './e2e-fixtures.js';
import { callOk } from './service-calls.js';

export interface ServiceFixture {
  /** the service (once the file's tests run) */
  readonly service: StudioService;
  /** the bundled demo's model and datasets */
  readonly demo: DemoPaths;
  /** every event the service emitted, in order */
  readonly events: ApiEvent[];
  /** a call that must succeed: its value */
  ok<T>(method: ApiMethod, request: unknown): Promise<T>;
  /** the bundled task dataset's path */
  taskTrain(): string;
}

/** Call at the top of a test file: its home is a new temp folder named from `homePrefix`. */
export function serviceForTests(homePrefix: string): ServiceFixture {
  process.env.PEFT_STUDIO_HOME = tempDir(homePrefix);
  let service: StudioService | null = null;
  let demo: DemoPaths | null = null;
  const events: ApiEvent[] = [];
  beforeAll(async () => {
    service = createStudioService({ mode: 'browser', allowedRoots: null });
    service.onEvent((e) => events.push(e));
    demo = await callOk<DemoPaths>(service, 'demoPaths', {});
  });
  afterAll(() => service?.close());
  const fixture: ServiceFixture = {
    get service() {
      if (!service) throw new Error('serviceForTests: the service opens before the tests (beforeAll)');
      return service;
    },
    get demo() {
      if (!demo) throw new Error('serviceForTests: the demo paths are read before the tests (beforeAll)');
      return demo;
    },
    events,
    ok: <T>(method: ApiMethod, request: unknown) => callOk<T>(fixture.service, method, request),
    taskTrain: () => fixture.demo.datasets.find((d) => d.name === 'task-train')!.path,
  };
  return fixture;
}
