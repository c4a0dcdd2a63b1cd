// Pure parts of the benchmark harness (bench/lib/core.mjs): no timing is asserted here.
import { describe, expect, it } from 'vitest';
import sharp from 'sharp';
// @ts-expect-error plain ESM module without type declarations
import * as core from '../bench/lib/core.mjs';

const { requestList, percentile, summarise, checkResponse, prng, REGION, lonLatToTile, distinctTiles, wmsGetMapQuery } = core;

describe('bench request lists', () => {
  it('turn a WMS entry into one GetMap query string that reads back to the entry', () => {
    const [r] = requestList('wms', { scale: 'town', crs: 'EPSG:3857', layers: ['parcels', 'roads'] }, 1, 5);
    const q = new URLSearchParams(wmsGetMapQuery(r));
    expect(Object.fromEntries(q)).toEqual({
      SERVICE: 'WMS',
      VERSION: '1.3.0',
      REQUEST: 'GetMap',
      LAYERS: 'parcels,roads',
      STYLES: '',
      CRS: 'EPSG:3857',
      BBOX: r.bbox.join(','),
      WIDTH: '256',
      HEIGHT: '256',
      FORMAT: 'image/png',
      TRANSPARENT: 'TRUE',
    });
  });

  it('are deterministic for a seed and differ between seeds', () => {
    const a = requestList('wms', { scale: 'town', crs: 'EPSG:3857', layers: ['parcels'] }, 50, 7);
    const b = requestList('wms', { scale: 'town', crs: 'EPSG:3857', layers: ['parcels'] }, 50, 7);
    const c = requestList('wms', { scale: 'town', crs: 'EPSG:3857', layers: ['parcels'] }, 50, 8);
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
    expect(new Set(a.map((r: { bbox: number[] }) => r.bbox.join(','))).size).toBeGreaterThan(40);
  });

  it('gives Lambert-93 boxes of the scale width inside the region', () => {
    for (const scale of ['region', 'town', 'street']) {
      const list = requestList('wms', { scale, crs: 'EPSG:2154', layers: ['parcels'] }, 100, 1);
      for (const r of list) {
        const [x0, y0, x1, y1] = r.bbox;
        expect(x0).toBeGreaterThanOrEqual(REGION.xmin - 0.01);
        expect(y0).toBeGreaterThanOrEqual(REGION.ymin - 0.01);
        expect(x1).toBeLessThanOrEqual(REGION.xmax + 0.01);
        expect(y1).toBeLessThanOrEqual(REGION.ymax + 0.01);
        expect(x1 - x0).toBeCloseTo(y1 - y0, 0);
        expect(r.width).toBe(256);
      }
    }
  });

  it('projects boxes to Web Mercator over Grand Est', () => {
    const [r] = requestList('wms', { scale: 'town', crs: 'EPSG:3857', layers: ['parcels'] }, 1, 3);
    // Grand Est spans roughly 3.4–8.3 °E, 47.4–50.2 °N
    expect(r.bbox[0]).toBeGreaterThan(370000);
    expect(r.bbox[2]).toBeLessThan(930000);
    expect(r.bbox[1]).toBeGreaterThan(6000000);
    expect(r.bbox[3]).toBeLessThan(6500000);
  });

  it('gives XYZ tiles and keeps distinct ones', () => {
    expect(lonLatToTile(0, 0, 1)).toEqual({ z: 1, x: 1, y: 1 });
    // reference values from the usual slippy-map formula (asinh(tan φ)), computed independently
    expect(lonLatToTile(7.75, 48.58, 14)).toEqual({ z: 14, x: 8544, y: 5655 });
    const tiles = requestList('tile', { layer: 'parcels', zooms: [14] }, 200, 5);
    const d = distinctTiles(tiles);
    expect(d.length).toBeLessThanOrEqual(tiles.length);
    expect(new Set(d.map((t: { x: number; y: number }) => `${t.x}/${t.y}`)).size).toBe(d.length);
  });

  it('prng is reproducible and uniform enough', () => {
    const r1 = prng(123);
    const r2 = prng(123);
    const xs = Array.from({ length: 10000 }, () => r1());
    expect(xs.slice(0, 5)).toEqual(Array.from({ length: 5 }, () => r2()));
    const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
    expect(mean).toBeGreaterThan(0.48);
    expect(mean).toBeLessThan(0.52);
    expect(Math.min(...xs)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...xs)).toBeLessThan(1);
  });
});

