/**
 * Cluster-mode configuration: one table of environment variables (README, "Cluster mode"), each
 * overridable by a flag of the same meaning. A missing required value is a one-line error naming it.
 */
import { InvalidInputError } from './errors.js';

export interface ClusterConfig {
  /** `NATS_URL`, e.g. `nats://127.0.0.1:4222`. */
  readonly natsUrl: string;
  /** `DATABASE_URL`, e.g. `postgres://dockergate@127.0.0.1:5432/dockergate`. */
  readonly databaseUrl: string;
  /** `DOCKERGATE_CLUSTER`: names the streams, consumers and buckets of one deployment (default `dockergate`). */
  readonly prefix: string;
  readonly s3: {
    /** `S3_ENDPOINT` (absent: AWS for the region). */
    readonly endpoint?: string;
    /** `S3_BUCKET`. */
    readonly bucket: string;
    /** `S3_REGION` (default us-east-1). */
    readonly region: string;
    /** `S3_FORCE_PATH_STYLE=1|true`. */
    readonly forcePathStyle: boolean;
  };
  /**
   * Bus tuning (infra/jetstream-bus.ts), each absent unless set: `DOCKERGATE_ACK_WAIT_MS` (a unit
   * without heartbeat for this long is redelivered), `DOCKERGATE_MAX_DELIVER` (deliveries before a
   * unit is a dead letter), `DOCKERGATE_MAX_RUN_MS` (longest run of one unit in one process). Every
   * process of a deployment must use the same values: the first one to start creates the consumers.
   */
  readonly bus: { readonly ackWaitMs?: number; readonly maxDeliver?: number; readonly maxRunMs?: number };
}

/** Flags that override the environment (`--nats`, `--database`, `--s3-endpoint`, `--s3-bucket`). */
export interface ClusterFlags {
  readonly nats?: string;
  readonly database?: string;
  readonly s3Endpoint?: string;
  readonly s3Bucket?: string;
}

export function clusterConfig(flags: ClusterFlags = {}, env: NodeJS.ProcessEnv = process.env): ClusterConfig {
  const required = (value: string | undefined, name: string, flag: string): string => {
    if (!value) throw new InvalidInputError(`cluster mode needs ${name} (or ${flag})`);
    return value;
  };
  const endpoint = flags.s3Endpoint ?? env.S3_ENDPOINT;
  return {
    natsUrl: required(flags.nats ?? env.NATS_URL, 'NATS_URL', '--nats'),
    databaseUrl: required(flags.database ?? env.DATABASE_URL, 'DATABASE_URL', '--database'),
    prefix: env.DOCKERGATE_CLUSTER || 'dockergate',
    s3: {
      ...(endpoint ? { endpoint } : {}),
      bucket: required(flags.s3Bucket ?? env.S3_BUCKET, 'S3_BUCKET', '--s3-bucket'),
      region: env.S3_REGION || 'us-east-1',
      forcePathStyle: /^(1|true|yes)$/i.test(env.S3_FORCE_PATH_STYLE ?? ''),
    },
    bus: {
      ...positive(env, 'DOCKERGATE_ACK_WAIT_MS', 'ackWaitMs'),
      ...positive(env, 'DOCKERGATE_MAX_DELIVER', 'maxDeliver'),
      ...positive(env, 'DOCKERGATE_MAX_RUN_MS', 'maxRunMs'),
    },
  };
}

function positive<K extends string>(env: NodeJS.ProcessEnv, name: string, key: K): Partial<Record<K, number>> {
  const text = env[name];
  if (!text) return {};
  const value = Number(text);
  if (!(Number.isInteger(value) && value > 0)) throw new InvalidInputError(`${name} must be a positive integer, not ${JSON.stringify(text)}`);
  return { [key]: value } as Partial<Record<K, number>>;
}
