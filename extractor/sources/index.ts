import { UnsupportedError } from '../../infra/errors.js';
import type { SourceReference } from '../reference.js';
import type { ImageSource, SourceOptions } from '../source.js';
import type { OpenedImage } from '../types.js';
import { dirSource } from './dir.js';
import { dockerArchiveSource } from './docker-archive.js';
import { dockerDaemonSource } from './docker-daemon.js';
import { ociLayoutSource } from './oci-layout.js';
import { registrySource } from './registry.js';

/** Every image source, one per transport. Adding a source means adding it here. */
export const IMAGE_SOURCES: readonly ImageSource[] = [
  registrySource,
  dockerDaemonSource,
  dockerArchiveSource,
  ociLayoutSource,
  dirSource,
] as readonly unknown[] as readonly ImageSource[];

export async function openImage(reference: SourceReference, options: SourceOptions): Promise<OpenedImage> {
  const source = IMAGE_SOURCES.find((candidate) => candidate.transport === reference.transport);
  if (!source) throw new UnsupportedError(`no image source for transport ${reference.transport}`);
  return source.open(reference, options);
}

/** The manifest digest of an image when its source can tell it without opening it. */
export async function peekImageDigest(reference: SourceReference, options: SourceOptions): Promise<string | undefined> {
  const source = IMAGE_SOURCES.find((candidate) => candidate.transport === reference.transport);
  return source?.peekDigest?.(reference, options);
}
