/**
 * The shared services of cluster mode, opened together: the JetStream bus, the S3 CAS and the
 * PostgreSQL knowledge base. Used by the planning process and by workers alike.
 */
import type { ClusterConfig } from '../infra/cluster-config.js';
import { JetStreamBus, type JetStreamBusOptions } from '../infra/jetstream-bus.js';
import type { KnowledgeBase } from './kb/index.js';
import { openPostgresKnowledgeBase } from './kb/postgres.js';
import { S3Cas } from './s3-cas.js';

export interface ClusterServices {
  readonly bus: JetStreamBus;
  readonly cas: S3Cas;
  readonly kb: KnowledgeBase;
  close(): Promise<void>;
}

/** Connects to NATS, S3 and PostgreSQL, each failure a one-line error naming the service. */
export async function connectCluster(config: ClusterConfig, busOptions: Partial<JetStreamBusOptions> = {}): Promise<ClusterServices> {
  const cas = new S3Cas({ ...config.s3 });
  const opened: { close(): Promise<void> | void }[] = [cas];
  try {
    await cas.ensureBucket();
    const kb = await openPostgresKnowledgeBase(config.databaseUrl);
    opened.push(kb);
    const bus = await JetStreamBus.connect(config.natsUrl, { prefix: config.prefix, ...config.bus, ...busOptions });
    opened.push(bus);
    return {
      bus,
      cas,
      kb,
      async close() {
        await bus.close();
        await kb.close();
        cas.close();
      },
    };
  } catch (err) {
    for (const service of opened.reverse()) await Promise.resolve(service.close()).catch(() => {});
    throw err;
  }
}
