/**
 * One place that plans a collection response — for WFS GetFeature, OGC API items and the
 * downloads alike: from the parsed request (the queries, hits or results, the page asked for, the
 * output and where it writes its totals), which page is read, whether and how numberMatched is
 * learnt (counted first, carried by the page query, learnt after the rows, or not at all), whether
 * the page is streamed, buffered, exported as a file or not read (hits), and how the next page is
 * reached (keyset or offset). Pure: no database, no HTTP; the front doors carry the plan out with
 * the engine (stream.ts, keyset.ts) and write it in their protocol's form.
 */
import { inlineCountable, pageSize, type FeatureQuery } from './query.js';

/** How numberMatched is learnt. */
export type CountMode =
  /** Not at all: the output carries no totals (NDJSON, GeoJSON sequences, whole-dataset downloads). */
  | 'none'
  /** One count per query before the page is read (needed first: several queries, hits, HTTP headers). */
  | 'first'
  /**
   * Carried by the page query itself (count(*) beside the page's keys, SelectOptions.countMatched): one scan for
   * the page and its count; an empty page carries none (then counted when it lies past the start).
   */
  | 'carried'
  /**
   * After the rows (totals in a footer): a page that was not full says it (start + returned);
   * a full one takes the count the rows carried, else counts on the stream's own connection.
   */
  | 'after';

/** How the page reaches the client. */
export type Delivery =
  /** Cursor → writer → response, with back-pressure (see bufferUpTo). */
  | 'stream'
  /** Read whole, then sent (with an ETag; HTML pages). */
  | 'buffer'
  /** Written by the shared export (src/services/downloads/export.ts): a file format. */
  | 'export'
  /** No features are read: only the totals (WFS resultType=hits). */
  | 'hits';

export interface CollectionRequest {
  /** One query per feature type, unpaged (no limit, offset or keyset yet). */
  queries: FeatureQuery[];
  resultType?: 'results' | 'hits';
  /** Features before the page (STARTINDEX, offset, or the position a cursor carries). */
  start?: number;
  /** The page asked for: COUNT / limit (already parsed), the default and the maximum. Absent: every feature (downloads). */
  page?: { asked?: number; default: number; max: number };
  /** Features in the API's or protocol's own collection document, or a file of the format table. */
  output: 'features' | 'file';
  /**
   * Where the response writes numberMatched: 'before' any byte (an HTTP header such as Link, an
   * HTML page, the size of an exported page), in the document's 'header' (GML), its 'footer'
   * (WFS GeoJSON) or 'none'.
   */
  totals: 'before' | 'header' | 'footer' | 'none';
  /** Pages of at most this many features are read whole and sent with an ETag (default 0: never). */
  bufferUpTo?: number;
  /** The next page is reached by a keyset cursor where the layer has a primary key (OGC API), else by offset. */
  cursors?: boolean;
  /** Page ends may be remembered as keysets for the next page (WFS walks: src/services/wfs/positions.ts). */
  rememberPositions?: boolean;
}

export interface CollectionPlan {
  /** Page size (undefined: every feature). */
  limit: number | undefined;
  start: number;
  count: CountMode;
  delivery: Delivery;
  /** A streamed page found (from the count) to hold at most this many features is buffered instead (ETag). */
  bufferUpTo: number;
  /** How a next link is written: 'keyset' (a cursor after the page's last key), 'offset', or 'none' (no paging). */
  next: 'keyset' | 'offset' | 'none';
  /** A full page's last key may be remembered for the position after it. */
  walk: boolean;
}

