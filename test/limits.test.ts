/** Limits: bounded feature streams (503 + Retry-After when full), a released slot serves the next. */
import { describe, it, expect } from 'vitest';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { makeTestApp } from './helpers/app.js';
import { countFeatures, keysetAnchor, lastKeyOfPage, type FeatureQuery } from '../src/features/index.js';
import { ServerBusy } from '../src/ops/gate.js';

function openSlowStream(url: string): Promise<{ req: http.ClientRequest; res: http.IncomingMessage }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, (res) => {
      res.once('data', () => {
        res.pause(); // hold the stream open: the server keeps its cursor and its slot
        resolve({ req, res });
      });
    });
    req.on('error', reject);
  });
}

describe('export concurrency', () => {
  it('a full export queue answers 503 with Retry-After in each protocol, and frees up when a stream ends', async () => {
    const t = await makeTestApp({ limits: { maxConcurrentExports: 1, exportQueue: 0 } });
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    const base = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
    try {
      const all = `${base}/wfs?SERVICE=WFS&VERSION=2.0.0&REQUEST=GetFeature&TYPENAMES=parcels&OUTPUTFORMAT=application/json`;
      const held = await openSlowStream(all);
      const wfs = await fetch(
        `${base}/wfs?SERVICE=WFS&VERSION=2.0.0&REQUEST=GetFeature&TYPENAMES=pois&COUNT=5&OUTPUTFORMAT=application/json`,
      );
      expect(wfs.status).toBe(503);
      expect(wfs.headers.get('retry-after')).toBeTruthy();
      expect(await wfs.text()).toContain('ExceptionReport');
      const oapi = await fetch(`${base}/collections/pois/items?limit=5`);
      expect(oapi.status).toBe(503);
      expect(oapi.headers.get('retry-after')).toBeTruthy();
      expect((await oapi.json()).status).toBe(503);
      const dl = await fetch(`${base}/downloads/pois.csv`);
      expect(dl.status).toBe(503);
      // a request that needs no stream is still served
      expect((await fetch(`${base}/wfs?SERVICE=WFS&REQUEST=GetCapabilities`)).status).toBe(200);
      // the client goes away: its slot is released, the next stream is served
      held.req.destroy();
      let ok = 0;
      for (let i = 0; i < 50 && ok === 0; i++) {
        await new Promise((r) => setTimeout(r, 100));
        const r = await fetch(`${base}/collections/pois/items?limit=5`);
        await r.arrayBuffer();
        if (r.status === 200) ok++;
      }
      expect(ok).toBe(1);
    } finally {
      await t.close();
    }
  }, 60_000);
});

describe('statements besides streams', () => {
  it('counts and keyset look-ups of deep pages wait for a stream slot like the streams: a full gate refuses them without taking a connection', async () => {
    const t = await makeTestApp({ limits: { maxConcurrentExports: 1, exportQueue: 0 } });
    try {
      const first = await t.app.inject({ url: '/collections/pois/items?limit=3' });
      expect(first.statusCode).toBe(200);
      const next = new URL(first.json().links.find((l: { rel: string }) => l.rel === 'next').href);
      const deep = `/collections/pois/items?limit=3&cursor=${next.searchParams.get('cursor')}`;
      const gate = t.ctx.runtime.gates.stream;
      const release = await gate.acquire(); // every slot held, as by a burst of streams
      const pool = t.ctx.pool;
      const before = pool.totalCount - pool.idleCount;
      try {
        const q: FeatureQuery = { layer: t.ctx.registry.resolve('pois')!, limit: 3 };
        const db = t.ctx.runtime.features;
        await expect(lastKeyOfPage(db, q)).rejects.toBeInstanceOf(ServerBusy);
        await expect(keysetAnchor(db, q, { key: '1', offset: 3, order: '' })).rejects.toBeInstanceOf(ServerBusy);
        await expect(countFeatures(db, q)).rejects.toBeInstanceOf(ServerBusy);
        const r = await t.app.inject({ url: deep });
        expect(r.statusCode).toBe(503);
        expect(r.headers['retry-after']).toBeTruthy();
        // nothing of the pool was taken while the gate was full
        expect(pool.totalCount - pool.idleCount).toBe(before);
        expect(pool.waitingCount).toBe(0);
      } finally {
        release();
      }
      const again = await t.app.inject({ url: deep });
      expect(again.statusCode).toBe(200);
      expect(again.json().features).toHaveLength(3);
      expect(gate.active).toBe(0);
    } finally {
      await t.close();
    }
  }, 60_000);
});

describe('maximum bbox area', () => {
  it('a request for more than limits.maxBboxAreaKm2 is refused with locator bbox in each front door; a small one is served', async () => {
    const t = await makeTestApp({ limits: { maxBboxAreaKm2: 500 } });
    try {
      // the whole region: about 92,800 km²; a 10 km × 10 km box: 100 km²
      const big = '760000,6700000,1080000,6990000';
      const small = '900000,6800000,910000,6810000';
      const wfs = (b: string) =>
        `/wfs?SERVICE=WFS&VERSION=2.0.0&REQUEST=GetFeature&TYPENAMES=parcels&COUNT=3&OUTPUTFORMAT=application/json&BBOX=${b},urn:ogc:def:crs:EPSG::2154`;
      const r1 = await t.app.inject({ url: wfs(big) });
      expect(r1.statusCode).toBe(400);
      expect(r1.body).toContain('locator="bbox"');
      expect(r1.body).toMatch(/km²/);
      expect((await t.app.inject({ url: wfs(small) })).statusCode).toBe(200);
      const wms = (b: string) =>
        `/wms?SERVICE=WMS&VERSION=1.3.0&REQUEST=GetMap&LAYERS=parcels&STYLES=&CRS=EPSG:2154&BBOX=${b}&WIDTH=64&HEIGHT=64&FORMAT=image/png`;
      const r2 = await t.app.inject({ url: wms(big) });
      expect(r2.statusCode).toBe(400);
      expect(r2.body).toContain('locator="bbox"');
      expect((await t.app.inject({ url: wms(small) })).statusCode).toBe(200);
      // CRS84 box of about 3° × 2° (≈ 50,000 km²) through OGC API and the downloads
      const oapi = await t.app.inject({ url: '/collections/parcels/items?bbox=4,47.5,7,49.5' });
      expect(oapi.statusCode).toBe(400);
      expect(oapi.json().detail).toMatch(/km²/);
      expect((await t.app.inject({ url: '/collections/parcels/items?bbox=6,48,6.05,48.05' })).statusCode).toBe(200);
      const dl = await t.app.inject({ url: '/downloads/parcels.csv?bbox=4,47.5,7,49.5' });
      expect(dl.statusCode).toBe(400);
    } finally {
      await t.close();
    }
  });
});
