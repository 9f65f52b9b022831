/**
 * One KServe v2 infer request: its JSON (and binary tensor data, when the
 * `Inference-Header-Content-Length` header splits the body) to a capability call, and the call's
 * output back to the protocol's response.
 */
import { CaphostError, ErrorCode } from '../errors.js';
import { scanInferRequest } from './infer-request-scan.js';
import type { Model } from './model-table.js';
import { type TensorSpec, type WireTensor, binaryOutput, jsonOutput, messageFromTensors } from './tensor-mapping.js';

interface RequestedOutput {
  readonly spec: TensorSpec;
  readonly binary: boolean;
}

export interface InferPlan {
  readonly message: Record<string, unknown>;
  readonly id: string | undefined;
  readonly outputs: readonly RequestedOutput[];
  readonly anyBinary: boolean;
  readonly deadlineMs: number | undefined;
  readonly priority: number | undefined;
}

function invalid(model: string, message: string): CaphostError {
  return new CaphostError(ErrorCode.INVALID_ARGUMENT, `model "${model}": ${message}`, { details: { model } });
}

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Parses and checks an infer request before anything is called; every mistake names its place in the request. */
export function parseInferRequest(model: Model, body: Buffer, headerLength: string | undefined, defaultDeadlineMs: number | undefined): InferPlan {
  const scanned = headerLength === undefined ? scanInferRequest(body) : null;
  if (scanned !== null) {
    // No parameters, no outputs requested, no binary data: every output, as JSON.
    const message = messageFromTensors(model.name, model.inputs, scanned.inputs, null);
    return { message, id: scanned.id, outputs: allOutputsAsJson(model), anyBinary: false, deadlineMs: defaultDeadlineMs, priority: undefined };
  }
  let jsonEnd = body.length;
  if (headerLength !== undefined) {
    jsonEnd = Number(headerLength);
    if (!Number.isInteger(jsonEnd) || jsonEnd < 0 || jsonEnd > body.length) {
      throw invalid(model.name, `Inference-Header-Content-Length is ${JSON.stringify(headerLength)} but the body has ${body.length} bytes`);
    }
  }
  let request: unknown;
  try {
    request = JSON.parse(body.toString('utf8', 0, jsonEnd));
  } catch (err) {
    throw invalid(model.name, `the request is not valid JSON: ${(err as Error).message}`);
  }
  if (!isObject(request)) throw invalid(model.name, 'the request must be a JSON object { "inputs": [...] }');
  const inputs = request['inputs'];
  if (!Array.isArray(inputs) || inputs.length === 0) throw invalid(model.name, 'the request needs "inputs", a non-empty array of tensors');
  const id = request['id'];
  if (id !== undefined && typeof id !== 'string') throw invalid(model.name, `"id" must be a string, got ${JSON.stringify(id)}`);
  const parameters = request['parameters'];
  if (parameters !== undefined && !isObject(parameters)) throw invalid(model.name, '"parameters" must be an object');

  // Binary tensor data follows the JSON, in the order of the inputs that declare binary_data_size.
  let binary: (Buffer | undefined)[] | null = null;
  if (jsonEnd < body.length || inputs.some((t) => isObject(t) && isObject(t['parameters']) && t['parameters']['binary_data_size'] !== undefined)) {
    binary = new Array<Buffer | undefined>(inputs.length);
    let at = jsonEnd;
    for (let i = 0; i < inputs.length; i++) {
      const t = inputs[i] as WireTensor;
      const size = isObject(t) && isObject(t.parameters) ? t.parameters['binary_data_size'] : undefined;
      if (size === undefined) continue;
      if (typeof size !== 'number' || !Number.isInteger(size) || size < 0) throw invalid(model.name, `inputs[${i}].parameters.binary_data_size must be a non-negative integer`);
      if (t.data !== undefined) throw invalid(model.name, `inputs[${i}] ("${String(t.name)}") has both "data" and binary_data_size; send one`);
      if (at + size > body.length) throw invalid(model.name, `inputs[${i}] ("${String(t.name)}") says binary_data_size ${size} but only ${body.length - at} bytes of binary data remain`);
      binary[i] = body.subarray(at, at + size);
      at += size;
    }
    if (at !== body.length) {
      throw invalid(model.name, `the body has ${body.length - at} bytes of binary data that no input claims (binary_data_size)${headerLength === undefined ? '; send Inference-Header-Content-Length with binary data' : ''}`);
    }
    if (jsonEnd === body.length && at > jsonEnd) throw invalid(model.name, 'inputs declare binary_data_size but the request has no Inference-Header-Content-Length header');
  }
  const message = messageFromTensors(model.name, model.inputs, inputs as WireTensor[], binary);

  const binaryAll = parameters?.['binary_data_output'] === true;
  let outputs: RequestedOutput[];
  const requested = request['outputs'];
  if (requested === undefined) outputs = model.outputs.map((spec) => ({ spec, binary: binaryAll }));
  else {
    if (!Array.isArray(requested)) throw invalid(model.name, '"outputs" must be an array of { "name": ... }');
    outputs = requested.map((o: unknown, i) => {
      if (!isObject(o) || typeof o['name'] !== 'string') throw invalid(model.name, `outputs[${i}] must be an object { "name": ... }`);
      const spec = model.outputs.find((s) => s.name === o['name']);
      if (spec === undefined) {
        throw new CaphostError(ErrorCode.SCHEMA_MISMATCH, `model "${model.name}" has no output named ${JSON.stringify(o['name'])}; its outputs are ${model.outputs.map((s) => `"${s.name}"`).join(', ')}`, { details: { model: model.name, tensor: o['name'] } });
      }
      const p = o['parameters'];
      const flag = isObject(p) ? p['binary_data'] : undefined;
      return { spec, binary: typeof flag === 'boolean' ? flag : binaryAll };
    });
  }

  let deadlineMs = defaultDeadlineMs;
  let priority: number | undefined;
  if (parameters !== undefined) {
    // Triton's names: timeout in microseconds, priority (here: higher runs first).
    const timeout = parameters['timeout'];
    if (timeout !== undefined) {
      if (typeof timeout !== 'number' || !(timeout > 0) || !Number.isFinite(timeout)) throw invalid(model.name, 'parameters.timeout must be a positive number of microseconds');
      deadlineMs = timeout / 1000;
    }
    const p = parameters['priority'];
    if (p !== undefined) {
      if (typeof p !== 'number' || !Number.isFinite(p)) throw invalid(model.name, 'parameters.priority must be a finite number (higher runs first)');
      priority = p;
    }
  }
  return { message, id, outputs, anyBinary: outputs.some((o) => o.binary), deadlineMs, priority };
}

