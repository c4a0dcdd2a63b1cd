/** The bounded gate and the load shedder, without a database: waits are bounded, refusals come before any work. */
import { describe, expect, it, vi } from 'vitest';
import { validateConfig } from '../../src/config/index.js';
import { RenderGate } from '../../src/render/queue.js';
import { ClientGone, Gate, ServerBusy } from '../../src/ops/gate.js';
import { isHeavyRequest, LoadShedder } from '../../src/ops/shed.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('Gate', () => {
  it('a waiter not served within maxWaitMs leaves the queue with ServerBusy, and the slot order is kept', async () => {
    const g = new Gate(1, 10, 'busy', 80);
    const hold = await g.acquire();
    const t0 = Date.now();
    await expect(g.acquire()).rejects.toBeInstanceOf(ServerBusy);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(70);
    expect(g.queued).toBe(0);
    // the slot still works for the next one
    const next = g.acquire();
    hold();
    (await next)();
    expect(g.active).toBe(0);
  });

  it('refuses at once a newcomer whose expected wait is longer than maxWaitMs', async () => {
    const g = new Gate(1, 100, 'busy', 100);
    // learn a hold time of about 60 ms
    for (let i = 0; i < 5; i++) {
      const r = await g.acquire();
      await sleep(60);
      r();
    }
    const hold = await g.acquire();
    const waiter = g.acquire(); // expected wait ≈ 60 ms: queued
    // a second waiter would wait ≈ 120 ms > 100 ms: refused without entering the queue
    const refused = g.acquire();
    expect(g.queued).toBe(1);
    await expect(refused).rejects.toBeInstanceOf(ServerBusy);
    hold();
    (await waiter)();
    expect(g.active).toBe(0);
  });

  it('a full queue refuses at once; a client that leaves gives its place up', async () => {
    const g = new Gate(1, 1);
    const hold = await g.acquire();
    const ac = new AbortController();
    const waiting = g.acquire(ac.signal);
    await expect(g.acquire()).rejects.toBeInstanceOf(ServerBusy);
    ac.abort();
    await expect(waiting).rejects.toBeInstanceOf(ClientGone);
    expect(g.queued).toBe(0);
    hold();
    expect(g.active).toBe(0);
  });

  it('a modest queue (16 clients on 4 slots) is served in arrival order, none refused', async () => {
    const g = new Gate(4, 1000, 'busy', 10_000);
    // learn a hold time of about 30 ms
    for (let i = 0; i < 5; i++) await g.run(() => sleep(30));
    const served: number[] = [];
    const res = await Promise.allSettled(
      Array.from({ length: 16 }, (_, i) =>
        g.run(async () => {
          served.push(i);
          await sleep(30);
        }),
      ),
    );
    expect(res.every((r) => r.status === 'fulfilled')).toBe(true);
    expect(served).toEqual(Array.from({ length: 16 }, (_, i) => i));
    expect(g.active).toBe(0);
    expect(g.queued).toBe(0);
  });

  it('with the default limits, 16 clients on the render gate are all queued when a map takes a second (issue 18: MapServer queues them)', async () => {
    const limits = validateConfig({}, 'defaults').limits;
    vi.useFakeTimers();
    try {
      const g = new RenderGate(limits.maxConcurrentRenders, limits.renderQueue, limits.maxQueueWaitMs);
      // renders of about a second each (town-scale maps over 1M parcels on two cores)
      for (let i = 0; i < 5; i++) {
        const r = await g.acquire();
        vi.advanceTimersByTime(1000);
        r();
      }
      const held = await Promise.all(Array.from({ length: limits.maxConcurrentRenders }, () => g.acquire()));
      // each queued map, once it has its slot, renders for a second
      const outcomes = Array.from({ length: 16 - held.length }, () =>
        g.acquire().then(
          async (release) => {
            await new Promise((r) => setTimeout(r, 1000));
            release();
            return 'served';
          },
          (e) => e.constructor.name,
        ),
      );
      expect(g.queued).toBe(16 - held.length);
      for (const r of held) r();
      await vi.advanceTimersByTimeAsync(5000);
      expect(await Promise.all(outcomes)).toEqual(outcomes.map(() => 'served'));
      expect(g.active).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });

  it('a standing queue is served newest first, and its oldest waiters are refused once they have waited longer than a short queue takes', async () => {
    const g = new Gate(1, 1000, 'busy', 10_000, 2);
    for (let i = 0; i < 5; i++) await g.run(() => sleep(20));
    // hold ≈ 20 ms: a short queue of 2 drains in ≈ 40 ms
    const hold = await g.acquire();
    const order: string[] = [];
    const outcome = (name: string) =>
      g.acquire().then(
        (release) => {
          order.push(name);
          release();
          return 'served';
        },
        (e) => (e instanceof ServerBusy ? 'busy' : 'other'),
      );
    const old = [outcome('a'), outcome('b')];
    await sleep(80);
    // deeper than 2 while a and b have waited longer than the queue takes to drain: they are
    // refused as the newcomers arrive, without waiting for maxWaitMs
    const t0 = Date.now();
    const fresh = [outcome('c'), outcome('d'), outcome('e')];
    expect(await Promise.all(old)).toEqual(['busy', 'busy']);
    expect(Date.now() - t0).toBeLessThan(5000);
    hold();
    expect(await Promise.all(fresh)).toEqual(['served', 'served', 'served']);
    // three deep: the newest first; then two deep (a short queue again): in order
    expect(order).toEqual(['e', 'c', 'd']);
    expect(g.active).toBe(0);
    expect(g.queued).toBe(0);
  });

  it('wouldRefuse tells a front door what acquire would do now', async () => {
    const g = new Gate(1, 1);
    expect(g.wouldRefuse()).toBe(false);
    const hold = await g.acquire();
    expect(g.wouldRefuse()).toBe(false);
    const waiter = g.acquire();
    expect(g.wouldRefuse()).toBe(true);
    hold();
    (await waiter)();
    expect(g.wouldRefuse()).toBe(false);
  });

  it('ServerBusy carries a Retry-After between 1 and 30 s', async () => {
    const g = new Gate(1, 0);
    const hold = await g.acquire();
    const e = await g.acquire().catch((x) => x);
    expect(e).toBeInstanceOf(ServerBusy);
    expect(e.retryAfter).toBeGreaterThanOrEqual(1);
    expect(e.retryAfter).toBeLessThanOrEqual(30);
    hold();
  });
});

