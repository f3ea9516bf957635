/** A stored record that does not parse reads as absent: one bad value must not stop a reader. */
export function parseJson<T>(s: string): T | undefined {
  try {
    return JSON.parse(s) as T;
  } catch {
    return undefined;
  }
}