const jsonOutputs = new WeakMap<Model, readonly RequestedOutput[]>();

function allOutputsAsJson(model: Model): readonly RequestedOutput[] {
  let outputs = jsonOutputs.get(model);
  if (outputs === undefined) {
    outputs = model.outputs.map((spec) => ({ spec, binary: false }));
    jsonOutputs.set(model, outputs);
  }
  return outputs;
}

/** The response body: JSON alone, or JSON followed by binary tensor data with the header's length. */
export function inferResponse(model: Model, plan: InferPlan, output: Record<string, unknown>): { body: string | Buffer; jsonLength: number | undefined } {
  // Written as JSON.stringify writes the object { model_name, model_version, id?, outputs }, but
  // without building it: this runs for every answer.
  let head = `{"model_name":${JSON.stringify(model.name)},"model_version":${JSON.stringify(model.version)}`;
  if (plan.id !== undefined) head += `,"id":${JSON.stringify(plan.id)}`;
  head += ',"outputs":[';
  const parts: Buffer[] = [];
  for (let i = 0; i < plan.outputs.length; i++) {
    const o = plan.outputs[i]!;
    if (i > 0) head += ',';
    if (!o.binary) {
      head += tensorJson(jsonOutput(model.name, o.spec, output));
      continue;
    }
    const { tensor, bytes } = binaryOutput(model.name, o.spec, output);
    head += JSON.stringify(tensor);
    parts.push(bytes);
  }
  head += ']}';
  if (!plan.anyBinary) return { body: head, jsonLength: undefined };
  const header = Buffer.from(head, 'utf8');
  return { body: Buffer.concat([header, ...parts]), jsonLength: header.length };
}

/** JSON.stringify(t) for a tensor with inline data: its keys in the order jsonOutput makes them. */
function tensorJson(t: WireTensor): string {
  return `{"name":${JSON.stringify(t.name)},"datatype":${JSON.stringify(t.datatype)},"shape":${JSON.stringify(t.shape)},"data":${JSON.stringify(t.data)}}`;
}
