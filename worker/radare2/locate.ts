/**
 * Finds the radare2 executable: `$DOCKERGATE_RADARE2`, else `radare2` on `PATH`, else the private
 * installs of infra/setup/install-radare2.sh (the test setup's prefix, then the script's default).
 */
import { execFile } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import { NotFoundError } from '../../infra/errors.js';

const PRIVATE_INSTALLS = ['/var/cache/dockergate/radare2/bin/radare2', '/opt/radare2/bin/radare2'];

const HOW_TO_INSTALL =
  'install radare2 (Debian trixie or later / Ubuntu: apt-get install radare2; macOS: brew install radare2; ' +
  'Debian bookworm: sh infra/setup/install-radare2.sh) or set DOCKERGATE_RADARE2 to its path';

function executable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

export function locateRadare2(env: NodeJS.ProcessEnv = process.env): string {
  const explicit = env.DOCKERGATE_RADARE2;
  if (explicit) {
    if (!executable(explicit)) throw new NotFoundError(`DOCKERGATE_RADARE2=${explicit} is not an executable file`);
    return explicit;
  }
  for (const dir of (env.PATH ?? '').split(path.delimiter)) {
    if (dir !== '' && executable(path.join(dir, 'radare2'))) return path.join(dir, 'radare2');
  }
  const installed = PRIVATE_INSTALLS.find(executable);
  if (installed) return installed;
  throw new NotFoundError(`radare2 not found: ${HOW_TO_INSTALL}`);
}

/** `radare2 -v`'s first line (`radare2 6.1.8 +0 abi:110 @ linux-x86_64`), for reports and benches. */
export function radare2Version(binary: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(binary, ['-v'], { timeout: 10_000 }, (error, stdout) => {
      if (error) reject(new NotFoundError(`${binary} -v failed: ${error.message}`));
      else resolve(stdout.split('\n')[0] ?? '');
    });
  });
}
