import type { ResourceLimits } from 'node:worker_threads';
import type { ExecutionStrategy } from './execution-strategy.js';
import { ThreadStrategy } from './thread-strategy.js';

export interface StrategyChoice {
  readonly strategy: 'thread';
  readonly resourceLimits: ResourceLimits | undefined;
}

/** The execution strategy for one worker entry. */
export function createStrategy(entry: StrategyChoice): ExecutionStrategy {
  switch (entry.strategy) {
    case 'thread':
      return new ThreadStrategy(entry.resourceLimits);
  }
}
