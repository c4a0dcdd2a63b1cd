/**
 * Clients that leave: before the first byte, while it is being prepared, in the middle of the
 * body. Every streaming front door (WFS GetFeature and GetPropertyValue in GML and GeoJSON, OGC
 * API items, downloads in streamed and file formats) must give its export slot and its pooled
 * connection back on every outcome, and the backend must be idle afterwards; more abandoned
 * requests than there are slots must not freeze the feature services for anyone else.
 * QGIS cancels a request on every pan, and load generators close their connections at the end
 * of a run: this is the everyday case, not an attack.
 */
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { makeTestApp, testDatabaseUrl, type TestApp } from './helpers/app.js';

const SLOTS = 2;

// long bodies whose first chunk takes a while (GML counts before writing; a BBOX makes GeoJSON count too)
const PATHS = [
  '/wfs?SERVICE=WFS&VERSION=2.0.0&REQUEST=GetFeature&TYPENAMES=parcels',
  '/wfs?SERVICE=WFS&VERSION=2.0.0&REQUEST=GetFeature&TYPENAMES=parcels&OUTPUTFORMAT=application/json&BBOX=-1e7,-1e7,1e7,1e7,urn:ogc:def:crs:EPSG::2154',
  '/wfs?SERVICE=WFS&VERSION=1.1.0&REQUEST=GetFeature&TYPENAME=parcels',
  '/wfs?SERVICE=WFS&VERSION=2.0.0&REQUEST=GetPropertyValue&TYPENAMES=parcels&VALUEREFERENCE=geom',
  '/collections/parcels/items?limit=10000',
  '/downloads/parcels.geojson',
  '/downloads/parcels.csv',
  '/downloads/parcels.gpkg',
];

let t: TestApp;
let port: number;

beforeAll(async () => {
  t = await makeTestApp({ limits: { maxConcurrentExports: SLOTS, exportQueue: 4 } });
  await t.app.listen({ port: 0, host: '127.0.0.1' });
  port = (t.app.server.address() as AddressInfo).port;
}, 120_000);

afterAll(async () => {
  // a server with stuck streams never finishes closing: do not let that hang the suite
  await Promise.race([t?.close(), new Promise((r) => setTimeout(r, 15_000))]);
}, 30_000);

/** Send a GET and close the socket: at once, after `delayMs`, or once `afterBytes` bytes arrived. */
function abandon(path: string, how: { delayMs?: number; afterBytes?: number }): Promise<number> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let got = 0;
    s.on('error', () => undefined);
    s.on('connect', () => {
      s.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
      if (how.afterBytes === undefined) {
        setTimeout(() => {
          s.destroy();
          resolve(got);
        }, how.delayMs ?? 0);
      }
    });
    s.on('data', (d) => {
      got += d.length;
      if (how.afterBytes !== undefined && got >= how.afterBytes) {
        s.destroy();
        resolve(got);
      }
    });
    s.on('close', () => resolve(got));
  });
}

async function settled(): Promise<void> {
  const gate = t.ctx.runtime.gates.stream;
  const pool = t.ctx.pool;
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (gate.active === 0 && gate.queued === 0 && pool.waitingCount === 0 && pool.idleCount === pool.totalCount) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(
    `not released: export gate ${gate.active}/${gate.max} active, ${gate.queued} queued; pool ${pool.totalCount} open, ${pool.idleCount} idle, ${pool.waitingCount} waiting`,
  );
}

/** Backends of this application's pool, seen from another session: none still running a statement or inside a transaction. */
async function backendsOfPoolIdle(): Promise<string[]> {
  const observer = new pg.Client({ connectionString: testDatabaseUrl() });
  await observer.connect();
  try {
    const r = await observer.query<{ state: string; query: string }>(
      `SELECT state, left(query, 80) AS query FROM pg_stat_activity
        WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'
          AND state <> 'idle' AND query ILIKE '%parcels%'`,
    );
    return r.rows.map((x) => `${x.state}: ${x.query}`);
  } finally {
    await observer.end();
  }
}

