/**
 * Test database: TEST_DATABASE_URL when given; else the project's embedded cluster with a
 * database 'geodata_test' holding a small demo data set (generated once, reused while the
 * generator parameters stay the same).
 */
import type { TestProject } from 'vitest/node';
import pg from 'pg';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ensureEmbeddedCluster, ensureDatabase, stopEmbeddedCluster, type EmbeddedCluster } from '../src/db/embedded.js';
import { DEMO_COMMENTS, generateDemo } from '../src/demo/generator.js';
import { TEST_DEMO } from './helpers/demo-params.js';

let cluster: EmbeddedCluster | undefined;

export default async function setup(project: TestProject) {
  let url = process.env.TEST_DATABASE_URL;
  if (!url) {
    cluster = await ensureEmbeddedCluster((m) => console.log(`[test-db] ${m}`));
    url = await ensureDatabase(cluster, 'geodata_test');
  }
  const pool = new pg.Pool({ connectionString: url, max: 4 });
  try {
    await pool.query('CREATE EXTENSION IF NOT EXISTS postgis');
    // the data is regenerated when the parameters or the generator's code change (a checkout with
    // another generator must not test against the data of the previous one)
    const generatorHash = createHash('sha256')
      .update(readFileSync(new URL('../src/demo/generator.ts', import.meta.url)))
      .digest('hex')
      .slice(0, 16);
    const stamp = JSON.stringify({ ...TEST_DEMO, generator: generatorHash });
    const have = await pool
      .query<{ d: string }>(`SELECT obj_description('public.parcels'::regclass, 'pg_class') AS d`)
      .then((r) => r.rows[0]?.d ?? '')
      .catch(() => '');
    const marker = await pool
      .query<{ v: string }>(`SELECT v FROM public._test_demo_stamp`)
      .then((r) => r.rows[0]?.v)
      .catch(() => undefined);
    if (!have || marker !== stamp) {
      const t0 = Date.now();
      await generateDemo(pool, { ...TEST_DEMO, log: (m) => console.log(`[test-db] ${m}`) });
      await pool.query('DROP TABLE IF EXISTS public._test_demo_stamp');
      await pool.query('CREATE TABLE public._test_demo_stamp (v text)');
      await pool.query('INSERT INTO public._test_demo_stamp VALUES ($1)', [stamp]);
      console.log(`[test-db] demo data generated in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    } else {
      // the comments (layer titles and abstracts) may have changed since the data was generated
      for (const [t, c] of Object.entries(DEMO_COMMENTS)) {
        if (c !== (await pool.query(`SELECT obj_description('public.${t}'::regclass, 'pg_class') AS d`)).rows[0]?.d)
          await pool.query(`COMMENT ON TABLE public.${t} IS '${c.replace(/'/g, "''")}'`);
      }
    }
  } finally {
    await pool.end();
  }
  process.env.TEST_DATABASE_URL = url;
  project.provide('databaseUrl', url);
  return async () => {
    if (cluster?.startedHere && process.env.GEODATA_KEEP_DB !== '1') stopEmbeddedCluster(cluster);
  };
}

declare module 'vitest' {
  export interface ProvidedContext {
    databaseUrl: string;
  }
}
