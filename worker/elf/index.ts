/**
 * Defensive ELF reader (Go `debug/elf` + `internal/saferio` habits): random access over one file,
 * every header field validated before use, size arithmetic that cannot overflow, nothing allocated
 * for what the file merely claims, errors that name the byte offset. Tables are decoded lazily and
 * cached.
 *
 * Errors: `ElfFormatError` (an `InvalidInputError`, malformed bytes) and `ElfLimitError` (a
 * `LimitExceededError`, a claim above a limit). Nothing else escapes `parseElf` or any accessor.
 *
 * Limits (`infra/limits.ts`):
 * - `maxElfBytes`: the file size; also bounds a zero-filled `readVirtual` of .bss.
 * - `maxElfSections`: section headers, program headers, and dynamic entries (header-sized tables).
 * - `maxElfSymbols`: each symbol table, and the entries of one init/fini/preinit array.
 * - `maxElfRelocations`: all relocations of the object, RELR bitmaps expanded.
 * - `maxFdes`: FDEs (from `.eh_frame_hdr`'s count or the walk).
 * - `maxGoFunctions`: pclntab functions.
 */
export { ElfFile, parseElf } from './elf-file.js';
export { ElfFormatError, ElfLimitError } from './errors.js';
export type {
  EhFrameFunction,
  ElfDynamic,
  ElfDynamicEntry,
  ElfKind,
  ElfRelocation,
  ElfSection,
  ElfSegment,
  ElfSymbol,
  ElfSymbolBind,
  ElfSymbolType,
  ElfSymbolVisibility,
  GoFunction,
  GoInfo,
  PclntabVersion,
} from './types.js';
