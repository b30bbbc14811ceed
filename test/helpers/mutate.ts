/** Deterministic mutations of binaries for fuzz tests. */

/** xorshift32: the same inputs on every run. */
export function prng(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return state;
  };
}

/** ELF header fields worth hitting directly (64-bit offsets): e_entry, e_phoff, e_shoff, counts. */
const HEADER_FIELDS = [0x18, 0x20, 0x28, 0x36, 0x38, 0x3a, 0x3c, 0x3e];
const BOUNDARY = [0x00, 0xff, 0x7f, 0x80, 0x01, 0xfe];

export function mutate(seed: Uint8Array, random: () => number): Uint8Array {
  const bytes = Uint8Array.from(seed);
  const edits = 1 + (random() % 8);
  for (let e = 0; e < edits; e++) {
    // Half the edits go into code and data (the file stays a valid ELF), half into headers.
    const choice = random() % 10 < 5 ? 4 : random() % 6;
    if (choice === 0) {
      const at = random() % bytes.length;
      bytes[at]! ^= 1 << (random() % 8);
    } else if (choice === 1) {
      bytes[random() % bytes.length] = BOUNDARY[random() % BOUNDARY.length]!;
    } else if (choice === 2) {
      const field = HEADER_FIELDS[random() % HEADER_FIELDS.length]!;
      const value = random() % 3 === 0 ? 0xffffffff : random();
      new DataView(bytes.buffer).setUint32(field, value, true);
    } else if (choice === 3) {
      // Overwrite a word somewhere in the first 64 KiB (headers, dynamic, symbol tables live there).
      const at = random() % Math.max(1, Math.min(bytes.length - 8, 65_536));
      new DataView(bytes.buffer).setUint32(at, random(), true);
    } else if (choice === 4) {
      // Random bytes into code: exercises the decoder and the value tracker.
      const at = random() % bytes.length;
      for (let i = 0; i < 16 && at + i < bytes.length; i++) bytes[at + i] = random() & 0xff;
    } else {
      return bytes.subarray(0, random() % bytes.length);
    }
  }
  return bytes;
}

