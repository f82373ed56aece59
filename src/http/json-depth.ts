/**
 * Bodies nesting deeper than this are refused. Nothing in the contract nests more than a few levels (a json feature
 * value adds its own), and a 10,000-level value would overflow the stack of JSON.stringify when it is stored or echoed.
 */
export const MAX_JSON_DEPTH = 100;

/** True when the JSON text opens more than `max` arrays/objects at once. A scan of the text, so it cannot recurse. */
export function jsonDepthExceeds(text: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      // a backslash escapes the next character
      if (c === 92) i++;
      else if (c === 34) inString = false;
    } else if (c === 34) inString = true;
    else if (c === 91 || c === 123) {
      if (++depth > max) return true;
    } else if (c === 93 || c === 125) depth--;
  }
  return false;
}
