/**
 * Where the calling thread runs now, from the native addon; -1 when the OS cannot say cheaply
 * (macOS) or the addon did not load, and then every hand-off spins as it would without it.
 */
import { loadCoreBinding } from '../native/core-binding.js';

let probe: (() => number) | undefined;

export function currentCpu(): number {
  if (probe === undefined) {
    try {
      probe = loadCoreBinding().currentCpu;
    } catch {
      probe = () => -1;
    }
  }
  return probe();
}
