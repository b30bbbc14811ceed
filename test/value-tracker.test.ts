/**
 * The value tracker on hand-assembled x86-64 code (pure logic, no toolchain): each case is one of
 * the shapes real libcs use to carry a syscall number into its `syscall` instruction, and the call
 * graph must resolve the number at the caller (or at the site) instead of leaving it unresolved.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildCallGraph } from '../worker/native/call-graph.js';
import type { CodeModel } from '../worker/native/code-model.js';

const BASE = 0x1000;

/** A code model of one range at BASE with named functions at the given offsets. */
function model(code: number[], functions: Record<string, number>): CodeModel {
  return {
    arch: 'x86_64',
    bitness: 64,
    goAbi: false,
    ranges: [{ start: BASE, bytes: Uint8Array.from(code) }],
    seeds: Object.entries(functions).map(([name, offset]) => ({ address: BASE + offset, names: [name] })),
    plt: [],
    gotSlots: new Map(),
    irelativeSlots: new Map(),
    ifuncResolvers: new Set(),
    dataImports: [],
    dataCodePointers: [],
    gotCodePointers: new Map(),
    exportNameStrings: new Map(),
    identifierStrings: new Map(),
    dataNames: [],
    goStaticData: [],
    exports: Object.entries(functions).map(([name, offset]) => ({ name, address: BASE + offset })),
    initialisers: [],
  };
}

/** `bytes` placed at `offset` of a buffer filled with int3. */
function layout(parts: readonly (readonly [number, readonly number[]])[], size: number): number[] {
  const code = new Array<number>(size).fill(0xcc);
  for (const [offset, bytes] of parts) code.splice(offset, bytes.length, ...bytes);
  return code;
}

function syscallsOf(code: number[], functions: Record<string, number>, name: string): { numbers: number[]; unresolved: number } {
  const graph = buildCallGraph(model(code, functions), 10_000);
  const fn = graph.functions.get(BASE + functions[name]!);
  assert.ok(fn, `function ${name}`);
  return { numbers: [...fn.syscalls.values()].map((ref) => ref.number).sort((a, b) => a - b), unresolved: fn.unresolved.length };
}

describe('value tracker', () => {
  it("resolves glibc 2.41's cancellable syscalls: the number is the 7th argument, forwarded with push [rsp+d]", () => {
    const code = layout(
      [
        // __internal_syscall_cancel: push rbx; mov rax, [rsp+0x10]; syscall; pop rbx; ret
        [0x00, [0x53, 0x48, 0x8b, 0x44, 0x24, 0x10, 0x0f, 0x05, 0x5b, 0xc3]],
        // __syscall_cancel: sub rsp, 0x10; push qword [rsp+0x18]; call 0x1000; pop rdx; pop rcx; add rsp, 8; ret
        [0x10, [0x48, 0x83, 0xec, 0x10, 0xff, 0x74, 0x24, 0x18, 0xe8, 0xe3, 0xff, 0xff, 0xff, 0x5a, 0x59, 0x48, 0x83, 0xc4, 0x08, 0xc3]],
        // wait4: sub rsp, 0x10; push 0x3d; call 0x1010; add rsp, 0x18; ret
        [0x30, [0x48, 0x83, 0xec, 0x10, 0x6a, 0x3d, 0xe8, 0xd5, 0xff, 0xff, 0xff, 0x48, 0x83, 0xc4, 0x18, 0xc3]],
      ],
      0x40,
    );
    const functions = { __internal_syscall_cancel: 0x00, __syscall_cancel: 0x10, wait4: 0x30 };
    assert.deepEqual(syscallsOf(code, functions, 'wait4'), { numbers: [61], unresolved: 0 });
    assert.deepEqual(syscallsOf(code, functions, '__syscall_cancel').unresolved, 0, 'a wrapper, not an unresolved site');
  });

  it('follows a number read through the frame pointer (push rbp; mov rbp, rsp; mov eax, [rbp+0x10])', () => {
    const code = layout(
      [
        // wrapper: push rbp; mov rbp, rsp; mov eax, [rbp+0x10]; syscall; pop rbp; ret
        [0x00, [0x55, 0x48, 0x89, 0xe5, 0x8b, 0x45, 0x10, 0x0f, 0x05, 0x5d, 0xc3]],
        // caller: push 0x27; call 0x1000; add rsp, 8; ret
        [0x10, [0x6a, 0x27, 0xe8, 0xe9, 0xff, 0xff, 0xff, 0x48, 0x83, 0xc4, 0x08, 0xc3]],
      ],
      0x20,
    );
    assert.deepEqual(syscallsOf(code, { wrapper: 0x00, caller: 0x10 }, 'caller'), { numbers: [39], unresolved: 0 });
  });

  it('knows the value on the taken edge of je after test reg, reg (musl __stdio_read: read or readv)', () => {
    const code = layout(
      [
        // add rax, rdi; test rax, rax; je +5; mov eax, 0x13; syscall; ret
        [0x00, [0x48, 0x01, 0xf8, 0x48, 0x85, 0xc0, 0x74, 0x05, 0xb8, 0x13, 0x00, 0x00, 0x00, 0x0f, 0x05, 0xc3]],
      ],
      0x10,
    );
    assert.deepEqual(syscallsOf(code, { stdio_read: 0 }, 'stdio_read'), { numbers: [0, 19], unresolved: 0 });
  });

  it('leaves a computed number unresolved (the check can fail)', () => {
    const code = layout([[0x00, [0x48, 0x01, 0xf8, 0x0f, 0x05, 0xc3]]], 0x08); // add rax, rdi; syscall; ret
    assert.deepEqual(syscallsOf(code, { computed: 0 }, 'computed'), { numbers: [], unresolved: 1 });
  });
});
