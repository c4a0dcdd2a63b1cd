/**
 * Many processes on one port (node:cluster), `server.processes` of them (default: one per core).
 *
 * The primary serves nothing itself: it forks the workers (each a whole server: its own pool,
 * change feed LISTEN, memory tile tier), restarts a worker that dies, and answers:
 *   SIGHUP, SIGUSR2   rolling restart: for each worker in turn, a new one is started, and once it
 *                     listens the old one is told to drain (SIGTERM) and exit; the port keeps at
 *                     least N-1 ready workers and the primary's listening socket never closes;
 *   SIGTERM, SIGINT   every worker drains its requests and exits, then the primary exits.
 * Connections are handed out by the primary (round-robin); a worker that stops listening is
 * taken out of the rotation before it closes.
 *
 * Workers know they are one of several by GEODATA_PROCESS (their slot, 0..N-1, kept by a
 * replacement): it becomes the `process` label of their metrics. /metrics asked of any worker
 * returns every worker's series (the primary gathers them over IPC with prom-client's
 * AggregatorRegistry); /readyz answers for the worker that serves it.
 */
import cluster, { type Worker } from 'node:cluster';
import type { Logger } from 'pino';
import { AggregatorRegistry } from 'prom-client';
import { mallocEnv } from './ops/malloc-env.js';

export const PROCESS_ENV = 'GEODATA_PROCESS';

type Message = { type?: string; id?: number; text?: string; error?: string };

/** This process's slot in a cluster, or undefined when it serves alone. */
export function processSlot(): string | undefined {
  return cluster.isWorker ? process.env[PROCESS_ENV] : undefined;
}

/** A worker tells the primary it listens. */
export function notifyReady(): void {
  if (cluster.isWorker) process.send?.({ type: 'geodata:ready' });
}

let metricsRequests = 0;
const metricsWaiting = new Map<number, (m: Message) => void>();

/** Worker side of /metrics: the whole cluster's series, from the primary (null when not a worker or no answer). */
export function clusterMetrics(timeoutMs = 5000): Promise<string | null> {
  if (!cluster.isWorker || !process.send || !process.connected) return Promise.resolve(null);
  if (metricsWaiting.size === 0) process.on('message', onMetricsAnswer);
  const id = ++metricsRequests;
  return new Promise((resolve) => {
    const timer = setTimeout(() => done({}), timeoutMs);
    const done = (m: Message) => {
      clearTimeout(timer);
      metricsWaiting.delete(id);
      if (metricsWaiting.size === 0) process.off('message', onMetricsAnswer);
      resolve(typeof m.text === 'string' ? m.text : null);
    };
    metricsWaiting.set(id, done);
    process.send!({ type: 'geodata:metrics', id });
  });
}

function onMetricsAnswer(m: Message): void {
  if (m?.type === 'geodata:metrics' && typeof m.id === 'number') metricsWaiting.get(m.id)?.(m);
}

export interface PrimaryOptions {
  processes: number;
  log: Logger;
  /** Environment for the workers (the resolved database URL). */
  env: Record<string, string>;
  /** Time a worker gets to drain before it is killed. */
  shutdownGraceMs: number;
  /** After every worker has exited on SIGTERM/SIGINT. */
  onStopped: () => Promise<void>;
}

/** Run the primary: fork, watch, restart, roll, drain. */
export function runPrimary(o: PrimaryOptions): void {
  const { log } = o;
  // prom-client's cluster aggregation (its listener for the workers' answers)
  const aggregator = new AggregatorRegistry();
  const slots: (Worker | undefined)[] = new Array(o.processes).fill(undefined);
  const planned = new WeakSet<Worker>();
  const readyOnce = new WeakMap<Worker, Promise<boolean>>();
  const crashes: number[] = new Array(o.processes).fill(0);
  let stopping = false;
  let rolling: Promise<void> | undefined;
  let announced = false;

  const fork = (slot: number): Worker => {
    // glibc malloc settings (src/ops/malloc-env.ts; an operator's own values are kept)
    const w = cluster.fork({ ...mallocEnv(process.env), ...o.env, [PROCESS_ENV]: String(slot) });
    const started = Date.now();
    slots[slot] = w;
    readyOnce.set(
      w,
      new Promise<boolean>((resolve) => {
        w.on('message', (m: Message) => {
          if (m?.type === 'geodata:ready') {
            crashes[slot] = 0;
            resolve(true);
          } else if (m?.type === 'geodata:metrics') {
            aggregator.clusterMetrics().then(
              (text) => w.isConnected() && w.send({ type: 'geodata:metrics', id: m.id, text }),
              (e: Error) => w.isConnected() && w.send({ type: 'geodata:metrics', id: m.id, error: e.message }),
            );
          }
        });
        w.on('exit', () => resolve(false));
      }),
    );
    w.on('exit', (code, signal) => {
      if (slots[slot] === w) slots[slot] = undefined;
      if (planned.has(w) || stopping) return;
      // a worker that dies soon after its start again and again is restarted less and less often
      crashes[slot] = Date.now() - started < 10_000 ? crashes[slot] + 1 : 0;
      const delay = Math.min(30_000, crashes[slot] ? 250 * 2 ** crashes[slot] : 0);
      log.error({ process: slot, pid: w.process.pid, code, signal, restartInMs: delay }, 'worker process died; starting a new one');
      setTimeout(() => {
        if (!stopping && !slots[slot]) fork(slot);
      }, delay);
    });
    return w;
  };

  const exited = (w: Worker) =>
    new Promise<void>((resolve) => {
      if (w.isDead()) resolve();
      else w.once('exit', () => resolve());
    });

  /** Ask a worker to drain and exit; killed when it outlasts the grace period. */
  const retire = async (w: Worker) => {
    planned.add(w);
    const gone = exited(w);
    w.process.kill('SIGTERM');
    const t = setTimeout(() => w.process.kill('SIGKILL'), o.shutdownGraceMs + 5000);
    await gone;
    clearTimeout(t);
  };

  const roll = async (signal: string) => {
    log.info({ signal, processes: o.processes }, 'rolling restart: replacing the workers one by one');
    for (let slot = 0; slot < o.processes && !stopping; slot++) {
      const old = slots[slot];
      const fresh = fork(slot);
      if (!(await readyOnce.get(fresh))) {
        log.error({ process: slot }, 'rolling restart stopped: the new worker did not start; the others keep serving');
        if (old && !old.isDead()) slots[slot] = old;
        return;
      }
      if (old && !old.isDead()) await retire(old);
      log.info({ process: slot, pid: fresh.process.pid }, 'rolling restart: worker replaced');
    }
    log.info('rolling restart done');
  };

  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down: every worker drains its requests');
    await rolling?.catch(() => undefined);
    await Promise.all(Object.values(cluster.workers ?? {}).map((w) => (w ? retire(w) : undefined)));
    await o.onStopped();
  };

  for (let slot = 0; slot < o.processes; slot++) fork(slot);
  void Promise.all(slots.map((w) => (w ? readyOnce.get(w) : false))).then((ok) => {
    if (announced) return;
    announced = true;
    log.info({ processes: o.processes, ready: ok.filter(Boolean).length, pid: process.pid }, 'cluster ready');
  });

  const rollOn = (signal: string) => {
    if (stopping) return;
    if (rolling) {
      log.warn({ signal }, 'a rolling restart is already running');
      return;
    }
    rolling = roll(signal).finally(() => {
      rolling = undefined;
    });
  };
  process.on('SIGHUP', () => rollOn('SIGHUP'));
  process.on('SIGUSR2', () => rollOn('SIGUSR2'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}
