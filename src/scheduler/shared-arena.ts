import { CaphostError, ErrorCode } from '../errors.js';

const ALIGN = 64;

type TypedArrayCtor<T> = { new (buffer: ArrayBufferLike, byteOffset: number, length: number): T; readonly BYTES_PER_ELEMENT: number };

/**
 * Shared memory that every thread worker maps: a view of it placed in a bytes field crosses a call
 * by reference, in both directions, whatever its size. Only the controller allocates and frees,
 * so the allocator needs no lock: a first-fit free list kept sorted by offset, coalescing on free.
 */
export class SharedArena {
  readonly buffer: SharedArrayBuffer;
  /** Free blocks as [offset, size], sorted by offset. */
  private readonly holes: Array<[number, number]>;
  private readonly used = new Map<number, number>();
  private usedBytes = 0;

  constructor(byteLength: number) {
    const size = Math.floor(byteLength / ALIGN) * ALIGN;
    this.buffer = new SharedArrayBuffer(size);
    this.holes = size > 0 ? [[0, size]] : [];
  }

  get byteLength(): number {
    return this.buffer.byteLength;
  }

  get bytesInUse(): number {
    return this.usedBytes;
  }

  /** Allocates `byteLength` bytes (64-byte aligned) and returns a view of them. */
  alloc(byteLength: number): Uint8Array {
    if (!Number.isInteger(byteLength) || byteLength <= 0) {
      throw new CaphostError(ErrorCode.INVALID_ARGUMENT, `arena.alloc(byteLength): byteLength must be a positive integer, got ${byteLength}`);
    }
    const size = Math.ceil(byteLength / ALIGN) * ALIGN;
    for (let i = 0; i < this.holes.length; i++) {
      const block = this.holes[i]!;
      if (block[1] < size) continue;
      const offset = block[0];
      if (block[1] === size) this.holes.splice(i, 1);
      else {
        block[0] += size;
        block[1] -= size;
      }
      this.used.set(offset, size);
      this.usedBytes += size;
      return new Uint8Array(this.buffer, offset, byteLength);
    }
    throw new CaphostError(
      ErrorCode.INVALID_ARGUMENT,
      `the shared arena has no free block of ${size} bytes (${this.usedBytes} of ${this.byteLength} in use); free unused views or raise arenaBytes`,
      { details: { requested: byteLength, inUse: this.usedBytes, arenaBytes: this.byteLength } },
    );
  }

  /** Allocates `length` elements of a typed array type, e.g. `arena.allocArray(Float32Array, 1024)`. */
  allocArray<T>(ctor: TypedArrayCtor<T>, length: number): T {
    const bytes = this.alloc(length * ctor.BYTES_PER_ELEMENT);
    return new ctor(this.buffer, bytes.byteOffset, length);
  }

  /** Whether `view` lies in this arena (a worker may return a view into it). */
  owns(view: ArrayBufferView): boolean {
    return view.buffer === this.buffer;
  }

  /** Frees the block a view from alloc() starts at. Freeing twice or a foreign view throws. */
  free(view: ArrayBufferView): void {
    const offset = view.byteOffset;
    const size = view.buffer === this.buffer ? this.used.get(offset) : undefined;
    if (size === undefined) {
      throw new CaphostError(ErrorCode.INVALID_ARGUMENT, 'arena.free(view): view does not start a live block of this arena (already freed, or not from arena.alloc)');
    }
    this.used.delete(offset);
    this.usedBytes -= size;
    let lo = 0;
    let hi = this.holes.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.holes[mid]![0] < offset) lo = mid + 1;
      else hi = mid;
    }
    this.holes.splice(lo, 0, [offset, size]);
    const next = this.holes[lo + 1];
    if (next !== undefined && offset + size === next[0]) {
      this.holes[lo]![1] += next[1];
      this.holes.splice(lo + 1, 1);
    }
    const prev = this.holes[lo - 1];
    if (prev !== undefined && prev[0] + prev[1] === offset) {
      prev[1] += this.holes[lo]![1];
      this.holes.splice(lo, 1);
    }
  }
}
