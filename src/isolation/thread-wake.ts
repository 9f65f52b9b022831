/** The Wake of a thread worker's channel: Atomics on its SharedArrayBuffer, and the CPU probe. */
import { atomicsWake, type Wake } from '../scheduler/wake.js';
import { currentCpu } from './current-cpu.js';

export const threadWake: Wake = { ...atomicsWake, cpu: currentCpu };
