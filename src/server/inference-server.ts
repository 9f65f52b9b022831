import { readFileSync } from 'node:fs';
import type protobuf from 'protobufjs';
import type { CallOptions, Controller } from '../controller/controller.js';
import { CaphostError, ErrorCode } from '../errors.js';
import type { Logger } from '../logger.js';
import { parseCapabilityId, parseCapabilityRequest, satisfies } from '../router/capability-ref.js';
import { asCaphostError, errorBody, statusOf } from './http-errors.js';
import { inferResponse, parseInferRequest } from './kserve-infer.js';
import { type Model, ModelTable } from './model-table.js';
import { hasDeviceTensors, settleDeviceTensors, tensorsFromJson, tensorsToJson } from './tensor-mapping.js';
import { Http1Server, type Http1Request, type Http1Response } from './http1-server.js';
import type { ResolvedModelMapping, ResolvedServerSection } from './server-config.js';
import { ServerMetrics } from './server-metrics.js';

export interface InferenceServerOptions extends ResolvedServerSection {
  readonly models: readonly ResolvedModelMapping[] | undefined;
  readonly logger: Logger;
}

const VERSION = (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
const JSON_TYPE = 'application/json';
const MODELS = '/v2/models/';
/** node:http's default limit for the request line and headers. */
const MAX_HEADER_BYTES = 16 * 1024;
const CALL = '/caphost/v1/capabilities/';

type State = 'starting' | 'ready' | 'draining' | 'closed';

export interface Readiness {
  readonly ready: boolean;
  /** Why not, in words. */
  readonly reason?: string;
}

/**
 * `caphost serve`'s HTTP face: KServe v2 (health, metadata, infer with JSON and binary tensors), a
 * plain JSON route for any capability, and /metrics. It listens before the controller exists, so
 * liveness answers while workers start; readiness turns on once a controller is attached and every
 * capability has a live worker. Once attached, the server owns the controller: close() drains both.
 */
export class InferenceServer {
  readonly #options: InferenceServerOptions;
  readonly #http: Http1Server;
  readonly #metrics = new ServerMetrics();
  #controller: Controller | undefined;
  #models: ModelTable | undefined;
  #state: State = 'starting';
  #inFlight = 0;
  #closing: Promise<void> | undefined;
  readonly #serverMetadata: string;

  private constructor(options: InferenceServerOptions) {
    this.#options = options;
    this.#serverMetadata = JSON.stringify({ name: options.name, version: VERSION, extensions: ['binary_tensor_data', 'parameters'] });
    this.#http = new Http1Server(
      {
        maxHeaderBytes: MAX_HEADER_BYTES,
        maxBodyBytes: options.maxBodyBytes,
        headersTimeoutMs: Math.min(options.requestTimeoutMs, 60_000),
        requestTimeoutMs: options.requestTimeoutMs,
        keepAliveTimeoutMs: options.keepAliveTimeoutMs,
      },
      (req, res) => this.#onRequest(req, res),
      (res, status, message, tooLarge) => this.#refused(res, status, message, tooLarge),
    );
  }

  /** Starts listening (live, not ready). */
  static async listen(options: InferenceServerOptions): Promise<InferenceServer> {
    const server = new InferenceServer(options);
    try {
      await server.#http.listen(options.port, options.host);
    } catch (err) {
      throw new CaphostError(ErrorCode.INVALID_ARGUMENT, `cannot listen on ${options.host}:${options.port}: ${(err as Error).message}; change server.port or --port`, { cause: err, details: { option: 'server.port' } });
    }
    return server;
  }

  /** http://host:port of the listening socket. */
  get url(): string {
    const address = this.#http.address();
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    return `http://${host}:${address.port}`;
  }

  /** Serves `controller` from now on: builds the model table (config mistakes throw) and turns readiness on. */
  attach(controller: Controller): void {
    if (this.#state !== 'starting') throw new CaphostError(ErrorCode.CONTROLLER_CLOSED, 'the server is closing; no controller can be attached');
    this.#models = new ModelTable(controller, this.#options.models);
    this.#controller = controller;
    this.#metrics.attach(controller);
    this.#state = 'ready';
    this.#options.logger.info(`serving ${[...this.#models.models].map((m) => `${m.name} (${m.key})`).join(', ')} at ${this.url}`);
  }

  /** Readiness as GET /v2/health/ready reports it. */
  readiness(): Readiness {
    if (this.#state === 'starting') return { ready: false, reason: 'workers are still starting' };
    if (this.#state !== 'ready') return { ready: false, reason: 'the server is shutting down' };
    const stats = this.#controller!.stats();
    for (const c of this.#controller!.capabilities()) {
      if (!stats.workers.some((w) => live(w.state) && w.capabilities.includes(c.capability))) {
        return { ready: false, reason: `every worker providing ${c.capability} has failed and cannot be restarted` };
      }
    }
    return { ready: true };
  }

  /** A model is ready while some worker providing a version it resolves to runs (or is restarting). */
  #modelReady(model: Model): boolean {
    if (this.#state !== 'ready') return false;
    const request = parseCapabilityRequest(model.capability);
    return this.#controller!.stats().workers.some((w) => live(w.state) && w.capabilities.some((key) => satisfies(parseCapabilityId(key), request)));
  }

  /**
   * Stops accepting connections, lets in-flight requests finish for up to graceMs, rejects the rest
   * with CONTROLLER_CLOSED (503), closes the controller and every connection. Idempotent.
   */
  close(options: { graceMs?: number } = {}): Promise<void> {
    this.#closing ??= this.#close(options.graceMs ?? this.#options.drainGraceMs);
    return this.#closing;
  }

  async #close(graceMs: number): Promise<void> {
    this.#state = 'draining';
    const closed = new Promise<void>((resolve) => this.#http.close(() => resolve()));
    this.#http.closeIdleConnections();
    if (this.#controller !== undefined) await this.#controller.close({ graceMs });
    // Calls are settled now; give their responses a moment to be written.
    const until = Date.now() + 1000;
    while (this.#inFlight > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
    this.#http.closeAllConnections();
    this.#metrics.close();
    await closed;
    this.#state = 'closed';
  }

  /** A request the HTTP layer refused before routing: malformed, too large, or too slow to arrive. */
  #refused(res: Http1Response, status: number, message: string, tooLarge: number | undefined): void {
    const error =
      tooLarge !== undefined
        ? new CaphostError(ErrorCode.PAYLOAD_TOO_LARGE, `the request body is ${tooLarge} bytes or more, over this server's limit of ${this.#options.maxBodyBytes} (server.maxBodyBytes)`, { details: { limit: this.#options.maxBodyBytes } })
        : new CaphostError(status === 408 ? ErrorCode.DEADLINE_EXCEEDED : ErrorCode.INVALID_ARGUMENT, message);
    this.#send(res, 'other', status, JSON_TYPE, errorBody(error), undefined, true);
  }

  #onRequest(req: Http1Request, res: Http1Response): void {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    try {
      if (path.startsWith(MODELS)) return this.#modelRoute(req, res, path);
      if (path.startsWith(CALL)) return this.#callRoute(req, res, unescapePath(path.slice(CALL.length)));
      switch (path) {
        case '/v2/health/live':
          if (this.#method(req, res, 'GET', 'health')) this.#send(res, 'health', 200, JSON_TYPE, '{"live":true}');
          return;
        case '/v2/health/ready': {
          if (!this.#method(req, res, 'GET', 'health')) return;
          const r = this.readiness();
          this.#send(res, 'health', r.ready ? 200 : 400, JSON_TYPE, JSON.stringify(r.ready ? { ready: true } : { ready: false, reason: r.reason }));
          return;
        }
        case '/v2':
        case '/v2/':
          if (this.#method(req, res, 'GET', 'metadata')) this.#send(res, 'metadata', 200, JSON_TYPE, this.#serverMetadata);
          return;
        case '/metrics':
          if (this.#method(req, res, 'GET', 'metrics')) this.#sendMetrics(res);
          return;
        case '/caphost/v1/capabilities':
          if (this.#method(req, res, 'GET', 'metadata')) this.#send(res, 'metadata', 200, JSON_TYPE, JSON.stringify({ capabilities: this.#controller?.capabilities() ?? [] }));
          return;
      }
      this.#fail(res, 'other', new CaphostError(ErrorCode.INVALID_ARGUMENT, `no route ${req.method} ${path}; this server speaks KServe v2 under /v2 (health/live, health/ready, models/{name}[/versions/{v}][/ready|/infer]), /metrics and /caphost/v1/capabilities[/{capability}]`), 404);
    } catch (err) {
      const error = err instanceof URIError ? new CaphostError(ErrorCode.INVALID_ARGUMENT, `the path ${path} is not valid percent-encoding`) : asCaphostError(err);
      this.#fail(res, 'other', error);
    }
  }

  /** /v2/models/{name}[/versions/{version}][/ready|/infer] */
  #modelRoute(req: Http1Request, res: Http1Response, path: string): void {
    const parts = path.slice(MODELS.length).split('/');
    const name = unescapePath(parts[0]!);
    let version: string | undefined;
    let rest = 1;
    if (parts[1] === 'versions' && parts.length >= 3) {
      version = unescapePath(parts[2]!);
      rest = 3;
    }
    const action = parts.length === rest ? '' : parts.length === rest + 1 ? parts[rest]! : undefined;
    const route = action === 'infer' ? 'infer' : action === 'ready' ? 'health' : 'metadata';
    if (action !== '' && action !== 'ready' && action !== 'infer') {
      this.#fail(res, 'other', new CaphostError(ErrorCode.INVALID_ARGUMENT, `no route ${req.method} ${path}; a model has /v2/models/{name}[/versions/{v}], /ready and /infer`), 404);
      return;
    }
    if (!this.#method(req, res, action === 'infer' ? 'POST' : 'GET', route)) return;
    if (this.#models === undefined) {
      this.#fail(res, route, this.#notServing());
      return;
    }
    const model = this.#models.get(name, version);
    if (action === '') this.#send(res, route, 200, JSON_TYPE, model.metadataJson);
    else if (action === 'ready') {
      const ready = this.#modelReady(model);
      this.#send(res, route, ready ? 200 : 400, JSON_TYPE, JSON.stringify({ name: model.name, ready }));
    } else this.#infer(req, res, model);
  }

  #notServing(): CaphostError {
    return this.#state === 'starting'
      ? new CaphostError(ErrorCode.CAPABILITY_UNAVAILABLE, 'the server is starting: its workers have not finished setup; poll /v2/health/ready')
      : new CaphostError(ErrorCode.CONTROLLER_CLOSED, 'the server is shutting down');
  }

  #infer(req: Http1Request, res: Http1Response, model: Model): void {
    let plan;
    try {
      plan = parseInferRequest(model, req.body, req.headers.get('inference-header-content-length'), this.#options.defaultDeadlineMs);
    } catch (err) {
      this.#fail(res, 'infer', asCaphostError(err));
      return;
    }
    this.#call(res, 'infer', model.capability, plan.message, plan.deadlineMs, plan.priority, model.deviceOutputs, (output) => {
      const { body: out, jsonLength } = inferResponse(model, plan, output);
      if (jsonLength === undefined) this.#send(res, 'infer', 200, JSON_TYPE, out);
      else this.#send(res, 'infer', 200, 'application/octet-stream', out, jsonLength);
    });
  }

  /** POST /caphost/v1/capabilities/{capability}: the input message as JSON in, the output message as JSON out. */
  #callRoute(req: Http1Request, res: Http1Response, capability: string): void {
    if (!this.#options.callRoute) {
      this.#fail(res, 'call', new CaphostError(ErrorCode.INVALID_ARGUMENT, 'the plain JSON route is turned off (server.callRoute: false); use /v2/models/{name}/infer'), 404);
      return;
    }
    if (!this.#method(req, res, 'POST', 'call')) return;
    const controller = this.#controller;
    if (controller === undefined || this.#state !== 'ready') {
      this.#fail(res, 'call', this.#notServing());
      return;
    }
    const body = req.body;
    let input: unknown;
    let types;
    try {
      types = controller.messageTypes(capability);
      try {
        input = JSON.parse(body.toString('utf8'));
      } catch (err) {
        throw new CaphostError(ErrorCode.INVALID_ARGUMENT, `the body is not valid JSON: ${(err as Error).message}`);
      }
      if (input !== null && typeof input === 'object' && !Array.isArray(input) && hasDeviceTensors(types.input)) tensorsFromJson(types.input, input as Record<string, unknown>);
    } catch (err) {
      this.#fail(res, 'call', asCaphostError(err));
      return;
    }
    const deadline = req.headers.get('caphost-deadline-ms');
    const deadlineMs = deadline === undefined ? this.#options.defaultDeadlineMs : Number(deadline);
    const outputType = types.output;
    const tensors = hasDeviceTensors(outputType);
    this.#call(res, 'call', capability, input as object, deadlineMs, undefined, tensors, (output) => {
      let tensorFields: Record<string, unknown> | undefined;
      if (tensors) {
        // Tensor values are host tensors here, not protobuf messages: they get their own JSON form.
        tensorFields = {};
        for (const f of outputType.fieldsArray) {
          if (f.resolvedType?.fullName !== '.caphost.Tensor' || output[f.name] === undefined) continue;
          tensorFields[f.name] = output[f.name];
          output = { ...output, [f.name]: undefined };
        }
        tensorsToJson(tensorFields);
      }
      // Proto3's JSON shape for bytes (base64); every field present, so clients need no defaults.
      const json = outputType.toObject(output as unknown as protobuf.Message, { bytes: String, longs: Number, defaults: true, arrays: true });
      this.#send(res, 'call', 200, JSON_TYPE, JSON.stringify(tensorFields === undefined ? json : { ...json, ...tensorFields }));
    });
  }

  /** Calls the capability; a client that disconnects first cancels the call. */
  #call(
    res: Http1Response,
    route: string,
    capability: string,
    input: object,
    deadlineMs: number | undefined,
    priority: number | undefined,
    deviceOutputs: boolean,
    reply: (output: Record<string, unknown>) => void,
  ): void {
    if (this.#state !== 'ready') {
      this.#fail(res, route, this.#notServing());
      return;
    }
    const options: CallOptions = { signal: res.disconnected, deadlineMs, priority };
    this.#inFlight++;
    this.#controller!.call<Record<string, unknown>>(capability, input, options).then(
      (output) => {
        if (deviceOutputs) {
          // Device tensors in the output are ours to download and free, whether or not the client is still there.
          settleDeviceTensors(this.#controller!.device, output).then(
            () => this.#reply(res, route, output, reply),
            (err: unknown) => {
              this.#inFlight--;
              if (!res.destroyed) this.#fail(res, route, asCaphostError(err));
            },
          );
          return;
        }
        this.#reply(res, route, output, reply);
      },
      (err: unknown) => {
        this.#inFlight--;
        if (!res.destroyed) this.#fail(res, route, asCaphostError(err));
      },
    );
  }

  #reply(res: Http1Response, route: string, output: Record<string, unknown>, reply: (output: Record<string, unknown>) => void): void {
    this.#inFlight--;
    if (res.destroyed) return;
    try {
      reply(output);
    } catch (err) {
      this.#fail(res, route, asCaphostError(err));
    }
  }

  #method(req: Http1Request, res: Http1Response, method: 'GET' | 'POST', route: string): boolean {
    if (req.method === method || (method === 'GET' && req.method === 'HEAD')) return true;
    this.#fail(res, route, new CaphostError(ErrorCode.INVALID_ARGUMENT, `${req.url} takes ${method}, not ${req.method}`), 405, ['Allow', method]);
    return false;
  }

  #sendMetrics(res: Http1Response): void {
    this.#metrics.text().then(
      (text) => this.#send(res, 'metrics', 200, this.#metrics.contentType, text),
      (err: unknown) => this.#fail(res, 'metrics', asCaphostError(err)),
    );
  }

  #fail(res: Http1Response, route: string, error: CaphostError, status = statusOf(error.code), extraHeaders?: string[]): void {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    this.#send(res, route, status, JSON_TYPE, errorBody(error), undefined, this.#state === 'draining', extraHeaders);
  }

  /** Content-Length and Connection are the HTTP layer's; a server going away closes every connection it answers. */
  #send(res: Http1Response, route: string, status: number, type: string, body: string | Buffer, inferenceHeaderLength?: number, close = this.#state === 'draining', extraHeaders?: string[]): void {
    const headers = ['Content-Type', type];
    if (inferenceHeaderLength !== undefined) headers.push('Inference-Header-Content-Length', String(inferenceHeaderLength));
    if (extraHeaders !== undefined) headers.push(...extraHeaders);
    res.send(status, headers, body, close);
    this.#metrics.answered(route, status);
  }
}

/** decodeURIComponent, skipped for the usual segment that has nothing to decode. */
function unescapePath(segment: string): string {
  return segment.includes('%') ? decodeURIComponent(segment) : segment;
}

function live(state: string): boolean {
  return state === 'running' || state === 'restarting';
}
