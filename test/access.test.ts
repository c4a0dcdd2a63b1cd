/**
 * One notion of "the layers this caller may read" (src/security/access.ts) on every path:
 * a matrix of front doors × {anonymous, authenticated without the role, with the role, admin}.
 * A caller who may not read a layer is answered exactly as for a layer that does not exist;
 * WMS layer groups show the members the caller may read; /metrics names restricted layers only
 * to the metrics token and admins.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFile, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { hashSecret } from '../src/security/auth.js';
import { makeTestApp, type TestApp, basic, testUsers } from './helpers/app.js';
import { canValidate, skipReason, validateXml } from './helpers/xml-validate.js';

type Who = 'anonymous' | 'visitor' | 'agent' | 'root';
const WHO: Who[] = ['anonymous', 'visitor', 'agent', 'root'];
const HEADERS: Record<Who, Record<string, string>> = {
  anonymous: {},
  visitor: { authorization: basic('visitor', 'pw-visitor') },
  agent: { authorization: basic('agent', 'pw-agent') },
  root: { authorization: basic('root', 'pw-root') },
};
/** Who may read the restricted layer 'parcels' (role 'agents'; admins read everything). */
const MAY_READ: Record<Who, boolean> = { anonymous: false, visitor: false, agent: true, root: true };

const UNKNOWN = 'zz_nosuch';

