import { describe, it, expect } from 'vitest';
import type { FieldInfo } from '../src/registry/types.js';
import type { FilterNode, SpatialNode, TemporalNode } from '../src/filter/ast.js';
import { parseCql2Json, parseCql2Text } from '../src/filter/cql2.js';
import { parseCrsName } from '../src/filter/crs-names.js';
import { FilterError } from '../src/filter/errors.js';
import { parseFesFilter, parseFesFilterString, type FesContext } from '../src/filter/fes.js';
import { compileFilter, type FilterTarget } from '../src/filter/sql.js';
import { parseXml } from '../src/ows/xmldom.js';

const fields: FieldInfo[] = [
  { name: 'id', type: 'integer', pgType: 'integer', nullable: false },
  { name: 'name', type: 'string', pgType: 'character varying(80)', nullable: true },
  { name: 'pop', type: 'long', pgType: 'bigint', nullable: true },
  { name: 'area', type: 'number', pgType: 'double precision', nullable: true },
  { name: 'flag', type: 'boolean', pgType: 'boolean', nullable: true },
  { name: 'd', type: 'date', pgType: 'date', nullable: true },
  { name: 'ts', type: 'datetime', pgType: 'timestamp with time zone', nullable: true },
  { name: 'code', type: 'string', pgType: 'text', nullable: true },
];

const target: FilterTarget = {
  fields,
  geometryColumn: 'wkb_geometry',
  geometryName: 'geom',
  srid: 2154,
  primaryKey: 'id',
  layerName: 'parcels',
};

const geoTarget: FilterTarget = { ...target, srid: 4326 };

function compile(node: FilterNode, t: FilterTarget = target): { sql: string; params: unknown[] } {
  const params: unknown[] = [];
  const sql = compileFilter(node, t, params);
  return { sql, params };
}

const FES = 'xmlns:fes="http://www.opengis.net/fes/2.0" xmlns:gml="http://www.opengis.net/gml/3.2"';
const OGC = 'xmlns:ogc="http://www.opengis.net/ogc" xmlns:gml="http://www.opengis.net/gml"';
const fes20: FesContext = { version: '2.0' };
const fes11: FesContext = { version: '1.1' };

function fes(body: string, ctx: FesContext = fes20): FilterNode {
  return parseFesFilterString(`<fes:Filter ${FES}>${body}</fes:Filter>`, ctx);
}
function ogc(body: string, ctx: FesContext = fes11): FilterNode {
  return parseFesFilterString(`<ogc:Filter ${OGC}>${body}</ogc:Filter>`, ctx);
}
const vr = (n: string): string => `<fes:ValueReference>${n}</fes:ValueReference>`;
const lit = (v: string): string => `<fes:Literal>${v}</fes:Literal>`;
const pn = (n: string): string => `<ogc:PropertyName>${n}</ogc:PropertyName>`;
const olit = (v: string): string => `<ogc:Literal>${v}</ogc:Literal>`;

function expectFilterError(fn: () => unknown, re?: RegExp): FilterError {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(FilterError);
  const fe = err as FilterError;
  expect(fe.message.length).toBeGreaterThan(5);
  if (re) expect(fe.message).toMatch(re);
  return fe;
}

// -----------------------------------------------------------------------------------------------

describe('parseCrsName', () => {
  it('recognises the usual spellings and axis orders', () => {
    expect(parseCrsName('EPSG:4326')).toEqual({ epsg: 4326, latLonOrder: false });
    expect(parseCrsName('urn:ogc:def:crs:EPSG::4326')).toEqual({ epsg: 4326, latLonOrder: true });
    expect(parseCrsName('urn:ogc:def:crs:EPSG:6.11.2:4326')).toEqual({ epsg: 4326, latLonOrder: true });
    expect(parseCrsName('urn:x-ogc:def:crs:EPSG:4326')).toEqual({ epsg: 4326, latLonOrder: true });
    expect(parseCrsName('http://www.opengis.net/def/crs/EPSG/0/4326')).toEqual({ epsg: 4326, latLonOrder: true });
    expect(parseCrsName('http://www.opengis.net/gml/srs/epsg.xml#4326')).toEqual({ epsg: 4326, latLonOrder: false });
    expect(parseCrsName('CRS:84')).toEqual({ epsg: 4326, latLonOrder: false });
    expect(parseCrsName('urn:ogc:def:crs:OGC:1.3:CRS84')).toEqual({ epsg: 4326, latLonOrder: false });
    expect(parseCrsName('http://www.opengis.net/def/crs/OGC/1.3/CRS84')).toEqual({ epsg: 4326, latLonOrder: false });
    expect(parseCrsName('urn:ogc:def:crs:EPSG::4258')).toEqual({ epsg: 4258, latLonOrder: true });
    expect(parseCrsName('http://www.opengis.net/def/crs/EPSG/0/2154')).toEqual({ epsg: 2154, latLonOrder: false });
    expect(parseCrsName('urn:ogc:def:crs:EPSG::3857')).toEqual({ epsg: 3857, latLonOrder: false });
    expect(parseCrsName('EPSG:900913')).toEqual({ epsg: 3857, latLonOrder: false });
    expect(parseCrsName('epsg:2154')).toEqual({ epsg: 2154, latLonOrder: false });
    expect(parseCrsName('foo')).toBeNull();
    expect(parseCrsName('EPSG:abc')).toBeNull();
    expect(parseCrsName('')).toBeNull();
  });
});

