/**
 * A classic-BPF interpreter for seccomp programs, so tests can ask "what would
 * the kernel decide for this call?" on any machine, for either architecture.
 *
 * It accepts exactly the instructions the kernel's seccomp checker accepts
 * (kernel/seccomp.c seccomp_check_filter, plus bpf_check_classic's static
 * checks) and rejects anything else loudly: a test that passes here against an
 * opcode the kernel would refuse would be a false comfort.
 */
import { CaphostError, ErrorCode } from '../../errors.js';
import { decodeProgram, type SockFilter } from './bpf-assembler.js';
import { BPF, BPF_MAXINSNS, BPF_MEMWORDS, SECCOMP_DATA, SECCOMP_RET } from './seccomp-constants.js';

export type SeccompActionName = 'kill' | 'kill_thread' | 'trap' | 'errno' | 'user_notif' | 'trace' | 'log' | 'allow';

export interface SeccompInput {
  /** Syscall number as the kernel passes it (an int; -1 and x32 numbers are legal inputs). */
  readonly nr: number;
  /** AUDIT_ARCH_* value. */
  readonly arch: number;
  /** Up to six u64 arguments; missing ones are 0, negative ones wrap as the kernel's unsigned long. */
  readonly args?: readonly bigint[];
  readonly instructionPointer?: bigint;
}

export interface SeccompVerdict {
  readonly action: SeccompActionName;
  /** For 'errno': the errno the call returns (the kernel caps it at 4095). */
  readonly errno?: number;
  /** The raw 32-bit return value of the program. */
  readonly ret: number;
}

const { LD, LDX, ST, STX, ALU, JMP, RET, MISC, W, ABS, MEM, LEN, IMM, K, X, A } = BPF;

/** The opcodes seccomp_check_filter lets through, with a mnemonic for each. */
const OPCODES: ReadonlyMap<number, string> = new Map([
  [LD | W | ABS, 'ld'],
  [LD | W | LEN, 'ld len'],
  [LDX | W | LEN, 'ldx len'],
  [LD | IMM, 'ld #'],
  [LDX | IMM, 'ldx #'],
  [LD | MEM, 'ld M'],
  [LDX | MEM, 'ldx M'],
  [ST, 'st'],
  [STX, 'stx'],
  [RET | K, 'ret #'],
  [RET | A, 'ret a'],
  [MISC | BPF.TAX, 'tax'],
  [MISC | BPF.TXA, 'txa'],
  [ALU | BPF.NEG, 'neg'],
  [JMP | BPF.JA, 'ja'],
  ...(['ADD', 'SUB', 'MUL', 'DIV', 'AND', 'OR', 'XOR', 'LSH', 'RSH'] as const).flatMap((op) => [
    [ALU | BPF[op] | K, `${op.toLowerCase()} #`] as const,
    [ALU | BPF[op] | X, `${op.toLowerCase()} x`] as const,
  ]),
  ...(['JEQ', 'JGT', 'JGE', 'JSET'] as const).flatMap((op) => [
    [JMP | BPF[op] | K, `${op.toLowerCase()} #`] as const,
    [JMP | BPF[op] | X, `${op.toLowerCase()} x`] as const,
  ]),
]);