describe('bench statistics', () => {
  it('computes nearest-rank percentiles', () => {
    const v = Array.from({ length: 100 }, (_, i) => 100 - i); // 100..1, unsorted
    expect(percentile(v, 50)).toBe(50);
    expect(percentile(v, 99)).toBe(99);
    expect(percentile(v, 100)).toBe(100);
    expect(percentile([5], 99)).toBe(5);
    expect(percentile([], 50)).toBeNaN();
  });

  it('summarises samples with errors counted', () => {
    const s = summarise(
      [
        { ms: 10, bytes: 100, error: null },
        { ms: 30, bytes: 300, error: 'HTTP 500' },
      ],
      2,
    );
    expect(s.requests).toBe(2);
    expect(s.errors).toBe(1);
    expect(s.reqPerSec).toBe(1);
    expect(s.meanBytes).toBe(200);
    expect(s.firstErrors).toEqual(['HTTP 500']);
  });
});

describe('bench validity checks', () => {
  it('accepts a real PNG and rejects a bad or truncated one', async () => {
    const png = await sharp({ create: { width: 256, height: 256, channels: 4, background: { r: 200, g: 10, b: 10, alpha: 1 } } })
      .png()
      .toBuffer();
    expect(await checkResponse(200, 'image/png', png, 'png')).toBeNull();
    expect(await checkResponse(200, 'image/png', Buffer.from('not a png at all'), 'png')).toBe('not a PNG');
    const truncated = Buffer.concat([png.subarray(0, 40), Buffer.alloc(20)]);
    expect(await checkResponse(200, 'image/png', truncated, 'png')).toBe('undecodable PNG');
    expect(await checkResponse(200, 'text/xml', png, 'png')).toMatch(/content-type/);
    expect(await checkResponse(500, 'image/png', png, 'png')).toBe('HTTP 500');
  });

  it('checks JSON and XML answers', async () => {
    const fc = Buffer.from(JSON.stringify({ type: 'FeatureCollection', features: [] }));
    expect(await checkResponse(200, 'application/geo+json', fc, 'geojson')).toBeNull();
    expect(await checkResponse(200, 'application/json', Buffer.from('{"type":'), 'geojson')).toBe('unparsable JSON');
    expect(await checkResponse(200, 'application/json', Buffer.from('{"type":"Feature"}'), 'geojson')).toBe('not a FeatureCollection');
    expect(await checkResponse(200, 'application/xml', Buffer.from('<?xml version="1.0"?><csw:GetRecordsResponse/>'), 'xml')).toBeNull();
    expect(await checkResponse(200, 'application/xml', Buffer.from('<?xml version="1.0"?><ows:ExceptionReport/>'), 'xml')).toBe(
      'OGC exception',
    );
    expect(await checkResponse(200, 'application/xml', Buffer.from('<?xml version="1.0"?><a><b>'), 'xml')).toBeNull();
    expect(await checkResponse(200, 'application/xml', Buffer.from('<?xml version="1.0"?><a><b'), 'xml')).toBe('truncated XML');
  });
});

