/**
 * `crawl --cluster` (issue 12: "the same commands" on the cluster): a private registry of 3
 * repositories × 2 tags crawled through a coordinator and a worker on the machine's NATS and
 * PostgreSQL (and an s3rver of the test's), then embedded; the tags, profiles and kb answers of the
 * cluster's knowledge base equal the embedded store's, and a second cluster crawl scans nothing.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import type { CrawlSummary } from '../coordinator/crawl/crawl.js';
import { cli, type MachineDeployment, type Service, startCoordinator, startMachineDeployment, startWorker, stopService } from './helpers/cluster.js';
import { gzipLayer, tempDir, writeOciLayout } from './helpers/layers.js';
import { type PrivateRegistry, startPrivateRegistry } from './helpers/private-servers.js';

const run = promisify(execFile);

describe('crawl --cluster', { timeout: 600_000 }, () => {
  let work: string;
  let registry: PrivateRegistry;
  let machine: MachineDeployment;
  const services: Service[] = [];

  before(async () => {
    work = await tempDir('dockergate-crawl-cluster-');
    registry = await startPrivateRegistry();
    machine = await startMachineDeployment();
    await fs.writeFile(path.join(work, 'app.c'), '#include <unistd.h>\nint main(void) { return write(1, "hi\\n", 3) != 3; }\n');
    await run('gcc', ['-static', '-O2', '-o', path.join(work, 'app'), path.join(work, 'app.c')]);
    const base = await gzipLayer([{ name: 'bin/app', content: await fs.readFile(path.join(work, 'app')), mode: 0o755 }]);
    for (const repository of ['x/one', 'x/two', 'x/three']) {
      for (const tag of ['1', '2']) {
        const layout = path.join(work, `${repository.replace('/', '_')}-${tag}`);
        const top = await gzipLayer([{ name: 'etc/id', content: `${repository}:${tag}` }]);
        await writeOciLayout(layout, { layers: [base, top], config: { Entrypoint: ['/bin/app'] } });
        await registry.push(`oci:${layout}`, repository, tag);
      }
    }
    // The CLI's scan units wait in the stream until these are up.
    services.push(startWorker(machine.deployment.env), startCoordinator(machine.deployment.env));
  });

  after(async () => {
    for (const service of services) await stopService(service);
    await machine?.close();
    await registry?.close();
    if (work) await fs.rm(work, { recursive: true, force: true });
  });

  it('gives the cluster\'s knowledge base what an embedded crawl gives its own', async () => {
    const env = machine.deployment.env;
    const clustered = JSON.parse((await cli(['crawl', registry.address, '--cluster', '--json'], env)).stdout) as CrawlSummary;
    assert.deepEqual(clustered.failures, []);
    assert.equal(clustered.scanned, 6);
    const embedded = JSON.parse((await cli(['crawl', registry.address, '--json', '--cache-dir', path.join(work, 'cache')])).stdout) as CrawlSummary;
    assert.equal(embedded.scanned, 6);
    assert.deepEqual(clustered.changed, embedded.changed, 'the same tags with the same syscalls');

    const kb = (store: string[], ...args: string[]) => cli(['kb', ...args, '--json', ...store], env).then(({ stdout }) => JSON.parse(stdout) as unknown);
    const cluster = ['--cluster'];
    const local = ['--cache-dir', path.join(work, 'cache')];
    for (const question of [['syscall', 'write'], ['image', `${registry.address}/x/two:2`], ['stats', '--top', '5']]) {
      const [a, b] = [await kb(cluster, ...question), await kb(local, ...question)];
      // Times differ between the stores; everything else must not.
      const timeless = (value: unknown) => JSON.parse(JSON.stringify(value, (key, v: unknown) => (key === 'checkedAt' || key === 'changedAt' || key === 'at' ? undefined : v)));
      assert.deepEqual(timeless(a), timeless(b), `kb ${question.join(' ')}`);
    }

    const again = JSON.parse((await cli(['crawl', registry.address, '--cluster', '--json'], env)).stdout) as CrawlSummary;
    assert.equal(again.skipped, 6);
    assert.equal(again.scanned, 0);
  });
});
