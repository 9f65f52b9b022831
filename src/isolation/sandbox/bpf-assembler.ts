/**
 * A tiny classic-BPF assembler with labels.
 *
 * Classic BPF only jumps forward, and a conditional jump's offsets are u8, so a
 * target more than 255 instructions away cannot be encoded directly. Instead of
 * making every caller count instructions, the assembler lays the program out,
 * finds conditional jumps whose targets are out of reach, and routes them
 * through `ja` trampolines (whose offset is a u32) placed right after the jump,
 * repeating until the layout is stable (a trampoline can push another jump out
 * of reach). Callers write straight-line code with labels and never see offsets.
 */
import { CaphostError, ErrorCode } from '../../errors.js';
import { BPF, BPF_MAXINSNS, SOCK_FILTER_SIZE } from './seccomp-constants.js';

export type Label = string & { readonly __bpfLabel: true };

/** A conditional target: a label, or null for "the next instruction". */
export type Target = Label | null;

type Item =
  | { readonly kind: 'stmt'; readonly code: number; readonly k: number }
  | { readonly kind: 'jump'; readonly code: number; readonly k: number; readonly jt: Target; readonly jf: Target }
  | { readonly kind: 'ja'; readonly target: Label }
  | { readonly kind: 'label'; readonly label: Label };

export interface SockFilter {
  readonly code: number;
  readonly jt: number;
  readonly jf: number;
  readonly k: number;
}

export class BpfAssembler {
  #items: Item[] = [];
  #bound = new Set<Label>();
  #created = new Set<Label>();
  #serial = 0;

  /** A fresh label; `hint` only makes internal error messages readable. */
  label(hint: string): Label {
    const label = `${hint}#${this.#serial++}` as Label;
    this.#created.add(label);
    return label;
  }

