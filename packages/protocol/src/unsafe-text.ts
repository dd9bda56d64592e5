/**
 * Text from a remote shown to a person: a file name from a metainfo, a peer
 * id, an error message. Its own module, not the log's: the metainfo and the
 * chunk store refuse or escape such text too, and pure framing code must
 * not depend on the log's vocabulary to do so.
 *
 * Anything unprintable is escaped, so a value can neither break a line
 * (U+2028 and U+2029 end a line for JavaScript regexes too), send terminal
 * escape sequences, nor reorder what a reader sees (bidi controls such as
 * U+202E RIGHT-TO-LEFT OVERRIDE).
 */

/**
 * Characters never shown raw: C0 and C1 controls, DEL, line and paragraph
 * separators, bidi marks, embeddings, overrides and isolates, and the
 * zero-width and BOM characters that hide text.
 */
export const UNSAFE_CHARS =
  // biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
  /[\u0000-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/;
const UNSAFE_CHARS_G = new RegExp(UNSAFE_CHARS.source, 'g');

/** `text` with every UNSAFE_CHARS character written as `\uXXXX`. */
export function escapeUnsafe(text: string): string {
  return text.replace(UNSAFE_CHARS_G, unicodeEscape);
}

/** One character as `\uXXXX` (for `String.replace` with an UNSAFE_CHARS pattern). */
export function unicodeEscape(c: string): string {
  return `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
}
