/** Bumped whenever a `LayerRecord` computed from the same bytes would differ (extractor/layer-extract.ts). */
export const EXTRACTOR_VERSION = 3;
