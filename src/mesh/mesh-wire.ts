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

/**
 * CallReply { output, node } written by hand in one buffer (the reply of every served call):
 * field 1 (bytes) ahead of the node's encoded tail, which protobuf readers take in any order.
 */
export function encodeOutputReply(output: Uint8Array, tail: Uint8Array): Uint8Array {
  const length = output.length;
  let lengthBytes = 1;
  for (let v = length >>> 7; v !== 0; v >>>= 7) lengthBytes++;
  const buf = Buffer.allocUnsafe(1 + lengthBytes + length + tail.length);
  buf[0] = 0x0a; // field 1, wire type 2
  let pos = 1;
  let v = length;
  while (v > 0x7f) {
    buf[pos++] = (v & 0x7f) | 0x80;
    v >>>= 7;
  }
  buf[pos++] = v;
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
