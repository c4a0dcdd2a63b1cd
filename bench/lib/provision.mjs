// Benchmark database: created in the project's embedded cluster (or BENCH_DATABASE_URL), filled by
// the demo generator, and reused when a stamp says it already holds the same parameters.
import path from 'node:path';
import pg from 'pg';

export const DEFAULT_SIZES = { seed: 42, communes: 5000, parcels: 1_000_000, roads: 20_000, pois: 20_000 };

/** Connection URL + the embedded cluster (if used). */
export async function benchDatabase(root, log, database = 'geodata_bench') {
  if (process.env.BENCH_DATABASE_URL && database === 'geodata_bench') return { url: process.env.BENCH_DATABASE_URL, cluster: null };
  const emb = await import(path.join(root, 'dist/src/db/embedded.js'));
  const cluster = await emb.ensureEmbeddedCluster(log);
  const url = await emb.ensureDatabase(cluster, database);
  return { url, cluster, emb };
}

/**
 * Ensure `schema` holds the demo tables for `params`; regenerate them when the stamp differs.
 * Returns { generated: boolean, seconds, counts }.
 */
export async function ensureDemoData(root, url, params, log) {
  const { generateDemo } = await import(path.join(root, 'dist/src/demo/generator.js'));
  const pool = new pg.Pool({ connectionString: url, max: 4 });
  try {
    await pool.query('CREATE SCHEMA IF NOT EXISTS bench_meta');
    await pool.query(`CREATE TABLE IF NOT EXISTS bench_meta.stamp (
      name text PRIMARY KEY, params jsonb NOT NULL, seconds double precision NOT NULL, created timestamptz NOT NULL DEFAULT now())`);
    const canon = (o) =>
      JSON.stringify(
        Object.keys(o)
          .sort()
          .reduce((a, k) => ((a[k] = o[k]), a), {}),
      );
    const want = canon(params);
    const r = await pool.query(`SELECT params, seconds, created FROM bench_meta.stamp WHERE name = 'demo'`);
    let ok = r.rowCount === 1 && canon(r.rows[0].params) === want;
    if (ok) {
      // the tables must still be there with the expected row count
      const c = await pool.query(`SELECT to_regclass('public.parcels') IS NOT NULL AS t`);
      if (!c.rows[0].t) ok = false;
      else {
        const n = await pool.query('SELECT count(*)::int AS n FROM public.parcels');
        ok = n.rows[0].n === params.parcels;
      }
    }
    if (ok) {
      log(
        `bench database: reusing the demo data (${params.parcels} parcels, generated ${r.rows[0].created.toISOString()} in ${r.rows[0].seconds.toFixed(0)} s)`,
      );
      return { generated: false, seconds: r.rows[0].seconds, created: r.rows[0].created };
    }
    log(`bench database: generating the demo data (${JSON.stringify(params)}) — this takes a while the first time`);
    const t0 = process.hrtime.bigint();
    await generateDemo(pool, { ...params, log: (m) => log(m) });
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    await pool.query('VACUUM ANALYZE public.parcels');
    await pool.query(
      `INSERT INTO bench_meta.stamp (name, params, seconds) VALUES ('demo', $1, $2)
      ON CONFLICT (name) DO UPDATE SET params = EXCLUDED.params, seconds = EXCLUDED.seconds, created = now()`,
      [want, seconds],
    );
    log(`bench database: generated in ${seconds.toFixed(1)} s`);
    return { generated: true, seconds, created: new Date() };
  } finally {
    await pool.end();
  }
}
