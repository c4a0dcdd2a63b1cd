/**
 * Lenient in what we accept when the meaning is unambiguous, strict in what we write: attribute
 * names in any case in WFS POST requests (OWSLib 0.27 writes 'typenames' and 'outputformat'),
 * typeName for typeNames, KVP names in any case, and `geometry` for the primary geometry in CQL2.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { XMLParser } from 'fast-xml-parser';
import { makeTestApp, type TestApp } from './helpers/app.js';

let t: TestApp;
beforeAll(async () => {
  t = await makeTestApp({ layers: [{ table: 'public.pois' }, { table: 'public.communes' }] });
});
afterAll(async () => {
  await t?.close();
});

const xml = new XMLParser({ ignoreAttributes: false, removeNSPrefix: true });
const post = (body: string) => t.app.inject({ method: 'POST', url: '/wfs', headers: { 'content-type': 'application/xml' }, payload: body });

function ids(body: string): string[] {
  const fc = xml.parse(body).FeatureCollection;
  return ([fc.member ?? fc.featureMember ?? []].flat() as Array<{ pois: { '@_id': string } }>).map((m) => m.pois['@_id']);
}

describe('WFS POST: attribute names in any case', () => {
  it('Query typenames / TypeNames / typeName, outputformat in lower case: the same answer', async () => {
    const q = (attrs: string, root = '') =>
      `<wfs:GetFeature xmlns:wfs="http://www.opengis.net/wfs/2.0" xmlns:fes="http://www.opengis.net/fes/2.0" service="WFS" version="2.0.0" count="3" ${root}>` +
      `<wfs:Query ${attrs}><fes:Filter><fes:ResourceId rid="pois.11"/><fes:ResourceId rid="pois.12"/></fes:Filter></wfs:Query></wfs:GetFeature>`;
    for (const attrs of ['typeNames="geodata:pois"', 'typenames="geodata:pois"', 'TYPENAMES="pois"', 'typeName="pois"']) {
      const r = await post(q(attrs));
      expect(r.statusCode, `${attrs}: ${r.body.slice(0, 300)}`).toBe(200);
      expect(ids(r.body).sort()).toEqual(['pois.11', 'pois.12']);
    }
    const j = await post(q('typenames="pois"', 'outputformat="application/json"'));
    expect(j.statusCode).toBe(200);
    expect(j.json().features.map((f: { id: number }) => f.id)).toEqual([11, 12]);
    // strict in what is written: the response uses the schema's own names
    const r = await post(q('typenames="pois" srsname="urn:ogc:def:crs:EPSG::4326"'));
    expect(r.body).toContain('srsName="urn:ogc:def:crs:EPSG::4326"');
  });

  it('two attributes differing only in case are ambiguous: the request is refused, not guessed', async () => {
    const r = await post(
      `<wfs:GetFeature xmlns:wfs="http://www.opengis.net/wfs/2.0" service="WFS" version="2.0.0"><wfs:Query typenames="pois" TYPENAMES="communes"/></wfs:GetFeature>`,
    );
    expect(r.statusCode).toBe(400);
    expect(r.body).toMatch(/typeNames/);
  });

  it('KVP names in any case, TYPENAME for TYPENAMES, in both versions', async () => {
    for (const qs of [
      'service=wfs&version=2.0.0&request=getfeature&typename=pois&resourceid=pois.11',
      'Service=WFS&Version=2.0.0&Request=GetFeature&TypeNames=pois&ResourceId=pois.11',
      'SERVICE=WFS&VERSION=1.1.0&REQUEST=GetFeature&TYPENAMES=pois&FEATUREID=pois.11',
    ]) {
      const r = await t.app.inject({ method: 'GET', url: `/wfs?${qs}` });
      expect(r.statusCode, `${qs}: ${r.body.slice(0, 200)}`).toBe(200);
      expect(ids(r.body)).toEqual(['pois.11']);
    }
  });
});

describe('OGC API – Features Part 3: `geometry` names the primary geometry', () => {
  it('S_INTERSECTS(geometry, …) equals S_INTERSECTS(geom, …), in CQL2 text and JSON', async () => {
    const bbox = 'BBOX(6.0,48.5,6.4,48.8)';
    const get = async (filter: string, lang = 'cql2-text') => {
      const r = await t.app.inject({
        method: 'GET',
        url: `/collections/pois/items?limit=1000&filter-lang=${lang}&filter=${encodeURIComponent(filter)}`,
      });
      expect(r.statusCode, r.body.slice(0, 300)).toBe(200);
      return r.json().features.map((f: { id: number }) => f.id);
    };
    const byColumn = await get(`S_INTERSECTS(geom, ${bbox})`);
    expect(byColumn.length).toBeGreaterThan(0);
    expect(await get(`S_INTERSECTS(geometry, ${bbox})`)).toEqual(byColumn);
    expect(await get(`S_INTERSECTS(GEOMETRY, ${bbox})`)).toEqual(byColumn);
    const json = JSON.stringify({ op: 's_intersects', args: [{ property: 'geometry' }, { bbox: [6.0, 48.5, 6.4, 48.8] }] });
    expect(await get(json, 'cql2-json')).toEqual(byColumn);
    // and in a WFS filter too
    const r = await t.app.inject({
      method: 'GET',
      url: `/wfs?SERVICE=WFS&VERSION=2.0.0&REQUEST=GetFeature&TYPENAMES=pois&COUNT=1000&OUTPUTFORMAT=application/json&FILTER=${encodeURIComponent(
        '<fes:Filter xmlns:fes="http://www.opengis.net/fes/2.0" xmlns:gml="http://www.opengis.net/gml/3.2"><fes:BBOX><fes:ValueReference>geometry</fes:ValueReference><gml:Envelope srsName="http://www.opengis.net/def/crs/OGC/1.3/CRS84"><gml:lowerCorner>6.0 48.5</gml:lowerCorner><gml:upperCorner>6.4 48.8</gml:upperCorner></gml:Envelope></fes:BBOX></fes:Filter>',
      )}`,
    });
    expect(r.statusCode, r.body.slice(0, 300)).toBe(200);
    expect(r.json().features.map((f: { id: number }) => f.id)).toEqual(byColumn);
  });
});
