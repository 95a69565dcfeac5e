// --device, shared by the commands that open an engine (train, eval,
// generate): where the engine computes. 'auto' (the default) takes the first
// NVIDIA GPU the engine can use, else the CPU (electron/engine/device.ts).
import { UsageError, type FlagSpec, type ParsedArgs } from './args.js';
import { DEVICE_REQUEST_HELP, isDeviceRequest, type DeviceRequest } from '../engine/device.js';

export const DEVICE_FLAG: FlagSpec = {
  name: 'device', kind: 'string', valueName: 'auto|cpu|cuda|cuda:N',
  help: 'where the engine computes: auto picks the first NVIDIA GPU when there is one, else the CPU', defaultText: 'auto',
};

/** --device as a request ('auto' when absent); a bad value is a usage error naming the accepted ones. */
export function deviceFromArgs(args: ParsedArgs): DeviceRequest {
  const text = args.string('device') ?? 'auto';
  if (!isDeviceRequest(text)) throw new UsageError(`--device: unknown device '${text}'; use ${DEVICE_REQUEST_HELP}`, args.command);
  return text;
}