describe('the layers a caller may read, on every path', () => {
  let t: TestApp;
  let parcelId: string;
  /** A 400 m box around one parcel, in the layers' CRS (Lambert-93, x/y). */
  let box: string;
  let srid: number;
  /** A WebMercatorQuad tile at zoom 14 over that parcel. */
  let tile: { z: number; x: number; y: number };

  beforeAll(async () => {
    t = await makeTestApp({
      security: {
        users: testUsers(),
      },
      ops: { metricsToken: 'metrics-secret' },
      layers: [
        { table: 'public.communes' },
        { table: 'public.parcels', access: { public: false, roles: ['agents'] } },
        { table: 'public.roads' },
      ],
      layerGroups: [
        { name: 'mixed', title: 'Communes et cadastre', layers: ['communes', 'parcels'] },
        { name: 'secret_only', title: 'Cadastre seul', layers: ['parcels'] },
      ],
    });
    const r = await t.ctx.pool.query<{
      id: string;
      x0: number;
      y0: number;
      x1: number;
      y1: number;
      lon: number;
      lat: number;
      srid: number;
    }>(
      `SELECT id::text, ST_XMin(e) x0, ST_YMin(e) y0, ST_XMax(e) x1, ST_YMax(e) y1, ST_SRID(geom) srid,
              ST_X(ST_Transform(ST_PointOnSurface(geom), 4326)) lon, ST_Y(ST_Transform(ST_PointOnSurface(geom), 4326)) lat
         FROM (SELECT id, geom, ST_Expand(ST_Centroid(geom), 200) e FROM public.parcels ORDER BY id LIMIT 1) p`,
    );
    const p = r.rows[0];
    parcelId = p.id;
    srid = p.srid;
    box = [p.x0, p.y0, p.x1, p.y1].join(',');
    const z = 14;
    const n = 2 ** z;
    const latR = (p.lat * Math.PI) / 180;
    tile = {
      z,
      x: Math.floor(((p.lon + 180) / 360) * n),
      y: Math.floor(((1 - Math.log(Math.tan(latR) + 1 / Math.cos(latR)) / Math.PI) / 2) * n),
    };
  });
  afterAll(async () => t?.close());

  const get = (url: string, who: Who) => t.app.inject({ url, headers: HEADERS[who] });

  /** The request for 'parcels' and the same request for a name that does not exist answer alike. */
  async function expectAnsweredAsUnknown(url: (layer: string) => string, who: Who): Promise<void> {
    const restricted = await get(url('parcels'), who);
    const unknown = await get(url(UNKNOWN), who);
    expect(restricted.statusCode, `${who}: ${url('parcels')}`).toBe(unknown.statusCode);
    expect(restricted.statusCode).toBeGreaterThanOrEqual(400);
    expect(restricted.statusCode).not.toBe(401);
    expect(restricted.statusCode).not.toBe(403);
    expect(restricted.headers['www-authenticate']).toBeUndefined();
    expect(restricted.headers['content-type']).toBe(unknown.headers['content-type']);
    expect(restricted.body.replaceAll('parcels', UNKNOWN)).toBe(unknown.body);
  }

  /** `url` names parcels: the caller with the right gets `ok`; any other gets the answer for an unknown layer. */
  async function matrix(url: (layer: string) => string, ok: (r: Awaited<ReturnType<typeof get>>) => void): Promise<void> {
    for (const who of WHO) {
      if (MAY_READ[who]) {
        const r = await get(url('parcels'), who);
        expect(r.statusCode, `${who}: ${url('parcels')}: ${r.body.slice(0, 300)}`).toBe(200);
        ok(r);
      } else {
        await expectAnsweredAsUnknown(url, who);
      }
    }
  }

  const wms = (q: string) => `/wms?SERVICE=WMS&VERSION=1.1.1&${q}`;
  const mapQuery = (layers: string, request = 'GetMap') =>
    `REQUEST=${request}&LAYERS=${layers}&STYLES=&SRS=EPSG:${srid}&BBOX=${box}&WIDTH=64&HEIGHT=64&FORMAT=image/png`;

  it('WMS GetCapabilities: 200 for everyone, the restricted layer listed only to those who may read it', async () => {
    for (const who of WHO) {
      for (const v of ['1.3.0', '1.1.1']) {
        const r = await get(`/wms?SERVICE=WMS&REQUEST=GetCapabilities&VERSION=${v}`, who);
        expect(r.statusCode, `${who} ${v}`).toBe(200);
        expect(r.body).toContain('<Name>communes</Name>');
        expect(r.body.includes('<Name>parcels</Name>'), `${who} ${v}`).toBe(MAY_READ[who]);
        // the group is there for everyone, with the members each caller may see
        expect(r.body).toContain('<Name>mixed</Name>');
        expect(r.body.includes('Layer group: communes, parcels'), who).toBe(MAY_READ[who]);
        if (!MAY_READ[who]) expect(r.body).toContain('Layer group: communes<');
        // a group whose members are all restricted does not exist for who may not read them
        expect(r.body.includes('<Name>secret_only</Name>'), who).toBe(MAY_READ[who]);
        if (!MAY_READ[who]) expect(r.body).not.toMatch(/parcels/i);
        if (canValidate && who === 'anonymous') expect(validateXml([r.body])[0].valid).toBe(true);
      }
    }
    if (!canValidate) console.warn(skipReason);
  });

  it('WMS GetMap, GetFeatureInfo and GetLegendGraphic', async () => {
    await matrix(
      (l) => wms(mapQuery(l)),
      (r) => expect(r.headers['content-type']).toBe('image/png'),
    );
    await matrix(
      (l) => wms(`${mapQuery(l, 'GetFeatureInfo')}&QUERY_LAYERS=${l}&X=32&Y=32&INFO_FORMAT=application/json`),
      (r) => expect(r.json().type).toBe('FeatureCollection'),
    );
    await matrix(
      (l) => wms(`REQUEST=GetLegendGraphic&LAYER=${l}&FORMAT=image/png`),
      (r) => expect(r.headers['content-type']).toBe('image/png'),
    );
    // the unknown-layer answer is LayerNotDefined
    const anon = await get(wms(mapQuery('parcels')), 'anonymous');
    expect(anon.statusCode).toBe(400);
    expect(anon.body).toContain('LayerNotDefined');
  });

  it('WMS GetMap of a group draws only the members the caller may read', async () => {
    const communesOnly = await get(wms(mapQuery('communes')), 'anonymous');
    expect(communesOnly.statusCode).toBe(200);
    const both = await get(wms(mapQuery('communes,parcels')), 'agent');
    expect(both.statusCode).toBe(200);
    expect(Buffer.compare(both.rawPayload, communesOnly.rawPayload)).not.toBe(0); // parcels are visible in this box
    for (const who of WHO) {
      const g = await get(wms(mapQuery('mixed')), who);
      expect(g.statusCode, who).toBe(200);
      expect(g.headers['content-type']).toBe('image/png');
      const same = MAY_READ[who] ? both : communesOnly;
      expect(Buffer.compare(g.rawPayload, same.rawPayload), who).toBe(0);
    }
    // a group with no member the caller may read is an unknown layer to it
    for (const who of WHO) {
      const r = await get(wms(mapQuery('secret_only')), who);
      if (MAY_READ[who]) expect(r.headers['content-type'], who).toBe('image/png');
      else {
        const u = await get(wms(mapQuery(UNKNOWN)), who);
        expect(r.statusCode, who).toBe(u.statusCode);
        expect(r.body.replaceAll('secret_only', UNKNOWN)).toBe(u.body);
      }
    }
    // GetLegendGraphic and GetFeatureInfo of the group follow the same rule
    for (const who of WHO) {
      const info = await get(wms(`${mapQuery('mixed', 'GetFeatureInfo')}&QUERY_LAYERS=mixed&X=32&Y=32&INFO_FORMAT=application/json`), who);
      expect(info.statusCode, who).toBe(200);
      const layersHit = new Set((info.json().features as { id?: string }[]).map((f) => String(f.id).split('.')[0]));
      if (!MAY_READ[who]) expect(layersHit.has('parcels')).toBe(false);
      else expect(layersHit.has('parcels')).toBe(true);
      const legend = await get(wms('REQUEST=GetLegendGraphic&LAYER=mixed&FORMAT=image/png'), who);
      expect(legend.statusCode, who).toBe(200);
    }
  });

  it('WFS: capabilities, GetFeature by type, by RESOURCEID, GetFeatureById, POST Query, DescribeFeatureType', async () => {
    for (const v of ['2.0.0', '1.1.0']) {
      for (const who of WHO) {
        const caps = await get(`/wfs?SERVICE=WFS&REQUEST=GetCapabilities&VERSION=${v}`, who);
        expect(caps.statusCode).toBe(200);
        expect(caps.body).toContain('geodata:communes');
        expect(caps.body.includes('geodata:parcels'), `${who} ${v}`).toBe(MAY_READ[who]);
      }
    }
    const wfs = (q: string) => `/wfs?SERVICE=WFS&VERSION=2.0.0&${q}`;
    const fc = (r: { json: () => { features: unknown[] } }) => expect(r.json().features.length).toBeGreaterThan(0);
    await matrix((l) => wfs(`REQUEST=GetFeature&TYPENAMES=${l}&COUNT=1&OUTPUTFORMAT=application/json`), fc);
    await matrix((l) => wfs(`REQUEST=GetFeature&RESOURCEID=${l}.${parcelId}&OUTPUTFORMAT=application/json`), fc);
    await matrix(
      (l) =>
        wfs(
          `REQUEST=GetFeature&STOREDQUERY_ID=urn:ogc:def:query:OGC-WFS::GetFeatureById&ID=${l}.${parcelId}&OUTPUTFORMAT=application/json`,
        ),
      (r) => expect(String(r.json().id)).toBe(parcelId),
    );
    await matrix(
      (l) => wfs(`REQUEST=DescribeFeatureType&TYPENAMES=${l}`),
      (r) => expect(r.body).toContain('name="parcels"'),
    );
    await matrix(
      (l) => wfs(`REQUEST=GetPropertyValue&TYPENAMES=${l}&VALUEREFERENCE=idu&COUNT=1`),
      (r) => expect(r.body).toContain('ValueCollection'),
    );
    const post = (l: string) =>
      `<wfs:GetFeature xmlns:wfs="http://www.opengis.net/wfs/2.0" xmlns:fes="http://www.opengis.net/fes/2.0" service="WFS" version="2.0.0" count="1" outputFormat="application/json"><wfs:Query typeNames="${l}"/></wfs:GetFeature>`;
    for (const who of WHO) {
      const send = (l: string) =>
        t.app.inject({ method: 'POST', url: '/wfs', headers: { ...HEADERS[who], 'content-type': 'text/xml' }, payload: post(l) });
      const r = await send('parcels');
      if (MAY_READ[who]) {
        expect(r.statusCode, who).toBe(200);
        expect(r.json().features).toHaveLength(1);
      } else {
        const u = await send(UNKNOWN);
        expect(r.statusCode, who).toBe(u.statusCode);
        expect(r.body.replaceAll('parcels', UNKNOWN)).toBe(u.body);
      }
    }
  });

  it('WMTS, XYZ and OGC API tiles', async () => {
    const { z, x, y } = tile;
    const png = (r: { headers: Record<string, unknown> }) => expect(r.headers['content-type']).toBe('image/png');
    for (const who of WHO) {
      const caps = await get('/wmts?SERVICE=WMTS&REQUEST=GetCapabilities', who);
      expect(caps.statusCode).toBe(200);
      expect(caps.body.includes('<ows:Identifier>parcels</ows:Identifier>'), who).toBe(MAY_READ[who]);
      const rest = await get('/wmts/1.0.0/WMTSCapabilities.xml', who);
      expect(rest.body.includes('<ows:Identifier>parcels</ows:Identifier>'), who).toBe(MAY_READ[who]);
    }
    await matrix(
      (l) =>
        `/wmts?SERVICE=WMTS&VERSION=1.0.0&REQUEST=GetTile&LAYER=${l}&STYLE=default&TILEMATRIXSET=WebMercatorQuad&TILEMATRIX=${z}&TILEROW=${y}&TILECOL=${x}&FORMAT=image/png`,
      png,
    );
    await matrix((l) => `/wmts/1.0.0/${l}/default/WebMercatorQuad/${z}/${y}/${x}.png`, png);
    await matrix(
      (l) => `/tiles/${l}/${z}/${x}/${y}.mvt`,
      (r) => expect(r.headers['content-type']).toContain('vnd.mapbox-vector-tile'),
    );
    await matrix(
      (l) => `/collections/${l}/tiles/WebMercatorQuad/${z}/${y}/${x}`,
      (r) => expect(r.headers['content-type']).toContain('vnd.mapbox-vector-tile'),
    );
    await matrix(
      (l) => `/collections/${l}/tiles`,
      (r) => expect(r.json().tilesets.length).toBeGreaterThan(0),
    );
  });

  it('OGC API Features: collections, items, one item, queryables', async () => {
    for (const who of WHO) {
      const cols = await get('/collections?f=json', who);
      expect(cols.statusCode).toBe(200);
      const ids = cols.json().collections.map((c: { id: string }) => c.id);
      expect(ids).toContain('communes');
      expect(ids.includes('parcels'), who).toBe(MAY_READ[who]);
      // the answer depends on the credentials: shared caches must not serve one caller's to another
      expect(String(cols.headers.vary)).toMatch(/Authorization/);
      expect(String(cols.headers.vary)).toMatch(/X-API-Key/);
      if (who !== 'anonymous') expect(cols.headers['cache-control'], who).toBe('private');
    }
    await matrix(
      (l) => `/collections/${l}?f=json`,
      (r) => expect(r.json().id).toBe('parcels'),
    );
    await matrix(
      (l) => `/collections/${l}/items?f=json&limit=2`,
      (r) => expect(r.json().features).toHaveLength(2),
    );
    await matrix(
      (l) => `/collections/${l}/items/${parcelId}?f=json`,
      (r) => expect(String(r.json().id)).toBe(parcelId),
    );
    await matrix(
      (l) => `/collections/${l}/queryables?f=json`,
      (r) => expect(r.json().properties).toHaveProperty('idu'),
    );
  });

  it('downloads, the landing page, usage statistics and the catalogue', async () => {
    await matrix(
      (l) => `/downloads/${l}.csv?filter=${encodeURIComponent(`id=${parcelId}`)}`,
      (r) => expect(r.body.split('\n').filter(Boolean)).toHaveLength(2),
    );
    // a restricted layer as a clip reference is an unknown layer too
    for (const who of WHO) {
      const clip = (l: string) => get(`/downloads/communes.csv?clip=${l}:${parcelId}`, who);
      const r = await clip('parcels');
      if (MAY_READ[who]) expect(r.statusCode, who).toBe(200);
      else {
        const u = await clip(UNKNOWN);
        expect(r.statusCode).toBe(u.statusCode);
        expect(r.body.replaceAll('parcels', UNKNOWN)).toBe(u.body);
      }
    }
    for (const who of WHO) {
      const list = await get('/downloads', who);
      expect(
        list.json().datasets.some((d: { name: string }) => d.name === 'parcels'),
        who,
      ).toBe(MAY_READ[who]);
      const landing = await get('/?f=json', who);
      expect(
        landing.json().layers.some((l: { name: string }) => l.name === 'parcels'),
        who,
      ).toBe(MAY_READ[who]);
    }
    // the usage statistics name the layer only to who may read it
    await t.ctx.runtime.usage.flush();
    for (const who of WHO) {
      const u = await get('/usage?f=json', who);
      expect(u.statusCode).toBe(200);
      expect(
        u.json().rows.some((r: { layer: string }) => r.layer === 'parcels'),
        who,
      ).toBe(MAY_READ[who]);
    }
    // catalogue records are derived from public layers only: nobody finds the restricted one there
    for (const who of WHO) {
      const cat = await get('/catalog?f=json&limit=100', who);
      expect(cat.statusCode).toBe(200);
      expect(cat.body).toMatch(/Communes/);
      expect(cat.body).not.toMatch(/"parcels"|Parcels/);
    }
  });

  it('/metrics: token or admin see every layer; loopback sees restricted layers folded; others are refused', async () => {
    await get(`/collections/parcels/items?f=json&limit=1`, 'agent');
    const token = await t.app.inject({ url: '/metrics', headers: { authorization: 'Bearer metrics-secret' } });
    expect(token.statusCode).toBe(200);
    expect(token.body).toMatch(/geodata_requests_total\{[^}]*layer="parcels"/);
    const admin = await get('/metrics', 'root');
    expect(admin.statusCode).toBe(200);
    expect(admin.body).toMatch(/layer="parcels"/);
    // a token is configured, so the loopback is not enough by itself here
    expect((await get('/metrics', 'anonymous')).statusCode).toBe(401);
    expect((await get('/metrics', 'agent')).statusCode).toBe(401);
  });
});

