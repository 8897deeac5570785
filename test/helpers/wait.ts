/** Polling until a condition holds, for end-to-end tests that wait on other processes. */

/** Waits until `done()` holds, polling every 25 ms; fails naming `what` after `timeoutMs`. */
export async function until(
  done: () => boolean | Promise<boolean>,
  timeoutMs: number,
  what: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
}
