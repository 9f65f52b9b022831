import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { CaphostError, ErrorCode, isCaphostError } from '../errors.js';
import { type ControllerOptions, resolveOptions } from '../controller/controller-options.js';
import { ConfigLocator } from './config-locator.js';
import { type ResolvedModelMapping, type ResolvedServerSection, type ServeConfig, resolveModels, resolveServerSection } from './server-config.js';

export interface LoadedConfig {
  readonly file: string;
  /** What Controller.start takes (worker module paths made relative to the config file). */
  readonly controller: ControllerOptions;
  readonly server: ResolvedServerSection;
  readonly models: ResolvedModelMapping[] | undefined;
}

/**
 * Loads a `caphost serve` config file (an ES module whose default export is the config object, or
 * a function returning it) and validates all of it before anything starts. Errors are
 * INVALID_ARGUMENT and read `file:line:column: field ...` where the field is written in the file.
 */
export async function loadConfigFile(path: string): Promise<LoadedConfig> {
  const file = resolve(path);
  let source: string;
  try {
    source = await readFile(file, 'utf8');
  } catch (cause) {
    throw new CaphostError(ErrorCode.INVALID_ARGUMENT, `cannot read the config file ${file}: ${(cause as Error).message}; pass --config PATH`, { cause, details: { file } });
  }
  let exported: unknown;
  try {
    const module = (await import(pathToFileURL(file).href)) as { default?: unknown };
    exported = module.default;
  } catch (cause) {
    throw new CaphostError(ErrorCode.INVALID_ARGUMENT, `the config file ${file} failed to load: ${(cause as Error).message}`, { cause, details: { file } });
  }
  const where = new ConfigLocator(source);
  const at = (err: unknown): unknown => locate(err, file, where);
  try {
    if (typeof exported === 'function') exported = await (exported as () => unknown)();
    if (exported === null || typeof exported !== 'object' || Array.isArray(exported)) {
      throw new CaphostError(ErrorCode.INVALID_ARGUMENT, `the config file ${file} must export default an object { workers, server, models, ... } (or a function returning one)`, { details: { file } });
    }
    const config = exported as ServeConfig;
    const { server, models, ...controller } = config;
    const options: ControllerOptions = { ...controller, workers: relativeToConfig(controller.workers, dirname(file)) };
    const resolvedServer = resolveServerSection(server);
    const resolvedModels = resolveModels(models);
    // Everything the controller will check, checked now, before the server listens or a worker starts.
    resolveOptions(options);
    return { file, controller: options, server: resolvedServer, models: resolvedModels };
  } catch (err) {
    throw at(err);
  }
}

/** Worker module paths in a config file are relative to the file, not to where the server was started. */
function relativeToConfig(workers: ControllerOptions['workers'], folder: string): ControllerOptions['workers'] {
  if (!Array.isArray(workers)) return workers;
  return workers.map((entry) => {
    if (entry === null || typeof entry !== 'object' || typeof entry.module !== 'string') return entry;
    const module = entry.module;
    if (module.startsWith('file:') || isAbsolute(module)) return entry;
    return { ...entry, module: resolve(folder, module) };
  });
}

/** Prefixes a field-naming config error with where the field is written. */
function locate(err: unknown, file: string, where: ConfigLocator): unknown {
  if (!isCaphostError(err, ErrorCode.INVALID_ARGUMENT)) return err;
  const option = err.details?.['option'];
  if (typeof option !== 'string' || option === '') return err;
  const field = option.replace(/^options\./, '');
  const position = where.find(field);
  const message = err.message.replace(/^options\./, '');
  const name = relative(process.cwd(), file) || file;
  const prefix = position === undefined ? `${name}: ` : `${name}:${position.line}:${position.column}: `;
  return new CaphostError(ErrorCode.INVALID_ARGUMENT, `${prefix}${message}`, {
    cause: err,
    details: { ...err.details, option: field, file, ...(position === undefined ? {} : { line: position.line, column: position.column }) },
  });
}
