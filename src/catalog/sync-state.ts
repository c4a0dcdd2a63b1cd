/**
 * When the catalogue's local records must be derived again: once per registry version (at start,
 * after every reload: SIGHUP, POST /admin/reload) and after an edit of a published table on a day
 * its record does not show yet (the change feed tells; the record's modification date follows the
 * data). One per application, built by src/runtime.ts; src/catalog/sync.ts derives.
 */
import { EDIT_OPS, type Change, type ChangeSubscriber } from '../changes/index.js';
import type { Registry } from '../registry/registry.js';

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

  /** Make sure the local records reflect the current registry version and the data edits heard (`derive` derives them). */
  async ensureReady(derive: () => Promise<void>): Promise<void> {
    const target = `${this.registry.version}:${this.edits}`;
    if (this.derived === target) return;
    if (!this.running) {
      this.running = derive()
        .then(() => {
          this.stats.syncs++;
          this.derived = target;
        })
        .finally(() => {
          this.running = undefined;
        });
    }
    await this.running;
    if (this.derived !== `${this.registry.version}:${this.edits}`) await this.ensureReady(derive);
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
