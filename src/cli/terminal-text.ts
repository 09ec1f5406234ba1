// Anything a client supplied (a display name, a platform, a client id) is
// shown to the owner in a terminal. Escape sequences in it could move the
// cursor, rewrite a row of `devices list` or recolour a scope; bidi controls
// could reorder what the owner reads. Every such character is shown as a
// visible escape instead: `\x1b`, `\u{202e}`.

// C0 controls, DEL, C1 controls; bidi embeddings, overrides and isolates;
// zero-width and invisible formatting characters; line and paragraph separators.
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/gu;

export function terminalSafe(text: string): string {
  return text.replace(UNSAFE, (c) => {
    const code = c.codePointAt(0) ?? 0;
    return code < 0x100 ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u{${code.toString(16)}}`;
  });
}
