import { CaphostError, ErrorCode } from '../errors.js';
import type { ControllerOptions } from '../controller/controller-options.js';
import { joinPath } from './config-locator.js';

/** The `server` section of a config file. */
export interface ServerSection {
  /** TCP port; 0 picks a free one. Default 8000. */
  readonly port?: number;
  /** Address to listen on. Default '127.0.0.1'; '0.0.0.0' (or '::') to serve other hosts. */
  readonly host?: string;
  /** Largest request body accepted; larger ones get 413 PAYLOAD_TOO_LARGE. Default 16 MiB. */
  readonly maxBodyBytes?: number;
  /** On SIGTERM: how long in-flight requests may take before they are rejected. Default 10 000 ms. */
  readonly drainGraceMs?: number;
  /** How long an idle keep-alive connection stays open. Default 5 000 ms. */
  readonly keepAliveTimeoutMs?: number;
  /** Longest time to receive a whole request (headers and body). Default 60 000 ms. */
  readonly requestTimeoutMs?: number;
  /** Deadline of calls whose request sets none (parameters.timeout, in µs). Default: none. */
  readonly defaultDeadlineMs?: number;
  /** Serve POST /caphost/v1/capabilities/{capability} (plain JSON messages, any capability). Default true. */
  readonly callRoute?: boolean;
  /** The server name in GET /v2. Default 'caphost'. */
  readonly name?: string;
}

/** How one capability appears as a KServe model. */
export interface ModelMapping {
  /** The model name in /v2/models/{name}. Default: the capability's name (`embed.text`). */
  readonly name?: string;
  /** The model version. Default: the version the capability resolves to (`1.0`). */
  readonly version?: string;
}

/**
 * A `caphost serve` config file's default export: Controller.start options, plus the HTTP
 * server and the capability → model mapping. Without `models`, every capability is a model.
 */
export interface ServeConfig extends ControllerOptions {
  readonly server?: ServerSection;
  /** Keyed by capability request (`embed.text@1`). */
  readonly models?: Readonly<Record<string, ModelMapping>>;
}

export interface ResolvedServerSection {
  readonly port: number;
  readonly host: string;
  readonly maxBodyBytes: number;
  readonly drainGraceMs: number;
  readonly keepAliveTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly defaultDeadlineMs: number | undefined;
  readonly callRoute: boolean;
  readonly name: string;
}

export interface ResolvedModelMapping {
  readonly capability: string;
  readonly name: string | undefined;
  readonly version: string | undefined;
}

/** A config error: names the field (details.option), so the loader can add the file line. */
export function configError(field: string, message: string): CaphostError {
  return new CaphostError(ErrorCode.INVALID_ARGUMENT, `${field} ${message}`, { details: { option: field } });
}

function shown(value: unknown): string {
  return JSON.stringify(value) ?? String(value);
}

function integer(field: string, value: unknown, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw configError(field, `must be an integer from ${min} to ${max}, got ${shown(value)}`);
  }
  return value;
}

function text(field: string, value: unknown, fallback: string): string {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || value.length === 0) throw configError(field, `must be a non-empty string, got ${shown(value)}`);
  return value;
}

function checkKeys(field: string, value: object, known: readonly string[]): void {
  for (const key of Object.keys(value)) {
    if (!known.includes(key)) {
      throw configError(joinPath(field, key), `is not a field of ${field}; its fields are ${known.join(', ')}`);
    }
  }
}

const SERVER_FIELDS = ['port', 'host', 'maxBodyBytes', 'drainGraceMs', 'keepAliveTimeoutMs', 'requestTimeoutMs', 'defaultDeadlineMs', 'callRoute', 'name'] as const;

export function resolveServerSection(section: unknown): ResolvedServerSection {
  if (section === undefined) section = {};
  if (section === null || typeof section !== 'object' || Array.isArray(section)) throw configError('server', `must be an object { port, host, maxBodyBytes, ... }, got ${shown(section)}`);
  checkKeys('server', section, SERVER_FIELDS);
  const s = section as ServerSection;
  if (s.callRoute !== undefined && typeof s.callRoute !== 'boolean') throw configError('server.callRoute', `must be true or false, got ${shown(s.callRoute)}`);
  return {
    port: integer('server.port', s.port, 8000, 0, 65535),
    host: text('server.host', s.host, '127.0.0.1'),
    maxBodyBytes: integer('server.maxBodyBytes', s.maxBodyBytes, 16 * 1024 * 1024, 1, 2 ** 31),
    drainGraceMs: integer('server.drainGraceMs', s.drainGraceMs, 10_000, 0),
    keepAliveTimeoutMs: integer('server.keepAliveTimeoutMs', s.keepAliveTimeoutMs, 5_000, 1),
    requestTimeoutMs: integer('server.requestTimeoutMs', s.requestTimeoutMs, 60_000, 1),
    defaultDeadlineMs: s.defaultDeadlineMs === undefined ? undefined : integer('server.defaultDeadlineMs', s.defaultDeadlineMs, 0, 1),
    callRoute: s.callRoute ?? true,
    name: text('server.name', s.name, 'caphost'),
  };
}

/** The model mapping; undefined means "every capability, under its own name". */
export function resolveModels(models: unknown): ResolvedModelMapping[] | undefined {
  if (models === undefined) return undefined;
  if (models === null || typeof models !== 'object' || Array.isArray(models)) {
    throw configError('models', `must be an object keyed by capability, e.g. { "embed.text@1": { name: "embedder", version: "1" } }, got ${shown(models)}`);
  }
  const out: ResolvedModelMapping[] = [];
  const names = new Map<string, string>();
  for (const [capability, mapping] of Object.entries(models as Record<string, unknown>)) {
    const field = joinPath('models', capability);
    if (!/^[^@\s]+@\d+(\.\d+)?$/.test(capability)) throw configError(field, 'is keyed by a capability request, name@major or name@major.minor');
    if (mapping === null || typeof mapping !== 'object' || Array.isArray(mapping)) throw configError(field, `must be an object { name, version }, got ${shown(mapping)}`);
    checkKeys(field, mapping, ['name', 'version']);
    const m = mapping as ModelMapping;
    const name = m.name === undefined ? undefined : text(`${field}.name`, m.name, '');
    if (name !== undefined && !/^[\w.-]+$/.test(name)) throw configError(`${field}.name`, `must use letters, digits, '_', '-' and '.' only (it is a URL path segment), got ${shown(name)}`);
    const version = m.version === undefined ? undefined : text(`${field}.version`, m.version, '');
    if (version !== undefined && !/^[\w.-]+$/.test(version)) throw configError(`${field}.version`, `must use letters, digits, '_', '-' and '.' only, got ${shown(version)}`);
    const modelName = name ?? capability.slice(0, capability.indexOf('@'));
    const clash = names.get(modelName);
    if (clash !== undefined) throw configError(`${field}.name`, `names model "${modelName}", which ${clash} already uses`);
    names.set(modelName, field);
    out.push({ capability, name, version });
  }
  return out;
}
