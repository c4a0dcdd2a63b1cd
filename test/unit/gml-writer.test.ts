/**
 * The GML writer's work on each row (src/features/writers/gml.ts), without a database: the member
 * written around ST_AsGML's geometry and xmlforest's attributes, the feature id made an NCName, the
 * one id PostGIS repeats on every member geometry made unique, and the CRS named as the front door
 * chose — the exact text, for the rows the fast paths take and for those they do not.
 */
import { describe, expect, it } from 'vitest';
import { GmlWriter } from '../../src/features/writers/gml.js';
import type { FeatureQuery } from '../../src/features/query.js';
import type { Layer } from '../../src/registry/types.js';

const layer = { name: 'parcels', geometryColumn: 'geom', srid: 2154, primaryKey: 'id', fields: [] } as unknown as Layer;
const writer = (version: '3.2' | '3.1.1' = '3.2') => new GmlWriter({ version, namespaceUri: 'https://x.example/ns', prefix: 'geodata' });

/** ST_AsGML(3, geom, 2, 5, 'gml', id) of a multipolygon of `n` polygons: the one id on every element. */
function asGml(id: string, n: number, srs = 'urn:ogc:def:crs:EPSG::2154'): string {
  const polygon = `<gml:surfaceMember><gml:Polygon gml:id="${id}"><gml:exterior><gml:LinearRing><gml:posList srsDimension="2">1 2 3 4 5 6 1 2</gml:posList></gml:LinearRing></gml:exterior></gml:Polygon></gml:surfaceMember>`;
  return `<gml:MultiSurface srsName="${srs}" gml:id="${id}">${polygon.repeat(n)}</gml:MultiSurface>`;
}

describe('GML writer, one feature', () => {
  const attrs = '<geodata:nom>a &amp; b</geodata:nom>';

  it('a digit key: ids fid.g, fid.g1, fid.g2… on the geometries, the CRS name PostGIS wrote kept', () => {
    const q: FeatureQuery = { layer, gmlSrsName: 'urn:ogc:def:crs:EPSG::2154' };
    const out = writer().feature({ fid: '18', g: asGml('parcels.18.geom', 3), a: attrs }, q);
    const member = (id: string) =>
      `<gml:surfaceMember><gml:Polygon gml:id="${id}"><gml:exterior><gml:LinearRing><gml:posList srsDimension="2">1 2 3 4 5 6 1 2</gml:posList></gml:LinearRing></gml:exterior></gml:Polygon></gml:surfaceMember>`;
    expect(out).toBe(
      '<wfs:member><geodata:parcels gml:id="parcels.18"><geodata:nom>a &amp; b</geodata:nom><geodata:geom>' +
        '<gml:MultiSurface srsName="urn:ogc:def:crs:EPSG::2154" gml:id="parcels.18.g">' +
        member('parcels.18.g1') +
        member('parcels.18.g2') +
        member('parcels.18.g3') +
        '</gml:MultiSurface></geodata:geom></geodata:parcels></wfs:member>\n',
    );
  });

  it('another CRS name replaces the one PostGIS wrote, escaped; a text key is made an NCName', () => {
    const q: FeatureQuery = { layer, gmlSrsName: 'http://www.opengis.net/def/crs/EPSG/0/2154?a&b' };
    const out = writer().feature({ fid: '2 b/é', g: asGml('x', 1), a: null }, q);
    expect(out).toContain('srsName="http://www.opengis.net/def/crs/EPSG/0/2154?a&amp;b"');
    expect(out).not.toContain('urn:ogc:def:crs:EPSG::2154');
    expect(out).toContain('<geodata:parcels gml:id="parcels.2_b_é">');
    expect([...out.matchAll(/gml:id="([^"]+)"/g)].map((m) => m[1])).toEqual(['parcels.2_b_é', 'parcels.2_b_é.g', 'parcels.2_b_é.g1']);
    // a layer whose name does not start an NCName
    const odd = { ...layer, name: '1 roads' } as Layer;
    expect(writer().feature({ fid: '7', g: null, a: null }, { layer: odd })).toBe(
      '<wfs:member><geodata:_x0031__x0020_roads gml:id="_1_roads.7"></geodata:_x0031__x0020_roads></wfs:member>\n',
    );
  });

  it('GML 3.1.1 keeps PostGIS ids untouched (no gml:id there) and wraps in gml:featureMember', () => {
    const g = '<gml:Point srsName="urn:ogc:def:crs:EPSG::2154"><gml:pos srsDimension="2">1 2</gml:pos></gml:Point>';
    const out = writer('3.1.1').feature({ fid: '5', g, a: null }, { layer, gmlSrsName: 'EPSG:2154' });
    expect(out).toBe(
      '<gml:featureMember><geodata:parcels gml:id="parcels.5"><geodata:geom><gml:Point srsName="EPSG:2154"><gml:pos srsDimension="2">1 2</gml:pos></gml:Point></geodata:geom></geodata:parcels></gml:featureMember>\n',
    );
  });

  it('the constant parts are per query: two layers in one response keep their own names', () => {
    const w = writer();
    const other = { ...layer, name: 'pois', geometryColumn: 'the_geom' } as Layer;
    const a = w.feature({ fid: '1', g: null, a: null }, { layer });
    const b = w.feature({ fid: '1', g: '<gml:Point gml:id="x"/>', a: null }, { layer: other });
    expect(a).toBe('<wfs:member><geodata:parcels gml:id="parcels.1"></geodata:parcels></wfs:member>\n');
    expect(b).toBe(
      '<wfs:member><geodata:pois gml:id="pois.1"><geodata:the_geom><gml:Point gml:id="pois.1.g"/></geodata:the_geom></geodata:pois></wfs:member>\n',
    );
  });
});