describe('load shedding', () => {
  it('classifies heavy requests from the URL alone', () => {
    const heavy = [
      ['GET', '/wms?SERVICE=WMS&REQUEST=GetMap&LAYERS=a'],
      ['GET', '/wms?service=wms&request=getmap'],
      ['GET', '/ows?REQUEST=GetFeature&TYPENAMES=a'],
      ['GET', '/wfs?request=GetPropertyValue'],
      ['GET', '/wms?REQUEST=GetFeatureInfo'],
      ['POST', '/wfs'],
      ['GET', '/collections/parcels/items?limit=10'],
      ['GET', '/collections/parcels/items/12'],
      ['GET', '/downloads/parcels.gpkg'],
    ];
    const light = [
      ['GET', '/healthz'],
      ['GET', '/readyz'],
      ['GET', '/metrics'],
      ['GET', '/wms?SERVICE=WMS&REQUEST=GetCapabilities'],
      ['GET', '/wfs?REQUEST=DescribeFeatureType'],
      ['GET', '/wmts/1.0.0/parcels/default/WebMercatorQuad/12/2101/1460.png'],
      ['GET', '/tiles/parcels/12/2101/1460.png'],
      ['GET', '/collections/parcels'],
      ['GET', '/'],
    ];
    for (const [m, u] of heavy) expect(isHeavyRequest(m, u), u).toBe(true);
    for (const [m, u] of light) expect(isHeavyRequest(m, u), u).toBe(false);
  });

  it('takes the median of the last second: late turn after turn is overload, one long pause is not', () => {
    const s = new LoadShedder(100, 1000, false);
    let now = 10_000;
    // an idle loop: ticks on time every 20 ms
    for (let i = 0; i < 50; i++) s.record((now += 20), 1);
    expect(s.overloaded).toBe(false);
    // one pause of 600 ms, then on time again
    s.record((now += 620), 600);
    for (let i = 0; i < 5; i++) s.record((now += 20), 1);
    expect(s.overloaded).toBe(false);
    // every turn 200 ms late for a second and more
    for (let i = 0; i < 8; i++) s.record((now += 220), 200);
    expect(s.delayMs).toBe(200);
    expect(s.overloaded).toBe(true);
    // on time again for a second: over
    for (let i = 0; i < 50; i++) s.record((now += 20), 0);
    expect(s.overloaded).toBe(false);
    expect(new LoadShedder(0).overloaded).toBe(false);
  });

  it('the probe sees a loop kept busy turn after turn', async () => {
    const s = new LoadShedder(100);
    const block = (ms: number) => {
      const until = Date.now() + ms;
      while (Date.now() < until) {
        // busy
      }
    };
    try {
      const end = Date.now() + 1500;
      while (Date.now() < end) {
        block(200);
        await new Promise((r) => setImmediate(r));
        await sleep(0);
      }
      expect(s.delayMs).toBeGreaterThan(100);
      expect(s.overloaded).toBe(true);
    } finally {
      s.close();
    }
  });
});
