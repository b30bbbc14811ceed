/**
 * Defensive ELF reader: random access over one file, every header field validated before use,
 * sizes checked before allocation, errors that name the byte offset (`ElfFormatError`) or the limit
 * (`ElfLimitError`). Tables are decoded lazily and cached.
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
