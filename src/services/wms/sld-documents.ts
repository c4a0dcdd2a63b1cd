/**
 * The documents fetched for the WMS `SLD` parameter (src/services/wms/sld-url.ts checks and fetches
 * them), kept by the application's runtime.
 */
import { LRUCache } from 'lru-cache';

export interface SldUrlOptions {
  /** URL prefixes (normalised) under which documents may be fetched. */
  allowed: string[];
  timeoutMs: number;
  maxBytes: number;
  cacheSeconds: number;
}

/** A fetched document, or why it could not be fetched (remembered a few seconds). */
export type Entry = { ok: true; text: string } | { ok: false; message: string; status: number };

/**
 * The documents fetched for the SLD parameter, shared by every request of an application (one
 * per application, built by src/runtime.ts): a short-lived cache, and the fetches in flight so
 * that the tiles of one map view wait for the same download.
 */
export class SldDocuments {
  private cache?: LRUCache<string, Entry>;
  readonly inflight = new Map<string, Promise<Entry>>();

  /** Bytes of document text held (for /metrics). */
  get bytes(): number {
    return this.cache?.calculatedSize ?? 0;
  }

  lru(o: SldUrlOptions): LRUCache<string, Entry> {
    this.cache ??= new LRUCache<string, Entry>({
      max: 256,
      maxSize: 32 * 1024 * 1024,
      sizeCalculation: (e) => (e.ok ? Math.max(1, e.text.length) : 1),
      ttl: Math.max(1, o.cacheSeconds * 1000),
    });
    return this.cache;
  }
}
