/**
 * Profiles next to the images (issue 12, acceptance 4): `attach` pushes a scan's profile to a
 * private docker-registry (Debian's 2.8, no referrers API: the fallback tag schema applies) as an
 * OCI artifact whose subject is the scanned manifest; `fetch-profile` finds and verifies it and
 * gives back the very bytes `scan` writes; curl, speaking the referrers convention, lists it from
 * the `sha256-<hex>` tag; attaching again keeps one dockergate entry there.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { ARTIFACT_TYPE, PROFILE_MEDIA_TYPE } from '../coordinator/attach/attach.js';
import { cli } from './helpers/cluster.js';
import { gzipLayer, tempDir, writeOciLayout } from './helpers/layers.js';
import { type PrivateRegistry, startPrivateRegistry } from './helpers/private-servers.js';

const run = promisify(execFile);
const INDEX = 'application/vnd.oci.image.index.v1+json';

describe('attach and fetch-profile', { timeout: 300_000 }, () => {
  let work: string;
  let registry: PrivateRegistry;
  let reference: string;

  before(async () => {
    work = await tempDir('dockergate-attach-');
    registry = await startPrivateRegistry();
    await fs.writeFile(path.join(work, 'app.c'), '#include <unistd.h>\nint main(void) { return write(1, "hi\\n", 3) != 3; }\n');
    await run('gcc', ['-static', '-O2', '-o', path.join(work, 'app'), path.join(work, 'app.c')]);
    const layout = path.join(work, 'layout');
    await writeOciLayout(layout, { layers: [await gzipLayer([{ name: 'bin/app', content: await fs.readFile(path.join(work, 'app')), mode: 0o755 }])], config: { Entrypoint: ['/bin/app'] } });
    await registry.push(`oci:${layout}`, 'team/app', '1');
    reference = `docker://${registry.address}/team/app:1`;
  });

  after(async () => {
    await registry?.close();
    if (work) await fs.rm(work, { recursive: true, force: true });
  });

  it('round-trips the profile through the registry, listed under the referrers fallback tag', async () => {
    const cache = ['--cache-dir', path.join(work, 'cache')];
    const scanned = path.join(work, 'scanned.json');
    await cli(['scan', reference, '-o', scanned, ...cache]);
    const attached = await cli(['attach', reference, ...cache]);
    const match = /attached (sha256:[0-9a-f]{64}) to .* \(subject (sha256:[0-9a-f]{64}), listed in the referrers tag (sha256-[0-9a-f]{64})\)/.exec(attached.stdout);
    assert.ok(match, attached.stdout);
    const [, artifact, subject, tag] = match;
    assert.equal(tag, subject!.replace(':', '-'));

    const fetched = path.join(work, 'fetched.json');
    const yaml = path.join(work, 'fetched.yaml');
    const { stderr } = await cli(['fetch-profile', reference, '-o', fetched, '--k8s', yaml]);
    assert.match(stderr, new RegExp(`fetched ${artifact}`));
    assert.ok((await fs.readFile(fetched)).equals(await fs.readFile(scanned)), 'fetch-profile gives the bytes scan wrote');
    assert.match(await fs.readFile(yaml, 'utf8'), /kind: SeccompProfile/);

    // What a referrers-aware client does against a registry without the API: 404, then the tag.
    const api = await run('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', `http://${registry.address}/v2/team/app/referrers/${subject}`]);
    assert.equal(api.stdout, '404');
    const listed = JSON.parse((await run('curl', ['-sf', '-H', `Accept: ${INDEX}`, `http://${registry.address}/v2/team/app/manifests/${tag}`])).stdout) as { manifests: { digest: string; artifactType: string }[] };
    assert.deepEqual(listed.manifests.map((entry) => [entry.digest, entry.artifactType]), [[artifact, ARTIFACT_TYPE]]);
    const manifest = JSON.parse((await run('curl', ['-sf', '-H', 'Accept: application/vnd.oci.image.manifest.v1+json', `http://${registry.address}/v2/team/app/manifests/${artifact}`])).stdout) as {
      subject: { digest: string };
      layers: { mediaType: string }[];
    };
    assert.equal(manifest.subject.digest, subject);
    assert.equal(manifest.layers[0]!.mediaType, PROFILE_MEDIA_TYPE);

    // Attached again (a new creation time, so a new artifact): still one dockergate entry, the new one.
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    const again = /attached (sha256:[0-9a-f]{64})/.exec((await cli(['attach', reference, ...cache])).stdout)![1];
    assert.notEqual(again, artifact);
    const relisted = JSON.parse((await run('curl', ['-sf', '-H', `Accept: ${INDEX}`, `http://${registry.address}/v2/team/app/manifests/${tag}`])).stdout) as { manifests: { digest: string }[] };
    assert.deepEqual(relisted.manifests.map((entry) => entry.digest), [again]);
    assert.match((await cli(['fetch-profile', reference, '-o', fetched])).stderr, new RegExp(`fetched ${again}`));
  });

  it('says clearly when no profile is attached', async () => {
    const layout = path.join(work, 'other');
    await writeOciLayout(layout, { layers: [await gzipLayer([{ name: 'etc/x', content: 'x' }])], config: { Entrypoint: ['/bin/app'] } });
    await registry.push(`oci:${layout}`, 'team/other', '1');
    await assert.rejects(cli(['fetch-profile', `docker://${registry.address}/team/other:1`]), (err: { stderr: string }) => /not-found: no dockergate profile is attached/.test(err.stderr));
    await assert.rejects(cli(['attach', `oci:${layout}`]), (err: { stderr: string }) => /attach needs a registry image/.test(err.stderr));
  });
});
