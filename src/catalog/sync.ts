/**
 * Keeps the catalogue in step with the registry and the data: the schema is migrated and the
 * local records derived once per registry version — at start (the first catalogue request after
 * start, or explicitly through syncCatalog) and after every registry reload (SIGHUP, POST
 * /admin/reload), since a reload bumps registry.version — and again when the change feed reports
 * an edit of a published table on a day its record does not show yet (the record's modification
 * date follows the data). When: the application's CatalogSync (sync-state.ts, in the runtime).
 */
import type { AppContext } from '../context.js';
import { syncLocalRecords } from './derive.js';
import { migrateCatalog, schemaOf } from './store.js';

/** Migrate + re-derive now (whatever the registry version). */
export async function syncCatalog(ctx: AppContext): Promise<void> {
  await migrateCatalog(ctx.pool, schemaOf(ctx));
  const r = await syncLocalRecords(ctx);
  ctx.log.info({ upserted: r.upserted, deleted: r.deleted }, 'catalogue records synchronised with the registry');
}

/** Make sure the local records are up to date (the application's CatalogSync). */
export function ensureCatalogReady(ctx: AppContext): Promise<void> {
  return ctx.runtime.catalog.ensureReady(() => syncCatalog(ctx));
}
