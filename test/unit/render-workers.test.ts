/**
 * Render workers sized from the cluster, the error a lost worker gives the client, and the
 * collection of the native garbage a map leaves (src/render/workers.ts, src/render/native-memory.ts).
 */
import { describe, expect, it } from 'vitest';
import { renderWorkersFor, RenderWorkerLost } from '../../src/render/workers.js';
import { classify } from '../../src/errors/classify.js';
import { collectNative, NATIVE_BUDGET, nativeCollections, noteNative } from '../../src/render/native-memory.js';

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
