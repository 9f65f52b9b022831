/** `caphost serve`: a controller from a config file behind an HTTP server speaking KServe v2. */
import { parseArgs } from 'node:util';
import { Controller } from '../controller/controller.js';
import { isCaphostError } from '../errors.js';
import { type LogLevel, type Logger, createConsoleLogger, levelRank, parseLogLevel } from '../logger.js';
import { loadConfigFile } from './config-file.js';
import { InferenceServer } from './inference-server.js';

export const usage = `usage: caphost serve [--config PATH] [options]

Starts the workers a config file names and serves them over HTTP:
  GET  /v2/health/live                 200 while the process runs
  GET  /v2/health/ready                200 once every worker finished setup and every capability
                                       has a live worker; 400 (with a reason) otherwise
  GET  /v2                             server metadata
  GET  /v2/models/{name}[/versions/{v}]          model metadata (tensors = message fields)
  GET  /v2/models/{name}[/versions/{v}]/ready    200 ready / 400 not ready
  POST /v2/models/{name}[/versions/{v}]/infer    KServe v2 infer, JSON tensors or binary tensor
                                       data (Inference-Header-Content-Length)
  POST /caphost/v1/capabilities/{capability}     plain JSON message in, JSON message out
                                       (bytes as base64; Caphost-Deadline-Ms header = deadline)
  GET  /caphost/v1/capabilities        what the workers provide
  GET  /metrics                        Prometheus text format
Infer takes Triton's parameters.timeout (µs) as the call's deadline and parameters.priority.
Errors are {"error": message, "code": CAPHOST_CODE}. SIGTERM or SIGINT drains: new requests get 503,
in-flight ones have the grace period, the rest fail with CONTROLLER_CLOSED; a second signal exits at once.

Options:
  -c, --config PATH     the config file, an ES module whose default export is
                        { workers, ...Controller.start options, server: { port, host, maxBodyBytes,
                        drainGraceMs, keepAliveTimeoutMs, requestTimeoutMs, defaultDeadlineMs,
                        callRoute, name }, models: { "cap@1": { name, version } } }.
                        Worker module paths are relative to the file. Default ./caphost.config.js
  -p, --port N          listen on port N (overrides server.port; 0 picks a free port)
      --host ADDR       listen on ADDR (overrides server.host; 0.0.0.0 for every interface)
      --grace-ms N      drain grace period on SIGTERM, in ms (overrides server.drainGraceMs)
      --log-level LEVEL debug, info, warn, error or silent (overrides the config's logger level and
                        CAPHOST_LOG); logs go to stderr, the listening URL to stdout
      --check           load and validate the config, print what would be served, and exit
  -h, --help            this text`;

function fail(message: string, code: number): number {
  process.stderr.write(`caphost serve: ${message}\n`);
  return code;
}

function nonNegativeInteger(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${flag} must be a non-negative integer, got ${JSON.stringify(value)}`);
  return n;
}

export async function run(argv: readonly string[]): Promise<number> {
  let flags;
  let port: number | undefined;
  let graceMs: number | undefined;
  try {
    flags = parseArgs({
      args: [...argv],
      options: {
        config: { type: 'string', short: 'c', default: 'caphost.config.js' },
        port: { type: 'string', short: 'p' },
        host: { type: 'string' },
        'grace-ms': { type: 'string' },
        'log-level': { type: 'string' },
        check: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
      strict: true,
      allowPositionals: false,
    }).values;
    port = nonNegativeInteger('--port', flags.port);
    if (port !== undefined && port > 65535) throw new Error(`--port must be at most 65535, got ${port}`);
    graceMs = nonNegativeInteger('--grace-ms', flags['grace-ms']);
    if (flags['log-level'] !== undefined && !(flags['log-level'] in levelRank)) throw new Error(`--log-level must be one of ${Object.keys(levelRank).join(', ')}`);
  } catch (err) {
    return fail(`${(err as Error).message}\n${usage}`, 2);
  }
  if (flags.help) {
    process.stdout.write(`${usage}\n`);
    return 0;
  }

  let config;
  try {
    config = await loadConfigFile(flags.config!);
  } catch (err) {
    return fail(isCaphostError(err) ? err.message : String(err), 1);
  }
  const server = { ...config.server, port: port ?? config.server.port, host: flags.host ?? config.server.host, drainGraceMs: graceMs ?? config.server.drainGraceMs };
  const configured = config.controller.logger;
  const level: LogLevel = (flags['log-level'] as LogLevel | undefined) ?? (typeof configured === 'string' ? configured : parseLogLevel(process.env['CAPHOST_LOG'], 'info'));
  const logger: Logger = configured !== undefined && typeof configured === 'object' ? configured : createConsoleLogger(level);

  if (flags.check) {
    const models = config.models?.map((m) => `${m.name ?? m.capability.split('@')[0]} ← ${m.capability}`).join(', ') ?? 'every capability, under its own name';
    process.stdout.write(`${config.file}: valid; ${config.controller.workers.length} worker entr${config.controller.workers.length === 1 ? 'y' : 'ies'}; models: ${models}; would listen on ${server.host}:${server.port}\n`);
    return 0;
  }

  let http: InferenceServer;
  try {
    http = await InferenceServer.listen({ ...server, models: config.models, logger });
  } catch (err) {
    return fail(isCaphostError(err) ? err.message : String(err), 1);
  }
  process.stdout.write(`caphost serve: listening on ${http.url}\n`);
  logger.info(`listening on ${http.url}; not ready until every worker has finished setup`);

  let stopping = false;
  let stopped!: () => void;
  const done = new Promise<void>((resolve) => (stopped = resolve));
  const stop = (why: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info(`${why}: draining for up to ${server.drainGraceMs} ms`);
    void http.close({ graceMs: server.drainGraceMs }).then(stopped);
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) {
      logger.warn(`${signal} again: exiting without waiting for the drain`);
      process.exit(1);
    }
    stop(signal);
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);

  let exitCode = 0;
  try {
    const controller = await Controller.start({ ...config.controller, logger });
    if (stopping) await controller.close({ graceMs: 0 });
    else {
      try {
        http.attach(controller);
      } catch (err) {
        await controller.close({ graceMs: 0 });
        throw err;
      }
    }
  } catch (err) {
    exitCode = fail(`the controller did not start: ${err instanceof Error ? err.message : String(err)}`, 1);
    stop('start failed');
  }
  await done;
  process.off('SIGTERM', onSignal);
  process.off('SIGINT', onSignal);
  logger.info('stopped');
  return exitCode;
}
