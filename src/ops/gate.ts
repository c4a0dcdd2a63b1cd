/**
 * A bounded concurrency gate: `max` holders at a time, `queue` waiting, the rest refused at once
 * with a ServerBusy error (503 + Retry-After for the client). Used for map renders and for
 * feature streams (exports), so that a burst cannot exhaust the database pool.
 */
export class ServerBusy extends Error {
  readonly statusCode = 503;
  readonly retryAfter: number;
  constructor(message = 'the server is busy; retry shortly', retryAfter = 2) {
    super(message);
    this.name = 'ServerBusy';
    this.retryAfter = retryAfter;
  }
}

/** The client left before its request was served: not an error of the server (nginx's 499). */
export class ClientGone extends Error {
  readonly statusCode = 499;
  constructor() {
    super('the client went away');
    this.name = 'ClientGone';
  }
}

export class Gate {
  private running = 0;
  private waiting: (() => void)[] = [];
  /** Mean time a slot is held (exponentially weighted), for the expected wait of a newcomer. */
  private holdMs = 0;
  private holds = 0;
  /**
   * `maxWaitMs` bounds the time a request may wait for a slot: a newcomer whose expected wait
   * (its place in the queue × the mean hold time ÷ slots) is longer is refused at once, before
   * any work, and a waiter not served in time leaves the queue with ServerBusy. Under overload
   * the queue then holds only what can be served soon, and the accepted requests keep their
   * latency instead of all of them waiting and timing out (goodput collapse).
   */
  constructor(
    readonly max: number,
    readonly queue: number,
    private readonly busyMessage = 'the server is busy; retry shortly',
    readonly maxWaitMs = Number.POSITIVE_INFINITY,
  ) {}

  /** Expected wait, in ms, of a request arriving now. */
  expectedWaitMs(): number {
    if (this.running < this.max) return 0;
    return Math.ceil((this.waiting.length + 1) / this.max) * this.holdMs;
  }

  private busy(): ServerBusy {
    return new ServerBusy(this.busyMessage, Math.max(1, Math.min(30, Math.ceil(this.expectedWaitMs() / 1000))));
  }

  get active(): number {
    return this.running;
  }
  get queued(): number {
    return this.waiting.length;
  }
  /** Time since a slot was last taken or given back, while every slot is held (0 otherwise). */
  stalledMs(now = Date.now()): number {
    return this.running >= this.max ? now - this.lastChange : 0;
  }
  private lastChange = Date.now();

  /** Wait for a slot; returns the function that gives it back (call it exactly once). */
  async acquire(signal?: AbortSignal): Promise<() => void> {
    if (signal?.aborted) throw new ClientGone();
    if (this.running >= this.max) {
      if (this.waiting.length >= this.queue) throw this.busy();
      // with a known hold time (a few served requests), refuse at once what could not start in time
      if (this.holds >= 4 && this.expectedWaitMs() > this.maxWaitMs) throw this.busy();
      // a waiter whose client leaves, or who waited too long, gives its place in the queue up at once
      await new Promise<void>((resolve, reject) => {
        let timer: NodeJS.Timeout | undefined;
        const wake = () => {
          signal?.removeEventListener('abort', leave);
          if (timer) clearTimeout(timer);
          resolve();
        };
        const drop = () => {
          const i = this.waiting.indexOf(wake);
          if (i >= 0) this.waiting.splice(i, 1);
          signal?.removeEventListener('abort', leave);
          if (timer) clearTimeout(timer);
        };
        const leave = () => {
          drop();
          reject(new ClientGone());
        };
        this.waiting.push(wake);
        signal?.addEventListener('abort', leave, { once: true });
        if (Number.isFinite(this.maxWaitMs)) {
          timer = setTimeout(() => {
            drop();
            reject(this.busy());
          }, this.maxWaitMs);
          timer.unref();
        }
      });
    } else {
      this.running++;
    }
    const start = Date.now();
    this.lastChange = start;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const now = Date.now();
      this.lastChange = now;
      const held = now - start;
      this.holdMs = this.holds === 0 ? held : this.holdMs * 0.9 + held * 0.1;
      this.holds++;
      const next = this.waiting.shift();
      if (next) next();
      else this.running--;
    };
  }

  /** Run `fn` holding a slot; the slot is given back on every outcome. */
  async run<T>(fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    const release = await this.acquire(signal);
    try {
      return await fn();
    } finally {
      release();
    }
  }
}

/** The gate of feature streams (exports, WFS and OGC API responses): limits.maxConcurrentExports holders, limits.exportQueue waiting. */
export function streamGate(max: number, queue: number, maxWaitMs = Number.POSITIVE_INFINITY): Gate {
  return new Gate(Math.max(1, max), Math.max(0, queue), 'the server is busy with other downloads; retry shortly', maxWaitMs);
}

/** Limits the feature engine applies to every query (limits.maxBboxAreaKm2). */
export interface QueryLimits {
  maxBboxAreaKm2?: number;
}
