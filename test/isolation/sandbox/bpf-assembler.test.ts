import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BpfAssembler, decodeProgram } from '../../../src/isolation/sandbox/bpf-assembler.js';
import { evaluateSeccomp, validateSeccompProgram } from '../../../src/isolation/sandbox/bpf-interpreter.js';
import { BPF, SECCOMP_RET } from '../../../src/isolation/sandbox/seccomp-constants.js';

/**
 * nr 7 or 10..19 → errno 1; nr 8 or ≥ 20 → errno 2; else allow. `pad` filler
 * instructions separate the jumps from their targets.
 */
function farProgram(pad: number): Uint8Array {
  const asm = new BpfAssembler();
  const one = asm.label('one');
  const two = asm.label('two');
  const low = asm.label('low');
  asm.loadWord(0);
  asm.jumpK(BPF.JEQ, 7, one, null);
  asm.jumpK(BPF.JEQ, 8, two, null);
  asm.jumpK(BPF.JGT, 9, null, low);
  asm.jumpK(BPF.JGE, 20, two, one); // both targets far when pad is large
  asm.bind(low);
  asm.jumpK(BPF.JEQ, 9, null, null); // a no-op jump that must stay a no-op
  for (let i = 0; i < pad; i++) asm.stmt(BPF.ALU | BPF.ADD | BPF.K, 0);
  asm.ret(SECCOMP_RET.ALLOW);
  asm.bind(one);
  asm.ret(SECCOMP_RET.ERRNO | 1);
  for (let i = 0; i < pad; i++) asm.stmt(BPF.ALU | BPF.ADD | BPF.K, 0);
  asm.bind(two);
  asm.ret(SECCOMP_RET.ERRNO | 2);
  return asm.assemble();
}

describe('BpfAssembler', () => {
  for (const pad of [0, 200, 254, 255, 256, 600, 2000]) {
    it(`resolves jumps over ${pad} instructions, through trampolines where needed`, () => {
      const p = farProgram(pad);
      validateSeccompProgram(p);
      const at = (nr: number) => evaluateSeccomp(p, { nr, arch: 0 });
      assert.deepEqual([at(7).errno, at(8).errno, at(10).errno, at(19).errno, at(20).errno, at(99).errno], [1, 2, 1, 1, 2, 2]);
      assert.deepEqual([at(0).action, at(9).action], ['allow', 'allow']);
      for (const insn of decodeProgram(p)) assert.ok(insn.jt <= 255 && insn.jf <= 255);
      if (pad > 300) assert.ok(decodeProgram(p).some((i) => i.code === (BPF.JMP | BPF.JA)), 'uses ja trampolines');
    });
  }

  it('encodes struct sock_filter little-endian', () => {
    const asm = new BpfAssembler();
    asm.ret(0x7fff0000);
    assert.deepEqual([...asm.assemble()], [0x06, 0x00, 0, 0, 0x00, 0x00, 0xff, 0x7f]);
  });

  it('refuses backward, unbound and doubly bound labels', () => {
    const back = new BpfAssembler();
    const l = back.label('l');
    back.bind(l);
    back.ret(0);
    back.ja(l);
    assert.throws(() => back.assemble(), /only jumps forward/);

    const unbound = new BpfAssembler();
    unbound.ja(unbound.label('nowhere'));
    assert.throws(() => unbound.assemble(), /never bound/);

    const twice = new BpfAssembler();
    const t = twice.label('t');
    twice.bind(t);
    assert.throws(() => twice.bind(t), /bound twice/);
  });
});
