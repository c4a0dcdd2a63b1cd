/** Polling for a condition that background work (change feed, overview builds) makes true. */
export interface WaitOptions {
  timeoutMs?: number;
  intervalMs?: number;
  /** What to add to the timeout message (a status dump). */
  detail?: () => string;
}

export async function waitFor(cond: () => boolean | Promise<boolean>, what: string, o: WaitOptions = {}): Promise<void> {
  const until = Date.now() + (o.timeoutMs ?? 20_000);
  while (!(await cond())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}${o.detail ? `: ${o.detail()}` : ''}`);
    await new Promise((r) => setTimeout(r, o.intervalMs ?? 25));
  }
}
