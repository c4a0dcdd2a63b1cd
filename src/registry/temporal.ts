/**
 * The temporal extent (first and last value of the layer's temporal field) shown by OGC API
 * collection documents, kept per layer by the runtime (src/runtime.ts: runtime.temporalExtents)
 * and dropped when the change feed reports an edit of the layer's table or the registry changes.
 * An entry also expires after a minute, for edits the feed does not see (it may not be running).
 */
import type pg from 'pg';
import type { Change, ChangeSubscriber } from '../changes/feed.js';
import { qualifiedTable, quoteIdent } from '../db/pool.js';
import type { Layer } from './types.js';

export type TemporalExtent = [string | null, string | null];

const TTL_MS = 60_000;

export class TemporalExtents implements ChangeSubscriber {
  /** Layer name → its extent, the registry version and time it was read for, its table. */
  private readonly cache = new Map<string, { at: number; version: number; value: TemporalExtent; table: string }>();

  constructor(private readonly pool: pg.Pool) {}

  /** [first, last] of the layer's temporal field as ISO text; null when the layer has none. */
  async of(layer: Layer, registryVersion: number): Promise<TemporalExtent | null> {
    if (!layer.temporalField) return null;
    const hit = this.cache.get(layer.name);
    if (hit && hit.version === registryVersion && Date.now() - hit.at < TTL_MS) return hit.value;
    const c = `t.${quoteIdent(layer.temporalField)}`;
    const r = await this.pool.query<{ a: string | null; b: string | null }>(
      `SELECT to_json(min(${c})) #>> '{}' AS a, to_json(max(${c})) #>> '{}' AS b FROM ${qualifiedTable(layer.schema, layer.table)} t`,
    );
    const value: TemporalExtent = [r.rows[0]?.a ?? null, r.rows[0]?.b ?? null];
    this.cache.set(layer.name, { at: Date.now(), version: registryVersion, value, table: `${layer.schema}.${layer.table}` });
    return value;
  }

  /** Change feed: an edit of a table drops the extents of the layers over it. */
  change(c: Change): void {
    for (const [k, v] of this.cache) if (v.table === c.table) this.cache.delete(k);
  }

  lost(): void {
    this.cache.clear();
  }
}
