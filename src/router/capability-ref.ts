import { CaphostError, ErrorCode } from '../errors.js';

/** A capability a worker provides: an exact `name@major.minor`. */
export interface CapabilityId {
  readonly name: string;
  readonly major: number;
  readonly minor: number;
}

/**
 * What a caller asks for: `name@major` (any minor) or `name@major.minor` (that minor or later,
 * same major). A bare `name` means the highest major the table has.
 */
export interface CapabilityRequest {
  readonly name: string;
  readonly major: number | undefined;
  readonly minor: number | undefined;
}

const NAME = /^[a-z][a-z0-9_-]*(\.[a-z0-9_-]+)*$/i;
const VERSION = /^(0|[1-9][0-9]{0,8})(?:\.(0|[1-9][0-9]{0,8}))?$/;

function splitRef(text: string): [string, string | undefined] {
  const at = text.indexOf('@');
  return at < 0 ? [text, undefined] : [text.slice(0, at), text.slice(at + 1)];
}

function badRef(text: string, why: string): CaphostError {
  return new CaphostError(
    ErrorCode.INVALID_ARGUMENT,
    `capability "${text}" is not valid: ${why}; write it as name@major or name@major.minor, e.g. "embed.text@1.0"`,
    { details: { capability: text } },
  );
}

export function parseCapabilityRequest(text: string): CapabilityRequest {
  if (typeof text !== 'string') throw badRef(String(text), 'it must be a string');
  const [name, version] = splitRef(text);
  if (!NAME.test(name)) throw badRef(text, 'the name must be dot-separated words of letters, digits, _ or -');
  if (version === undefined) return { name, major: undefined, minor: undefined };
  const match = VERSION.exec(version);
  if (!match) throw badRef(text, 'the version must be major or major.minor');
  return { name, major: Number(match[1]), minor: match[2] === undefined ? undefined : Number(match[2]) };
}

/** A provided capability must state both numbers, so that callers can ask for a minimum minor. */
export function parseCapabilityId(text: string): CapabilityId {
  const request = parseCapabilityRequest(text);
  if (request.major === undefined || request.minor === undefined) {
    throw badRef(text, 'a provided capability must state major.minor');
  }
  return { name: request.name, major: request.major, minor: request.minor };
}

export function formatCapabilityId(id: CapabilityId): string {
  return `${id.name}@${id.major}.${id.minor}`;
}

export function formatCapabilityRequest(request: CapabilityRequest): string {
  if (request.major === undefined) return request.name;
  return request.minor === undefined ? `${request.name}@${request.major}` : `${request.name}@${request.major}.${request.minor}`;
}

/** `name@1` matches any 1.x; `name@1.2` matches 1.2 or later within major 1. */
export function satisfies(provided: CapabilityId, request: CapabilityRequest): boolean {
  if (provided.name !== request.name) return false;
  if (request.major === undefined) return true;
  if (provided.major !== request.major) return false;
  return request.minor === undefined || provided.minor >= request.minor;
}
