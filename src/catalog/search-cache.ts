/**
 * Answers of catalogue searches (CSW GetRecords, DCAT pages) kept in memory, keyed by the
 * catalogue's version and the normalised request: the compiled filter (SQL and its values, so a
 * CQL and an XML filter that mean the same share an entry), the sort, the page, the output schema,
 * the element set and the base URL.
 *
 * Never stale: the version is read from the database on every request (catalog_version, store.ts:
 * bumped in the same commit as any change of a record, by any process: CSW-T, import, harvest,
 * derivation), before the search runs, and an answer is filed under the version read before it
 * was computed. A change committed meanwhile bumps the version, so that answer is never served
 * after the change is visible. Each process keeps its own entries; the version is what they share.
 *
 * One per runtime (ctx.runtime.catalogCache, src/runtime.ts), used through cachedSearch (search.ts); bounded by SEARCH_CACHE_BYTES
 * (least recently used out); the entries of an older version are dropped when a newer one is seen.
 */
import { createHash } from 'node:crypto';

/** Bytes of answers kept at most (each: its text, UTF-16, and its UTF-8 bytes). */
export const SEARCH_CACHE_BYTES = 32 * 1024 * 1024;
/** Answers larger than this are not kept (a 1,000-record page of full ISO documents). */
const MAX_ENTRY_BYTES = 4 * 1024 * 1024;

export interface CachedSearch {
  matched: number;
  returned: number;
  /** The serialised records (CSW) or the whole body (DCAT page). */
  body: string;
  /** `body` in UTF-8, made once (bodyBytes): a hit sends it without encoding the text again. */
  bytes?: Buffer;
}

/** The answer's body in UTF-8 (encoded at the first need, then kept with the entry). */
export function bodyBytes(e: CachedSearch): Buffer {
  e.bytes ??= Buffer.from(e.body, 'utf8');
  return e.bytes;
}

/** Memory an entry holds: its text (UTF-16) and its UTF-8 bytes. */
const sizeOf = (e: CachedSearch) => e.body.length * 3;

export class SearchCache {
  private readonly map = new Map<string, CachedSearch>();
  private readonly versions = new Map<string, string>();
  private bytes = 0;
  readonly stats = { hits: 0, misses: 0 };
  /** Off: every answer is computed (the catalogue benchmark's uncached figures). */
  enabled = true;

  /** Per catalogue: the version read in flight, and the one that will follow it. */
  private readonly reads = new Map<string, { current?: Promise<string>; next?: Promise<string> }>();

  constructor(private readonly maxBytes = SEARCH_CACHE_BYTES) {}

  /**
   * The catalogue's version for a request that has just arrived (`read` asks the database).
   * Requests arriving while a read is in flight do not take its answer (its snapshot may predate a
   * change committed before they arrived): they share the next read, sent when that one ends — so
   * under load one read serves many requests, and none ever gets a version older than its arrival.
   */
  readVersion(schema: string, read: () => Promise<string>): Promise<string> {
    let s = this.reads.get(schema);
    if (!s) this.reads.set(schema, (s = {}));
    const st = s;
    const start = (): Promise<string> => {
      const p: Promise<string> = read().finally(() => {
        if (st.current === p) st.current = undefined;
      });
      st.current = p;
      return p;
    };
    if (!st.current) return start();
    st.next ??= st.current
      .catch(() => undefined)
      .then(() => {
        st.next = undefined;
        return start();
      });
    return st.next;
  }

  /** The key of a request in catalogue `schema` at `version` (`parts`: everything the answer depends on). */
  static key(schema: string, version: string, parts: unknown[]): string {
    return `${schema}@${version}:${createHash('sha256').update(JSON.stringify(parts)).digest('base64url')}`;
  }

  get(schema: string, version: string, key: string): CachedSearch | undefined {
    if (!this.enabled) return undefined;
    this.see(schema, version);
    const e = this.map.get(key);
    if (!e) {
      this.stats.misses++;
      return undefined;
    }
    this.stats.hits++;
    this.map.delete(key);
    this.map.set(key, e); // most recently used last
    return e;
  }

  set(schema: string, version: string, key: string, e: CachedSearch): void {
    const size = sizeOf(e);
    if (!this.enabled || size > MAX_ENTRY_BYTES || this.versions.get(schema) !== version) return;
    const old = this.map.get(key);
    if (old) this.bytes -= sizeOf(old);
    this.map.delete(key);
    this.map.set(key, e);
    this.bytes += size;
    for (const [k, v] of this.map) {
      if (this.bytes <= this.maxBytes) break;
      this.map.delete(k);
      this.bytes -= sizeOf(v);
    }
  }

  /** Another version of `schema` seen (newer, as a rule: then its older entries can never be served again). */
  private see(schema: string, version: string): void {
    const known = this.versions.get(schema);
    if (known === version) return;
    this.versions.set(schema, version);
    const prefix = `${schema}@`;
    for (const [k, v] of this.map)
      if (k.startsWith(prefix) && !k.startsWith(`${prefix}${version}:`)) {
        this.map.delete(k);
        this.bytes -= sizeOf(v);
      }
  }
}
