/**
 * An optional pool of render workers (worker_threads) for renderMap: the queries run on the main
 * thread, the drawing, rasterisation and encoding of each map in a worker, so that one Node
 * thread does not cap map throughput on a machine with cores to spare, and the event loop that
 * answers health checks and cached tiles is not held by a map's drawing.
 *
 * Size: GEODATA_RENDER_WORKERS (0 = draw on the main thread; at most 16), else from the cluster
 * (renderWorkersFor): the render threads of all processes together about one per core, at least
 * one per process, at most 4 per process — with the default `server.processes` (one per core)
 * that is one worker per process. Each worker holds its own V8 heap (old generation capped at
 * WORKER_HEAP_MB), Skia and label sprites (docs/operations.md, "Memory budget"). The rows go to the
 * worker with their TWKB buffers transferred, not copied, where the buffer is the row's own.
 *
 * A worker that dies (out of its heap, a crash) fails the maps it held with RenderWorkerLost — a
 * 503 for the client, not a 500 — and is replaced. The pool only runs from the built code
 * (dist/…/render-worker.js); from TypeScript sources (tests through vite) maps are drawn on the
 * main thread.
 */
import { Worker } from 'node:worker_threads';
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { LayerData, PaintOptions, TileCut } from './draw.js';

interface Job {
  resolve: (b: Buffer | Buffer[]) => void;
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

/** The worker drawing the map stopped (ran out of its heap, crashed): the map was not drawn; the worker is replaced. */
export class RenderWorkerLost extends Error {
  constructor(readonly reason: string) {
    super(`the map could not be drawn: its render worker stopped (${reason}); try again, or ask for a smaller map`);
    this.name = 'RenderWorkerLost';
  }
}

/** Old-generation heap of one render worker (MB): a map's features and path data, a few tens of MB at town scale (measured). */
export const WORKER_HEAP_MB = 256;

const workerFile = fileURLToPath(new URL('./render-worker.js', import.meta.url));
const jobs = new Map<number, Job>();
let nextId = 1;
let slots: Slot[] | null = null;

/**
 * Render workers per process when GEODATA_RENDER_WORKERS is not set: the cluster's render threads
 * about one per core (`cores` / `processes`), at least one per process (a map's drawing off the
 * event loop), at most 4.
 */
export function renderWorkersFor(cores: number, processes: number): number {
  return Math.max(1, Math.min(4, Math.floor(Math.max(1, cores) / Math.max(1, processes))));
}

let processes = 1;

/** The number of server processes sharing the machine (server.processes), set before the first render. */
export function setRenderProcesses(n: number): void {
  processes = Math.max(1, Math.floor(n) || 1);
}

function poolSize(): number {
  const env = process.env.GEODATA_RENDER_WORKERS;
  if (env !== undefined && env !== '') {
    const n = Number(env);
    return Number.isInteger(n) && n >= 0 ? Math.min(n, 16) : 0;
  }
  return renderWorkersFor(availableParallelism(), processes);
}

function spawn(): Slot {
  const slot: Slot = { worker: new Worker(workerFile, { resourceLimits: { maxOldGenerationSizeMb: WORKER_HEAP_MB } }), jobs: 0 };
  slot.worker.on(
    'message',
    (m: { id: number; buf?: Uint8Array; bufs?: Uint8Array[]; error?: string; timings?: Record<string, number> }) => {
      const job = jobs.get(m.id);
      if (!job) return; // answered after its deadline
      finish(m.id, job);
      if (job.timings && m.timings) for (const [k, v] of Object.entries(m.timings)) job.timings[k] = (job.timings[k] ?? 0) + v;
      const asBuffer = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength);
      if (m.buf) job.resolve(asBuffer(m.buf));
      else if (m.bufs) job.resolve(m.bufs.map(asBuffer));
      else job.reject(new Error(m.error ?? 'render worker failed'));
    },
  );
  // a worker that dies fails its maps and is replaced
  const fail = (reason: string) => {
    const i = slots ? slots.indexOf(slot) : -1;
    if (i < 0) return; // replaced already (an 'error' is followed by an 'exit'), or the pool stopped
    for (const [id, job] of jobs) {
      if (job.slot !== slot) continue;
      finish(id, job);
      job.reject(new RenderWorkerLost(reason));
    }
    slots![i] = spawn();
  };
  slot.worker.on('error', (e: Error & { code?: string }) =>
    fail(e.code === 'ERR_WORKER_OUT_OF_MEMORY' ? `out of its ${WORKER_HEAP_MB} MB heap` : e.message),
  );
  slot.worker.on('exit', (code) => fail(`exit code ${code}`));
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
  return submit(layers, o, undefined, deadline, timings) as Promise<Buffer> | null;
}

/** A metatile painted, cut and each tile encoded in the least busy worker (renderInWorker's terms); its tiles' PNGs row by row. */
export function cutInWorker(
  layers: LayerData[],
  o: PaintOptions,
  cut: TileCut,
  deadline: number,
  timings?: Record<string, number>,
): Promise<Buffer[]> | null {
  return submit(layers, o, cut, deadline, timings) as Promise<Buffer[]> | null;
}

function submit(
  layers: LayerData[],
  o: PaintOptions,
  cut: TileCut | undefined,
  deadline: number,
  timings?: Record<string, number>,
): Promise<Buffer | Buffer[]> | null {
  const p = pool();
  if (!p) return null;
  const slot = p.reduce((a, b) => (b.jobs < a.jobs ? b : a));
  const id = nextId++;
  return new Promise<Buffer | Buffer[]>((resolve, reject) => {
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
    slot.worker.postMessage({ id, layers, o, cut, timed: Boolean(timings) }, transferable(layers));
  });
}

/**
 * The rows' buffers the worker may take over: those that are a whole ArrayBuffer of their own (a
 * map's aggregated row, hundreds of kB). Small buffers share Node's pool slab with unrelated data
 * and are copied.
 */
function transferable(layers: LayerData[]): ArrayBuffer[] {
  const out = new Set<ArrayBuffer>();
  for (const l of layers)
    for (const r of l.rows) {
      const b = ownBuffer(r.g);
      if (b && b.byteLength > 4096) out.add(b);
    }
  return [...out];
}

/**
 * The ArrayBuffer a view covers whole — memory of its own, which may be handed to another thread
 * — else null (a view into Node's shared pool slab, or into a larger buffer: it must be copied).
 */
export function ownBuffer(v: Uint8Array): ArrayBuffer | null {
  const b = v.buffer;
  return b instanceof ArrayBuffer && v.byteOffset === 0 && v.byteLength === b.byteLength ? b : null;
}

/** How many workers the pool runs (0 before the first render or when maps are drawn in-thread). */
export function renderWorkerCount(): number {
  return slots?.length ?? 0;
}

/** The workers' threads (tests: a worker terminated from outside must be replaced). */
export function renderWorkerThreads(): Worker[] {
  return (slots ?? []).map((s) => s.worker);
}

/** Stop the workers (tests, shutdown); the next render starts a new pool. */
export async function stopRenderWorkers(): Promise<void> {
  const old = slots ?? [];
  slots = null;
  for (const [id, job] of jobs) {
    if (!old.includes(job.slot)) continue;
    finish(id, job);
    job.reject(new RenderWorkerLost('the render workers were stopped'));
  }
  await Promise.all(old.map((s) => s.worker.terminate()));
}