describe('/metrics with the default configuration (no token)', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await makeTestApp({
      security: { users: [{ name: 'agent', passwordHash: hashSecret('pw-agent'), roles: ['agents'] }] },
      layers: [{ table: 'public.communes' }, { table: 'public.parcels', access: { public: false, roles: ['agents'] } }],
    });
  });
  afterAll(async () => t?.close());

  it('answers loopback callers with restricted layers folded, refuses other addresses and proxied requests', async () => {
    const agent = { authorization: basic('agent', 'pw-agent') };
    for (let i = 0; i < 3; i++) await t.app.inject({ url: '/collections/parcels/items?f=json&limit=1', headers: agent });
    await t.app.inject({ url: '/collections/communes/items?f=json&limit=1' });
    const local = await t.app.inject({ url: '/metrics', remoteAddress: '127.0.0.1' });
    expect(local.statusCode).toBe(200);
    expect(local.body).toMatch(/layer="communes"/);
    expect(local.body).not.toMatch(/parcels/);
    // the three requests are still counted, under layer="restricted", in one series
    const m = local.body.match(/^geodata_requests_total\{service="OGCAPI",operation="Items",layer="restricted",status="200"\} (\d+)$/m);
    expect(
      m,
      local.body
        .split('\n')
        .filter((l) => l.includes('restricted'))
        .join('\n'),
    ).not.toBeNull();
    expect(Number(m![1])).toBe(3);
    // who may read the layer sees its name, from the loopback
    const localAgent = await t.app.inject({ url: '/metrics', remoteAddress: '127.0.0.1', headers: agent });
    expect(localAgent.body).toMatch(/layer="parcels"/);
    expect((await t.app.inject({ url: '/metrics', remoteAddress: '203.0.113.7' })).statusCode).toBe(401);
    // a proxy on the same host forwards the public: its requests are not the loopback's
    const proxied = await t.app.inject({ url: '/metrics', remoteAddress: '127.0.0.1', headers: { 'x-forwarded-for': '203.0.113.7' } });
    expect(proxied.statusCode).toBe(401);
  });

  it('GET /login challenges anonymous callers and sends authenticated ones on', async () => {
    const anon = await t.app.inject({ url: '/login?next=/collections' });
    expect(anon.statusCode).toBe(401);
    expect(anon.headers['www-authenticate']).toMatch(/^Basic realm="geodata"/);
    const ok = await t.app.inject({ url: '/login?next=/collections/parcels', headers: { authorization: basic('agent', 'pw-agent') } });
    expect(ok.statusCode).toBe(303);
    expect(ok.headers.location).toBe('/collections/parcels');
    // never an open redirect
    for (const next of ['//evil.example/x', 'https://evil.example/', '/\\evil.example']) {
      const r = await t.app.inject({
        url: `/login?next=${encodeURIComponent(next)}`,
        headers: { authorization: basic('agent', 'pw-agent') },
      });
      expect(r.headers.location).toBe('/');
    }
  });
});

