/** The native analyser's name and version, apart from its code (which loads iced-x86's WebAssembly). */
export const NATIVE_ANALYSER_NAME = 'native';
/** Bumped whenever facts computed from the same bytes would differ. */
export const NATIVE_ANALYSER_VERSION = 18;
