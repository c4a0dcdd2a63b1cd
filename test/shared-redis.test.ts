/**
 * State the processes of a cluster share through Redis (src/ops/shared.ts), with a real
 * redis-server and two application instances standing for two processes: the rate limit holds
 * for both together; usage counts reach PostgreSQL exactly once, a batch left behind by a
 * process killed between its commit and its clean-up included.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { pino } from 'pino';
import { makeTestApp, testDatabaseUrl, type TestApp } from './helpers/app.js';
import { redisBin, startRedis } from './helpers/redis.js';
import { SharedState } from '../src/ops/shared.js';
import { UsageStats } from '../src/ops/usage.js';

describe.skipIf(!redisBin)('shared state in Redis', () => {
  let redis: Awaited<ReturnType<typeof startRedis>>;
  let a: TestApp;
  let b: TestApp;
  const pool = new pg.Pool({ connectionString: testDatabaseUrl(), max: 3 });
  const log = pino({ level: 'silent' });
  const layer = `shared_${process.pid}`;

  beforeAll(async () => {
    redis = await startRedis();
    const config = {
      redis: { url: redis.url },
      tiles: { diskDir: null },
      security: { rateLimit: { enabled: true, max: 3, windowMs: 60_000 } },
    };
    a = await makeTestApp(config);
    b = await makeTestApp(config);
  }, 120_000);

  afterAll(async () => {
    await a?.close();
    await b?.close();
    await pool.query('DELETE FROM geodata_ops.usage_daily WHERE layer = $1', [layer]).catch(() => undefined);
    await pool.end();
    redis?.stop();
  });

  it('the rate limit counts the requests of both processes together', async () => {
    const ip = { remoteAddress: '203.0.113.9' };
    const codes: number[] = [];
    for (const app of [a, b, a, b]) codes.push((await app.app.inject({ url: '/conformance?f=json', ...ip })).statusCode);
    // the first three pass, the fourth is over the limit of 3 for the cluster
    expect(codes.slice(0, 3)).toEqual([200, 200, 200]);
    expect(codes[3]).toBe(429);
  });

  it('usage counted in two processes reaches PostgreSQL once; a batch left by a killed process is not added twice', async () => {
    const s1 = new SharedState(redis.url, log);
    const s2 = new SharedState(redis.url, log);
    const u1 = new UsageStats(pool, log, 3600, s1);
    const u2 = new UsageStats(pool, log, 3600, s2);
    await u1.start();
    const day = new Date().toISOString().slice(0, 10);
    const total = async (u: UsageStats) =>
      (await u.query({ from: day, to: day, layer })).reduce((n, r) => n + r.requests + r.bytes * 1000, 0);
    for (let i = 0; i < 5; i++) u1.record({ layers: [layer], service: 'WMS', authenticated: false, features: 0, bytes: 1 });
    for (let i = 0; i < 4; i++) u2.record({ layers: [layer], service: 'WMS', authenticated: false, features: 0, bytes: 1 });
    await new Promise((r) => setTimeout(r, 100));
    // both processes see the cluster's counts before any flush
    expect(await total(u1)).toBe(9 + 9000);
    expect(await total(u2)).toBe(9 + 9000);
    // a flush by either moves them to PostgreSQL
    await u2.flush();
    expect(u1.unflushed()).toEqual([]);
    const inDb = async () =>
      Number(
        (
          await pool.query('SELECT coalesce(sum(requests), 0) AS n FROM geodata_ops.usage_daily WHERE layer = $1 AND day = $2', [
            layer,
            day,
          ])
        ).rows[0].n,
      );
    expect(await inDb()).toBe(9);
    expect(await total(u1)).toBe(9 + 9000);
    // a process killed after committing a batch and before deleting it: the batch is still in Redis
    u1.record({ layers: [layer], service: 'WMS', authenticated: false, features: 0, bytes: 1 });
    await new Promise((r) => setTimeout(r, 100));
    await s1.redis!.rename('geodata:usage:pending', 'geodata:usage:batch:killed-1');
    await pool.query(
      `INSERT INTO geodata_ops.usage_daily (day, layer, service, caller, requests, features, bytes)
      VALUES ($1, $2, 'WMS', 'anonymous', 1, 0, 1) ON CONFLICT (day, layer, service, caller) DO UPDATE SET requests = usage_daily.requests + 1, bytes = usage_daily.bytes + 1`,
      [day, layer],
    );
    await pool.query(`INSERT INTO geodata_ops.usage_batches (id) VALUES ('killed-1')`);
    expect(await total(u2)).toBe(10 + 10000); // the committed batch is not counted again
    await u2.flush();
    expect(await inDb()).toBe(10);
    expect(await s1.redis!.exists('geodata:usage:batch:killed-1')).toBe(0);
    // a batch renamed but never written (killed before its commit) is written by the next flush
    u1.record({ layers: [layer], service: 'WMS', authenticated: false, features: 0, bytes: 1 });
    await new Promise((r) => setTimeout(r, 100));
    await s1.redis!.rename('geodata:usage:pending', 'geodata:usage:batch:killed-2');
    expect(await total(u1)).toBe(11 + 11000);
    await u1.flush();
    expect(await inDb()).toBe(11);
    await u1.close();
    await u2.close();
    await pool.query(`DELETE FROM geodata_ops.usage_batches WHERE id IN ('killed-1', 'killed-2')`);
    await s1.close();
    await s2.close();
  });
});
it.skipIf(Boolean(redisBin))(
  'shared state test skipped: redis-server is not installed and cannot be installed (not root)',
  () => undefined,
);
