/**
 * The collection planner (src/features/plan.ts): the count / buffer / stream decision each front
 * door (WFS GetFeature, OGC API items, downloads) takes from it, and the page arithmetic they share.
 * No database: the plan is a pure function of the parsed request.
 */
import { describe, expect, it } from 'vitest';
import type { Layer } from '../../src/registry/types.js';
import type { FeatureQuery } from '../../src/features/query.js';
import {
  deliveryOf,
  distributePage,
  matchedAfterPage,
  matchedOfCarriedPage,
  neighbourPages,
  pageQuery,
  planCollection,
  returnedOf,
  type CollectionRequest,
} from '../../src/features/plan.js';

const layer = (name: string, primaryKey: string | null = 'id') => ({ name, primaryKey, srid: 2154, fields: [] }) as unknown as Layer;
const parcels = layer('parcels');
const noKey = layer('survey', null);
const bbox = { minx: 0, miny: 0, maxx: 1, maxy: 1, epsg: 2154 };
const whole: FeatureQuery = { layer: parcels };
const boxed: FeatureQuery = { layer: parcels, bbox };

const wfs = (o: Partial<CollectionRequest>): CollectionRequest => ({
  queries: [whole],
  resultType: 'results',
  start: 0,
  page: { asked: 10, default: 1000, max: 5000 },
  output: 'features',
  totals: 'header',
  rememberPositions: true,
  ...o,
});
const items = (o: Partial<CollectionRequest>): CollectionRequest => ({
  queries: [whole],
  start: 0,
  page: { asked: 10, default: 10, max: 10000 },
  output: 'features',
  totals: 'before',
  bufferUpTo: 100,
  cursors: true,
  ...o,
});

describe('planCollection: WFS GetFeature', () => {
  it('GML with a BBOX or filter: the streamed page carries its count and its header waits for it', () => {
    const p = planCollection(wfs({ queries: [boxed] }));
    expect(p).toMatchObject({ count: 'carried', delivery: 'stream', limit: 10, next: 'offset', walk: true });
  });

  it('GML of a whole table: counted first (the page comes straight off the key index); several types are counted first', () => {
    expect(planCollection(wfs({})).count).toBe('first');
    expect(planCollection(wfs({ queries: [boxed, { layer: layer('roads'), bbox }] }))).toMatchObject({ count: 'first', walk: false });
  });

  it('GeoJSON learns numberMatched after the rows; NDJSON not at all; both stream', () => {
    expect(planCollection(wfs({ totals: 'footer' }))).toMatchObject({ count: 'after', delivery: 'stream' });
    expect(planCollection(wfs({ totals: 'none' }))).toMatchObject({ count: 'none', delivery: 'stream' });
  });

  it('hits: counted, no feature read, no paging; COUNT is capped at the maximum and defaults to the default', () => {
    expect(planCollection(wfs({ resultType: 'hits' }))).toMatchObject({ count: 'first', delivery: 'hits', next: 'none', walk: false });
    expect(planCollection(wfs({ page: { asked: 99999, default: 1000, max: 5000 } })).limit).toBe(5000);
    expect(planCollection(wfs({ page: { default: 1000, max: 5000 } })).limit).toBe(1000);
    expect(planCollection(wfs({ page: { default: 10000, max: 5000 } })).limit).toBe(5000);
  });

  it('a keyset page (a remembered page end) cannot carry its count; COUNT=0 carries none either', () => {
    const after = { ...boxed, after: { key: '42', nulls: [] } };
    expect(planCollection(wfs({ queries: [after] })).count).toBe('first');
    expect(planCollection(wfs({ queries: [boxed], page: { asked: 0, default: 10, max: 10 } }))).toMatchObject({
      count: 'first',
      walk: false,
    });
  });

  it('page positions are remembered only for one keyed, unclipped type', () => {
    expect(planCollection(wfs({ queries: [{ layer: noKey }] })).walk).toBe(false);
    expect(
      planCollection(wfs({ queries: [{ layer: parcels, clip: { mode: 'cut', geometry: { text: '', encoding: 'wkt', epsg: 2154 } } }] }))
        .walk,
    ).toBe(false);
    expect(planCollection(wfs({ rememberPositions: false })).walk).toBe(false);
  });

  it('file formats: the export writes the page; counts only to split a page over several types', () => {
    expect(planCollection(wfs({ output: 'file', totals: 'none' }))).toMatchObject({ count: 'none', delivery: 'export' });
    expect(planCollection(wfs({ output: 'file', totals: 'none', queries: [whole, { layer: layer('roads') }] }))).toMatchObject({
      count: 'first',
      delivery: 'export',
    });
  });
});

