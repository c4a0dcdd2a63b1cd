/**
 * Admission at the render gate (src/ops/gate.ts, docs/operations.md "Admission under load"): with
 * every render slot taken, cheap requests (health, capabilities, cached tiles) never wait behind
 * renders; a modest queue waits and is served; a request the queue cannot take is refused with
 * 503 + Retry-After before it touches the database.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { XMLParser } from 'fast-xml-parser';
import { makeTestApp, type TestApp } from './helpers/app.js';

let t: TestApp;
beforeAll(async () => {
  t = await makeTestApp({ limits: { maxConcurrentRenders: 1, renderQueue: 2, maxQueueWaitMs: 60_000 } });
});
afterAll(async () => {
  await t?.close();
});

const MAP =
  '/wms?SERVICE=WMS&VERSION=1.3.0&REQUEST=GetMap&LAYERS=parcels&STYLES=&CRS=EPSG:2154&BBOX=840000,6750000,850000,6760000&WIDTH=256&HEIGHT=256&FORMAT=image/png';
const TILE = '/tiles/parcels/12/2101/1460.png';

async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  expect(cond()).toBe(true);
}

describe('with every render slot taken and the render queue full', () => {
  it('health, capabilities and a cached tile are answered; a queued map waits and is served; one more is refused before any database work', async () => {
    const { runtime, pool } = t.ctx;
    // a cached tile (rendered once, before the gates fill)
    expect((await t.app.inject(TILE)).statusCode).toBe(200);
    expect((await t.app.inject(TILE)).headers['x-cache']).toBe('HIT');

    // every slot of both render gates held (as by long renders)
    const held = [await runtime.gates.render.acquire(), await runtime.tiles.gate.acquire()];
    try {
      // two maps queue behind the held slot (a modest queue: they wait)
      const queued = [t.app.inject(MAP), t.app.inject(MAP)];
      await until(() => runtime.gates.render.queued === 2);

      // cheap requests do not pass through the render gates
      for (const url of ['/healthz', '/wms?SERVICE=WMS&REQUEST=GetCapabilities', '/collections/parcels']) {
        expect((await t.app.inject(url)).statusCode, url).toBe(200);
      }
      const tile = await t.app.inject(TILE);
      expect(tile.statusCode).toBe(200);
      expect(tile.headers['x-cache']).toBe('HIT');
      expect(tile.headers['content-type']).toBe('image/png');

      // one more map: the queue is full; refused at once, without taking a database connection
      const connect = vi.spyOn(pool, 'connect');
      const idle = pool.idleCount;
      const total = pool.totalCount;
      try {
        const refused = await t.app.inject(MAP);
        expect(refused.statusCode).toBe(503);
        expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1);
        const doc = new XMLParser({ ignoreAttributes: false }).parse(refused.body);
        expect(JSON.stringify(doc)).toMatch(/ServerBusy/);
        expect(connect).not.toHaveBeenCalled();
        expect(pool.idleCount).toBe(idle);
        expect(pool.totalCount).toBe(total);
      } finally {
        connect.mockRestore();
      }
      expect(runtime.gates.render.queued).toBe(2);
      // counted, by reason, for dashboards
      const metrics = await t.app.inject('/metrics');
      expect(metrics.statusCode).toBe(200);
      expect(metrics.body).toMatch(/^geodata_gate_refused_total\{gate="render",reason="full"\} 1$/m);

      // the slot is given back: both queued maps are rendered
      held.shift()?.();
      for (const r of await Promise.all(queued)) {
        expect(r.statusCode).toBe(200);
        expect(r.headers['content-type']).toBe('image/png');
        expect(r.rawPayload.subarray(1, 4).toString()).toBe('PNG');
      }
    } finally {
      for (const release of held) release();
    }
    expect(runtime.gates.render.active).toBe(0);
    expect(runtime.gates.render.queued).toBe(0);
    expect(runtime.tiles.gate.active).toBe(0);
  });
});
