/** The `dockergate` command from sources, for tests that run it as a process: `node --import tsx test/helpers/cli.ts …`. */
import { main } from '../../coordinator/cli/cli.js';

process.exitCode = await main(process.argv);
