import type { ResourceLimits } from 'node:worker_threads';
import type { ExecutionStrategy } from './execution-strategy.js';
import { ProcessStrategy } from './process-strategy.js';
import type { SandboxProfile } from './sandbox/sandbox-profile.js';
import { ThreadStrategy } from './thread-strategy.js';

export type StrategyChoice =
  | { readonly strategy: 'thread'; readonly resourceLimits: ResourceLimits | undefined }
  | { readonly strategy: 'process'; readonly resourceLimits: ResourceLimits | undefined; readonly sandbox: SandboxProfile };

/** The execution strategy for one worker entry. A process strategy re-checks its sandbox here. */
export function createStrategy(entry: StrategyChoice): ExecutionStrategy {
  switch (entry.strategy) {
    case 'thread':
      return new ThreadStrategy(entry.resourceLimits);
    case 'process':
      return new ProcessStrategy({ profile: entry.sandbox, resourceLimits: entry.resourceLimits });
  }
}