describe('clients that disconnect', () => {
  it.each(PATHS)('%s: slot and connection back after an abort before, during and after the first byte', async (path) => {
    // more abandoned requests than there are slots, at every moment of the request's life
    const moments: { delayMs?: number; afterBytes?: number }[] = [
      { delayMs: 0 },
      { delayMs: 0 },
      { delayMs: 0 },
      { delayMs: 5 },
      { delayMs: 30 },
      { delayMs: 120 },
      { afterBytes: 1 },
      { afterBytes: 70_000 },
    ];
    await Promise.all(moments.map((m) => abandon(path, m)));
    await settled();
    // the feature services still answer, in full
    const r = await fetch(`http://127.0.0.1:${port}/collections/parcels/items?limit=3`, { signal: AbortSignal.timeout(15_000) });
    expect(r.status).toBe(200);
    expect(((await r.json()) as { features: unknown[] }).features).toHaveLength(3);
    const w = await fetch(
      `http://127.0.0.1:${port}/wfs?SERVICE=WFS&VERSION=2.0.0&REQUEST=GetFeature&TYPENAMES=parcels&COUNT=2&OUTPUTFORMAT=application/json`,
      { signal: AbortSignal.timeout(15_000) },
    );
    expect(w.status).toBe(200);
    expect(((await w.json()) as { features: unknown[] }).features).toHaveLength(2);
    await settled();
    // no backend still working for a request whose client is gone
    const deadline = Date.now() + 10_000;
    let busy = await backendsOfPoolIdle();
    while (busy.length && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      busy = await backendsOfPoolIdle();
    }
    expect(busy).toEqual([]);
  });

  it('a page abandoned while its first batch is computed leaves its connection in step with the server', async () => {
    // pg-cursor closed before the query's RowDescription arrived closes its portal twice: the
    // second ReadyForQuery ended the next query on the connection early, and its CommandComplete
    // then came for no query ("Received unexpected commandComplete message from backend")
    const errors: string[] = [];
    const watch = (c: pg.PoolClient | pg.Client) => c.on('error', (e: Error) => errors.push(e.message));
    const pool = t.ctx.pool;
    for (const c of (pool as unknown as { _clients: pg.Client[] })._clients) watch(c);
    pool.on('connect', watch);
    pool.on('error', (e) => errors.push(`idle: ${e.message}`));
    try {
      const page =
        '/wfs?SERVICE=WFS&VERSION=2.0.0&REQUEST=GetFeature&TYPENAMES=parcels&COUNT=1000&OUTPUTFORMAT=application/json&BBOX=-1e7,-1e7,1e7,1e7,urn:ogc:def:crs:EPSG::2154';
      for (let round = 0; round < 6; round++) {
        await Promise.all(Array.from({ length: 8 }, (_, i) => abandon(page, { delayMs: round * 4 + i })));
        await settled();
      }
      // every connection still answers its own queries
      const w = await fetch(`http://127.0.0.1:${port}${page.replace('COUNT=1000', 'COUNT=2')}`, { signal: AbortSignal.timeout(15_000) });
      expect(w.status).toBe(200);
      expect(((await w.json()) as { features: unknown[] }).features).toHaveLength(2);
      expect(errors).toEqual([]);
    } finally {
      pool.off('connect', watch);
    }
  });

  it('readiness reports a pool with no free connection instead of answering 200', async () => {
    // hold every connection of the pool, as stuck streams did
    const held: pg.PoolClient[] = [];
    const max = (t.ctx.pool.options as { max: number }).max;
    for (let i = 0; i < max; i++) held.push(await t.ctx.pool.connect());
    try {
      const r = await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(10_000) });
      expect(r.status).toBe(503);
      expect(JSON.stringify(await r.json())).toMatch(/no database connection free/);
    } finally {
      for (const c of held) c.release();
    }
    const again = await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(10_000) });
    expect(again.status).toBe(200);
  });
});
