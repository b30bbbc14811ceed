/**
 * Wire contracts between the coordinator and workers: unit kinds, payloads and replies.
 * Payloads are plain JSON so that the cluster mode can carry them unchanged.
 */
import type { DirImageConfig } from '../extractor/source.js';
import type { Digest, LayerDescriptor, Platform } from '../extractor/types.js';

export const UNIT_EXTRACT_LAYER = 'extract-layer';

/** Extract one layer of an image into a `LayerRecord` (stored) and CAS blobs. */
export interface ExtractLayerUnit {
  /** The image reference the layer is read from. */
  readonly image: string;
  readonly layer: LayerDescriptor;
  /** A registry image opened with `--insecure`: a worker that fetches the layer may too. */
  readonly insecure?: boolean;
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

export const UNIT_SCAN_IMAGE = 'scan-image';
/**
 * The same unit sent by `crawl` and `rescan`: its own queue and consumer, so that coordinators keep
 * slots for interactive scans (`scan --cluster`) however many bulk scans wait.
 */
export const UNIT_SCAN_IMAGE_BULK = 'scan-image-bulk';

/**
 * Scan one image on a coordinator (`dockergate coordinator`), which plans it and sends the layer
 * and object units to workers. The reference is opened where the coordinator runs.
 */
export interface ScanImageUnit {
  readonly reference: string;
  readonly source: {
    readonly platform: Platform;
    readonly insecure: boolean;
    readonly dockerConfigPath?: string;
    readonly dirConfig?: DirImageConfig;
  };
  readonly strict: boolean;
  readonly analyser: string;
  readonly analyserVersion: number;
}

export interface ScanImageDone {
  /** The finished scan's key in the knowledge base's scan store. */
  readonly key: string;
  /** The reference as the scan normalised it (what outputs name). */
  readonly reference: string;
  /** Objects analysed for this scan (not known before). */
  readonly fresh: number;
}

/** Every request is its own unit: a tag may move between two scans of the same reference. */
export function scanImageUnitId(unit: ScanImageUnit, nonce: string): string {
  return `${unit.reference}|${unit.source.platform.os}/${unit.source.platform.architecture}|${unit.strict}|${unit.analyser}@${unit.analyserVersion}|${nonce}`;
}
