/**
 * Every hostile case, for the suites that run them all (test/hostile-input.test.ts in process,
 * test/hostile-isolation.test.ts one child process each): the layer and layout cases of
 * `hostile-cases.ts`, the cases of other sources (`hostile-source-cases.ts`: docker archives,
 * directories, registries), and the planner's cases, crafted ELF objects among them
 * (`hostile-elf-cases.ts`).
 */
import { CASES, type HostileCase, type HostileScanCase, SCAN_CASES } from './hostile-cases.js';
import { ELF_SCAN_CASES } from './hostile-elf-cases.js';
import { SOURCE_CASES } from './hostile-source-cases.js';

export const INSPECT_CASES: readonly HostileCase[] = [...CASES, ...SOURCE_CASES];
export const PLAN_CASES: readonly HostileScanCase[] = [...SCAN_CASES, ...ELF_SCAN_CASES];
