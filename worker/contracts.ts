/**
 * Wire contracts between the coordinator and workers: unit kinds, payloads and replies.
 * Payloads are plain JSON so that the cluster mode can carry them unchanged.
 */
import type { Digest, LayerDescriptor } from '../extractor/types.js';

export const UNIT_EXTRACT_LAYER = 'extract-layer';

/** Extract one layer of an image into a `LayerRecord` (stored) and CAS blobs. */
export interface ExtractLayerUnit {
  /** The image reference the layer is read from. */
  readonly image: string;
  readonly layer: LayerDescriptor;
}

export interface ExtractLayerDone {
  readonly digest: Digest;
  readonly extractorVersion: number;
  /** True when the record already existed and the layer was not read. */
  readonly cached: boolean;
  readonly files: number;
}

/** The unit id: a layer is processed once per (digest, extractor version), whatever the image. */
export function extractLayerUnitId(layer: LayerDescriptor, extractorVersion: number): string {
  return `${layer.digest}@${extractorVersion}`;
}

export const UNIT_ANALYSE_OBJECT = 'analyse-object';

/** Analyse one object (an ELF blob already in the CAS) once per analyser version. */
export interface AnalyseObjectUnit {
  readonly sha256: string;
  readonly analyser: string;
  readonly analyserVersion: number;
}

export interface AnalyseObjectDone {
  readonly sha256: string;
  readonly status: 'ok' | 'failed';
  /** True when the knowledge base already had the outcome and nothing was analysed. */
  readonly cached: boolean;
}

export function analyseObjectUnitId(unit: AnalyseObjectUnit): string {
  return `${unit.sha256}@${unit.analyser}@${unit.analyserVersion}`;
}
