/** The bounded gate and the load shedder, without a database: waits are bounded, refusals come before any work. */
import { describe, expect, it } from 'vitest';
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