describe('FES 2.0 parsing', () => {
  it('parses comparison operators with ValueReference and Literal', () => {
    const ops: [string, string][] = [
      ['PropertyIsEqualTo', '='],
      ['PropertyIsNotEqualTo', '<>'],
      ['PropertyIsLessThan', '<'],
      ['PropertyIsLessThanOrEqualTo', '<='],
      ['PropertyIsGreaterThan', '>'],
      ['PropertyIsGreaterThanOrEqualTo', '>='],
    ];
    for (const [el, op] of ops) {
      const n = fes(`<fes:${el}>${vr('ns:pop')}${lit('5')}</fes:${el}>`);
      expect(n).toEqual({
        kind: 'compare',
        op,
        left: { kind: 'property', name: 'pop' },
        right: { kind: 'literal', type: 'string', value: '5' },
        matchCase: true,
      });
    }
    const ci = fes(`<fes:PropertyIsEqualTo matchCase="false">${vr('name')}${lit('Abc')}</fes:PropertyIsEqualTo>`);
    expect(ci).toMatchObject({ kind: 'compare', matchCase: false });
    expect(compile(ci)).toEqual({ sql: 'lower("name") = lower($1::text)', params: ['Abc'] });
  });

  it('parses PropertyIsLike with custom wildcard characters', () => {
    const n = fes(
      `<fes:PropertyIsLike wildCard="*" singleChar="." escapeChar="!">${vr('name')}${lit('a*b.c!*d!!%_\\')}</fes:PropertyIsLike>`,
    );
    expect(n).toEqual({
      kind: 'like',
      operand: { kind: 'property', name: 'name' },
      pattern: 'a%b_c*d!\\%\\_\\\\',
      matchCase: true,
    });
    const m = fes(
      `<fes:PropertyIsLike wildCard="%" singleChar="_" escapeChar="\\" matchCase="false">${vr('name')}${lit('A\\%%')}</fes:PropertyIsLike>`,
    );
    expect(m).toMatchObject({ pattern: 'A\\%%', matchCase: false });
    expect(compile(m)).toEqual({ sql: '"name" ILIKE $1::text', params: ['A\\%%'] });
  });

  it('parses null, nil, between, logical operators and ResourceId', () => {
    expect(fes(`<fes:PropertyIsNull>${vr('name')}</fes:PropertyIsNull>`)).toEqual({
      kind: 'isNull',
      operand: { kind: 'property', name: 'name' },
    });
    expect(fes(`<fes:PropertyIsNil nilReason="missing">${vr('name')}</fes:PropertyIsNil>`)).toEqual({
      kind: 'isNull',
      operand: { kind: 'property', name: 'name' },
    });
    const b = fes(
      `<fes:PropertyIsBetween>${vr('area')}<fes:LowerBoundary>${lit('1')}</fes:LowerBoundary><fes:UpperBoundary>${lit('2')}</fes:UpperBoundary></fes:PropertyIsBetween>`,
    );
    expect(compile(b)).toEqual({ sql: '("area" BETWEEN $1::double precision AND $2::double precision)', params: [1, 2] });
    const l = fes(
      `<fes:Or><fes:And><fes:PropertyIsEqualTo>${vr('id')}${lit('1')}</fes:PropertyIsEqualTo><fes:Not><fes:PropertyIsNull>${vr('name')}</fes:PropertyIsNull></fes:Not></fes:And><fes:PropertyIsGreaterThan>${vr('pop')}${lit('10')}</fes:PropertyIsGreaterThan></fes:Or>`,
    );
    expect(compile(l)).toEqual({
      sql: '(("id" = $1::integer AND (NOT ("name" IS NULL))) OR "pop" > $2::bigint)',
      params: [1, '10'],
    });
    const r = fes('<fes:ResourceId rid="parcels.12"/><fes:ResourceId rid="parcels.13"/><fes:ResourceId rid="roads.4"/>');
    expect(r).toEqual({ kind: 'resourceId', ids: ['parcels.12', 'parcels.13', 'roads.4'] });
    expect(compile(r)).toEqual({ sql: '"id" IN ($1::integer, $2::integer)', params: [12, 13] });
    expect(compile({ kind: 'resourceId', ids: ['roads.4', 'parcels.x'] }).sql).toBe('FALSE');
    expect(compile({ kind: 'resourceId', ids: ['7'] })).toEqual({ sql: '"id" IN ($1::integer)', params: [7] });
  });

  it('parses every spatial operator', () => {
    const poly = `<gml:Polygon srsName="http://www.opengis.net/def/crs/OGC/1.3/CRS84"><gml:exterior><gml:LinearRing><gml:posList>0 0 1 0 1 1 0 1 0 0</gml:posList></gml:LinearRing></gml:exterior></gml:Polygon>`;
    const ops: [string, string][] = [
      ['Intersects', 'intersects'],
      ['Within', 'within'],
      ['Contains', 'contains'],
      ['Disjoint', 'disjoint'],
      ['Equals', 'equals'],
      ['Touches', 'touches'],
      ['Crosses', 'crosses'],
      ['Overlaps', 'overlaps'],
      ['BBOX', 'bbox'],
    ];
    for (const [el, op] of ops) {
      const n = fes(`<fes:${el}>${vr('geom')}${poly}</fes:${el}>`) as SpatialNode;
      expect(n.kind).toBe('spatial');
      expect(n.op).toBe(op);
      expect(n.property).toBe('geom');
      expect(n.geometry).toEqual({
        epsg: 4326,
        geometry: {
          type: 'Polygon',
          coordinates: [
            [
              [0, 0],
              [1, 0],
              [1, 1],
              [0, 1],
              [0, 0],
            ],
          ],
        },
      });
    }
    const dw = fes(
      `<fes:DWithin>${vr('geom')}<gml:Point srsName="EPSG:2154"><gml:pos>650000 6860000</gml:pos></gml:Point><fes:Distance uom="m">250</fes:Distance></fes:DWithin>`,
    ) as SpatialNode;
    expect(dw).toMatchObject({ op: 'dwithin', distance: { value: 250, units: 'm' }, geometry: { epsg: 2154 } });
    expect(compile(dw)).toEqual({
      sql: 'ST_DWithin("wkb_geometry", ST_SetSRID(ST_GeomFromGeoJSON($1::text), 2154), $2::double precision)',
      params: ['{"type":"Point","coordinates":[650000,6860000]}', 250],
    });
    const be = fes(
      `<fes:Beyond>${vr('geom')}<gml:Point srsName="EPSG:4326"><gml:pos>2 48</gml:pos></gml:Point><fes:Distance uom="km">1.5</fes:Distance></fes:Beyond>`,
    );
    expect(compile(be, geoTarget)).toEqual({
      sql: '(NOT ST_DWithin("wkb_geometry"::geography, (ST_SetSRID(ST_GeomFromGeoJSON($1::text), 4326))::geography, $2::double precision))',
      params: ['{"type":"Point","coordinates":[2,48]}', 1500],
    });
    // BBOX without ValueReference → default geometry, GiST-friendly && + ST_Intersects
    const bb = fes(
      '<fes:BBOX><gml:Envelope srsName="urn:ogc:def:crs:EPSG::2154"><gml:lowerCorner>1 2</gml:lowerCorner><gml:upperCorner>3 4</gml:upperCorner></gml:Envelope></fes:BBOX>',
    );
    expect(compile(bb)).toEqual({
      sql: '("wkb_geometry" && ST_SetSRID(ST_GeomFromGeoJSON($1::text), 2154) AND ST_Intersects("wkb_geometry", ST_SetSRID(ST_GeomFromGeoJSON($1::text), 2154)))',
      params: ['{"type":"Polygon","coordinates":[[[1,2],[3,2],[3,4],[1,4],[1,2]]]}'],
    });
  });

  it('parses GML geometries (3.2 and 3.1.1) into GeoJSON', () => {
    const g = (xml: string): unknown => (fes(`<fes:Intersects>${vr('geom')}${xml}</fes:Intersects>`) as SpatialNode).geometry;
    expect(g('<gml:LineString srsName="EPSG:2154"><gml:pos>1 2</gml:pos><gml:pos>3 4</gml:pos></gml:LineString>')).toEqual({
      epsg: 2154,
      geometry: {
        type: 'LineString',
        coordinates: [
          [1, 2],
          [3, 4],
        ],
      },
    });
    expect(
      g(
        '<gml:Polygon srsName="EPSG:2154"><gml:exterior><gml:LinearRing><gml:posList srsDimension="2">0 0 10 0 10 10 0 0</gml:posList></gml:LinearRing></gml:exterior><gml:interior><gml:LinearRing><gml:coordinates>1,1 2,1 2,2 1,1</gml:coordinates></gml:LinearRing></gml:interior></gml:Polygon>',
      ),
    ).toEqual({
      epsg: 2154,
      geometry: {
        type: 'Polygon',
        coordinates: [
          [
            [0, 0],
            [10, 0],
            [10, 10],
            [0, 0],
          ],
          [
            [1, 1],
            [2, 1],
            [2, 2],
            [1, 1],
          ],
        ],
      },
    });
    expect(
      g(
        '<gml:MultiPoint srsName="urn:ogc:def:crs:EPSG::4326"><gml:pointMember><gml:Point><gml:pos>48 2</gml:pos></gml:Point></gml:pointMember><gml:pointMember><gml:Point><gml:pos>49 3</gml:pos></gml:Point></gml:pointMember></gml:MultiPoint>',
      ),
    ).toEqual({
      epsg: 4326,
      geometry: {
        type: 'MultiPoint',
        coordinates: [
          [2, 48],
          [3, 49],
        ],
      },
    });
    expect(
      g(
        '<gml:MultiCurve srsName="EPSG:3857"><gml:curveMember><gml:LineString><gml:posList>0 0 1 1</gml:posList></gml:LineString></gml:curveMember></gml:MultiCurve>',
      ),
    ).toEqual({
      epsg: 3857,
      geometry: {
        type: 'MultiLineString',
        coordinates: [
          [
            [0, 0],
            [1, 1],
          ],
        ],
      },
    });
    expect(
      g(
        '<gml:MultiSurface srsName="EPSG:2154"><gml:surfaceMember><gml:Polygon><gml:exterior><gml:LinearRing><gml:posList>0 0 1 0 1 1 0 0</gml:posList></gml:LinearRing></gml:exterior></gml:Polygon></gml:surfaceMember></gml:MultiSurface>',
      ),
    ).toEqual({
      epsg: 2154,
      geometry: {
        type: 'MultiPolygon',
        coordinates: [
          [
            [
              [0, 0],
              [1, 0],
              [1, 1],
              [0, 0],
            ],
          ],
        ],
      },
    });
    // 3D posList: keeps Z, swaps only the first two
    expect(g('<gml:Point srsName="urn:ogc:def:crs:EPSG::4326" srsDimension="3"><gml:pos>48 2 100</gml:pos></gml:Point>')).toEqual({
      epsg: 4326,
      geometry: { type: 'Point', coordinates: [2, 48, 100] },
    });
  });

  it('parses temporal operators with GML time objects', () => {
    const a = fes(
      `<fes:After>${vr('ts')}<gml:TimeInstant gml:id="t1"><gml:timePosition>2021-01-01T00:00:00Z</gml:timePosition></gml:TimeInstant></fes:After>`,
    ) as TemporalNode;
    expect(a).toEqual({
      kind: 'temporal',
      op: 'after',
      property: 'ts',
      value: { type: 'instant', value: '2021-01-01T00:00:00Z', isDate: false },
    });
    const d = fes(
      `<fes:During>${vr('d')}<gml:TimePeriod gml:id="p1"><gml:beginPosition>2020-01-01</gml:beginPosition><gml:endPosition>2020-12-31</gml:endPosition></gml:TimePeriod></fes:During>`,
    );
    expect(compile(d)).toEqual({ sql: '("d" > $1::date AND "d" < $2::date)', params: ['2020-01-01', '2020-12-31'] });
    const b = fes(`<fes:Before>${vr('d')}${lit('2020-01-01')}</fes:Before>`);
    expect(compile(b)).toEqual({ sql: '"d" < $1::date', params: ['2020-01-01'] });
    const ai = fes(
      `<fes:AnyInteracts>${vr('ts')}<gml:TimePeriod><gml:begin><gml:TimeInstant><gml:timePosition>2020-01-01T00:00:00Z</gml:timePosition></gml:TimeInstant></gml:begin><gml:end><gml:TimeInstant><gml:timePosition>2020-02-01T00:00:00Z</gml:timePosition></gml:TimeInstant></gml:end></gml:TimePeriod></fes:AnyInteracts>`,
    );
    expect(compile(ai).sql).toBe('("ts" >= $1::timestamptz AND "ts" <= $2::timestamptz)');
    const te = fes(
      `<fes:TEquals>${vr('ts')}<gml:TimeInstant><gml:timePosition>2020-01-01T10:00:00Z</gml:timePosition></gml:TimeInstant></fes:TEquals>`,
    );
    expect(compile(te).sql).toBe('"ts" = $1::timestamptz');
  });

  it('accepts an operator element directly (no Filter wrapper)', () => {
    const el = parseXml(`<fes:PropertyIsEqualTo ${FES}>${vr('id')}${lit('3')}</fes:PropertyIsEqualTo>`);
    expect(compile(parseFesFilter(el, fes20))).toEqual({ sql: '"id" = $1::integer', params: [3] });
  });
});

