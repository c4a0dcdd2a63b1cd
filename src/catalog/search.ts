/**
 * A catalogue search and the serialisation of its page, through the runtime's search cache
 * (search-cache.ts): CSW GetRecords and the DCAT pages.
 */
import type { AppContext } from '../context.js';
import type { CatalogRecord } from './model.js';
import { searchRecords, type SearchOptions } from './query.js';
import { SearchCache, type CachedSearch } from './search-cache.js';
import { catalogVersion, schemaOf } from './store.js';

/**
 * A search and the serialisation of its page (`write`), through the runtime's cache: `parts` is
 * what the serialisation depends on besides the search (output schema, element set, base URL…).
 * The catalogue's version is read first; the answer is filed under it.
 */
export async function cachedSearch(
  ctx: AppContext,
  o: SearchOptions,
  parts: unknown[],
  write: (records: CatalogRecord[], matched: number) => string | Promise<string>,
): Promise<CachedSearch> {
  const schema = schemaOf(ctx);
  const cache = ctx.runtime.catalogCache;
  const version = await cache.readVersion(schema, () => catalogVersion(ctx.pool, schema));
  // the registry's version too: a reload may change what records are written with (service defaults)
  const key = SearchCache.key(schema, version, [ctx.registry.version, o, ...parts]);
  const hit = cache.get(schema, version, key);
  if (hit) return hit;
  const res = await searchRecords(ctx.pool, o, schema);
  const e: CachedSearch = { matched: res.matched, returned: res.records.length, body: await write(res.records, res.matched) };
  cache.set(schema, version, key, e);
  return e;
}
