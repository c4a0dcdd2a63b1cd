/**
 * Bounded concurrency gates with admission by expected wait (class Gate below): `max` holders at a
 * time, a queue served in order while short and newest first while standing, the rest refused
 * with a ServerBusy error (503 + Retry-After for the client). Used for map renders, tile renders
 * and feature streams (exports), so that a burst cannot exhaust the database pool.
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

/**
 * A bounded concurrency gate with admission by expected wait (the admission policy of maps, tile
 * renders and feature streams: docs/operations.md, "Admission under load").
 *
 * - `max` holders at a time; a newcomer finding every slot taken waits in a queue of at most
 *   `queue` requests (more are refused at once).
 * - A short queue (at most `fifoDepth` waiting; limits.orderedQueuePerSlot, 16, per slot) is served in arrival order,
 *   and a newcomer whose expected wait there (its place in the queue × the mean hold time ÷ slots)
 *   is longer than `maxWaitMs` is refused at once, before any work: a modest queue is served, as
 *   MapServer behind FastCGI serves it, and only a wait the client could not bear is refused.
 * - Beyond that depth the queue is standing (more arrives than the slots can serve) and the
 *   newest waiter is served first (adaptive LIFO): the requests that are served have waited
 *   little, instead of every one of them waiting behind the whole backlog. The oldest waiters —
 *   those a FIFO queue would have served late — are the ones refused: while the queue is deeper
 *   than `fifoDepth`, a waiter that has waited longer than a full short queue takes to drain
 *   (`fifoDepth` ÷ slots × the mean hold time) leaves with ServerBusy.
 * - No waiter waits longer than `maxWaitMs`: one not served by then leaves with ServerBusy
 *   (503 + Retry-After), and a waiter whose client leaves gives its place up at once.
 */
interface Waiter {
  /** When it started waiting (ms since the epoch). */
  since: number;
  /** Give it the slot. */
  wake: () => void;
  /** Send it away with ServerBusy. */
  refuse: (reason: 'standing' | 'timeout') => void;
}

export class Gate {
  private running = 0;
  private waiting: Waiter[] = [];
  /** Mean time a slot is held (exponentially weighted), for the expected wait of a newcomer. */
  private holdMs = 0;
  private holds = 0;
  /** Waiters beyond which the queue is served newest first. */
  readonly fifoDepth: number;
  /**
   * Requests refused since start, by reason: the queue was full (`full`), the expected wait in a
   * short queue was over maxWaitMs (`wait`), an old waiter of a standing queue (`standing`), a
   * waiter not served within maxWaitMs (`timeout`). For /metrics.
   */
  readonly refused = { full: 0, wait: 0, standing: 0, timeout: 0 };

  constructor(
    readonly max: number,
    readonly queue: number,
    private readonly busyMessage = 'the server is busy; retry shortly',
    readonly maxWaitMs = Number.POSITIVE_INFINITY,
    fifoDepth = 4 * max,
  ) {
    this.fifoDepth = Math.max(0, fifoDepth);
  }

  /** Expected wait, in ms, of a request arriving now (its place in the queue, served in order). */
  expectedWaitMs(): number {
    if (this.running < this.max) return 0;
    return Math.ceil((this.waiting.length + 1) / this.max) * this.holdMs;
  }

  private busy(): ServerBusy {
    const wait = Math.min(this.expectedWaitMs(), Number.isFinite(this.maxWaitMs) ? this.maxWaitMs : Number.POSITIVE_INFINITY);
    return new ServerBusy(this.busyMessage, Math.max(1, Math.min(30, Math.ceil(wait / 1000))));
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

  /**
   * Would a request arriving now be refused at once? (every slot held and the queue full, or its
   * expected wait in a short queue over maxWaitMs). For front doors that can refuse before parsing.
   */
  wouldRefuse(): boolean {
    return this.refusal() !== undefined;
  }

  private refusal(): 'full' | 'wait' | undefined {
    if (this.running < this.max) return undefined;
    if (this.waiting.length >= this.queue) return 'full';
    // with a known hold time (a few served requests), refuse at once what could not start in time
    if (this.holds >= 4 && this.waiting.length < this.fifoDepth && this.expectedWaitMs() > this.maxWaitMs) return 'wait';
    return undefined;
  }

  /** Wait for a slot; returns the function that gives it back (call it exactly once). */
  async acquire(signal?: AbortSignal): Promise<() => void> {
    if (signal?.aborted) throw new ClientGone();
    if (this.running >= this.max) {
      const refusal = this.refusal();
      if (refusal) {
        this.refused[refusal]++;
        throw this.busy();
      }
      this.shedStanding();
      // a waiter whose client leaves, or who waited too long, gives its place in the queue up at once
      await new Promise<void>((resolve, reject) => {
        let timer: NodeJS.Timeout | undefined;
        const done = () => {
          signal?.removeEventListener('abort', leave);
          if (timer) clearTimeout(timer);
        };
        const drop = (e: Error) => {
          const i = this.waiting.indexOf(w);
          if (i >= 0) this.waiting.splice(i, 1);
          done();
          reject(e);
        };
        const w: Waiter = {
          since: Date.now(),
          wake: () => {
            done();
            resolve();
          },
          refuse: (reason) => {
            this.refused[reason]++;
            drop(this.busy());
          },
        };
        const leave = () => drop(new ClientGone());
        this.waiting.push(w);
        signal?.addEventListener('abort', leave, { once: true });
        if (Number.isFinite(this.maxWaitMs)) {
          timer = setTimeout(() => w.refuse('timeout'), this.maxWaitMs);
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
      this.shedStanding(now);
      // a short queue in order; a standing one newest first (see the class comment)
      const next = this.waiting.length > this.fifoDepth ? this.waiting.pop() : this.waiting.shift();
      if (next) next.wake();
      else this.running--;
    };
  }

  /** While the queue is standing (deeper than fifoDepth), refuse its oldest waiters that have waited longer than a short queue takes to drain. */
  private shedStanding(now = Date.now()): void {
    if (this.holds < 4) return;
    const patience = Math.min(this.maxWaitMs, (Math.max(1, this.fifoDepth) / this.max) * this.holdMs);
    while (this.waiting.length > this.fifoDepth && now - this.waiting[0].since > patience) this.waiting[0].refuse('standing');
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
export function streamGate(max: number, queue: number, maxWaitMs = Number.POSITIVE_INFINITY, orderedPerSlot = 4): Gate {
  const slots = Math.max(1, max);
  return new Gate(slots, Math.max(0, queue), 'the server is busy with other downloads; retry shortly', maxWaitMs, orderedPerSlot * slots);
}

/** Limits the feature engine applies to every query (limits.maxBboxAreaKm2). */
export interface QueryLimits {
  maxBboxAreaKm2?: number;
}