describe('planCollection: OGC API items and downloads', () => {
  it('a small JSON page with a bbox or filter is read whole with its count (one scan, an ETag)', () => {
    expect(planCollection(items({ queries: [boxed] }))).toMatchObject({ count: 'carried', delivery: 'buffer', next: 'keyset' });
  });

  it('a small page of a whole table: counted first, read whole; a large page: counted first, streamed unless it turns out small', () => {
    expect(planCollection(items({}))).toMatchObject({ count: 'first', delivery: 'buffer' });
    const big = planCollection(items({ queries: [boxed], page: { asked: 5000, default: 10, max: 10000 } }));
    expect(big).toMatchObject({ count: 'first', delivery: 'stream', limit: 5000 });
    expect(deliveryOf(big, 100)).toBe('buffer');
    expect(deliveryOf(big, 101)).toBe('stream');
  });

  it('HTML is always read whole; a file is counted first (Link header) and exported', () => {
    expect(
      planCollection(items({ queries: [boxed], bufferUpTo: Number.POSITIVE_INFINITY, page: { asked: 5000, default: 10, max: 10000 } })),
    ).toMatchObject({
      count: 'carried',
      delivery: 'buffer',
    });
    expect(planCollection(items({ output: 'file' }))).toMatchObject({ count: 'first', delivery: 'export' });
  });

  it('next links: a cursor for a keyed collection, an offset otherwise', () => {
    expect(planCollection(items({ queries: [{ layer: noKey }] })).next).toBe('offset');
  });

  it('a download: the whole selection exported, never counted, not paged', () => {
    const p = planCollection({ queries: [boxed], output: 'file', totals: 'none' });
    expect(p).toMatchObject({ count: 'none', delivery: 'export', limit: undefined, next: 'none', walk: false });
    expect(pageQuery(p, boxed).limit).toBeUndefined();
  });
});

describe('page arithmetic', () => {
  const plan = (start: number, limit: number | undefined) => ({ start, limit });

  it('pageQuery: the offset, unless the query starts after a keyset', () => {
    const p = planCollection(wfs({ start: 30 }));
    expect(pageQuery(p, whole)).toMatchObject({ offset: 30, limit: 10 });
    expect(pageQuery(p, { ...whole, after: { key: 7 } })).toMatchObject({ offset: undefined, limit: 10 });
  });

  it('distributePage splits one page over several types in order', () => {
    const a: FeatureQuery = { layer: parcels };
    const b: FeatureQuery = { layer: layer('roads') };
    const d = distributePage([a, b], [5, 20], 3, 10);
    expect(d.matched).toBe(25);
    expect(d.returned).toBe(10);
    expect(d.paged.map((q) => [q.layer.name, q.offset, q.limit])).toEqual([
      ['parcels', 3, 2],
      ['roads', 0, 8],
    ]);
    expect(distributePage([a, b], [5, 20], 30, 10)).toMatchObject({ matched: 25, returned: 0, paged: [] });
    expect(distributePage([a], [5], 0, 0).paged).toEqual([]);
  });

  it('numberMatched after the rows: a page that is not full ends the matches; a full or empty-past-the-start one needs the carried count', () => {
    expect(matchedAfterPage(plan(0, 10), 4)).toBe(4);
    expect(matchedAfterPage(plan(20, 10), 4)).toBe(24);
    expect(matchedAfterPage(plan(20, 10), 0)).toBeUndefined();
    expect(matchedAfterPage(plan(20, 10), 0, 7)).toBe(7);
    expect(matchedAfterPage(plan(0, 10), 10)).toBeUndefined();
    expect(matchedAfterPage(plan(0, 10), 10, 1234)).toBe(1234);
    expect(matchedAfterPage(plan(0, 0), 0, 9)).toBe(9);
  });

  it('numberMatched of a carried page: an empty first page matched nothing; past the start it must be counted', () => {
    expect(matchedOfCarriedPage(plan(0, 10), 55)).toBe(55);
    expect(matchedOfCarriedPage(plan(0, 10), undefined)).toBe(0);
    expect(matchedOfCarriedPage(plan(40, 10), undefined)).toBeUndefined();
  });

  it('returned and the neighbour pages', () => {
    expect(returnedOf(plan(20, 10), 25)).toBe(5);
    expect(returnedOf(plan(30, 10), 25)).toBe(0);
    expect(neighbourPages(plan(0, 10), 10, 25)).toEqual({ next: 10 });
    expect(neighbourPages(plan(10, 10), 10, 25)).toEqual({ next: 20, prev: 0 });
    expect(neighbourPages(plan(20, 10), 5, 25)).toEqual({ prev: 10 });
    expect(neighbourPages(plan(5, 10), 10, 100)).toEqual({ next: 15, prev: 0 });
    expect(neighbourPages(plan(0, 0), 0, 25)).toEqual({});
  });
});
