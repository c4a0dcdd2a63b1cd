#!/usr/bin/env node
/**
 * Incremental overview refresh (src/overviews/, docs/rasteriser.md) against a full
 * rebuild, on a copy of the parcels in a schema of its own (default `ovinc`, created by --setup;
 * the overview tables go there too): edit --edits random parcels (attribute flips and a few moves
 * of 1 km), wait for the change notification, time the refresh; repeat --runs times; then time
 * one full rebuild. Uses the built code (npm run build) and DATABASE_URL.
 *
 *   DATABASE_URL=… node bench/overview-incremental.mjs [--setup] [--schema ovinc] [--edits 10] [--runs 3] [--drop]
 */
import pg from 'pg';
import { startOverviews, makeBenchTable, dropBenchSchema } from './lib/overview.mjs';
import { databaseUrl, flag, numOpt, schemaOpt } from './lib/cli.mjs';

const S = schemaOpt('ovinc');
const nEdits = numOpt('edits', 10);
const runs = numOpt('runs', 3);
const pool = new pg.Pool({ connectionString: databaseUrl(), max: 4 });

if (flag('setup')) {
  // a fresh schema: no overview tables of an earlier copy
  await pool.query(`DROP SCHEMA IF EXISTS ${S} CASCADE`);
  const ms = await makeBenchTable(pool, S, 'parcels', 'SELECT * FROM public.parcels');
  console.log(`copied public.parcels to ${S}.parcels in ${ms} ms`);
}

// refreshes are started by this script, not by the change notifications' timer
// one layer listed: the overview tables, in the same schema, are not published
const { registry, m, readyMs, close } = await startOverviews(pool, {
  database: { schemas: [S] },
  layers: [{ table: `${S}.parcels`, name: 'parcels' }],
  overviews: { schema: S, rebuildDelayMs: 3_600_000, minRebuildIntervalMs: 0 },
});
let t0;
const layer = registry.resolve('parcels');
const st = () => m.status().find((s) => s.source === `${S}.parcels`);
console.log(
  `overview ready in ${readyMs} ms (${st().status}; level rows ${st()
    .levels.map((l) => l.rows)
    .join(' / ')}, source ${st().sourceRows})`,
);

const waitFor = async (cond) => {
  const until = Date.now() + 30_000;
  while (!cond()) {
    if (Date.now() > until) throw new Error(`timeout: ${JSON.stringify(st())}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};
for (let i = 0; i < runs; i++) {
  const ids = (
    await pool.query(`SELECT id FROM ${S}.parcels WHERE id = ANY($1)`, [
      Array.from({ length: nEdits }, () => 1 + Math.floor(Math.random() * 1000000)),
    ])
  ).rows.map((r) => r.id);
  const moved = ids.slice(0, Math.max(1, Math.floor(ids.length / 5)));
  await pool.query(`UPDATE ${S}.parcels SET bati = NOT bati WHERE id = ANY($1)`, [ids]);
  await pool.query(`UPDATE ${S}.parcels SET geom = ST_Translate(geom, 1000, 0) WHERE id = ANY($1)`, [moved]);
  await waitFor(() => (st().pendingEdits ?? 0) >= 2);
  const mode = st().status;
  const before = m.stats.refreshes;
  t0 = Date.now();
  await m.refresh(layer, 'auto');
  const ms = Date.now() - t0;
  const r = st().lastRefresh;
  console.log(
    `run ${i + 1}: ${ids.length} parcels edited (${moved.length} moved), status while pending: ${mode}; refresh ${ms} ms (${m.stats.refreshes > before ? `incremental, ${r.ms} ms in the transaction, cells per level ${r.cells.join(' / ')}` : 'FULL'}); now ${st().status}`,
  );
}
t0 = Date.now();
await m.refresh(layer, 'full');
console.log(
  `full rebuild: ${Date.now() - t0} ms (level rows ${st()
    .levels.map((l) => l.rows)
    .join(' / ')})`,
);

await m.stop();
await close();
if (flag('drop')) await dropBenchSchema(pool, S);
await pool.end();
