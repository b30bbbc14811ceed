/**
 * The deployment files (infra/deploy/) cannot be run here (they pull public images), so this checks
 * what can go wrong without running them: they parse, every dockergate command they run exists with
 * every flag they pass (as `dockergate <command> --help` lists it), and every setting they pass is
 * one the cluster configuration reads. test/cluster.test.ts runs the same commands as processes.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';

const run = promisify(execFile);

interface Invocation {
  readonly where: string;
  readonly args: readonly string[];
  readonly env: readonly string[];
}

async function invocations(): Promise<Invocation[]> {
  const found: Invocation[] = [];
  const compose = parseAllDocuments(await fs.readFile('infra/deploy/compose.yaml', 'utf8'))[0]!.toJS() as {
    services: Record<string, { image?: string; command?: string[]; environment?: Record<string, string> }>;
  };
  for (const [name, service] of Object.entries(compose.services)) {
    if (service.image !== 'dockergate:dev' || !service.command) continue;
    found.push({ where: `compose ${name}`, args: service.command, env: Object.keys(service.environment ?? {}) });
  }
  for (const document of parseAllDocuments(await fs.readFile('infra/deploy/kubernetes/dockergate.yaml', 'utf8'))) {
    const object = document.toJS() as { kind: string; metadata: { name: string }; spec: { template: { spec: { containers: { args: string[] }[] } } } };
    assert.equal(object.kind, 'Deployment');
    for (const container of object.spec.template.spec.containers) found.push({ where: `kubernetes ${object.metadata.name}`, args: container.args, env: [] });
  }
  return found;
}

test('the deployment files run real dockergate commands with real flags and settings', async () => {
  const all = await invocations();
  assert.deepEqual([...new Set(all.map((item) => item.args[0]))].sort(), ['coordinator', 'worker']);
  const config = await fs.readFile('infra/cluster-config.ts', 'utf8');
  for (const item of all) {
    const { stdout } = await run(process.execPath, ['--import', 'tsx', 'test/helpers/cli.ts', item.args[0]!, '--help']);
    for (const flag of item.args.filter((arg) => arg.startsWith('--'))) assert.ok(stdout.includes(`${flag} `), `${item.where}: dockergate ${item.args[0]} has no ${flag}`);
    for (const name of item.env) assert.ok(name.startsWith('AWS_') || config.includes(`env.${name}`), `${item.where}: ${name} is not a setting of infra/cluster-config.ts`);
  }
});