describe('Filter 1.1 parsing', () => {
  it('parses comparisons, like with escape=, between, null, logical', () => {
    const n = ogc(
      `<ogc:And><ogc:PropertyIsEqualTo>${pn('app:name')}${olit('x')}</ogc:PropertyIsEqualTo><ogc:PropertyIsNotEqualTo>${pn('id')}${olit('2')}</ogc:PropertyIsNotEqualTo><ogc:PropertyIsLessThan>${pn('area')}${olit('3.5')}</ogc:PropertyIsLessThan><ogc:PropertyIsLessThanOrEqualTo>${pn('pop')}${olit('4')}</ogc:PropertyIsLessThanOrEqualTo><ogc:PropertyIsGreaterThan>${pn('d')}${olit('2020-01-01')}</ogc:PropertyIsGreaterThan><ogc:PropertyIsGreaterThanOrEqualTo>${pn('ts')}${olit('2020-01-01T12:00:00Z')}</ogc:PropertyIsGreaterThanOrEqualTo></ogc:And>`,
    );
    expect(compile(n)).toEqual({
      sql: '("name" = $1::text AND "id" <> $2::integer AND "area" < $3::double precision AND "pop" <= $4::bigint AND "d" > $5::date AND "ts" >= $6::timestamptz)',
      params: ['x', 2, 3.5, '4', '2020-01-01', '2020-01-01T12:00:00Z'],
    });
    const like = ogc(`<ogc:PropertyIsLike wildCard="*" singleChar="#" escape="!">${pn('name')}${olit('Ru* #!*')}</ogc:PropertyIsLike>`);
    expect(like).toMatchObject({ kind: 'like', pattern: 'Ru% _*' });
    const btw = ogc(
      `<ogc:PropertyIsBetween>${pn('pop')}<ogc:LowerBoundary>${olit('1')}</ogc:LowerBoundary><ogc:UpperBoundary>${olit('9')}</ogc:UpperBoundary></ogc:PropertyIsBetween>`,
    );
    expect(compile(btw)).toEqual({ sql: '("pop" BETWEEN $1::bigint AND $2::bigint)', params: ['1', '9'] });
    expect(compile(ogc(`<ogc:Not><ogc:PropertyIsNull>${pn('name')}</ogc:PropertyIsNull></ogc:Not>`)).sql).toBe('(NOT ("name" IS NULL))');
    const arith = ogc(`<ogc:PropertyIsGreaterThan><ogc:Add>${pn('pop')}${olit('1')}</ogc:Add>${olit('10')}</ogc:PropertyIsGreaterThan>`);
    expect(compile(arith)).toEqual({ sql: '("pop" + $1::double precision) > $2::double precision', params: [1, 10] });
  });

  it('parses FeatureId and GmlObjectId', () => {
    const n = ogc('<ogc:FeatureId fid="parcels.1"/><ogc:GmlObjectId gml:id="parcels.2"/>');
    expect(n).toEqual({ kind: 'resourceId', ids: ['parcels.1', 'parcels.2'] });
    expect(compile(n)).toEqual({ sql: '"id" IN ($1::integer, $2::integer)', params: [1, 2] });
  });

  it('parses BBOX with gml:Envelope and gml:Box, DWithin with units=', () => {
    const env = ogc(
      `<ogc:BBOX>${pn('geom')}<gml:Envelope srsName="EPSG:4326"><gml:lowerCorner>-10 40</gml:lowerCorner><gml:upperCorner>10 50</gml:upperCorner></gml:Envelope></ogc:BBOX>`,
    ) as SpatialNode;
    const box = ogc(
      `<ogc:BBOX>${pn('geom')}<gml:Box srsName="EPSG:4326"><gml:coordinates>-10,40 10,50</gml:coordinates></gml:Box></ogc:BBOX>`,
    ) as SpatialNode;
    const urn = ogc(
      `<ogc:BBOX>${pn('geom')}<gml:Envelope srsName="urn:x-ogc:def:crs:EPSG:4326"><gml:lowerCorner>40 -10</gml:lowerCorner><gml:upperCorner>50 10</gml:upperCorner></gml:Envelope></ogc:BBOX>`,
    ) as SpatialNode;
    expect(env.geometry).toEqual(box.geometry);
    expect(urn.geometry).toEqual(box.geometry);
    expect(compile(env)).toEqual(compile(box));
    const dw = ogc(
      `<ogc:DWithin>${pn('geom')}<gml:Point srsName="EPSG:2154"><gml:coordinates>1,2</gml:coordinates></gml:Point><ogc:Distance units="m">10</ogc:Distance></ogc:DWithin>`,
    );
    expect(dw).toMatchObject({ op: 'dwithin', distance: { value: 10, units: 'm' } });
    const gml2poly = ogc(
      `<ogc:Intersects>${pn('geom')}<gml:Polygon srsName="http://www.opengis.net/gml/srs/epsg.xml#4326"><gml:outerBoundaryIs><gml:LinearRing><gml:coordinates>0,0 1,0 1,1 0,0</gml:coordinates></gml:LinearRing></gml:outerBoundaryIs></gml:Polygon></ogc:Intersects>`,
    ) as SpatialNode;
    expect(gml2poly.geometry).toEqual({
      epsg: 4326,
      geometry: {
        type: 'Polygon',
        coordinates: [
          [
            [0, 0],
            [1, 0],
            [1, 1],
            [0, 0],
          ],
        ],
      },
    });
    const mpoly = ogc(
      `<ogc:Within>${pn('geom')}<gml:MultiPolygon srsName="EPSG:2154"><gml:polygonMember><gml:Polygon><gml:outerBoundaryIs><gml:LinearRing><gml:coordinates>0,0 1,0 1,1 0,0</gml:coordinates></gml:LinearRing></gml:outerBoundaryIs></gml:Polygon></gml:polygonMember></gml:MultiPolygon></ogc:Within>`,
    ) as SpatialNode;
    expect(mpoly.geometry.geometry.type).toBe('MultiPolygon');
    const mls = ogc(
      `<ogc:Crosses>${pn('geom')}<gml:MultiLineString srsName="EPSG:2154"><gml:lineStringMember><gml:LineString><gml:coordinates>0,0 1,1</gml:coordinates></gml:LineString></gml:lineStringMember></gml:MultiLineString></ogc:Crosses>`,
    ) as SpatialNode;
    expect(mls.geometry.geometry).toEqual({
      type: 'MultiLineString',
      coordinates: [
        [
          [0, 0],
          [1, 1],
        ],
      ],
    });
  });

  it('uses the context default CRS when srsName is absent', () => {
    const n = ogc(`<ogc:Intersects>${pn('geom')}<gml:Point><gml:pos>48 2</gml:pos></gml:Point></ogc:Intersects>`, {
      version: '1.1',
      defaultCrs: 'urn:ogc:def:crs:EPSG::4326',
    }) as SpatialNode;
    expect(n.geometry).toEqual({ epsg: 4326, geometry: { type: 'Point', coordinates: [2, 48] } });
    const m = ogc(`<ogc:Intersects>${pn('geom')}<gml:Point><gml:pos>600000 6800000</gml:pos></gml:Point></ogc:Intersects>`, {
      version: '1.1',
      defaultCrs: { epsg: 2154, latLonOrder: false },
    }) as SpatialNode;
    expect(m.geometry.epsg).toBe(2154);
  });
});

