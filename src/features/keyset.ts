/**
 * Keyset paging: a page position carried as "after the feature with this primary key" rather than
 * as an offset, so that every page costs the same however deep (an index range instead of
 * reading and dropping every earlier row). Front doors hand the position to clients as an opaque
 * cursor (OGC API `next` links); the engine reads it back here. Knows nothing of HTTP.
 */
import { createHash } from 'node:crypto';
import { FeatureQueryError, buildLastKeySql, keysetAnchorSql, orderKeys, type FeatureQuery } from './query.js';
import { engineQuery, type FeatureDbLike } from './stream.js';

/** What a cursor holds: the last feature's primary key, the position after it, and the order it belongs to. */
export interface Cursor {
  /** Primary key of the last feature of the previous page, as text. */
  key: string;
  /** Number of features before the page the cursor opens (its offset; for numbering and prev links). */
  offset: number;
  /** Fingerprint of the layer and order the key was taken in. */
  order: string;
}

/** Fingerprint of a query's order: a cursor taken in one order means nothing in another. */
export function orderFingerprint(q: FeatureQuery): string {
  const keys = orderKeys(q).map((k) => `${k.column}${k.desc ? '-' : '+'}`);
  return createHash('sha256')
    .update(`${q.layer.name}\n${keys.join(',')}`)
    .digest('base64url')
    .slice(0, 10);
}

export function encodeCursor(c: Cursor): string {
  return Buffer.from(JSON.stringify({ k: c.key, o: c.offset, s: c.order }), 'utf8').toString('base64url');
}

/** Read a cursor; FeatureQueryError (locator 'cursor') when it is not one this server wrote for this order. */
export function decodeCursor(text: string, q: FeatureQuery): Cursor {
  const bad = (why: string) => new FeatureQueryError(`invalid cursor: ${why}; start again from the first page`, 'cursor');
  if (!/^[A-Za-z0-9_-]{1,2048}$/.test(text)) throw bad('not a cursor of this server');
  let o: unknown;
  try {
    o = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
  } catch {
    throw bad('not a cursor of this server');
  }
  const r = o as { k?: unknown; o?: unknown; s?: unknown };
  if (
    !r ||
    typeof r !== 'object' ||
    typeof r.k !== 'string' ||
    typeof r.s !== 'string' ||
    !Number.isSafeInteger(r.o) ||
    (r.o as number) < 0
  )
    throw bad('not a cursor of this server');
  if (r.s !== orderFingerprint(q)) throw bad('it was made for another collection or sort order');
  return { key: r.k, offset: r.o as number, order: r.s };
}

/**
 * Turn a cursor into the query's keyset (q.after): reads the anchor feature by primary key, to
 * know which of its sort values are NULL. With sort keys, a cursor whose feature is gone (deleted
 * since) is stale; a key of the wrong type is forged: both FeatureQueryError ('cursor'). Runs
 * through the stream gate like every statement of the engine (engineQuery).
 */
export async function keysetAnchor(db: FeatureDbLike, q: FeatureQuery, c: Cursor, signal?: AbortSignal): Promise<FeatureQuery['after']> {
  const built = keysetAnchorSql(q);
  let rows: Array<Record<string, unknown>>;
  try {
    rows = await engineQuery(db, built.sql, [c.key], signal);
  } catch (e) {
    if (String((e as { code?: string }).code ?? '').startsWith('22'))
      throw new FeatureQueryError('invalid cursor: its key is not a key of this collection; start again from the first page', 'cursor');
    throw e;
  }
  const n = orderKeys(q).filter((k) => !k.pk).length;
  if (!rows.length) {
    // sorted on other properties, the position is the vanished feature's values: unknown now
    if (n > 0)
      throw new FeatureQueryError('stale cursor: the feature it points after no longer exists; start again from the first page', 'cursor');
    return { key: c.key, nulls: [] };
  }
  return { key: c.key, nulls: Array.from({ length: n }, (_, i) => rows[0][`n${i}`] === true) };
}

/**
 * Primary key of the last feature of a page (the next page's keyset), or undefined when the page
 * is not full. Through the stream gate (engineQuery).
 */
export async function lastKeyOfPage(db: FeatureDbLike, q: FeatureQuery, signal?: AbortSignal): Promise<string | undefined> {
  const { sql, params } = buildLastKeySql(q);
  const rows = await engineQuery<{ k: string }>(db, sql, params, signal);
  return rows[0]?.k;
}
