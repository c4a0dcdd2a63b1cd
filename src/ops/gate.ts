/**
 * A bounded concurrency gate: `max` holders at a time, `queue` waiting, the rest refused at once
 * with a ServerBusy error (503 + Retry-After for the client). Used for map renders and for
 * feature streams (exports), so that a burst cannot exhaust the database pool.
 */
export class ServerBusy extends Error {
  readonly statusCode = 503;
  readonly retryAfter = 2;
  constructor(message = 'the server is busy; retry shortly') {
    super(message);
    this.name = 'ServerBusy';
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
  constructor(
    readonly max: number,
    readonly queue: number,
    private readonly busyMessage = 'the server is busy; retry shortly',
  ) {}

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
      if (this.waiting.length >= this.queue) throw new ServerBusy(this.busyMessage);
      // a waiter whose client leaves gives its place in the queue up at once
      await new Promise<void>((resolve, reject) => {
        const wake = () => {
          signal?.removeEventListener('abort', leave);
          resolve();
        };
        const leave = () => {
          const i = this.waiting.indexOf(wake);
          if (i >= 0) this.waiting.splice(i, 1);
          reject(new ClientGone());
        };
        this.waiting.push(wake);
        signal?.addEventListener('abort', leave, { once: true });
      });
    } else {
      this.running++;
    }
    this.lastChange = Date.now();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.lastChange = Date.now();
      const next = this.waiting.shift();
      if (next) next();
      else this.running--;
    };
  }

  async run<T>(fn: () => Promise<T>): Promise<T> {
    const release = await this.acquire();
    try {
      return await fn();
    } finally {
      release();
    }
  }
}

/** The gate of feature streams (exports, WFS and OGC API responses): limits.maxConcurrentExports holders, limits.exportQueue waiting. */
export function streamGate(max: number, queue: number): Gate {
  return new Gate(Math.max(1, max), Math.max(0, queue), 'the server is busy with other downloads; retry shortly');
}

/** Limits the feature engine applies to every query (limits.maxBboxAreaKm2). */
export interface QueryLimits {
  maxBboxAreaKm2?: number;
}