/** Plan a collection response. */
export function planCollection(r: CollectionRequest): CollectionPlan {
  const start = Math.max(0, Math.trunc(r.start ?? 0));
  const limit = r.page ? Math.max(0, Math.min(r.page.asked ?? r.page.default, r.page.max)) : undefined;
  const bufferUpTo = Math.max(0, r.bufferUpTo ?? 0);
  const one = r.queries.length === 1 ? r.queries[0] : undefined;
  const hits = r.resultType === 'hits';
  const paged = limit !== undefined && !hits;
  const next = !paged ? 'none' : r.cursors && one?.layer.primaryKey ? 'keyset' : 'offset';
  const walk = !!r.rememberPositions && paged && limit > 0 && !!one?.layer.primaryKey && !one.clip;
  const plan = (count: CountMode, delivery: Delivery): CollectionPlan => ({ limit, start, count, delivery, bufferUpTo, next, walk });

  if (hits) return plan(r.totals === 'none' ? 'none' : 'first', 'hits');
  // several queries share one page: each query's count says which part of the page it holds
  const carriable = !!one && limit !== undefined && limit > 0 && inlineCountable({ ...one, limit });
  if (r.output === 'file') {
    const needed = r.totals !== 'none' || (r.queries.length > 1 && limit !== undefined);
    return plan(needed ? 'first' : 'none', 'export');
  }
  if (r.queries.length > 1) return plan(r.totals === 'none' && limit === undefined ? 'none' : 'first', 'stream');
  switch (r.totals) {
    case 'none':
      return plan('none', limit !== undefined && limit <= bufferUpTo ? 'buffer' : 'stream');
    case 'footer':
      return plan('after', limit !== undefined && limit <= bufferUpTo ? 'buffer' : 'stream');
    case 'header':
      // the header waits for the first row, which carries the count
      return plan(carriable ? 'carried' : 'first', limit !== undefined && limit <= bufferUpTo ? 'buffer' : 'stream');
    case 'before':
      // known before any byte: carried only by a page read whole anyway
      if (limit !== undefined && limit <= bufferUpTo) return plan(carriable ? 'carried' : 'first', 'buffer');
      return plan('first', 'stream');
  }
}

/** A streamed plan's page, once its size is known from the count: buffered when small enough (an ETag), else streamed. */
export function deliveryOf(plan: CollectionPlan, returned: number): Delivery {
  return plan.delivery === 'stream' && returned <= plan.bufferUpTo ? 'buffer' : plan.delivery;
}

/**
 * The page of one query as the plan reads it: its limit, and its offset unless the query starts
 * after a keyset (q.after: a cursor or a remembered page end).
 */
export function pageQuery(plan: CollectionPlan, q: FeatureQuery): FeatureQuery {
  return { ...q, offset: q.after ? undefined : plan.start, limit: plan.limit };
}

/**
 * One page (start, limit) over several queries taken in order, given each query's exact count:
 * which part of which query it holds, how many features that is, and the total matched.
 */
export function distributePage(
  queries: FeatureQuery[],
  counts: number[],
  start: number,
  limit: number | undefined,
): { matched: number; paged: FeatureQuery[]; returned: number } {
  let skip = start;
  let left = limit ?? Number.POSITIVE_INFINITY;
  const paged: FeatureQuery[] = [];
  let returned = 0;
  queries.forEach((q, i) => {
    const off = Math.min(skip, counts[i]);
    skip -= off;
    const lim = Math.min(left, counts[i] - off);
    left -= lim;
    returned += lim;
    // a keyset replaces the skip (one type: the page starts at the keyset's position)
    if (lim > 0) paged.push({ ...q, offset: q.after ? undefined : off, limit: lim });
  });
  return { matched: counts.reduce((a, b) => a + b, 0), paged, returned };
}

/**
 * numberMatched learnt after a page's rows ('after'): a page that is not full ends the matches
 * (unless it is empty past the start: then nothing says where they end); otherwise the count the
 * rows carried. Undefined: count it.
 */
export function matchedAfterPage(plan: Pick<CollectionPlan, 'start' | 'limit'>, returned: number, carried?: number): number | undefined {
  const full = plan.limit === undefined ? false : returned >= plan.limit;
  if (!full && (plan.start === 0 || returned > 0)) return plan.start + returned;
  return carried;
}

/**
 * numberMatched of a page whose query carried it ('carried'), given what its first row carried:
 * an empty page at the start matched nothing; an empty page past the start must be counted (undefined).
 */
export function matchedOfCarriedPage(plan: Pick<CollectionPlan, 'start'>, carried: number | undefined): number | undefined {
  return carried ?? (plan.start === 0 ? 0 : undefined);
}

/** numberReturned of the plan's page once numberMatched is known. */
export function returnedOf(plan: Pick<CollectionPlan, 'start' | 'limit'>, matched: number): number {
  return pageSize(matched, { offset: plan.start, limit: plan.limit });
}

/** Start of the next and the previous page (offsets), when there is one. */
export function neighbourPages(
  plan: Pick<CollectionPlan, 'start' | 'limit'>,
  returned: number,
  matched: number,
): { next?: number; prev?: number } {
  const out: { next?: number; prev?: number } = {};
  if (plan.limit === undefined || plan.limit <= 0) return out;
  if (plan.start + returned < matched) out.next = plan.start + plan.limit;
  if (plan.start > 0) out.prev = Math.max(0, plan.start - plan.limit);
  return out;
}
