/** `compute`, worked out on the first call only: later calls answer the same value. */
export function once<T>(compute: () => T): () => T {
  let value: T;
  let done = false;
  return () => {
    if (!done) {
      value = compute();
      done = true;
    }
    return value;
  };
}
