/**
 * Serves a process worker's device requests, as that worker's session: the child asks, the
 * controller does it with the child's rights only. A view is a descriptor of the buffer's
 * memory (read-only when the grant is), passed over the device socket; nothing else of the
 * controller's memory is reachable from the child.
 */
import { type CaphostError, ErrorCode } from '../errors.js';
import { Device } from '../device/device.js';
import { loadDeviceBinding, toCaphostError } from '../device/device-binding.js';
import type { DeviceRequestHandler } from '../isolation/device-messages.js';

/** A handler bound to one worker session on the controller's backend. */
export function deviceRequestHandler(controllerDevice: Device, session: string): DeviceRequestHandler {
  const binding = loadDeviceBinding();
  const device = new Device(binding, session, binding.openBackend(controllerDevice.backend), { index: controllerDevice.description.index });
  return async (request) => {
    try {
      switch (request.op) {
        case 'alloc': {
          const t = device.alloc(request.dtype, request.shape);
          return { reply: { ok: true, handle: t.handle } };
        }
        case 'free':
          device.free(request.handle);
          return { reply: { ok: true } };
        case 'check':
          return { reply: { ok: true, bytes: binding.check(session, request.handle, request.rights) } };
        case 'view': {
          const shared = binding.shareFd(session, request.handle, request.rights);
          return { reply: { ok: true, bytes: shared.bytes }, fd: shared.fd };
        }
        case 'run':
          await binding.run(session, request.handles, Float64Array.from(request.words));
          return { reply: { ok: true } };
        case 'write': {
          const data = Buffer.from(request.data, 'base64');
          await binding.write(session, request.handle, request.byteOffset, data);
          return { reply: { ok: true } };
        }
        case 'read': {
          const data = Buffer.alloc(request.length);
          await binding.read(session, request.handle, request.byteOffset, data);
          return { reply: { ok: true, data: data.toString('base64') } };
        }
      }
    } catch (err) {
      const e = toCaphostError(err) as CaphostError;
      return { reply: { ok: false, code: e.code ?? ErrorCode.NATIVE_ERROR, message: e.message } };
    }
  };
}