describe('bench symbology, pixels and wrk accounting', () => {
  it('generates from one description a style our server accepts and the matching mapfile classes', async () => {
    // @ts-expect-error plain ESM module without type declarations
    const sym = await import('../bench/lib/symbology.mjs');
    const { parseStyle } = await import('../src/render/style.js');
    for (const name of ['parcels', 'roads', 'pois']) {
      const style = parseStyle('bench', sym.ourStyle(name));
      const classes = sym.SYMBOLOGY[name].classes;
      expect(style.rules.map((r) => r.name)).toEqual(classes.map((c: { name: string }) => c.name));
      const ms: string = sym.mapserverClasses(name);
      expect(ms.match(/CLASS\n/g)?.length).toBe(classes.length);
      // an else class comes last and has no EXPRESSION in the mapfile
      if (classes.at(-1).else) expect(ms.trimEnd().split('CLASS\n').at(-1)).not.toMatch(/EXPRESSION/);
      else expect(ms.trimEnd().split('CLASS\n').at(-1)).toMatch(/EXPRESSION/);
    }
    expect(sym.mapserverClasses('parcels')).toMatch(/COLOR 244 214 176 OUTLINECOLOR 160 82 45 WIDTH 0\.6/);
    expect(sym.mapserverClasses('pois')).toMatch(/"\[categorie\]" = "pharmacie" OR "\[categorie\]" = "hôpital"/);
    const layers = sym.ourLayers();
    expect(layers.map((l: { name: string }) => l.name)).toEqual(['parcels', 'roads', 'pois']);
    expect(layers[0].defaultStyle).toBe('bench');
  });

  it('matches anti-aliasing differences within a pixel and not a missing feature', async () => {
    // @ts-expect-error plain ESM module without type declarations
    const { comparePng, inkShare } = await import('../bench/lib/pixels.mjs');
    const svg = (body: string) =>
      sharp(Buffer.from(`<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64">${body}</svg>`))
        .png()
        .toBuffer();
    const a = await svg('<rect x="10" y="10" width="30" height="30" fill="#f4d6b0" stroke="#a0522d" stroke-width="0.6"/>');
    // the same square one pixel over (an edge rounded the other way by another rasteriser)
    const shifted = await svg('<rect x="11" y="11" width="30" height="30" fill="#f4d6b0" stroke="#a0522d" stroke-width="0.6"/>');
    const missing = await svg('');
    const same = await comparePng(a, a);
    expect(same.share).toBe(0);
    expect(same.meanDiff).toBe(0);
    const aa = await comparePng(a, shifted);
    expect(aa.share).toBe(0);
    expect(aa.strict).toBeGreaterThan(aa.share);
    const gone = await comparePng(a, missing);
    expect(gone.share).toBeGreaterThan(0.2); // the 30×30 square is 22% of the image
    expect(await inkShare(missing)).toBe(0);
    expect(await inkShare(a)).toBeGreaterThan(0.2);
    const small = await sharp({ create: { width: 32, height: 32, channels: 4, background: '#ffffff' } })
      .png()
      .toBuffer();
    expect((await comparePng(a, small)).share).toBe(1);
  });

  it("reads the client's CPU from a /proc stat line and combines rounds without flattering", async () => {
    // @ts-expect-error plain ESM module without type declarations
    const w = await import('../bench/lib/wrk.mjs');
    // fields after "(comm)": state ppid … utime(14) stime(15) cutime(16) cstime(17), in clock ticks
    const line = '4242 (sh) S 1 4242 4242 0 -1 4194304 100 200 0 0 3 4 150 30 20 0 1 0 5000 1000 100';
    expect(w.childCpuFromStat(line)).toBeCloseTo(1.8, 6);
    const run = (requests: number, seconds: number, p50: number, p99: number, clientCore: number, refused: string | null = null) => ({
      requests,
      seconds,
      bytes: requests * 1000,
      p50,
      p95: p99,
      p99,
      errors: { status: 0, socket: 0, timeout: 0 },
      statuses: { 200: requests },
      clientCore,
      refused,
    });
    const c = w.combineRuns([run(100, 2, 10, 50, 0.3), run(300, 2, 20, 40, 0.5)]);
    expect(c.reqPerSec).toBe(100);
    expect(c.p50).toBe(15);
    expect(c.p99).toBe(50); // the worst round's
    expect(c.clientCore).toBe(0.5);
    expect(c.refused).toBeNull();
    const r = w.combineRuns([run(100, 2, 10, 50, 0.3), run(300, 2, 20, 40, 0.95, w.REFUSED_CLIENT)]);
    expect(r.refused).toBe(w.REFUSED_CLIENT);
  });
});
