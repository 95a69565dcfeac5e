// The preload bridge the renderer tests give the app: every call goes to a
// real StudioService through JSON (as over IPC), except that the form's
// specs can be those of a GPU machine (`gpus()`, when it lists any), so the
// GPU choices are tested on a machine without one.
import type { ApiResult, DemoPaths, HyperparametersRequest, PreloadBridge } from '../../../electron/api/contract.js';
import type { DeviceInfo } from '../../../electron/engine/native.js';
import { openModelFolder } from '../../../electron/models/folder.js';
import { hyperparameterSpecs } from '../../../electron/service/hyperparameters.js';
import type { StudioService } from '../../../electron/service/service.js';

/** A value as it crosses the bridge: through JSON. */
export const wire = <T>(value: T): T => JSON.parse(JSON.stringify(value)) as T;

export function serviceBridge(service: StudioService, gpus: () => DeviceInfo[]): PreloadBridge {
  return {
    async call(method, request) {
      if (method === 'hyperparameters' && gpus().length > 0) {
        const { model, method: trainMethod } = request as HyperparametersRequest;
        const value = hyperparameterSpecs(trainMethod, (await openModelFolder(model)).spec, gpus());
        return wire({ ok: true, value } as ApiResult<typeof method>);
      }
      return wire(await service.call(method, wire(request)));
    },
    onEvent: (listener) => service.onEvent((e) => listener(wire(e))),
  };
}

/** The bundled demo's model and datasets, as the service gives them (a test cannot go on without them). */
export async function demoPathsOf(service: StudioService): Promise<DemoPaths> {
  const paths = await service.call('demoPaths', {});
  if (!paths.ok) throw new Error(JSON.stringify(paths.error));
  return paths.value as DemoPaths;
}

/**
 * A bridge that passes every call on and records it, its request as it went
 * over the bridge, into `sent` (page tests asserting what a page asked for).
 */
export function recordingBridge(sent: { method: string; request: unknown }[]): (bridge: PreloadBridge) => PreloadBridge {
  return (bridge) => ({
    ...bridge,
    call: (async (method, request) => {
      sent.push({ method, request: wire(request) });
      return bridge.call(method, request);
    }) as PreloadBridge['call'],
  });
}