describe('CQL2 text parsing', () => {
  it('parses comparisons, keywords case-insensitively, quoted identifiers and escapes', () => {
    expect(parseCql2Text("name = 'O''Brien'")).toEqual({
      kind: 'compare',
      op: '=',
      left: { kind: 'property', name: 'name' },
      right: { kind: 'literal', type: 'string', value: "O'Brien" },
      matchCase: true,
    });
    expect(parseCql2Text('"name" <> \'x\' and Pop >= -3.5e1')).toEqual({
      kind: 'and',
      args: [
        {
          kind: 'compare',
          op: '<>',
          left: { kind: 'property', name: 'name' },
          right: { kind: 'literal', type: 'string', value: 'x' },
          matchCase: true,
        },
        {
          kind: 'compare',
          op: '>=',
          left: { kind: 'property', name: 'Pop' },
          right: { kind: 'literal', type: 'number', value: -35 },
          matchCase: true,
        },
      ],
    });
    expect(compile(parseCql2Text('Pop >= 2'))).toEqual({ sql: '"pop" >= $1::bigint', params: ['2'] });
    expect(compile(parseCql2Text('flag = TRUE AND NOT flag <> false'))).toEqual({
      sql: '("flag" = $1::boolean AND (NOT ("flag" <> $2::boolean)))',
      params: [true, false],
    });
  });

  it('parses LIKE, BETWEEN, IN, IS NULL with their NOT forms', () => {
    expect(compile(parseCql2Text("name LIKE 'A\\_b%'"))).toEqual({ sql: '"name" LIKE $1::text', params: ['A\\_b%'] });
    expect(compile(parseCql2Text("name not like 'x%'")).sql).toBe('(NOT ("name" LIKE $1::text))');
    expect(compile(parseCql2Text("CASEI(name) LIKE CASEI('ab%')"))).toEqual({ sql: '"name" ILIKE $1::text', params: ['ab%'] });
    expect(compile(parseCql2Text('area BETWEEN 1 AND 2'))).toEqual({
      sql: '("area" BETWEEN $1::double precision AND $2::double precision)',
      params: [1, 2],
    });
    expect(compile(parseCql2Text('area NOT BETWEEN 1 AND 2')).sql).toBe(
      '(NOT (("area" BETWEEN $1::double precision AND $2::double precision)))',
    );
    expect(compile(parseCql2Text('id IN (1, 2, 3)'))).toEqual({
      sql: '"id" IN ($1::integer, $2::integer, $3::integer)',
      params: [1, 2, 3],
    });
    expect(compile(parseCql2Text("code NOT IN ('a', 'b')")).sql).toBe('(NOT ("code" IN ($1::text, $2::text)))');
    expect(compile(parseCql2Text('name IS NULL')).sql).toBe('"name" IS NULL');
    expect(compile(parseCql2Text('name IS NOT NULL')).sql).toBe('(NOT ("name" IS NULL))');
  });

  it('handles precedence and parentheses, including parenthesised arithmetic', () => {
    expect(compile(parseCql2Text("name = 'a' OR name = 'b' AND id = 1")).sql).toBe(
      '("name" = $1::text OR ("name" = $2::text AND "id" = $3::integer))',
    );
    expect(compile(parseCql2Text("(name = 'a' OR name = 'b') AND id = 1")).sql).toBe(
      '(("name" = $1::text OR "name" = $2::text) AND "id" = $3::integer)',
    );
    expect(compile(parseCql2Text('(area + 1) * 2 > 10')).sql).toBe(
      '(("area" + $1::double precision) * $2::double precision) > $3::double precision',
    );
    expect(parseCql2Text('TRUE')).toEqual({ kind: 'include' });
    expect(parseCql2Text('false')).toEqual({ kind: 'exclude' });
  });

  it('parses DATE, TIMESTAMP and INTERVAL literals and T_ functions', () => {
    expect(compile(parseCql2Text("d = DATE('2020-05-01')"))).toEqual({ sql: '"d" = $1::date', params: ['2020-05-01'] });
    expect(compile(parseCql2Text("T_AFTER(ts, TIMESTAMP('2021-01-01T00:00:00Z'))")).sql).toBe('"ts" > $1::timestamptz');
    expect(compile(parseCql2Text("T_BEFORE(ts, TIMESTAMP('2021-01-01T00:00:00Z'))")).sql).toBe('"ts" < $1::timestamptz');
    expect(compile(parseCql2Text("T_EQUALS(d, DATE('2021-01-01'))")).sql).toBe('"d" = $1::date');
    expect(compile(parseCql2Text("T_INTERSECTS(d, INTERVAL('2020-01-01', '..'))"))).toEqual({
      sql: '("d" >= $1::date)',
      params: ['2020-01-01'],
    });
    expect(compile(parseCql2Text("T_DURING(ts, INTERVAL(TIMESTAMP('2020-01-01T00:00:00Z'), TIMESTAMP('2020-02-01T00:00:00Z')))")).sql).toBe(
      '("ts" > $1::timestamptz AND "ts" < $2::timestamptz)',
    );
    // literal first → inverted operator
    expect(parseCql2Text("T_AFTER(DATE('2020-01-01'), d)")).toMatchObject({ op: 'before', property: 'd' });
  });

  it('parses spatial functions with WKT literals', () => {
    const wkts = [
      ['POINT(1 2)', { type: 'Point', coordinates: [1, 2] }],
      ['POINT Z (1 2 3)', { type: 'Point', coordinates: [1, 2, 3] }],
      [
        'LINESTRING(0 0, 1 1)',
        {
          type: 'LineString',
          coordinates: [
            [0, 0],
            [1, 1],
          ],
        },
      ],
      [
        'POLYGON((0 0, 1 0, 1 1, 0 0))',
        {
          type: 'Polygon',
          coordinates: [
            [
              [0, 0],
              [1, 0],
              [1, 1],
              [0, 0],
            ],
          ],
        },
      ],
      [
        'MULTIPOINT((0 0), (1 1))',
        {
          type: 'MultiPoint',
          coordinates: [
            [0, 0],
            [1, 1],
          ],
        },
      ],
      [
        'MULTIPOINT(0 0, 1 1)',
        {
          type: 'MultiPoint',
          coordinates: [
            [0, 0],
            [1, 1],
          ],
        },
      ],
      [
        'MULTILINESTRING((0 0, 1 1), (2 2, 3 3))',
        {
          type: 'MultiLineString',
          coordinates: [
            [
              [0, 0],
              [1, 1],
            ],
            [
              [2, 2],
              [3, 3],
            ],
          ],
        },
      ],
      [
        'MULTIPOLYGON(((0 0, 1 0, 1 1, 0 0)))',
        {
          type: 'MultiPolygon',
          coordinates: [
            [
              [
                [0, 0],
                [1, 0],
                [1, 1],
                [0, 0],
              ],
            ],
          ],
        },
      ],
      [
        'GEOMETRYCOLLECTION(POINT(1 2), LINESTRING(0 0, -1 -1))',
        {
          type: 'GeometryCollection',
          geometries: [
            { type: 'Point', coordinates: [1, 2] },
            {
              type: 'LineString',
              coordinates: [
                [0, 0],
                [-1, -1],
              ],
            },
          ],
        },
      ],
      [
        'BBOX(0, 1, 2, 3)',
        {
          type: 'Polygon',
          coordinates: [
            [
              [0, 1],
              [2, 1],
              [2, 3],
              [0, 3],
              [0, 1],
            ],
          ],
        },
      ],
    ] as const;
    for (const [w, geom] of wkts) {
      const n = parseCql2Text(`S_INTERSECTS(geom, ${w})`) as SpatialNode;
      expect(n.geometry).toEqual({ epsg: 4326, geometry: geom });
    }
    for (const f of ['S_INTERSECTS', 'S_WITHIN', 'S_CONTAINS', 'S_DISJOINT', 'S_EQUALS', 'S_TOUCHES', 'S_CROSSES', 'S_OVERLAPS']) {
      const n = parseCql2Text(`${f.toLowerCase()}("geom", POINT(1 2))`) as SpatialNode;
      expect(n.op).toBe(f.slice(2).toLowerCase());
    }
    expect(parseCql2Text('S_WITHIN(POINT(1 2), geom)')).toMatchObject({ op: 'contains', property: 'geom' });
  });

  it('reports syntax errors with a position', () => {
    const cases: [string, RegExp][] = [
      ['pop >', /position 5.*expected an expression/],
      ["name = 'abc", /unterminated string/],
      ['name = 1 AND', /expected an expression/],
      ['(name = 1', /expected '\)'/],
      ['name == 1', /position/],
      ['S_INTERSECTS(geom, POLYGON((0 0, 1 0, 1 1)))', /at least 4 positions/],
      ['S_INTERSECTS(geom, POLYGON((0 0, 1 0, 1 1, 2 2)))', /not closed/],
      ["d = DATE('2020-13-01')", /Invalid date/],
      ['name LIKE 5', /LIKE pattern/],
      ['name IN ()', /IN list/],
      ['id = 1 id = 2', /expected AND, OR/],
      ['', /empty/],
      ['name # 1', /unexpected character/],
    ];
    for (const [s, re] of cases) {
      const e = expectFilterError(() => parseCql2Text(s), re);
      expect(e.code).toBe('OperationParsingFailed');
    }
    const e = expectFilterError(() => parseCql2Text('pop >'));
    expect(e.position).toBe(5);
  });
});