/** Decode and check a program the way the kernel does before accepting it. */
export function validateSeccompProgram(program: Uint8Array | readonly SockFilter[]): SockFilter[] {
  const insns = program instanceof Uint8Array ? decodeProgram(program) : [...program];
  const n = insns.length;
  if (n === 0 || n > BPF_MAXINSNS) reject(`a seccomp program has 1 to ${BPF_MAXINSNS} instructions, this one has ${n}`);
  insns.forEach((insn, pc) => {
    const { code, k, jt, jf } = insn;
    if (!OPCODES.has(code)) reject(`unknown or seccomp-forbidden opcode 0x${code.toString(16).padStart(4, '0')} at instruction ${pc}`);
    if (code === (LD | W | ABS) && (k % 4 !== 0 || k >= SECCOMP_DATA.SIZE)) {
      reject(`instruction ${pc} loads seccomp_data offset ${k}: must be 4-byte aligned and below ${SECCOMP_DATA.SIZE}`);
    }
    if (code === (ALU | BPF.DIV | K) && k === 0) reject(`instruction ${pc} divides by constant zero`);
    if ((code === (ALU | BPF.LSH | K) || code === (ALU | BPF.RSH | K)) && k >= 32) reject(`instruction ${pc} shifts by ${k}`);
    if ([LD | MEM, LDX | MEM, ST, STX].includes(code) && k >= BPF_MEMWORDS) reject(`instruction ${pc} uses scratch word ${k}`);
    if (code === (JMP | BPF.JA)) {
      if (k >= n - pc - 1) reject(`instruction ${pc} jumps ${k} past the end of the program`);
    } else if ((code & 0x07) === JMP && (pc + 1 + jt >= n || pc + 1 + jf >= n)) {
      reject(`instruction ${pc} jumps (jt ${jt}, jf ${jf}) past the end of the program`);
    }
  });
  const last = insns[n - 1]!.code;
  if (last !== (RET | K) && last !== (RET | A)) reject('a seccomp program must end with a return');
  checkScratchReads(insns);
  return insns;
}

/** Like the kernel's check_load_and_stores: no scratch word may be read before every path has written it. */
function checkScratchReads(insns: readonly SockFilter[]): void {
  const ALL = 0xffff;
  const masks = new Array<number>(insns.length).fill(ALL);
  let valid = 0;
  insns.forEach((insn, pc) => {
    valid &= masks[pc]!;
    const { code, k } = insn;
    if (code === ST || code === STX) valid |= 1 << k;
    else if ((code === (LD | MEM) || code === (LDX | MEM)) && !(valid & (1 << k))) {
      reject(`instruction ${pc} reads scratch word ${k} before it is written`);
    } else if (code === (JMP | BPF.JA)) {
      masks[pc + 1 + k] &= valid;
      valid = ALL;
    } else if ((code & 0x07) === JMP) {
      masks[pc + 1 + insn.jt] &= valid;
      masks[pc + 1 + insn.jf] &= valid;
      valid = ALL;
    } else if ((code & 0x07) === RET) {
      valid = ALL;
    }
  });
}

/** Run a seccomp program on one syscall and report the kernel's decision. */
export function evaluateSeccomp(program: Uint8Array | readonly SockFilter[], input: SeccompInput): SeccompVerdict {
  const insns = validateSeccompProgram(program);
  const data = seccompData(input);
  const mem = new Uint32Array(BPF_MEMWORDS);
  let a = 0;
  let x = 0;
  for (let pc = 0; pc < insns.length; pc++) {
    const { code, jt, jf, k } = insns[pc]!;
    switch (code) {
      case LD | W | ABS: a = data.getUint32(k, true); break;
      case LD | W | LEN: a = SECCOMP_DATA.SIZE; break;
      case LDX | W | LEN: x = SECCOMP_DATA.SIZE; break;
      case LD | IMM: a = k; break;
      case LDX | IMM: x = k; break;
      case LD | MEM: a = mem[k]!; break;
      case LDX | MEM: x = mem[k]!; break;
      case ST: mem[k] = a; break;
      case STX: mem[k] = x; break;
      case MISC | BPF.TAX: x = a; break;
      case MISC | BPF.TXA: a = x; break;
      case ALU | BPF.NEG: a = -a >>> 0; break;
      case RET | K: return verdict(k);
      case RET | A: return verdict(a);
      case JMP | BPF.JA: pc += k; break;
      default: {
        const operand = (code & X) === X ? x : k;
        if ((code & 0x07) === ALU) {
          // Classic BPF ends the program with 0 (kill thread) on division by zero.
          if ((code & 0xf0) === BPF.DIV && operand === 0) return verdict(0);
          a = alu(code & 0xf0, a, operand, pc);
        } else if ((code & 0x07) === JMP) {
          pc += jump(code & 0xf0, a, operand) ? jt : jf;
        } else {
          reject(`unhandled opcode 0x${code.toString(16)} at instruction ${pc}`);
        }
      }
    }
  }
  return reject('the program ran off its end');
}

