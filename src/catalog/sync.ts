/**
 * Keeps the catalogue in step with the registry and the data: the schema is migrated and the
 * local records derived once per registry version — at start (the first catalogue request after
 * start, or explicitly through syncCatalog) and after every registry reload (SIGHUP, POST
 * /admin/reload), since a reload bumps registry.version — and again when the change feed reports
 * an edit of a published table on a day its record does not show yet (the record's modification
 * date follows the data). One CatalogSync per application, built by src/runtime.ts.
 */
import type { AppContext } from '../context.js';
import { EDIT_OPS, type Change, type ChangeSubscriber } from '../changes/index.js';
import type { Registry } from '../registry/registry.js';
import { syncLocalRecords } from './derive.js';
import { migrateCatalog, schemaOf } from './store.js';

/** Migrate + re-derive now (whatever the registry version). */
export async function syncCatalog(ctx: AppContext): Promise<void> {
  await migrateCatalog(ctx.pool, schemaOf(ctx));
  const r = await syncLocalRecords(ctx);
  ctx.log.info({ upserted: r.upserted, deleted: r.deleted }, 'catalogue records synchronised with the registry');
}

export class CatalogSync implements ChangeSubscriber {
  /** Registry version and edit count the records were derived from. */
  private derived = '';
  /** Edits heard that the records do not show yet (counted, so that one heard during a derivation is not lost). */
  private edits = 0;
  private running?: Promise<void>;
  /** Derivations of the local records; edits heard that called for one. */
  readonly stats = { syncs: 0, edits: 0 };
  /** Day (YYYY-MM-DD) of the last edit heard per table. */
  private readonly editedOn = new Map<string, string>();

  constructor(private readonly registry: Registry) {}

  /** Make sure the local records reflect the current registry version and the data edits heard. */
  async ensureReady(ctx: AppContext): Promise<void> {
    const target = `${this.registry.version}:${this.edits}`;
    if (this.derived === target) return;
    if (!this.running) {
      this.running = syncCatalog(ctx)
        .then(() => {
          this.stats.syncs++;
          this.derived = target;
        })
        .finally(() => {
          this.running = undefined;
        });
    }
    await this.running;
    if (this.derived !== `${this.registry.version}:${this.edits}`) await this.ensureReady(ctx);
  }

  /** Change feed: an edit of a published table on a new day makes the records be derived again. */
  change(c: Change): void {
    if (!EDIT_OPS.includes(c.op)) return;
    if (!this.registry.list().some((l) => l.access.public && `${l.schema}.${l.table}` === c.table)) return;
    const day = new Date().toISOString().slice(0, 10);
    if (this.editedOn.get(c.table) === day) return;
    this.editedOn.set(c.table, day);
    this.edits++;
    this.stats.edits++;
  }
}

/** Make sure the local records are up to date (the application's CatalogSync). */
export function ensureCatalogReady(ctx: AppContext): Promise<void> {
  return ctx.runtime.catalog.ensureReady(ctx);
}
