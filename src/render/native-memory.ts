/**
 * Garbage the V8 collector does not see. A map's Skia objects (@napi-rs/canvas: one Path2D per
 * chunk of features, the canvas) hold their data in native memory behind a small JavaScript
 * wrapper, and the binding does not tell V8 how big they are: the wrappers are collected, and
 * their native memory freed, only when the thread's JavaScript heap grows enough for V8 to collect
 * — a town-scale map of 1M parcels leaves about 50 MB of it, so a thread that drew 25 such maps in
 * a row held 1.3 GB resident with a JavaScript heap of 64 MB (measured, docs/operations.md
 * "Memory budget"). The drawing code notes what it hands to Skia (`noteNative`); once a thread has
 * left more than NATIVE_BUDGET of it behind, a full collection runs as soon as the current task
 * ends (`settleNative`) or before the next map (`collectNative`), whichever comes first, and the
 * wrappers' finalizers free the native memory.
 *
 * A collection frees nothing by itself: Node runs the N-API finalizers of collected wrappers (which
 * free the Skia memory) from the event loop's check phase (setImmediate), and a worker's message
 * port hands every queued message over in one go. A render worker with maps queued therefore drew
 * them back to back and the finalizers waited for the queue to drain: one process reached 1.2 GB
 * resident (VmHWM 1,262 MB) over 40 town maps and 40 metatiles with 2 workers. `oneAtATime`
 * serves the jobs of a thread one by one with two turns of its event loop between them (the
 * collection's own immediate, then the finalizers'): the same run peaked at 402–515 MB.
 *
 * The collector is reached through V8's `gc` function, exposed for this module only (the flag is
 * set, a new context created to take the function, and the flag cleared again). Where that fails
 * (a runtime without V8 flags), nothing is collected early and the thread behaves as before.
 */
import v8 from 'node:v8';
import vm from 'node:vm';

/** Native bytes (estimated) left behind by drawing before a collection is forced. */
export const NATIVE_BUDGET = 32 << 20;

type GcFn = (o?: { type?: 'major' | 'minor'; execution?: 'sync' | 'async' }) => void;
let gcFn: GcFn | null | undefined;
let pending = 0;
let scheduled = false;
let collections = 0;
let collectionMs = 0;

function collector(): GcFn | null {
  if (gcFn === undefined) {
    try {
      v8.setFlagsFromString('--expose-gc');
      gcFn = vm.runInNewContext('gc') as GcFn;
    } catch {
      gcFn = null;
    } finally {
      v8.setFlagsFromString('--no-expose-gc');
    }
    if (typeof gcFn !== 'function') gcFn = null;
  }
  return gcFn;
}

/** Count `bytes` of native memory handed to Skia (path data, canvas pixels) by this thread. */
export function noteNative(bytes: number): void {
  pending += bytes;
}

/** Collect now if the thread's native garbage exceeds the budget (before a map: the last maps' objects are unreachable). */
export function collectNative(): void {
  if (pending < NATIVE_BUDGET) return;
  pending = 0;
  const gc = collector();
  if (!gc) return;
  const t = performance.now();
  gc();
  collections++;
  collectionMs += performance.now() - t;
}

/** After a map: collect once the thread's native garbage exceeds the budget, in a later task (after the caller's use of the canvas). */
export function settleNative(): void {
  if (pending < NATIVE_BUDGET || scheduled) return;
  scheduled = true;
  setImmediate(() => {
    scheduled = false;
    collectNative();
  });
}

/** Forced collections so far in this thread, and the milliseconds they took (tests, measurements). */
export function nativeCollections(): { count: number; ms: number } {
  return { count: collections, ms: collectionMs };
}

/** One turn of this thread's event loop (the check phase: setImmediate callbacks, N-API finalizers). */
function turn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * A queue that runs `run` on one job at a time, in arrival order, and lets the event loop turn
 * twice after each (settleNative's collection, then the finalizers it queued) before the next:
 * a map's Skia memory is freed before the next map draws, even when maps arrive faster than they
 * are drawn. Returns the function that queues a job.
 */
export function oneAtATime<T>(run: (job: T) => Promise<void> | void): (job: T) => void {
  const queue: T[] = [];
  let running = false;
  const drain = async () => {
    running = true;
    while (queue.length) {
      try {
        await run(queue.shift() as T);
      } catch {
        // `run` answers for its own failures (a worker replies with the map's error); one that
        // escapes must not stop the jobs behind it
      }
      await turn();
      await turn();
    }
    running = false;
  };
  return (job) => {
    queue.push(job);
    if (!running) void drain();
  };
}
