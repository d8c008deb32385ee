// Waiting for a condition rather than a fixed time: a loaded machine only makes a test slower.

/** Resolves once `f()` is true, polling every 5 ms; throws after `ms`. */
export async function until(f: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!f()) {
    if (Date.now() > end) throw new Error(`condition not reached in ${ms} ms`);
    await Bun.sleep(5);
  }
}
