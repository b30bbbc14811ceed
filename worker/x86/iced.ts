/**
 * iced-x86, loaded with `require`: it is a CommonJS package, and importing it from ESM makes Node
 * scan its whole source for export names first (cjs-module-lexer, ~40 ms in every analysis thread).
 * Each name is re-exported as the value and, where it has one, the type iced-x86 declares.
 */
import { createRequire } from 'node:module';

type Iced = typeof import('iced-x86');
const iced = createRequire(import.meta.url)('iced-x86') as Iced;

export const { Decoder, DecoderOptions, FlowControl, Instruction, InstructionInfoFactory, Mnemonic, OpAccess, OpKind, Register, RegisterExt } = iced;
export type Decoder = import('iced-x86').Decoder;
export type DecoderOptions = import('iced-x86').DecoderOptions;
export type FlowControl = import('iced-x86').FlowControl;
export type Instruction = import('iced-x86').Instruction;
export type InstructionInfoFactory = import('iced-x86').InstructionInfoFactory;
export type Mnemonic = import('iced-x86').Mnemonic;
export type OpAccess = import('iced-x86').OpAccess;
export type OpKind = import('iced-x86').OpKind;
export type Register = import('iced-x86').Register;
