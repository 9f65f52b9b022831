import { type CapabilityId, type CapabilityRequest, satisfies } from './capability-ref.js';

/** One provider of one capability: a local worker replica, or (later) a remote node. */
export interface RouteEntry {
  /** Unique and stable while the provider exists; the last tie-breaker. */
  readonly provider: number;
  readonly capability: CapabilityId;
  readonly remote: boolean;
}

/**
 * The load figure of each provider: calls it holds now. `Infinity` marks a provider that cannot
 * take a call at this moment (saturated, restarting); it stays a candidate for queued calls.
 */
export type LoadFigures = (provider: number) => number;

/** Candidate order that does not depend on load: local first, then the highest minor, then id. */
function staticOrder(a: RouteEntry, b: RouteEntry): number {
  if (a.remote !== b.remote) return a.remote ? 1 : -1;
  if (a.capability.minor !== b.capability.minor) return b.capability.minor - a.capability.minor;
  return a.provider - b.provider;
}

/**
 * The providers that can serve `request`, in static order. A request without a major takes the
 * highest major the table has, so that adding a major never silently splits traffic.
 */
export function candidatesFor(table: readonly RouteEntry[], request: CapabilityRequest): RouteEntry[] {
  let matches = table.filter((entry) => satisfies(entry.capability, request));
  if (request.major === undefined && matches.length > 0) {
    const top = Math.max(...matches.map((entry) => entry.capability.major));
    matches = matches.filter((entry) => entry.capability.major === top);
  }
  return matches.sort(staticOrder);
}

/**
 * Picks among candidates in static order: the first tier (same locality and minor) that has a
 * provider able to take the call, and within it the least loaded, ties to the lower id. A tier
 * whose providers are all at Infinity is passed over. Returns undefined when every one is.
 */
export function pickRoute(candidates: readonly RouteEntry[], loads: LoadFigures): RouteEntry | undefined {
  let best: RouteEntry | undefined;
  let bestLoad = Infinity;
  for (let i = 0; i < candidates.length; i++) {
    const entry = candidates[i]!;
    if (best !== undefined && (entry.remote !== best.remote || entry.capability.minor !== best.capability.minor)) break;
    const load = loads(entry.provider);
    if (load < bestLoad) {
      best = entry;
      bestLoad = load;
    }
  }
  return best;
}

/** The routing decision as one pure function of the table, the request and the load figures. */
export function resolveRoute(table: readonly RouteEntry[], request: CapabilityRequest, loads: LoadFigures): RouteEntry | undefined {
  return pickRoute(candidatesFor(table, request), loads);
}
