/** Property-based fuzzing of the request parsers: every input gets a clean answer, never a crash. */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import fc from 'fast-check';
import { parseCql2Json, parseCql2Text } from '../src/filter/cql2.js';
import { parseFesFilterString } from '../src/filter/fes.js';
import { FilterError } from '../src/filter/errors.js';
import { compileFilter } from '../src/filter/sql.js';
import { normaliseKvp } from '../src/ows/kvp.js';
import { OwsException } from '../src/ows/exceptions.js';
import { parseXml, XmlInputError } from '../src/ows/xmldom.js';
import { makeTestApp, type TestApp } from './helpers/app.js';
import type { FieldInfo } from '../src/registry/types.js';

// Seeds: a run with FUZZ_SEED set replays that seed; CI uses a fixed one so that a merge is not
// refused by a counterexample found by chance (every counterexample found so far is a fixed
// regression case below); a developer's run draws a new seed each time and prints it on failure.
const seedFromEnv = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : process.env.CI ? 20261207 : undefined;
if (seedFromEnv !== undefined) fc.configureGlobal({ seed: seedFromEnv });
const fuzzScale = Number(process.env.FUZZ_SCALE ?? 1);

const target = {
  fields: [
    { name: 'nom', type: 'string', pgType: 'text', nullable: true },
    { name: 'population', type: 'integer', pgType: 'integer', nullable: true },
    { name: 'date_maj', type: 'date', pgType: 'date', nullable: true },
  ] as FieldInfo[],
  geometryColumn: 'geom',
  srid: 2154,
  primaryKey: 'id',
  layerName: 'communes',
};

/** Parsers may only fail with their own error types. */
function cleanly(fn: () => unknown, ...allowed: (new (...a: never[]) => Error)[]): void {
  try {
    fn();
  } catch (e) {
    if (!allowed.some((A) => e instanceof A)) throw e;
  }
}

const cqlTokens = fc.constantFrom(
  'nom',
  'population',
  '"nom"',
  'date_maj',
  '=',
  '<>',
  '<',
  '>=',
  'AND',
  'OR',
  'NOT',
  '(',
  ')',
  "'Metz'",
  "'a''b'",
  '42',
  '-1.5e3',
  'LIKE',
  "'%é_'",
  'BETWEEN',
  'IN',
  ',',
  'IS',
  'NULL',
  'S_INTERSECTS',
  'POINT(1 2)',
  'POLYGON((0 0,1 0,1 1,0 0))',
  'BBOX(0,0,1,1)',
  "DATE('2020-01-01')",
  "TIMESTAMP('2020-01-01T00:00:00Z')",
  'T_AFTER',
  'true',
  ';',
  '--',
  "'",
  '"',
  'x"y',
);

describe('fuzzing the parsers', () => {
  it('CQL2 text: random token soup parses or fails with FilterError, and SQL never embeds values', () => {
    fc.assert(
      fc.property(fc.array(cqlTokens, { maxLength: 25 }), (tokens) => {
        const text = tokens.join(' ');
        cleanly(() => {
          const ast = parseCql2Text(text);
          const params: unknown[] = [];
          const sql = compileFilter(ast, target, params);
          expect(sql).not.toContain("'Metz'");
          expect(sql).not.toContain(';');
        }, FilterError);
      }),
      { numRuns: 3000 },
    );
  });

  it('CQL2 text: arbitrary strings', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (s) => cleanly(() => compileFilter(parseCql2Text(s), target, []), FilterError)),
      { numRuns: 3000 },
    );
  });

  it('CQL2 JSON: arbitrary JSON values', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 5 }), (v) => cleanly(() => compileFilter(parseCql2Json(v), target, []), FilterError)),
      { numRuns: 3000 },
    );
  });

  it('FES: arbitrary XML-ish strings and mutated filters', () => {
    const base =
      '<fes:Filter xmlns:fes="http://www.opengis.net/fes/2.0"><fes:PropertyIsEqualTo><fes:ValueReference>nom</fes:ValueReference><fes:Literal>Metz</fes:Literal></fes:PropertyIsEqualTo></fes:Filter>';
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), fc.nat(base.length), fc.nat(base.length), (junk, i, j) => {
        const mutated = base.slice(0, Math.min(i, j)) + junk + base.slice(Math.max(i, j));
        for (const doc of [junk, mutated])
          cleanly(() => compileFilter(parseFesFilterString(doc, { version: '2.0' }), target, []), FilterError);
      }),
      { numRuns: 3000 },
    );
  });

  it('XML reader: arbitrary input never escapes XmlInputError', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), (s) => cleanly(() => parseXml(`<a>${s}</a>`), XmlInputError)),
      { numRuns: 3000 },
    );
  });

  it('KVP normalisation', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string({ maxLength: 10 }), fc.oneof(fc.string(), fc.array(fc.string(), { maxLength: 3 }))), (q) =>
        cleanly(() => normaliseKvp(q), OwsException),
      ),
      { numRuns: 2000 },
    );
  });
});

