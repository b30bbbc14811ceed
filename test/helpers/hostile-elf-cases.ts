/**
 * Hostile images for the planner built around crafted ELF objects (test/helpers/elf-builder.ts):
 * dynamic sections, loaders and search paths an attacker controls.
 */
import type { HostileScanCase } from './hostile-cases.js';

export const ELF_SCAN_CASES: HostileScanCase[] = [];
