/**
 * Keeps the catalogue in step with the registry: the schema is migrated and the local records
 * derived once per registry version — at start (the first catalogue request after start, or
 * explicitly through syncCatalog) and after every registry reload (SIGHUP, POST /admin/reload),
 * since a reload bumps registry.version.
 */
import type { AppContext } from '../context.js';
import { syncLocalRecords } from './derive.js';
import { migrateCatalog, schemaOf } from './store.js';

interface State {
  version: number;
  running?: Promise<void>;
}

// keyed by the app's config object: OWS requests get a per-request ctx (a registry view), the config stays the same
const states = new WeakMap<object, State>();

/** Migrate + re-derive now (whatever the registry version). */
export async function syncCatalog(ctx: AppContext): Promise<void> {
  await migrateCatalog(ctx.pool, schemaOf(ctx));
  const r = await syncLocalRecords(ctx);
  ctx.log.info({ upserted: r.upserted, deleted: r.deleted }, 'catalogue records synchronised with the registry');
}

/** Make sure the local records reflect the current registry version. */
export async function ensureCatalogReady(ctx: AppContext): Promise<void> {
  let st = states.get(ctx.config);
  if (!st) states.set(ctx.config, (st = { version: -1 }));
  const target = ctx.registry.version;
  if (st.version === target) return;
  if (!st.running) {
    st.running = syncCatalog(ctx)
      .then(() => {
        st!.version = target;
      })
      .finally(() => {
        st!.running = undefined;
      });
  }
  await st.running;
  if (st.version !== ctx.registry.version) await ensureCatalogReady(ctx);
}
