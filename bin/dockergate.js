#!/usr/bin/env node
// Entry point of the `dockergate` command: the compiled CLI (`npm ci` runs `tsc` through `prepare`).
import { main } from '../dist/coordinator/cli/cli.js';

process.exitCode = await main(process.argv);