describe('CQL2 JSON parsing', () => {
  it('parses the main operators', () => {
    const n = parseCql2Json({
      op: 'and',
      args: [
        { op: '=', args: [{ property: 'name' }, 'x'] },
        { op: 'like', args: [{ property: 'name' }, 'a%'] },
        { op: 'between', args: [{ property: 'area' }, 1, 2] },
        { op: 'in', args: [{ property: 'id' }, [1, 2]] },
        { op: 'not', args: [{ op: 'isNull', args: [{ property: 'name' }] }] },
        { op: 't_after', args: [{ property: 'd' }, { date: '2020-01-01' }] },
        { op: 's_intersects', args: [{ property: 'geom' }, { bbox: [0, 1, 2, 3] }] },
      ],
    });
    expect(compile(n).sql).toBe(
      '("name" = $1::text AND "name" LIKE $2::text AND ("area" BETWEEN $3::double precision AND $4::double precision) AND "id" IN ($5::integer, $6::integer) AND (NOT ("name" IS NULL)) AND "d" > $7::date AND ST_Intersects("wkb_geometry", ST_Transform(ST_SetSRID(ST_GeomFromGeoJSON($8::text), 4326), 2154)))',
    );
    expect(parseCql2Json(true)).toEqual({ kind: 'include' });
    expect(parseCql2Json('{"op":"=","args":[{"property":"id"},1]}')).toMatchObject({ kind: 'compare', op: '=' });
  });

  it('rejects malformed JSON filters', () => {
    expectFilterError(() => parseCql2Json({ op: 'frobnicate', args: [] }), /unsupported op/);
    expectFilterError(() => parseCql2Json({ op: '=', args: [{ property: 'id' }] }), /requires 2 arguments/);
    expectFilterError(() => parseCql2Json({ op: '=' }), /args/);
    expectFilterError(() => parseCql2Json(42), /predicate/);
    expectFilterError(() => parseCql2Json('{not json'), /not valid JSON/);
    expectFilterError(
      () =>
        parseCql2Json({
          op: 's_intersects',
          args: [
            { property: 'geom' },
            {
              type: 'Polygon',
              coordinates: [
                [
                  [0, 0],
                  [1, 1],
                ],
              ],
            },
          ],
        }),
      /at least 4/,
    );
    expectFilterError(
      () => parseCql2Json({ op: 's_intersects', args: [{ property: 'geom' }, { type: 'Point', coordinates: ['a', 1] }] }),
      /position/,
    );
    expectFilterError(() => parseCql2Json({ op: 't_after', args: [{ property: 'd' }, { date: 'yesterday' }] }), /Invalid date/);
  });
});

