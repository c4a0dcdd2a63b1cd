/**
 * Two server instances share the Redis tier: a tile rendered by one is a hit for the other.
 * redis-server (Debian) is installed when missing and the test runs as root, started on a free
 * loopback port without persistence, and stopped afterwards; otherwise the test skips visibly.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { makeTestApp, testDatabaseUrl, type TestApp } from './helpers/app.js';
import { redisBin, startRedis } from './helpers/redis.js';
import { transformPoint } from '../src/crs/index.js';
import { WEB_MERCATOR_QUAD as W } from '../src/tiles/matrixsets.js';

describe.skipIf(!redisBin)('shared Redis tier', () => {
  let redis: Awaited<ReturnType<typeof startRedis>>;
  let a: TestApp;
  let b: TestApp;
  const CX = 905000;
  const CY = 6805000;

  beforeAll(async () => {
    redis = await startRedis();
    const c = new pg.Client({ connectionString: testDatabaseUrl() });
    await c.connect();
    await c.query(`CREATE SCHEMA IF NOT EXISTS tilesredis;
      DROP TABLE IF EXISTS tilesredis.squares;
      CREATE TABLE tilesredis.squares (id int PRIMARY KEY, geom geometry(Polygon, 2154));
      INSERT INTO tilesredis.squares VALUES (1, ST_MakeEnvelope(${CX - 5000}, ${CY - 5000}, ${CX + 5000}, ${CY + 5000}, 2154));`);
    await c.end();
    const config = {
      database: { schemas: ['tilesredis'] },
      tiles: { diskDir: null, redisUrl: redis.url },
      layers: [{ table: 'tilesredis.squares', name: 'rsquares' }],
    };
    a = await makeTestApp(config);
    b = await makeTestApp(config);
  }, 300_000);

  afterAll(async () => {
    await a?.close();
    await b?.close();
    redis?.stop();
  });

  it('a tile rendered by one server is a Redis hit for the other, and an edit invalidates it for both', async () => {
    const [mx, my] = transformPoint(CX, CY, 2154, 3857);
    const z = 10;
    const span = W.matrices[z].resolution * 256;
    const x = Math.floor((mx - W.origin[0]) / span);
    const y = Math.floor((W.origin[1] - my) / span);
    const url = `/tiles/rsquares/${z}/${x}/${y}.png`;
    const r1 = await a.app.inject({ url });
    expect(r1.statusCode).toBe(200);
    expect(r1.headers['x-cache']).toBe('MISS');
    const r2 = await b.app.inject({ url });
    expect(r2.headers['x-cache']).toBe('HIT');
    expect(r2.headers['x-cache-tier']).toBe('redis');
    expect(Buffer.compare(r1.rawPayload, r2.rawPayload)).toBe(0);
    expect(b.ctx.runtime.tiles.stats.renders).toBe(0);
    // an edit: both servers hear it and no tier serves the old tile
    const ea = a.ctx.runtime.tiles;
    const eb = b.ctx.runtime.tiles;
    const ca = ea.stats.changes;
    const cb = eb.stats.changes;
    await a.ctx.pool.query(`UPDATE tilesredis.squares SET geom = ST_Translate(geom, 100, 0)`);
    const until = Date.now() + 15_000;
    while (ea.stats.changes === ca || eb.stats.changes === cb) {
      if (Date.now() > until) throw new Error('no change notification');
      await new Promise((r) => setTimeout(r, 25));
    }
    // the edit may reach a server as more than one notification (a loaded machine delivers them
    // apart): wait until neither has heard anything for half a second, so that no invalidation
    // lands during the render below (its tile would then be served but not kept, by design)
    let heard = [ea.stats.changes, eb.stats.changes].join();
    let quietSince = Date.now();
    while (Date.now() - quietSince < 500) {
      if (Date.now() > until) throw new Error('change notifications did not settle');
      await new Promise((r) => setTimeout(r, 50));
      const now = [ea.stats.changes, eb.stats.changes].join();
      if (now !== heard) {
        heard = now;
        quietSince = Date.now();
      }
    }
    await ea.freshness.idle();
    await eb.freshness.idle();
    const r3 = await b.app.inject({ url });
    expect(r3.headers['x-cache']).toBe('MISS');
    const r4 = await a.app.inject({ url });
    expect(r4.headers['x-cache']).toBe('HIT');
    expect(r4.headers['x-cache-tier']).toBe('redis');
  });
});
it.skipIf(Boolean(redisBin))(
  'shared Redis tier skipped: redis-server is not installed and cannot be installed (not root)',
  () => undefined,
);
