/** `geodata catalog-import FILE…`: publish metadata files in the catalogue (see import.ts). */
import type { Config } from '../config/index.js';
import { createPool } from '../db/pool.js';
import { resolveDatabase } from '../db/resolve.js';
import { stopEmbeddedCluster } from '../db/embedded.js';
import { importMetadataFiles } from './import.js';
import { migrateCatalog, schemaOf } from './store.js';
import { pino } from 'pino';

export async function catalogImport(config: Config, files: string[]): Promise<number> {
  if (!files.length) {
    process.stderr.write('usage: geodata catalog-import FILE… (ISO 19139, csw:Record, DCAT RDF/XML, Turtle or JSON-LD)\n');
    return 2;
  }
  const log = pino({ level: 'warn' });
  const db = await resolveDatabase(config, () => undefined);
  const pool = createPool({ url: db.url, max: 2, log });
  try {
    await migrateCatalog(pool, schemaOf({ config }));
    const results = await importMetadataFiles(pool, files, schemaOf({ config }), { strict: config.catalog?.strictImport === true });
    let failed = 0;
    for (const r of results) {
      if (r.errors.length && !r.imported.length) failed++;
      process.stdout.write(
        `${r.file}: ${r.imported.length} record(s) imported${r.imported.length ? ` (${r.imported.join(', ')})` : ''}${r.errors.length ? `; ${r.errors.join('; ')}` : ''}\n`,
      );
      // the quality report's failures: the records are in the catalogue, these are warnings
      for (const w of r.warnings) process.stdout.write(`  warning: ${w}\n`);
    }
    return failed ? 1 : 0;
  } finally {
    await pool.end();
    if (db.cluster?.startedHere && !process.env.GEODATA_KEEP_DB) stopEmbeddedCluster(db.cluster);
  }
}