// -----------------------------------------------------------------------------------------------
// Equivalence: CQL2 text ≡ CQL2 JSON ≡ FES → identical SQL and params

const CRS84 = 'http://www.opengis.net/def/crs/OGC/1.3/CRS84';
const ring = '0 0 10 0 10 10 0 10 0 0';
const ringLatLon = '0 0 0 10 10 10 10 0 0 0';
const ringJson = [
  [
    [0, 0],
    [10, 0],
    [10, 10],
    [0, 10],
    [0, 0],
  ],
];
const gmlPoly = (srs: string, r: string): string =>
  `<gml:Polygon srsName="${srs}"><gml:exterior><gml:LinearRing><gml:posList>${r}</gml:posList></gml:LinearRing></gml:exterior></gml:Polygon>`;

interface Case {
  label: string;
  text: string;
  json: unknown;
  fes?: string;
  ogc?: string;
}

const eq = (a: unknown, b: unknown): unknown => ({ op: '=', args: [a, b] });
const P = (name: string): { property: string } => ({ property: name });

const cases: Case[] = [
  {
    label: 'string equality',
    text: "name = 'abc'",
    json: eq(P('name'), 'abc'),
    fes: `<fes:PropertyIsEqualTo>${vr('name')}${lit('abc')}</fes:PropertyIsEqualTo>`,
    ogc: `<ogc:PropertyIsEqualTo>${pn('name')}${olit('abc')}</ogc:PropertyIsEqualTo>`,
  },
  {
    label: 'bigint greater than',
    text: 'pop > 5',
    json: { op: '>', args: [P('pop'), 5] },
    fes: `<fes:PropertyIsGreaterThan>${vr('pop')}${lit('5')}</fes:PropertyIsGreaterThan>`,
    ogc: `<ogc:PropertyIsGreaterThan>${pn('pop')}${olit('5')}</ogc:PropertyIsGreaterThan>`,
  },
  {
    label: 'integer not equal',
    text: 'id <> 3',
    json: { op: '<>', args: [P('id'), 3] },
    fes: `<fes:PropertyIsNotEqualTo>${vr('id')}${lit('3')}</fes:PropertyIsNotEqualTo>`,
  },
  {
    label: 'double <=',
    text: 'area <= 2.5',
    json: { op: '<=', args: [P('area'), 2.5] },
    fes: `<fes:PropertyIsLessThanOrEqualTo>${vr('area')}${lit('2.5')}</fes:PropertyIsLessThanOrEqualTo>`,
  },
  {
    label: 'text column vs number compares as text',
    text: 'code = 42',
    json: eq(P('code'), 42),
    fes: `<fes:PropertyIsEqualTo>${vr('code')}${lit('42')}</fes:PropertyIsEqualTo>`,
  },
  {
    label: 'like',
    text: "name LIKE 'Ab%c_'",
    json: { op: 'like', args: [P('name'), 'Ab%c_'] },
    fes: `<fes:PropertyIsLike wildCard="*" singleChar="." escapeChar="!">${vr('name')}${lit('Ab*c.')}</fes:PropertyIsLike>`,
    ogc: `<ogc:PropertyIsLike wildCard="*" singleChar="?" escape="\\">${pn('name')}${olit('Ab*c?')}</ogc:PropertyIsLike>`,
  },
  {
    label: 'case-insensitive like',
    text: "CASEI(name) LIKE CASEI('ab%')",
    json: { op: 'like', args: [{ casei: P('name') }, { casei: 'ab%' }] },
    fes: `<fes:PropertyIsLike wildCard="%" singleChar="_" escapeChar="\\" matchCase="false">${vr('name')}${lit('ab%')}</fes:PropertyIsLike>`,
  },
  {
    label: 'between',
    text: 'pop BETWEEN 10 AND 20',
    json: { op: 'between', args: [P('pop'), 10, 20] },
    fes: `<fes:PropertyIsBetween>${vr('pop')}<fes:LowerBoundary>${lit('10')}</fes:LowerBoundary><fes:UpperBoundary>${lit('20')}</fes:UpperBoundary></fes:PropertyIsBetween>`,
  },
  {
    label: 'is null',
    text: 'name IS NULL',
    json: { op: 'isNull', args: [P('name')] },
    fes: `<fes:PropertyIsNull>${vr('name')}</fes:PropertyIsNull>`,
    ogc: `<ogc:PropertyIsNull>${pn('name')}</ogc:PropertyIsNull>`,
  },
  {
    label: 'in list (no FES form)',
    text: "code IN ('a', 'b')",
    json: { op: 'in', args: [P('code'), ['a', 'b']] },
  },
  {
    label: 'nested logic',
    text: "name = 'a' AND (pop < 3 OR NOT area > 1)",
    json: {
      op: 'and',
      args: [
        eq(P('name'), 'a'),
        {
          op: 'or',
          args: [
            { op: '<', args: [P('pop'), 3] },
            { op: 'not', args: [{ op: '>', args: [P('area'), 1] }] },
          ],
        },
      ],
    },
    fes: `<fes:And><fes:PropertyIsEqualTo>${vr('name')}${lit('a')}</fes:PropertyIsEqualTo><fes:Or><fes:PropertyIsLessThan>${vr('pop')}${lit('3')}</fes:PropertyIsLessThan><fes:Not><fes:PropertyIsGreaterThan>${vr('area')}${lit('1')}</fes:PropertyIsGreaterThan></fes:Not></fes:Or></fes:And>`,
  },
  {
    label: 'boolean',
    text: 'flag = true',
    json: eq(P('flag'), true),
    fes: `<fes:PropertyIsEqualTo>${vr('flag')}${lit('true')}</fes:PropertyIsEqualTo>`,
  },
  {
    label: 'date equality',
    text: "d = DATE('2020-05-01')",
    json: eq(P('d'), { date: '2020-05-01' }),
    fes: `<fes:PropertyIsEqualTo>${vr('d')}${lit('2020-05-01')}</fes:PropertyIsEqualTo>`,
  },
  {
    label: 's_intersects polygon (CRS84)',
    text: 'S_INTERSECTS(geom, POLYGON((0 0, 10 0, 10 10, 0 10, 0 0)))',
    json: { op: 's_intersects', args: [P('geom'), { type: 'Polygon', coordinates: ringJson }] },
    fes: `<fes:Intersects>${vr('geom')}${gmlPoly(CRS84, ring)}</fes:Intersects>`,
    ogc: `<ogc:Intersects>${pn('geom')}${gmlPoly('EPSG:4326', ring)}</ogc:Intersects>`,
  },
  {
    label: 's_within polygon given lat/lon in a URN',
    text: 'S_WITHIN(geom, POLYGON((0 0, 10 0, 10 10, 0 10, 0 0)))',
    json: { op: 's_within', args: [P('geom'), { type: 'Polygon', coordinates: ringJson }] },
    fes: `<fes:Within>${vr('geom')}${gmlPoly('urn:ogc:def:crs:EPSG::4326', ringLatLon)}</fes:Within>`,
    ogc: `<ogc:Within>${pn('geom')}${gmlPoly('http://www.opengis.net/def/crs/EPSG/0/4326', ringLatLon)}</ogc:Within>`,
  },
  {
    label: 's_intersects bbox vs envelope',
    text: 'S_INTERSECTS(geom, BBOX(-5, 40, 10, 52))',
    json: { op: 's_intersects', args: [P('geom'), { bbox: [-5, 40, 10, 52] }] },
    fes: `<fes:Intersects>${vr('geom')}<gml:Envelope srsName="urn:ogc:def:crs:EPSG::4326"><gml:lowerCorner>40 -5</gml:lowerCorner><gml:upperCorner>52 10</gml:upperCorner></gml:Envelope></fes:Intersects>`,
  },
  {
    label: 's_disjoint point',
    text: 'S_DISJOINT(geom, POINT(2.35 48.85))',
    json: { op: 's_disjoint', args: [P('geom'), { type: 'Point', coordinates: [2.35, 48.85] }] },
    fes: `<fes:Disjoint>${vr('geom')}<gml:Point srsName="urn:ogc:def:crs:EPSG::4326"><gml:pos>48.85 2.35</gml:pos></gml:Point></fes:Disjoint>`,
  },
  {
    label: 's_crosses linestring',
    text: 'S_CROSSES(geom, LINESTRING(0 0, 5 5))',
    json: {
      op: 's_crosses',
      args: [
        P('geom'),
        {
          type: 'LineString',
          coordinates: [
            [0, 0],
            [5, 5],
          ],
        },
      ],
    },
    fes: `<fes:Crosses>${vr('geom')}<gml:LineString srsName="${CRS84}"><gml:posList>0 0 5 5</gml:posList></gml:LineString></fes:Crosses>`,
  },
  {
    label: 's_overlaps multipolygon',
    text: 'S_OVERLAPS(geom, MULTIPOLYGON(((0 0, 10 0, 10 10, 0 10, 0 0))))',
    json: { op: 's_overlaps', args: [P('geom'), { type: 'MultiPolygon', coordinates: [ringJson] }] },
    fes: `<fes:Overlaps>${vr('geom')}<gml:MultiSurface srsName="${CRS84}"><gml:surfaceMember>${gmlPoly(CRS84, ring)}</gml:surfaceMember></gml:MultiSurface></fes:Overlaps>`,
  },
  {
    label: 't_after timestamp',
    text: "T_AFTER(ts, TIMESTAMP('2021-01-01T00:00:00Z'))",
    json: { op: 't_after', args: [P('ts'), { timestamp: '2021-01-01T00:00:00Z' }] },
    fes: `<fes:After>${vr('ts')}<gml:TimeInstant><gml:timePosition>2021-01-01T00:00:00Z</gml:timePosition></gml:TimeInstant></fes:After>`,
  },
  {
    label: 't_during interval',
    text: "T_DURING(ts, INTERVAL('2020-01-01T00:00:00Z', '2020-12-31T00:00:00Z'))",
    json: { op: 't_during', args: [P('ts'), { interval: ['2020-01-01T00:00:00Z', '2020-12-31T00:00:00Z'] }] },
    fes: `<fes:During>${vr('ts')}<gml:TimePeriod><gml:beginPosition>2020-01-01T00:00:00Z</gml:beginPosition><gml:endPosition>2020-12-31T00:00:00Z</gml:endPosition></gml:TimePeriod></fes:During>`,
  },
  {
    label: 't_before date',
    text: "T_BEFORE(d, DATE('2020-01-01'))",
    json: { op: 't_before', args: [P('d'), { date: '2020-01-01' }] },
    fes: `<fes:Before>${vr('d')}<gml:TimeInstant><gml:timePosition>2020-01-01</gml:timePosition></gml:TimeInstant></fes:Before>`,
  },
  {
    label: 'dwithin (extension) in metres',
    text: 'DWITHIN(geom, POINT(2 48), 1.5, kilometers)',
    json: { op: 's_dwithin', args: [P('geom'), { type: 'Point', coordinates: [2, 48] }, 1500, 'm'] },
    fes: `<fes:DWithin>${vr('geom')}<gml:Point srsName="EPSG:4326"><gml:pos>2 48</gml:pos></gml:Point><fes:Distance uom="urn:ogc:def:uom:EPSG::9001">1500</fes:Distance></fes:DWithin>`,
  },
  {
    label: 'arithmetic',
    text: 'pop + 1 > 10',
    json: { op: '>', args: [{ op: '+', args: [P('pop'), 1] }, 10] },
    ogc: `<ogc:PropertyIsGreaterThan><ogc:Add>${pn('pop')}${olit('1')}</ogc:Add>${olit('10')}</ogc:PropertyIsGreaterThan>`,
  },
];