function alu(op: number, a: number, v: number, pc: number): number {
  switch (op) {
    case BPF.ADD: return (a + v) >>> 0;
    case BPF.SUB: return (a - v) >>> 0;
    case BPF.MUL: return Math.imul(a, v) >>> 0;
    case BPF.DIV: return Math.floor(a / v) >>> 0;
    case BPF.AND: return (a & v) >>> 0;
    case BPF.OR: return (a | v) >>> 0;
    case BPF.XOR: return (a ^ v) >>> 0;
    case BPF.LSH:
    case BPF.RSH:
      if (v >= 32) reject(`instruction ${pc} shifts by ${v}, which the kernel leaves undefined`);
      return (op === BPF.LSH ? a << v : a >>> v) >>> 0;
    default: return reject(`unknown ALU operation 0x${op.toString(16)} at instruction ${pc}`);
  }
}

function jump(op: number, a: number, v: number): boolean {
  switch (op) {
    case BPF.JEQ: return a === v;
    case BPF.JGT: return a > v;
    case BPF.JGE: return a >= v;
    case BPF.JSET: return (a & v) !== 0;
    default: return reject(`unknown jump operation 0x${op.toString(16)}`);
  }
}

function seccompData(input: SeccompInput): DataView {
  const { nr, arch, args = [], instructionPointer = 0n } = input;
  if (!Number.isInteger(nr) || nr < -0x80000000 || nr > 0xffffffff) reject(`nr must be a 32-bit integer, got ${nr}`);
  if (!Number.isInteger(arch) || arch < 0 || arch > 0xffffffff) reject(`arch must be a u32, got ${arch}`);
  if (args.length > 6) reject(`a syscall has at most 6 arguments, got ${args.length}`);
  const view = new DataView(new ArrayBuffer(SECCOMP_DATA.SIZE));
  view.setUint32(SECCOMP_DATA.NR, nr >>> 0, true);
  view.setUint32(SECCOMP_DATA.ARCH, arch >>> 0, true);
  view.setBigUint64(SECCOMP_DATA.INSTRUCTION_POINTER, BigInt.asUintN(64, instructionPointer), true);
  args.forEach((arg, i) => view.setBigUint64(SECCOMP_DATA.ARGS + 8 * i, BigInt.asUintN(64, arg), true));
  return view;
}

function verdict(ret: number): SeccompVerdict {
  ret >>>= 0;
  const data = ret & SECCOMP_RET.DATA;
  switch ((ret & SECCOMP_RET.ACTION_FULL) >>> 0) {
    case SECCOMP_RET.KILL_PROCESS: return { action: 'kill', ret };
    case SECCOMP_RET.KILL_THREAD: return { action: 'kill_thread', ret };
    case SECCOMP_RET.TRAP: return { action: 'trap', ret };
    case SECCOMP_RET.ERRNO: return { action: 'errno', errno: Math.min(data, 4095), ret };
    case SECCOMP_RET.USER_NOTIF: return { action: 'user_notif', ret };
    case SECCOMP_RET.TRACE: return { action: 'trace', ret };
    case SECCOMP_RET.LOG: return { action: 'log', ret };
    case SECCOMP_RET.ALLOW: return { action: 'allow', ret };
    // The kernel treats an unknown action as SECCOMP_RET_KILL_PROCESS.
    default: return { action: 'kill', ret };
  }
}

/** One line per instruction, for test failure messages and reviews. */
export function disassembleSeccomp(program: Uint8Array | readonly SockFilter[]): string[] {
  const insns = program instanceof Uint8Array ? decodeProgram(program) : program;
  return insns.map(({ code, jt, jf, k }, pc) => {
    const name = OPCODES.get(code) ?? `??? 0x${code.toString(16)}`;
    const hex = `0x${(k >>> 0).toString(16)}`;
    if (code === (JMP | BPF.JA)) return `${pc}: ja ${pc + 1 + k}`;
    if ((code & 0x07) === JMP) return `${pc}: ${name} ${hex} ? ${pc + 1 + jt} : ${pc + 1 + jf}`;
    return `${pc}: ${name} ${hex}`;
  });
}

function reject(message: string): never {
  throw new CaphostError(ErrorCode.INVALID_ARGUMENT, `seccomp program rejected: ${message}`);
}
