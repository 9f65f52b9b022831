import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Controller, type ControllerOptions } from '../../src/index.js';
import { InferenceServer } from '../../src/server/inference-server.js';
import { type ResolvedModelMapping, resolveServerSection, type ServerSection } from '../../src/server/server-config.js';
import { createConsoleLogger } from '../../src/logger.js';

export const worker = (name: string): URL => new URL(`../fixtures/workers/${name}.js`, import.meta.url);

export interface Served {
  server: InferenceServer;
  controller: Controller;
  url: string;
}

/** A real server on a free port with a real controller behind it. */
export async function serve(options: Partial<ControllerOptions> & Pick<ControllerOptions, 'workers'>, server: ServerSection = {}, models?: ResolvedModelMapping[]): Promise<Served> {
  const logger = createConsoleLogger('silent');
  const http = await InferenceServer.listen({ ...resolveServerSection({ port: 0, ...server }), models, logger });
  let controller: Controller;
  try {
    controller = await Controller.start({ logger, restart: { initialDelayMs: 20, maxDelayMs: 200 }, ...options });
    http.attach(controller);
  } catch (err) {
    await http.close();
    throw err;
  }
  return { server: http, controller, url: http.url };
}

export async function getJson(url: string): Promise<{ status: number; body: any }> {
  const res = await fetch(url);
  return { status: res.status, body: await res.json() };
}

export async function postJson(url: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: any; headers: Headers }> {
  const res = await fetch(url, { method: 'POST', body: typeof body === 'string' ? body : JSON.stringify(body), headers: { 'content-type': 'application/json', ...headers } });
  return { status: res.status, body: await res.json(), headers: res.headers };
}

/**
 * A KServe infer request with the binary tensor data extension: the JSON header, then the bytes
 * of each part. Returns the answer's JSON header and the binary data after it.
 */
export async function postBinary(url: string, header: object, parts: Uint8Array[]): Promise<{ status: number; json: any; binary: Buffer }> {
  const head = Buffer.from(JSON.stringify(header));
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/octet-stream', 'Inference-Header-Content-Length': String(head.length) },
    body: Buffer.concat([head, ...parts]),
  });
  const body = Buffer.from(await res.arrayBuffer());
  const length = Number(res.headers.get('inference-header-content-length') ?? body.length);
  return { status: res.status, json: JSON.parse(body.toString('utf8', 0, length)), binary: body.subarray(length) };
}

const run = promisify(execFile);

/** curl, the real one: returns status and body. */
export async function curl(args: string[]): Promise<{ status: number; body: string }> {
  const { stdout } = await run('curl', ['-sS', '-w', '\n%{http_code}', ...args], { encoding: 'utf8' });
  const cut = stdout.lastIndexOf('\n');
  return { status: Number(stdout.slice(cut + 1)), body: stdout.slice(0, cut) };
}

export async function waitFor(check: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const until = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > until) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}
