/** The temporal extent of an OGC API collection follows the data: an edit reported by the change feed drops it. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { makeTestApp, testDatabaseUrl, type TestApp } from './helpers/app.js';

describe('collection temporal extent', () => {
  let t: TestApp;
  beforeAll(async () => {
    const c = new pg.Client({ connectionString: testDatabaseUrl() });
    await c.connect();
    await c.query(`CREATE SCHEMA IF NOT EXISTS textent;
      DROP TABLE IF EXISTS textent.obs;
      CREATE TABLE textent.obs (id int PRIMARY KEY, jour date, geom geometry(Point, 2154));
      INSERT INTO textent.obs VALUES (1, '2024-01-05', ST_SetSRID(ST_MakePoint(900000, 6800000), 2154)),
                                     (2, '2024-03-09', ST_SetSRID(ST_MakePoint(901000, 6801000), 2154));`);
    await c.end();
    t = await makeTestApp({ database: { schemas: ['textent'] }, layers: [{ table: 'textent.obs', name: 'obs', temporalField: 'jour' }] });
  });
  afterAll(async () => {
    await t?.close();
  });

  const interval = async () => {
    const r = await t.app.inject({ url: '/collections/obs?f=json' });
    expect(r.statusCode).toBe(200);
    return r.json().extent.temporal.interval[0];
  };

  it('is read from the data, kept, and read again after an edit of the table', async () => {
    expect(await interval()).toEqual(['2024-01-05', '2024-03-09']);
    await t.ctx.pool.query(`UPDATE textent.obs SET jour = '2025-06-30' WHERE id = 2`);
    // kept until the change feed reports the edit
    expect(await interval()).toEqual(['2024-01-05', '2024-03-09']);
    t.ctx.runtime.temporalExtents.change({ id: 0, table: 'textent.obs', op: 'UPDATE', boxes: null, version: 1 });
    expect(await interval()).toEqual(['2024-01-05', '2025-06-30']);
  });
});
