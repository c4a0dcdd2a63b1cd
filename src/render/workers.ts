/**
 * An optional pool of render workers (worker_threads) for renderMap: the queries run on the main
 * thread, the drawing, rasterisation and encoding of each map in a worker, so that one Node
 * thread does not cap map throughput on a machine with cores to spare.
 *
 * Size: GEODATA_RENDER_WORKERS (0 = draw on the main thread; default one per core, at most 4; at
 * most 16). On the 2-core development machine, quiet, A/B against MapServer: two workers took town
 * scale from 0.82–0.90× to 1.02–1.06× MapServer's req/s and street scale from 0.77–0.86× to
 * 0.87–0.99× (docs/rasteriser.md); while the machine was loaded by other jobs they made no
 * difference (the rows are copied to the worker and the image back). The pool only runs from the built code
 * (dist/…/render-worker.js); from TypeScript sources (tests through vite) maps are drawn on the
 * main thread.
 */
import { Worker } from 'node:worker_threads';
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { LayerData, PaintOptions } from './draw.js';

interface Job {
  resolve: (b: Buffer) => void;
  reject: (e: Error) => void;
  timer?: NodeJS.Timeout;
  timings?: Record<string, number>;
  slot: Slot;
}

interface Slot {
  worker: Worker;
  jobs: number;
}

export class WorkerRenderTimeout extends Error {}

const workerFile = fileURLToPath(new URL('./render-worker.js', import.meta.url));
const jobs = new Map<number, Job>();
let nextId = 1;
let slots: Slot[] | null = null;

function poolSize(): number {
  const env = process.env.GEODATA_RENDER_WORKERS;
  if (env !== undefined && env !== '') {
    const n = Number(env);
    return Number.isInteger(n) && n >= 0 ? Math.min(n, 16) : 0;
  }
  return Math.min(availableParallelism(), 4);
}

function spawn(): Slot {
  const slot: Slot = { worker: new Worker(workerFile), jobs: 0 };
  slot.worker.on('message', (m: { id: number; buf?: Uint8Array; error?: string; timings?: Record<string, number> }) => {
    const job = jobs.get(m.id);
    if (!job) return; // answered after its deadline
    finish(m.id, job);
    if (job.timings && m.timings) for (const [k, v] of Object.entries(m.timings)) job.timings[k] = (job.timings[k] ?? 0) + v;
    if (m.buf) job.resolve(Buffer.from(m.buf.buffer, m.buf.byteOffset, m.buf.byteLength));
    else job.reject(new Error(m.error ?? 'render worker failed'));
  });
  // a worker that dies fails its maps and is replaced
  const fail = (e: Error) => {
    for (const [id, job] of jobs) {
      if (job.slot !== slot) continue;
      finish(id, job);
      job.reject(e);
    }
    if (slots) slots[slots.indexOf(slot)] = spawn();
  };
  slot.worker.on('error', fail);
  slot.worker.on('exit', (code) => {
    if (slots?.includes(slot)) fail(new Error(`render worker exited with code ${code}`));
  });
  slot.worker.unref(); // only a busy worker keeps the process alive (after the listeners: they ref it)
  return slot;
}

function finish(id: number, job: Job): void {
  jobs.delete(id);
  if (--job.slot.jobs === 0) job.slot.worker.unref();
  if (job.timer) clearTimeout(job.timer);
}

function pool(): Slot[] | null {
  if (slots) return slots.length ? slots : null;
  const n = existsSync(workerFile) && !import.meta.url.endsWith('.ts') ? poolSize() : 0;
  slots = [];
  for (let i = 0; i < n; i++) slots.push(spawn());
  return slots.length ? slots : null;
}

/**
 * Paint and encode in the least busy worker; null when the pool does not run (the caller draws
 * in its own thread). Rejects with WorkerRenderTimeout at `deadline` (ms since the epoch).
 */
export function renderInWorker(
  layers: LayerData[],
  o: PaintOptions,
  deadline: number,
  timings?: Record<string, number>,
): Promise<Buffer> | null {
  const p = pool();
  if (!p) return null;
  const slot = p.reduce((a, b) => (b.jobs < a.jobs ? b : a));
  const id = nextId++;
  return new Promise<Buffer>((resolve, reject) => {
    const job: Job = { resolve, reject, slot, timings };
    if (Number.isFinite(deadline)) {
      job.timer = setTimeout(
        () => {
          finish(id, job);
          reject(new WorkerRenderTimeout());
        },
        Math.max(0, deadline - Date.now()),
      );
    }
    jobs.set(id, job);
    if (slot.jobs++ === 0) slot.worker.ref();
    slot.worker.postMessage({ id, layers, o, timed: Boolean(timings) });
  });
}

/** How many workers the pool runs (0 before the first render or when maps are drawn in-thread). */
export function renderWorkerCount(): number {
  return slots?.length ?? 0;
}

/** Stop the workers (tests, shutdown); the next render starts a new pool. */
export async function stopRenderWorkers(): Promise<void> {
  const old = slots ?? [];
  slots = null;
  await Promise.all(old.map((s) => s.worker.terminate()));
}