describe('equivalence CQL2 text / CQL2 JSON / FES 2.0 / Filter 1.1', () => {
  for (const c of cases) {
    it(c.label, () => {
      const ref = compile(parseCql2Text(c.text));
      expect(ref.sql).not.toBe('');
      expect(compile(parseCql2Json(c.json))).toEqual(ref);
      expect(compile(parseCql2Json(JSON.stringify(c.json)))).toEqual(ref);
      if (c.fes) expect(compile(fes(c.fes))).toEqual(ref);
      if (c.ogc) expect(compile(ogc(c.ogc))).toEqual(ref);
      // on a geographic layer too
      const g = compile(parseCql2Text(c.text), geoTarget);
      if (c.fes) expect(compile(fes(c.fes), geoTarget)).toEqual(g);
    });
  }
  it('values never appear in the SQL text', () => {
    for (const c of cases) {
      const { sql } = compile(parseCql2Text(c.text));
      expect(sql).not.toMatch(/'/);
      expect(sql).not.toMatch(/abc|2020|2021|2\.5|48/);
    }
  });
});

describe('axis order', () => {
  it('URN/URI EPSG:4326 is lat/lon, CRS84 and EPSG:4326 short form are lon/lat', () => {
    const pt = (srs: string, pos: string): unknown =>
      (
        fes(
          `<fes:Intersects>${vr('geom')}<gml:Point srsName="${srs}"><gml:pos>${pos}</gml:pos></gml:Point></fes:Intersects>`,
        ) as SpatialNode
      ).geometry;
    const expected = { epsg: 4326, geometry: { type: 'Point', coordinates: [2, 48] } };
    expect(pt('urn:ogc:def:crs:EPSG::4326', '48 2')).toEqual(expected);
    expect(pt('http://www.opengis.net/def/crs/EPSG/0/4326', '48 2')).toEqual(expected);
    expect(pt('urn:ogc:def:crs:OGC:1.3:CRS84', '2 48')).toEqual(expected);
    expect(pt('EPSG:4326', '2 48')).toEqual(expected);
    expect(pt('urn:ogc:def:crs:EPSG::4258', '48 2')).toEqual({ epsg: 4258, geometry: { type: 'Point', coordinates: [2, 48] } });
    expect(pt('urn:ogc:def:crs:EPSG::2154', '652000 6862000')).toEqual({
      epsg: 2154,
      geometry: { type: 'Point', coordinates: [652000, 6862000] },
    });
  });

  it('CQL2 filter-crs follows the axis order of the CRS', () => {
    const a = parseCql2Text('S_INTERSECTS(geom, POINT(48 2))', { filterCrs: 'http://www.opengis.net/def/crs/EPSG/0/4326' }) as SpatialNode;
    expect(a.geometry).toEqual({ epsg: 4326, geometry: { type: 'Point', coordinates: [2, 48] } });
    const b = parseCql2Text('S_INTERSECTS(geom, BBOX(40, -5, 52, 10))', { filterCrs: 'http://www.opengis.net/def/crs/EPSG/0/4326' });
    expect(compile(b)).toEqual(compile(parseCql2Text('S_INTERSECTS(geom, BBOX(-5, 40, 10, 52))')));
    const c = parseCql2Json(
      { op: 's_intersects', args: [P('geom'), { type: 'Point', coordinates: [650000, 6860000] }] },
      { filterCrs: 'http://www.opengis.net/def/crs/EPSG/0/2154' },
    );
    expect(compile(c)).toEqual({
      sql: 'ST_Intersects("wkb_geometry", ST_SetSRID(ST_GeomFromGeoJSON($1::text), 2154))',
      params: ['{"type":"Point","coordinates":[650000,6860000]}'],
    });
    expectFilterError(() => parseCql2Text('S_INTERSECTS(geom, POINT(1 2))', { filterCrs: 'nonsense' }), /filter-crs/);
  });
});

describe('SQL compiler safety and typing', () => {
  it('rejects unknown properties, including injection attempts', () => {
    const evil = 'name"; DROP TABLE x; --';
    const e1 = expectFilterError(() => compile(parseCql2Text(`"${evil.replace(/"/g, '""')}" = 1`)), /Unknown property/);
    expect(e1.code).toBe('InvalidParameterValue');
    expect(e1.message).toContain(evil);
    expectFilterError(() => compile(parseCql2Json(eq(P(evil), 1))), /Unknown property/);
    expectFilterError(() => compile(fes(`<fes:PropertyIsEqualTo>${vr(evil)}${lit('1')}</fes:PropertyIsEqualTo>`)), /Unknown property/);
    expectFilterError(() => compile(parseCql2Text('nosuch = 1')), /nosuch/);
    expectFilterError(() => compile(parseCql2Text('S_INTERSECTS(name, POINT(1 2))')), /not a geometry/);
    expectFilterError(() => compile(parseCql2Text("T_AFTER(name, DATE('2020-01-01'))")), /not a date/);
  });

  it('keeps values out of the SQL text', () => {
    const nasty = "x'; DROP TABLE parcels; --";
    const { sql, params } = compile(parseCql2Text(`name = '${nasty.replace(/'/g, "''")}'`));
    expect(sql).toBe('"name" = $1::text');
    expect(params).toEqual([nasty]);
    const f = compile(
      fes(`<fes:PropertyIsLike wildCard="*" singleChar="." escapeChar="!">${vr('name')}${lit("*'; DROP--")}</fes:PropertyIsLike>`),
    );
    expect(f.sql).toBe('"name" LIKE $1::text');
  });

  it('rejects literals that cannot be converted to the column type', () => {
    expectFilterError(() => compile(parseCql2Text("id = 'abc'")), /not a valid number/);
    expectFilterError(() => compile(parseCql2Text("area > 'x'")), /not a valid number/);
    expectFilterError(() => compile(parseCql2Text("flag = 'maybe'")), /not a valid boolean/);
    expectFilterError(() => compile(parseCql2Text("d = '2020-02-30'")), /not a valid date/);
    expectFilterError(() => compile(parseCql2Text("ts > 'soon'")), /not a valid date-time/);
    expectFilterError(() => compile(fes(`<fes:PropertyIsEqualTo>${vr('pop')}${lit('1; DROP')}</fes:PropertyIsEqualTo>`)), /not a valid/);
  });

  it('compares integers with fractional literals numerically', () => {
    expect(compile(parseCql2Text('id > 2.5'))).toEqual({ sql: '"id" > $1::numeric', params: [2.5] });
  });

  it('uses the layer SRID and skips ST_Transform when equal', () => {
    const n = parseCql2Text('S_INTERSECTS(geom, POINT(1 2))');
    expect(compile(n, geoTarget).sql).toBe('ST_Intersects("wkb_geometry", ST_SetSRID(ST_GeomFromGeoJSON($1::text), 4326))');
    expect(compile(n).sql).toBe('ST_Intersects("wkb_geometry", ST_Transform(ST_SetSRID(ST_GeomFromGeoJSON($1::text), 4326), 2154))');
    // the geometry column name can also be used directly
    expect(compile(parseCql2Text('S_INTERSECTS(wkb_geometry, POINT(1 2))')).sql).toBe(compile(n).sql);
    expect(compile(parseCql2Text('geom IS NULL')).sql).toBe('"wkb_geometry" IS NULL');
  });

  it('quotes identifiers with embedded double quotes from the target', () => {
    const t: FilterTarget = { ...target, fields: [{ name: 'we"ird', type: 'string', pgType: 'text', nullable: true }] };
    expect(compile(parseCql2Text('"we""ird" = \'a\''), t).sql).toBe('"we""ird" = $1::text');
  });

  it('handles resource ids without primary key and with string keys', () => {
    expectFilterError(() => compile({ kind: 'resourceId', ids: ['1'] }, { ...target, primaryKey: null }), /primary key/);
    const t: FilterTarget = { ...target, primaryKey: 'code' };
    expect(compile({ kind: 'resourceId', ids: ['parcels.A-1', 'B.2'] }, t)).toEqual({
      sql: '"code" IN ($1::text, $2::text)',
      params: ['A-1', 'B.2'],
    });
  });

  it('rejects unsupported distance units and temporal combinations', () => {
    expectFilterError(() => compile(parseCql2Text('DWITHIN(geom, POINT(1 2), 3, furlongs)')), /units/);
    expectFilterError(() => compile(parseCql2Text('DWITHIN(geom, POINT(1 2), 3, degrees)')), /degrees/);
    expect(compile(parseCql2Text('DWITHIN(geom, POINT(1 2), 0.1, degrees)'), geoTarget).sql).toBe(
      'ST_DWithin("wkb_geometry", ST_SetSRID(ST_GeomFromGeoJSON($1::text), 4326), $2::double precision)',
    );
    expectFilterError(() => compile(parseCql2Text("T_DURING(d, DATE('2020-01-01'))")), /not applicable/);
  });
});

describe('malformed FES input', () => {
  it('throws FilterError with a message', () => {
    expectFilterError(() => fes('<fes:PropertyIsFoo/>'), /Unsupported filter operator/);
    expectFilterError(() => fes(`<fes:PropertyIsEqualTo>${vr('id')}</fes:PropertyIsEqualTo>`), /requires 2 expressions/);
    expectFilterError(() => fes(`<fes:PropertyIsLike>${vr('name')}${lit('a')}</fes:PropertyIsLike>`), /wildCard/);
    expectFilterError(() => fes(`<fes:Intersects>${vr('geom')}</fes:Intersects>`), /requires a geometry/);
    expectFilterError(
      () => fes(`<fes:Intersects>${vr('geom')}<gml:Point srsName="EPSG:xyz"><gml:pos>1 2</gml:pos></gml:Point></fes:Intersects>`),
      /srsName/,
    );
    expectFilterError(
      () => fes(`<fes:Intersects>${vr('geom')}<gml:Point><gml:pos>1 abc</gml:pos></gml:Point></fes:Intersects>`),
      /Invalid number/,
    );
    expectFilterError(() => fes(`<fes:Within>${vr('geom')}${gmlPoly(CRS84, '0 0 1 0 1 1 2 2')}</fes:Within>`), /not closed/);
    expectFilterError(() => fes(`<fes:DWithin>${vr('geom')}<gml:Point><gml:pos>1 2</gml:pos></gml:Point></fes:DWithin>`), /Distance/);
    expectFilterError(() => fes(`<fes:After>${vr('ts')}${lit('yesterday')}</fes:After>`), /Invalid time/);
    expectFilterError(() => parseFesFilterString('<fes:Filter', fes20), /well-formed/);
    expectFilterError(() => fes(''), /empty/);
    expectFilterError(
      () =>
        fes(`<fes:PropertyIsEqualTo>${vr('id')}${lit('1')}</fes:PropertyIsEqualTo><fes:PropertyIsNull>${vr('id')}</fes:PropertyIsNull>`),
      /exactly one/,
    );
  });
});
