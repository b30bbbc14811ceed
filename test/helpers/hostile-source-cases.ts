/**
 * Hostile inputs of the other sources, for `inspect`: docker archives (files and directories),
 * `dir:` trees, registries on loopback, and hostile OCI layout metadata.
 */
import type { HostileCase } from './hostile-cases.js';

export const SOURCE_CASES: HostileCase[] = [];
