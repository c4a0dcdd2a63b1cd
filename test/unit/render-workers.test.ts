/**
 * Render workers sized from the cluster, the error a lost worker gives the client, and the
 * collection of the native garbage a map leaves (src/render/workers.ts, src/render/native-memory.ts),
 * the glibc malloc settings the server's processes start with (src/ops/malloc-env.ts).
 */
import { describe, expect, it } from 'vitest';
import { renderWorkersFor, RenderWorkerLost } from '../../src/render/workers.js';
import { classify } from '../../src/errors/classify.js';
import { collectNative, NATIVE_BUDGET, nativeCollections, noteNative, oneAtATime } from '../../src/render/native-memory.js';
import { MALLOC_DEFAULTS, mallocEnv } from '../../src/ops/malloc-env.js';

describe('render workers per process', () => {
  it('keeps the cluster near one render thread per core, at least one and at most four per process', () => {
    expect(renderWorkersFor(2, 1)).toBe(2);
    expect(renderWorkersFor(2, 2)).toBe(1); // the default on 2 cores: 2 processes × 1 worker
    expect(renderWorkersFor(4, 2)).toBe(2);
    expect(renderWorkersFor(8, 8)).toBe(1);
    expect(renderWorkersFor(1, 4)).toBe(1);
    expect(renderWorkersFor(16, 1)).toBe(4);
    expect(renderWorkersFor(0, 0)).toBe(1);
  });

  it('answers a map whose worker was lost with 503 and Retry-After, not 500', () => {
    const e = classify(new RenderWorkerLost('out of its 256 MB heap'));
    expect(e.status).toBe(503);
    expect(e.retryAfter).toBe(1);
    expect(e.message).toMatch(/render worker stopped \(out of its 256 MB heap\)/);
  });
});

describe('native garbage of drawn maps', () => {
  it('runs a collection once the budget is exceeded, not before', () => {
    const before = nativeCollections().count;
    noteNative(NATIVE_BUDGET - 1);
    collectNative();
    expect(nativeCollections().count).toBe(before);
    noteNative(1);
    collectNative();
    expect(nativeCollections().count).toBe(before + 1);
    // the count starts again
    collectNative();
    expect(nativeCollections().count).toBe(before + 1);
  });
});

describe('maps of a render worker, one at a time', () => {
  it('runs the queued jobs in order, one at a time, with the event loop turning between them', async () => {
    const log: string[] = [];
    let active = 0;
    let done!: () => void;
    const finished = new Promise<void>((r) => (done = r));
    const queue = oneAtATime(async (n: number) => {
      expect(++active).toBe(1);
      log.push(`start ${n}`);
      // what a collection queues (the N-API finalizers that free Skia memory run from setImmediate)
      setImmediate(() => setImmediate(() => log.push(`finalized ${n}`)));
      await Promise.resolve();
      log.push(`end ${n}`);
      active--;
      if (n === 3) setImmediate(() => setImmediate(done));
    });
    // three maps arriving together, as a worker's message port hands them over
    queue(1);
    queue(2);
    queue(3);
    await finished;
    expect(log).toEqual(['start 1', 'end 1', 'finalized 1', 'start 2', 'end 2', 'finalized 2', 'start 3', 'end 3', 'finalized 3']);
  });

  it('goes on after a job that throws', async () => {
    const seen: number[] = [];
    let done!: () => void;
    const finished = new Promise<void>((r) => (done = r));
    const queue = oneAtATime((n: number) => {
      seen.push(n);
      if (n === 1) throw new Error('boom');
      done();
    });
    queue(1);
    queue(2);
    await finished;
    expect(seen).toEqual([1, 2]);
  });
});

describe('glibc malloc settings of the server processes', () => {
  it("adds the defaults and keeps the operator's own values", () => {
    const env = mallocEnv({ PATH: '/bin', MALLOC_ARENA_MAX: '4' });
    expect(env.PATH).toBe('/bin');
    expect(env.MALLOC_ARENA_MAX).toBe('4');
    expect(env.MALLOC_MMAP_THRESHOLD_).toBe(MALLOC_DEFAULTS.MALLOC_MMAP_THRESHOLD_);
    expect(env.MALLOC_TRIM_THRESHOLD_).toBe('131072');
    expect(mallocEnv({}).MALLOC_ARENA_MAX).toBe('2');
  });
});
