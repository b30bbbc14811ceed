/** The radare2 analyser's name and version, apart from its code. */
export const RADARE2_ANALYSER_NAME = 'radare2';
/** Bumped whenever facts computed from the same bytes (with the same radare2) would differ. */
export const RADARE2_ANALYSER_VERSION = 4;