  /** Place `label` at the next instruction. */
  bind(label: Label): void {
    if (!this.#created.has(label)) throw internal(`label ${label} was not created by this assembler`);
    if (this.#bound.has(label)) throw internal(`label ${label} is bound twice`);
    this.#bound.add(label);
    this.#items.push({ kind: 'label', label });
  }

  stmt(code: number, k: number): void {
    this.#items.push({ kind: 'stmt', code, k: k >>> 0 });
  }

  /** A conditional jump on A against the constant k (op is BPF.JEQ/JGT/JGE/JSET). */
  jumpK(op: number, k: number, jt: Target, jf: Target): void {
    this.#items.push({ kind: 'jump', code: BPF.JMP | op | BPF.K, k: k >>> 0, jt, jf });
  }

  ja(target: Label): void {
    this.#items.push({ kind: 'ja', target });
  }

  /** A = the 32-bit word at `offset` in seccomp_data. */
  loadWord(offset: number): void {
    this.stmt(BPF.LD | BPF.W | BPF.ABS, offset);
  }

  andK(k: number): void {
    this.stmt(BPF.ALU | BPF.AND | BPF.K, k);
  }

  ret(k: number): void {
    this.stmt(BPF.RET | BPF.K, k);
  }

  /** Resolve labels, insert trampolines where needed, and return the instructions. */
  instructions(): SockFilter[] {
    for (const item of this.#items) {
      for (const t of targetsOf(item)) {
        if (!this.#bound.has(t)) throw internal(`label ${t} is used but never bound`);
      }
    }
    let items = this.#items;
    for (;;) {
      const positions = layout(items);
      let changed = false;
      const next: Item[] = [];
      let pc = 0;
      for (const item of items) {
        if (item.kind === 'label') {
          next.push(item);
          continue;
        }
        if (item.kind === 'jump') {
          const tFar = distance(positions, item.jt, pc) > 255;
          const fFar = distance(positions, item.jf, pc) > 255;
          if (tFar || fFar) {
            changed = true;
            const cont = this.label('cont');
            const tl = tFar ? this.label('far-true') : (item.jt ?? cont);
            const fl = fFar ? this.label('far-false') : (item.jf ?? cont);
            next.push({ ...item, jt: tl, jf: fl });
            if (tFar) next.push({ kind: 'label', label: tl }, { kind: 'ja', target: item.jt as Label });
            if (fFar) next.push({ kind: 'label', label: fl }, { kind: 'ja', target: item.jf as Label });
            next.push({ kind: 'label', label: cont });
            pc++;
            continue;
          }
        }
        next.push(item);
        pc++;
      }
      items = next;
      if (!changed) break;
    }

    const positions = layout(items);
    const out: SockFilter[] = [];
    for (const item of items) {
      const pc = out.length;
      switch (item.kind) {
        case 'label':
          break;
        case 'stmt':
          out.push({ code: item.code, jt: 0, jf: 0, k: item.k });
          break;
        case 'jump':
          out.push({ code: item.code, jt: distance(positions, item.jt, pc), jf: distance(positions, item.jf, pc), k: item.k });
          break;
        case 'ja':
          out.push({ code: BPF.JMP | BPF.JA, jt: 0, jf: 0, k: distance(positions, item.target, pc) });
          break;
      }
    }
    if (out.length > BPF_MAXINSNS) {
      throw new CaphostError(
        ErrorCode.SANDBOX_UNAVAILABLE,
        `the seccomp program has ${out.length} instructions; the kernel accepts at most ${BPF_MAXINSNS}`,
      );
    }
    return out;
  }

  /** The program as the kernel takes it: an array of struct sock_filter, little-endian. */
  assemble(): Uint8Array {
    return encodeProgram(this.instructions());
  }
}

export function encodeProgram(insns: readonly SockFilter[]): Uint8Array {
  const bytes = new Uint8Array(insns.length * SOCK_FILTER_SIZE);
  const view = new DataView(bytes.buffer);
  insns.forEach((insn, i) => {
    const at = i * SOCK_FILTER_SIZE;
    view.setUint16(at, insn.code, true);
    view.setUint8(at + 2, insn.jt);
    view.setUint8(at + 3, insn.jf);
    view.setUint32(at + 4, insn.k >>> 0, true);
  });
  return bytes;
}

export function decodeProgram(program: Uint8Array): SockFilter[] {
  if (program.byteLength % SOCK_FILTER_SIZE !== 0) {
    throw new CaphostError(
      ErrorCode.INVALID_ARGUMENT,
      `a BPF program is a whole number of ${SOCK_FILTER_SIZE}-byte instructions; got ${program.byteLength} bytes`,
    );
  }
  const view = new DataView(program.buffer, program.byteOffset, program.byteLength);
  const out: SockFilter[] = [];
  for (let at = 0; at < program.byteLength; at += SOCK_FILTER_SIZE) {
    out.push({
      code: view.getUint16(at, true),
      jt: view.getUint8(at + 2),
      jf: view.getUint8(at + 3),
      k: view.getUint32(at + 4, true),
    });
  }
  return out;
}

function layout(items: readonly Item[]): Map<Label, number> {
  const positions = new Map<Label, number>();
  let pc = 0;
  for (const item of items) {
    if (item.kind === 'label') positions.set(item.label, pc);
    else pc++;
  }
  return positions;
}

/** Offset from the instruction after `pc` to `target`; classic BPF cannot jump back. */
function distance(positions: Map<Label, number>, target: Target, pc: number): number {
  if (target === null) return 0;
  const at = positions.get(target);
  if (at === undefined) throw internal(`label ${target} is not bound`);
  const off = at - (pc + 1);
  if (off < 0) throw internal(`label ${target} is behind the jump at ${pc}; classic BPF only jumps forward`);
  return off;
}

function targetsOf(item: Item): Label[] {
  if (item.kind === 'jump') return [item.jt, item.jf].filter((t): t is Label => t !== null);
  if (item.kind === 'ja') return [item.target];
  return [];
}

function internal(message: string): Error {
  return new Error(`BpfAssembler: ${message}`);
}