const hasOwslib =
  existsSync('/usr/bin/python3') &&
  spawnSync('/usr/bin/python3', ['-c', 'import owslib.wms, owslib.wfs'], { encoding: 'utf8' }).status === 0;

describe('OWSLib with and without credentials (Basic sent up front, as QGIS does)', () => {
  it.skipIf(!hasOwslib)('lists and draws the restricted layer and the whole group with credentials only', async () => {
    const t = await makeTestApp({
      security: { users: [{ name: 'agent', passwordHash: hashSecret('pw-agent'), roles: ['agents'] }] },
      layers: [{ table: 'public.communes' }, { table: 'public.parcels', access: { public: false, roles: ['agents'] } }],
      layerGroups: [{ name: 'mixed', layers: ['communes', 'parcels'] }],
    });
    try {
      const address = (await t.app.listen({ port: 0, host: '127.0.0.1' })).replace('localhost', '127.0.0.1');
      const script = `
import json, sys
from owslib.wms import WebMapService
from owslib.wfs import WebFeatureService
url, user, pw = sys.argv[1], sys.argv[2] or None, sys.argv[3] or None
out = {}
wms = WebMapService(url + '/wms', version='1.3.0', username=user, password=pw, timeout=60)
out['wms'] = sorted(wms.contents)
img = wms.getmap(layers=['mixed'], styles=[''], srs='EPSG:2154', bbox=wms['mixed'].boundingBox[:4] if wms['mixed'].boundingBox else (700000, 6600000, 1100000, 7000000), size=(64, 64), format='image/png')
out['map'] = img.read()[:8].hex()
wfs = WebFeatureService(url + '/wfs', version='2.0.0', username=user, password=pw, timeout=60)
out['wfs'] = sorted(wfs.contents)
if any('parcels' in n for n in wfs.contents):
    r = wfs.getfeature(typename=['geodata:parcels'], maxfeatures=2, outputFormat='application/json')
    out['features'] = len(json.loads(r.read())['features'])
print(json.dumps(out))
`;
      const run = async (user: string, pw: string) => {
        const r = await promisify(execFile)('/usr/bin/python3', ['-c', script, address, user, pw], { encoding: 'utf8', timeout: 120_000 });
        return JSON.parse(r.stdout.trim().split('\n').pop()!);
      };
      const anon = await run('', '');
      expect(anon.wms).toContain('communes');
      expect(anon.wms).toContain('mixed');
      expect(anon.wms).not.toContain('parcels');
      expect(anon.map).toBe('89504e470d0a1a0a'); // a PNG: the group drawn with its public member
      expect(anon.wfs.some((n: string) => n.includes('parcels'))).toBe(false);
      const agent = await run('agent', 'pw-agent');
      expect(agent.wms).toContain('parcels');
      expect(agent.map).toBe('89504e470d0a1a0a');
      expect(agent.wfs).toContain('geodata:parcels');
      expect(agent.features).toBe(2);
    } finally {
      await t.close();
    }
  });
  it.skipIf(hasOwslib)('OWSLib check skipped: python3-owslib is not installed (apt-get install python3-owslib)', () => {
    console.warn('OWSLib check skipped: python3-owslib is not installed');
  });
});
