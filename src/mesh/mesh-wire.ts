import { readFileSync } from 'node:fs';
import protobuf from 'protobufjs';

/** The envelopes of proto/caphost/mesh.proto, compiled once. */
const root = protobuf.parse(readFileSync(new URL('../../../proto/caphost/mesh.proto', import.meta.url), 'utf8'), { keepCase: true }).root;
const type = (name: string): protobuf.Type => root.lookupType(`caphost.mesh.${name}`);

export interface CallRequest {
  capability: string;
  input: Uint8Array;
  deadline_ms: number;
  origin: string;
  call_id: number;
}
export interface CallError {
  code: string;
  message: string;
  details_json: string;
}
export interface CallReply {
  output?: Uint8Array;
  error?: CallError | null;
  node: string;
}
export interface Cancel {
  origin: string;
  call_id: number;
  deadline: boolean;
}
export interface Heartbeat {
  node: string;
  load: number;
  digest: string;
}
export interface AdvertisedCapability {
  key: string;
  proto: string;
  input: string;
  output: string;
}
export interface Advertisement {
  node: string;
  capabilities: AdvertisedCapability[];
  certificate: string;
  issued_at: number;
}
export interface SignedAdvertisement {
  body: Uint8Array;
  signature: Uint8Array;
}
export interface Presence {
  node: string;
}

/** Encode and decode one envelope type; decode throws on malformed bytes. */
export interface Envelope<T> {
  encode(message: T): Uint8Array;
  decode(bytes: Uint8Array): T;
}

function envelope<T>(name: string): Envelope<T> {
  const t = type(name);
  return {
    encode: (message) => t.encode(message as object).finish(),
    decode: (bytes) => t.toObject(t.decode(bytes), { longs: Number, defaults: true }) as T,
  };
}

/** The hot pair decode without toObject: defaults come from the prototype, bytes stay views. */
function hotEnvelope<T>(name: string): Envelope<T> {
  const t = type(name);
  return {
    encode: (message) => t.encode(message as object).finish(),
    decode: (bytes) => t.decode(bytes) as unknown as T,
  };
}

export const wire = {
  callRequest: hotEnvelope<CallRequest>('CallRequest'),
  callReply: hotEnvelope<CallReply>('CallReply'),
  cancel: envelope<Cancel>('Cancel'),
  heartbeat: envelope<Heartbeat>('Heartbeat'),
  advertisement: envelope<Advertisement>('Advertisement'),
  signedAdvertisement: envelope<SignedAdvertisement>('SignedAdvertisement'),
  presence: envelope<Presence>('Presence'),
};

/** The `node` field of a CallReply, encoded once per node: the tail of each output reply it sends. */
export function replyTail(node: string): Uint8Array {
  return wire.callReply.encode({ node });
}

/** Field 4 (origin) of a CallRequest, encoded once per node. */
export function originField(node: string): Uint8Array {
  return wire.callRequest.encode({ origin: node } as CallRequest);
}

function varintSize(v: number): number {
  let n = 1;
  for (v >>>= 7; v !== 0; v >>>= 7) n++;
  return n;
}

function writeVarint(buf: Buffer, pos: number, v: number): number {
  while (v > 0x7f) {
    buf[pos++] = (v & 0x7f) | 0x80;
    v >>>= 7;
  }
  buf[pos++] = v;
  return pos;
}

/**
 * CallRequest written by hand in one buffer (every remote call sends one): capability (1),
 * input (2), deadline_ms (3), the node's encoded origin (4), call_id (5). The same bytes
 * protobufjs writes for the same message.
 */
export function encodeCallRequest(capability: string, input: Uint8Array, deadlineMs: number, callId: number, origin: Uint8Array): Uint8Array {
  const capabilityLength = Buffer.byteLength(capability);
  const inputLength = input.length;
  const size = 1 + varintSize(capabilityLength) + capabilityLength + 1 + varintSize(inputLength) + inputLength + 1 + varintSize(deadlineMs) + origin.length + 1 + varintSize(callId);
  const buf = Buffer.allocUnsafe(size);
  buf[0] = 0x0a; // 1: capability, length-delimited
  let pos = writeVarint(buf, 1, capabilityLength);
  pos += buf.write(capability, pos);
  buf[pos++] = 0x12; // 2: input, length-delimited
  pos = writeVarint(buf, pos, inputLength);
  buf.set(input, pos);
  pos += inputLength;
  buf[pos++] = 0x18; // 3: deadline_ms, varint
  pos = writeVarint(buf, pos, deadlineMs);
  buf.set(origin, pos);
  pos += origin.length;
  buf[pos++] = 0x28; // 5: call_id, varint
  writeVarint(buf, pos, callId);
  return buf;
}

/**
 * CallReply { output, node } written by hand in one buffer (the reply of every served call):
 * field 1 (bytes) ahead of the node's encoded tail, which protobuf readers take in any order.
 */
export function encodeOutputReply(output: Uint8Array, tail: Uint8Array): Uint8Array {
  const length = output.length;
  const buf = Buffer.allocUnsafe(1 + varintSize(length) + length + tail.length);
  buf[0] = 0x0a; // field 1, wire type 2
  const pos = writeVarint(buf, 1, length);
  buf.set(output, pos);
  buf.set(tail, pos + length);
  return buf;
}

/** Subjects; names are dot-separated words, so the single-token parts (node, major) come first. */
export const subjects = {
  /** A call to one node. */
  call: (node: string, major: number, name: string) => `caphost.call.${node}.${major}.${name}`,
  /** A call to any node serving the capability's major (NATS picks one member of the queue group). */
  anyCall: (major: number, name: string) => `caphost.cap.${major}.${name}`,
  /** The queue group of a capability's major: one delivery per node, and one per request among a rotating node's two connections. */
  queue: (major: number, name: string) => `caphost.${name}.v${major}`,
  cancel: (node: string) => `caphost.cancel.${node}`,
  heartbeat: 'caphost.mesh.heartbeat',
  hello: 'caphost.mesh.hello',
  bye: 'caphost.mesh.bye',
  describe: (node: string) => `caphost.mesh.describe.${node}`,
};
