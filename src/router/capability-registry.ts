import { CaphostError, ErrorCode } from '../errors.js';
import { type CapabilityId, type CapabilityRequest, formatCapabilityId, parseCapabilityRequest } from './capability-ref.js';
import type { BatchPolicy } from './batch-policy.js';
import type { CapabilitySchema } from './capability-schema.js';
import { type RouteEntry, candidatesFor } from './route-table.js';

/** A route with what the call path needs to use it. */
export interface CapabilityRoute extends RouteEntry {
  /** `name@major.minor`. */
  readonly key: string;
  readonly schema: CapabilitySchema;
  /** Index of the capability in its provider's own table (travels in the request slot). */
  readonly index: number;
  /** Whether the provider maps the controller's shared arena (arena views may cross by reference). */
  readonly sharesArena: boolean;
  /** Set when the provider's handler takes batches. */
  readonly batch: BatchPolicy | undefined;
}

/** A resolved request: its candidates in static order, cached per request text. */
export interface RouteGroup {
  readonly text: string;
  readonly request: CapabilityRequest;
  readonly candidates: readonly CapabilityRoute[];
  /** Every candidate maps the shared arena, so inputs may carry arena references. */
  readonly sharesArena: boolean;
  /** Every candidate takes batches: calls wait in the scheduler to be sent as batches (each route's own policy applies). */
  readonly batched: boolean;
}

export interface CapabilityDescriptor {
  readonly capability: string;
  readonly name: string;
  readonly version: string;
  readonly providers: number;
  readonly input: string;
  readonly output: string;
}

/** The routing table: which provider offers which capability. Routing itself is route-table's pure functions. */
export class CapabilityRegistry {
  private readonly entries: CapabilityRoute[] = [];
  private readonly groups = new Map<string, RouteGroup>();
  private readonly localGroups = new Map<string, RouteGroup>();

  add(provider: number, remote: boolean, sharesArena: boolean, capabilities: ReadonlyArray<{ id: CapabilityId; schema: CapabilitySchema; batch?: BatchPolicy | undefined }>): void {
    capabilities.forEach(({ id, schema, batch }, index) => {
      this.entries.push({ provider, capability: id, remote, key: formatCapabilityId(id), schema, index, sharesArena, batch });
    });
    this.groups.clear();
    this.localGroups.clear();
  }

  remove(provider: number): void {
    for (let i = this.entries.length - 1; i >= 0; i--) if (this.entries[i]!.provider === provider) this.entries.splice(i, 1);
    this.groups.clear();
    this.localGroups.clear();
  }

  get table(): readonly CapabilityRoute[] {
    return this.entries;
  }

  /** Resolves request text to its candidates, or throws CAPABILITY_NOT_FOUND saying what exists. */
  group(text: string): RouteGroup {
    const cached = this.groups.get(text);
    if (cached !== undefined) return cached;
    const request = parseCapabilityRequest(text);
    const candidates = candidatesFor(this.entries, request) as CapabilityRoute[];
    if (candidates.length === 0) {
      const sameName = [...new Set(this.entries.filter((e) => e.capability.name === request.name).map((e) => e.key))].sort();
      const hint = sameName.length > 0 ? `; versions provided: ${sameName.join(', ')}` : `; capabilities provided: ${this.names().join(', ') || 'none'}`;
      throw new CaphostError(ErrorCode.CAPABILITY_NOT_FOUND, `no worker provides capability "${text}"${hint}`, {
        details: { capability: text },
      });
    }
    const group: RouteGroup = { text, request, candidates, sharesArena: candidates.every((c) => c.sharesArena), batched: candidates.every((c) => c.batch !== undefined) };
    this.groups.set(text, group);
    return group;
  }

  /** Like group, over local providers only: for calls that arrive from other nodes, which must not travel on. */
  localGroup(text: string): RouteGroup {
    const cached = this.localGroups.get(text);
    if (cached !== undefined) return cached;
    const request = parseCapabilityRequest(text);
    const candidates = candidatesFor(this.entries.filter((e) => !e.remote), request) as CapabilityRoute[];
    if (candidates.length === 0) {
      throw new CaphostError(ErrorCode.CAPABILITY_NOT_FOUND, `no local worker provides capability "${text}"`, { details: { capability: text } });
    }
    const group: RouteGroup = { text, request, candidates, sharesArena: candidates.every((c) => c.sharesArena), batched: candidates.every((c) => c.batch !== undefined) };
    this.localGroups.set(text, group);
    return group;
  }

  private names(): string[] {
    return [...new Set(this.entries.map((e) => e.key))].sort();
  }

  describe(): CapabilityDescriptor[] {
    const byKey = new Map<string, CapabilityRoute[]>();
    for (const entry of this.entries) {
      const list = byKey.get(entry.key) ?? [];
      list.push(entry);
      byKey.set(entry.key, list);
    }
    return [...byKey.entries()]
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([key, list]) => {
        const first = list[0]!;
        return {
          capability: key,
          name: first.capability.name,
          version: `${first.capability.major}.${first.capability.minor}`,
          providers: list.length,
          input: first.schema.input.type.fullName.replace(/^\./, ''),
          output: first.schema.output.type.fullName.replace(/^\./, ''),
        };
      });
  }
}