describe('fuzzing the OWS endpoints over HTTP', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await makeTestApp();
  });
  afterAll(async () => t?.close());

  it('random KVP requests never get a 5xx', async () => {
    const key = fc.constantFrom(
      'SERVICE',
      'REQUEST',
      'VERSION',
      'LAYERS',
      'TYPENAMES',
      'BBOX',
      'SRSNAME',
      'CRS',
      'FILTER',
      'COUNT',
      'SORTBY',
      'OUTPUTFORMAT',
      'PROPERTYNAME',
      'WIDTH',
      'apikey',
    );
    const value = fc.oneof(
      fc.constantFrom(
        'WMS',
        'WFS',
        'WMTS',
        'CSW',
        'GetCapabilities',
        'GetFeature',
        'GetMap',
        'parcels',
        '2.0.0',
        '1.1.1',
        "x'; DROP TABLE parcels; --",
        '../../etc/passwd',
        '%00',
        '-1',
        '1e309',
      ),
      fc.string({ maxLength: 40 }),
    );
    const path = fc.constantFrom('/ows', '/wms', '/wfs', '/wmts', '/csw');
    await fc.assert(
      fc.asyncProperty(path, fc.array(fc.tuple(key, value), { maxLength: 6 }), async (p, pairs) => {
        const qs = pairs.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');
        const r = await t.app.inject({ url: `${p}?${qs}` });
        // 501 is allowed only for a whole service this build does not implement yet
        const notImplemented = r.statusCode === 501 && r.body.includes('is not implemented by this server');
        if (!notImplemented) expect(r.statusCode, `${p}?${qs} → ${r.statusCode} ${r.body.slice(0, 300)}`).toBeLessThan(500);
      }),
      { numRuns: 400 },
    );
  }, 120_000);

  it(
    'random CQL2 filters run against PostGIS never get a 5xx',
    async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(cqlTokens, { maxLength: 12 }), async (tokens) => {
          const filter = tokens.join(' ');
          const r = await t.app.inject({ url: `/collections/communes/items?limit=1&filter=${encodeURIComponent(filter)}` });
          expect(r.statusCode, `${filter} → ${r.body.slice(0, 300)}`).toBeLessThan(500);
        }),
        {
          numRuns: Math.round(400 * fuzzScale),
          examples: [[["TIMESTAMP('2020-01-01T00:00:00Z')", 'LIKE', "'%é_'"]], [['42', 'LIKE', "'%é_'"]]],
        },
      );
    },
    180_000 * fuzzScale,
  );

  it('random XML POST bodies never get a 5xx', async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ maxLength: 200 }), fc.constantFrom('/ows', '/wfs', '/csw', '/wms'), async (s, p) => {
        const body = `<GetFeature service="WFS" version="2.0.0" xmlns="http://www.opengis.net/wfs/2.0">${s}</GetFeature>`;
        const r = await t.app.inject({ method: 'POST', url: p, payload: body, headers: { 'content-type': 'application/xml' } });
        const notImplemented = r.statusCode === 501 && r.body.includes('is not implemented by this server');
        if (!notImplemented) expect(r.statusCode, `${p} ${body} → ${r.body.slice(0, 300)}`).toBeLessThan(500);
      }),
      { numRuns: 300 },
    );
  }, 120_000);
});
