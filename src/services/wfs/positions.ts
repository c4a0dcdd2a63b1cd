/**
 * Remembered page positions for WFS STARTINDEX paging. WFS clients (GDAL, QGIS) compute
 * STARTINDEX themselves, so no cursor can be handed to them; but they walk a layer in order,
 * page after page. When a full page ends, the primary key of its last feature is remembered for
 * the position after it (taken from the rows as they stream: no extra query); when the next
 * page asks for that position with the same query, it is read as a keyset ("after this key")
 * instead of skipping rows, so every page of the walk costs the same.
 *
 * A hint, never a source of truth: one per runtime (ctx.runtime.pagePositions, src/runtime.ts),
 * bounded (LRU of PAGE_POSITIONS_MAX positions, a few hundred bytes each), short-lived (each kept
 * PAGE_POSITIONS_TTL_MS: a walk asks for the next page within seconds), keyed by the exact query
 * (table, WHERE with its values, order, registry version); a miss or a vanished anchor falls back
 * to the keys-only offset skip.
 */
import { createHash } from 'node:crypto';
import {
  buildOrderBy,
  buildWhere,
  keysetAnchor,
  orderFingerprint,
  type FeatureDbLike,
  type FeatureQuery,
  type FeatureRow,
  type FeatureWriter,
} from '../../features/index.js';
import { qualifiedTable } from '../../db/pool.js';

interface Entry {
  key: string;
  at: number;
}

/** Positions remembered at most (least recently used first out): 2,000 walks in progress at once. */
export const PAGE_POSITIONS_MAX = 2000;
/** How long a position is kept: 2 minutes. */
export const PAGE_POSITIONS_TTL_MS = 120_000;

export class PagePositions {
  private readonly map = new Map<string, Entry>();
  constructor(
    private readonly max = PAGE_POSITIONS_MAX,
    private readonly ttlMs = PAGE_POSITIONS_TTL_MS,
  ) {}

  /** The fingerprint of a query's matches and order, or undefined when it cannot be remembered. */
  static fingerprint(q: FeatureQuery, registryVersion: number | string): string | undefined {
    if (!q.layer.primaryKey || q.clip) return undefined;
    const params: unknown[] = [];
    let where: string;
    try {
      where = buildWhere(q, params);
      buildOrderBy(q);
    } catch {
      return undefined;
    }
    return createHash('sha256')
      .update(
        JSON.stringify([registryVersion, qualifiedTable(q.layer.schema, q.layer.table), where, params, orderFingerprint(q)], (_k, v) =>
          typeof v === 'bigint' ? String(v) : v,
        ),
      )
      .digest('base64url');
  }

  get(fp: string, position: number): string | undefined {
    const k = `${fp}@${position}`;
    const e = this.map.get(k);
    if (!e) return undefined;
    this.map.delete(k);
    if (Date.now() - e.at > this.ttlMs) return undefined;
    this.map.set(k, e); // most recently used last
    return e.key;
  }

  set(fp: string, position: number, key: string): void {
    const k = `${fp}@${position}`;
    this.map.delete(k);
    this.map.set(k, { key, at: Date.now() });
    while (this.map.size > this.max) this.map.delete(this.map.keys().next().value as string);
  }

  /**
   * The keyset for a page at `position`, when remembered and its anchor still answers (sorted
   * queries need the anchor feature's values; a deleted one means: skip by offset instead).
   */
  async recall(
    db: FeatureDbLike,
    q: FeatureQuery,
    fp: string,
    position: number,
    signal?: AbortSignal,
  ): Promise<FeatureQuery['after'] | undefined> {
    const key = this.get(fp, position);
    if (key === undefined) return undefined;
    try {
      return await keysetAnchor(db, q, { key, offset: position, order: orderFingerprint(q) }, signal);
    } catch {
      return undefined;
    }
  }
}

/** The primary key of a serialised row: GML rows carry it as `fid`; GeoJSON/NDJSON rows as the Feature's `id`. */
export function rowKey(row: FeatureRow): string | undefined {
  if (typeof row.fid === 'string') return row.fid;
  const f = row.f;
  if (typeof f !== 'string') return undefined;
  const m = f.match(/^\{"type":"Feature","id":("(?:[^"\\]|\\.)*"|-?[\d.eE+-]+)/);
  if (!m) return undefined;
  const v = JSON.parse(m[1]) as unknown;
  return String(v);
}

/** A writer that also notes the key of the last row written (for PagePositions.set). */
export function noteLastKey(w: FeatureWriter): { writer: FeatureWriter; lastKey: () => string | undefined } {
  let last: FeatureRow | undefined;
  const writer: FeatureWriter = Object.create(w);
  writer.feature = (row, q, index) => {
    last = row;
    return w.feature(row, q, index);
  };
  return { writer, lastKey: () => (last ? rowKey(last) : undefined) };
}
