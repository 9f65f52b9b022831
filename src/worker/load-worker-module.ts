import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { CaphostError, ErrorCode } from '../errors.js';
import { type CapabilityId, parseCapabilityId } from '../router/capability-ref.js';
import { type CapabilitySchema, type SchemaSource, compileSchema } from '../router/capability-schema.js';
import { type BatchPolicy, normaliseBatchPolicy } from '../router/batch-policy.js';
import { type CapabilityDefinition, type DefinedWorker, isDefinedWorker } from './define-worker.js';

export interface LoadedCapability {
  readonly key: string;
  readonly id: CapabilityId;
  readonly definition: CapabilityDefinition;
  readonly source: SchemaSource;
  readonly schema: CapabilitySchema;
  /** Set for a batched capability: its handler takes an array of inputs. */
  readonly batch: BatchPolicy | undefined;
}

export interface LoadedWorker {
  readonly definition: DefinedWorker;
  readonly capabilities: readonly LoadedCapability[];
}

function isProtoPath(proto: string): boolean {
  return !proto.includes('{') && proto.trim().endsWith('.proto');
}

async function readProto(moduleUrl: URL, key: string, proto: string): Promise<string> {
  if (!isProtoPath(proto)) return proto;
  const url = new URL(proto.trim(), moduleUrl);
  try {
    return await readFile(url, 'utf8');
  } catch (cause) {
    throw new CaphostError(
      ErrorCode.INVALID_WORKER,
      `capability ${key}: cannot read schema.proto file ${fileURLToPath(url)} (${(cause as NodeJS.ErrnoException).code ?? cause}); the path is relative to the worker module`,
      { cause, details: { capability: key, path: fileURLToPath(url) } },
    );
  }
}

/** Imports a worker module, checks its default export and compiles every capability's schema. */
export async function loadWorkerModule(moduleUrl: URL): Promise<LoadedWorker> {
  let namespace: { default?: unknown };
  try {
    namespace = (await import(moduleUrl.href)) as { default?: unknown };
  } catch (cause) {
    throw new CaphostError(ErrorCode.INVALID_WORKER, `cannot import worker module ${moduleUrl.href}: ${(cause as Error).message}`, {
      cause,
      details: { module: moduleUrl.href },
    });
  }
  const definition = namespace.default;
  if (!isDefinedWorker(definition)) {
    throw new CaphostError(
      ErrorCode.INVALID_WORKER,
      `worker module ${moduleUrl.href} must \`export default defineWorker({ capabilities })\` (import { defineWorker } from 'caphost/worker')`,
      { details: { module: moduleUrl.href } },
    );
  }
  const capabilities: LoadedCapability[] = [];
  for (const [key, cap] of Object.entries(definition.capabilities)) {
    let id: CapabilityId;
    try {
      id = parseCapabilityId(key);
    } catch (cause) {
      throw new CaphostError(ErrorCode.INVALID_WORKER, `worker module ${moduleUrl.href}: ${(cause as Error).message}`, { cause });
    }
    const source: SchemaSource = { proto: await readProto(moduleUrl, key, cap.schema.proto), input: cap.schema.input, output: cap.schema.output };
    const batch = cap.batch === undefined ? undefined : normaliseBatchPolicy(cap.batch);
    capabilities.push({ key, id, definition: cap, source, schema: compileSchema(key, source), batch });
  }
  return { definition, capabilities };
}
