/**
 * `crawl --out-dir` / `rescan --out-dir`: every profiled tag's profiles as files, by registry,
 * repository and tag: `<dir>/<registry>/<repository>/<tag>/profile.json` (Docker/OCI seccomp) and
 * `profile.yaml` (Kubernetes SeccompProfile); with several platforms, one pair per platform
 * (`profile-linux-arm64.json`, ...). Repository and tag names are checked against the distribution
 * grammar before they get here, so no component is `.` or `..`.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { parsePlatformSpec } from '../../extractor/manifest.js';
import type { TagRecord } from '../../store/kb/index.js';
import { dockerProfile, kubernetesName, kubernetesProfile } from '../output/policy.js';

export async function writeTagProfiles(outDir: string, tag: TagRecord): Promise<void> {
  if (tag.scans.length === 0) return;
  const dir = path.join(outDir, tag.registry, ...tag.repository.split('/'), tag.tag);
  await fs.mkdir(dir, { recursive: true });
  for (const scan of tag.scans) {
    const suffix = tag.scans.length > 1 ? `-${scan.platform.replaceAll('/', '-')}` : '';
    const profile = dockerProfile(scan.syscalls, parsePlatformSpec(scan.platform));
    const name = kubernetesName(`${tag.registry}/${tag.repository}:${tag.tag}${suffix}`);
    await fs.writeFile(path.join(dir, `profile${suffix}.json`), `${JSON.stringify(profile, null, 2)}\n`);
    await fs.writeFile(path.join(dir, `profile${suffix}.yaml`), kubernetesProfile(profile, name));
  }
}
