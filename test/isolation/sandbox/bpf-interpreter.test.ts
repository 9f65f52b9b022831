import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ErrorCode, isCaphostError } from '../../../src/errors.js';
import { encodeProgram, type SockFilter } from '../../../src/isolation/sandbox/bpf-assembler.js';
import { evaluateSeccomp, validateSeccompProgram } from '../../../src/isolation/sandbox/bpf-interpreter.js';
import { AUDIT_ARCH, BPF, SECCOMP_RET } from '../../../src/isolation/sandbox/seccomp-constants.js';

const s = (code: number, k = 0): SockFilter => ({ code, jt: 0, jf: 0, k: k >>> 0 });
const j = (code: number, k: number, jt: number, jf: number): SockFilter => ({ code, jt, jf, k: k >>> 0 });
const LD_ABS = BPF.LD | BPF.W | BPF.ABS;
const RET_K = BPF.RET | BPF.K;
const input = { nr: 1, arch: AUDIT_ARCH.X86_64, args: [7n, 0xffff_ffff_0000_0005n] };
const rejected = (pattern: RegExp) => (e: unknown) => isCaphostError(e, ErrorCode.INVALID_ARGUMENT) && pattern.test(e.message);

describe('evaluateSeccomp', () => {
  it('reads seccomp_data fields at their offsets, little-endian', () => {
    const at = (k: number) => encodeProgram([s(LD_ABS, k), s(BPF.RET | BPF.A)]);
    assert.equal(evaluateSeccomp(at(0), input).ret, 1);
    assert.equal(evaluateSeccomp(at(4), input).ret, AUDIT_ARCH.X86_64);
    assert.equal(evaluateSeccomp(at(16), input).ret, 7);
    assert.equal(evaluateSeccomp(at(24), input).ret, 5);
    assert.equal(evaluateSeccomp(at(28), input).ret, 0xffffffff);
    assert.equal(evaluateSeccomp(at(0), { nr: -1, arch: 0 }).ret, 0xffffffff);
  });

  it('runs the ALU, jumps, scratch memory and X register', () => {
    const prog = [
      s(BPF.LD | BPF.IMM, 6),
      s(BPF.ALU | BPF.MUL | BPF.K, 7), // 42
      s(BPF.ST, 3),
      s(BPF.LDX | BPF.MEM, 3),
      s(BPF.MISC | BPF.TXA),
      j(BPF.JMP | BPF.JGT | BPF.K, 41, 0, 3),
      j(BPF.JMP | BPF.JSET | BPF.K, 0x2, 0, 2),
      j(BPF.JMP | BPF.JGE | BPF.X, 0, 0, 1),
      s(BPF.RET | BPF.A),
      s(RET_K, 0),
    ];
    assert.equal(evaluateSeccomp(prog, input).ret, 42);
  });

  it('maps return values to actions as the kernel does', () => {
    const ret = (k: number) => evaluateSeccomp([s(RET_K, k)], input);
    assert.deepEqual(ret(SECCOMP_RET.ALLOW), { action: 'allow', ret: SECCOMP_RET.ALLOW });
    assert.deepEqual(ret(SECCOMP_RET.ERRNO | 13), { action: 'errno', errno: 13, ret: (SECCOMP_RET.ERRNO | 13) >>> 0 });
    assert.equal(ret(SECCOMP_RET.ERRNO | 0xffff).errno, 4095);
    assert.equal(ret(SECCOMP_RET.KILL_PROCESS).action, 'kill');
    assert.equal(ret(SECCOMP_RET.KILL_THREAD).action, 'kill_thread');
    assert.equal(ret(SECCOMP_RET.TRAP).action, 'trap');
    assert.equal(ret(SECCOMP_RET.LOG).action, 'log');
    assert.equal(ret(0x12340000).action, 'kill', 'unknown actions kill the process');
  });

  it('stops with 0 (kill thread) on division by a zero X', () => {
    const prog = [s(BPF.LDX | BPF.IMM, 0), s(BPF.LD | BPF.IMM, 5), s(BPF.ALU | BPF.DIV | BPF.X), s(RET_K, SECCOMP_RET.ALLOW)];
    assert.equal(evaluateSeccomp(prog, input).action, 'kill_thread');
  });
});

describe('validateSeccompProgram', () => {
  it('rejects unknown and seccomp-forbidden opcodes loudly', () => {
    assert.throws(() => validateSeccompProgram([s(0xffff), s(RET_K)]), rejected(/unknown or seccomp-forbidden opcode 0xffff at instruction 0/));
    // Packet loads other than LD|W|ABS, and MOD, are not in seccomp's list.
    for (const code of [BPF.LD | BPF.H | BPF.ABS, BPF.LD | BPF.W | BPF.IND, BPF.ALU | BPF.MOD | BPF.K, BPF.LDX | BPF.B | BPF.MSH]) {
      assert.throws(() => evaluateSeccomp([s(code, 1), s(RET_K)], input), rejected(/opcode/), `0x${code.toString(16)}`);
    }
  });

  it('rejects what the kernel checker rejects', () => {
    assert.throws(() => validateSeccompProgram([]), rejected(/1 to 4096/));
    assert.throws(() => validateSeccompProgram(new Array(4097).fill(s(RET_K))), rejected(/1 to 4096/));
    assert.throws(() => validateSeccompProgram(new Uint8Array(12)), rejected(/8-byte/));
    assert.throws(() => validateSeccompProgram([s(LD_ABS, 2), s(RET_K)]), rejected(/aligned/));
    assert.throws(() => validateSeccompProgram([s(LD_ABS, 64), s(RET_K)]), rejected(/below 64/));
    assert.throws(() => validateSeccompProgram([s(BPF.ALU | BPF.DIV | BPF.K, 0), s(RET_K)]), rejected(/zero/));
    assert.throws(() => validateSeccompProgram([s(BPF.ALU | BPF.LSH | BPF.K, 32), s(RET_K)]), rejected(/shifts/));
    assert.throws(() => validateSeccompProgram([s(BPF.ST, 16), s(RET_K)]), rejected(/scratch word 16/));
    assert.throws(() => validateSeccompProgram([j(BPF.JMP | BPF.JEQ | BPF.K, 0, 1, 0), s(RET_K)]), rejected(/past the end/));
    assert.throws(() => validateSeccompProgram([s(BPF.JMP | BPF.JA, 1), s(RET_K)]), rejected(/past the end/));
    assert.throws(() => validateSeccompProgram([s(RET_K), s(BPF.LD | BPF.IMM)]), rejected(/end with a return/));
    assert.throws(() => validateSeccompProgram([s(BPF.LD | BPF.MEM, 2), s(RET_K)]), rejected(/before it is written/));
    // Written on one path only: still rejected.
    const onePath = [j(BPF.JMP | BPF.JEQ | BPF.K, 0, 0, 1), s(BPF.ST, 2), s(BPF.LD | BPF.MEM, 2), s(RET_K)];
    assert.throws(() => validateSeccompProgram(onePath), rejected(/before it is written/));
  });

  it('rejects malformed inputs', () => {
    const ok = [s(RET_K, SECCOMP_RET.ALLOW)];
    assert.throws(() => evaluateSeccomp(ok, { nr: 1.5, arch: 0 }), rejected(/nr/));
    assert.throws(() => evaluateSeccomp(ok, { nr: 1, arch: -1 }), rejected(/arch/));
    assert.throws(() => evaluateSeccomp(ok, { nr: 1, arch: 0, args: new Array(7).fill(0n) }), rejected(/at most 6/));
  });
});
