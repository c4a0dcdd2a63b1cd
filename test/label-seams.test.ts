/**
 * Labels agree across tile and metatile edges (issue 20, item 2): tiles around a metatile corner,
 * fetched through the real XYZ endpoint and stitched with sharp, against one WMS GetMap of the
 * same extent and scale. With label-only styles every drawn pixel is a label's: the two images
 * must agree pixel for pixel (up to antialiasing levels), so no label is cut at a tile edge, and
 * none is drawn twice or only on one side. The demo styles (geometry and labels) are compared too.
 *
 * LABEL_SEAMS_DIR=/some/dir keeps the stitched and reference images there to look at.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import sharp from 'sharp';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { makeTestApp, type TestApp } from './helpers/app.js';
import { transformPoint } from '../src/crs/index.js';
import { WEB_MERCATOR_QUAD, tileExtent } from '../src/tiles/matrixsets.js';

const halo = { radius: 1.5, fill: '#ffffff' };
const config = {
  // metatiles of 4×4 tiles with the default buffer, as served
  tiles: { diskDir: null, metatile: 4 },
  layers: [
    {
      table: 'public.roads',
      name: 'road_names',
      styles: { names: { rules: [{ text: { label: 'nom', 'font-size': 11, fill: '#000000', halo } }] } },
    },
    {
      table: 'public.pois',
      name: 'poi_names',
      styles: { names: { rules: [{ text: { label: 'nom', 'font-size': 10, fill: '#000000', halo, offset: [0, -9] } }] } },
    },
    {
      table: 'public.communes',
      name: 'commune_names',
      styles: {
        names: {
          rules: [
            {
              filter: 'population >= 10000',
              text: { label: 'nom', 'font-size': 14, fill: '#000000', halo: { radius: 2, fill: '#ffffff' } },
            },
            { filter: 'population < 10000', text: { label: 'nom', 'font-size': 11, fill: '#000000', halo } },
          ],
        },
      },
    },
    { table: 'public.roads', name: 'roads' },
    { table: 'public.pois', name: 'pois' },
  ],
};

const keep = process.env.LABEL_SEAMS_DIR;
const out = keep ? (mkdirSync(keep, { recursive: true }), keep) : mkdtempSync(path.join(os.tmpdir(), 'label-seams-'));

let t: TestApp;
beforeAll(async () => {
  t = await makeTestApp(config);
});
afterAll(async () => t?.close());

/**
 * The block of cols × rows WebMercatorQuad tiles at zoom z whose top-left metatile corner (a
 * multiple of 4 in both directions) is nearest to a Lambert-93 point, the corner in its middle.
 */
function block(x: number, y: number, z: number, cols = 6, rows = 4) {
  const [mx, my] = transformPoint(x, y, 2154, 3857);
  const span = WEB_MERCATOR_QUAD.matrices[z].resolution * 256;
  const c = Math.round((mx - WEB_MERCATOR_QUAD.origin[0]) / span / 4) * 4;
  const r = Math.round((WEB_MERCATOR_QUAD.origin[1] - my) / span / 4) * 4;
  return { z, col0: c - cols / 2, row0: r - rows / 2, cols, rows };
}
type Block = ReturnType<typeof block>;

async function rgba(png: Buffer) {
  const { data, info } = await sharp(png).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height };
}

/** The block's tiles from /tiles (XYZ), stitched into one RGBA image. */
async function stitched(layer: string, style: string, b: Block): Promise<Buffer> {
  const parts: sharp.OverlayOptions[] = [];
  for (let j = 0; j < b.rows; j++)
    for (let i = 0; i < b.cols; i++) {
      const res = await t.app.inject({ url: `/tiles/${layer}/${b.z}/${b.col0 + i}/${b.row0 + j}.png${style ? `?style=${style}` : ''}` });
      expect(res.statusCode, res.body).toBe(200);
      parts.push({ input: res.rawPayload, left: i * 256, top: j * 256 });
    }
  return sharp({ create: { width: b.cols * 256, height: b.rows * 256, channels: 4, background: { r: 0, g: 0, b: 0, alpha: 0 } } })
    .composite(parts)
    .png()
    .toBuffer();
}

/** One WMS 1.3.0 GetMap of the block's extent at the tiles' scale. */
async function getMap(layer: string, style: string, b: Block): Promise<Buffer> {
  const e = tileExtent(WEB_MERCATOR_QUAD, b.z, b.col0, b.row0, b.cols, b.rows);
  const res = await t.app.inject({
    url:
      `/wms?SERVICE=WMS&VERSION=1.3.0&REQUEST=GetMap&LAYERS=${layer}&STYLES=${style}&CRS=EPSG:3857` +
      `&BBOX=${e.minx},${e.miny},${e.maxx},${e.maxy}&WIDTH=${b.cols * 256}&HEIGHT=${b.rows * 256}&FORMAT=image/png&TRANSPARENT=TRUE`,
  });
  expect(res.statusCode, res.body).toBe(200);
  expect(res.headers['content-type']).toBe('image/png');
  return res.rawPayload;
}

interface Comparison {
  /** pixels drawn (alpha > 0) in either image */
  drawn: number;
  /** drawn pixels whose RGBA differ by more than `tol` in some channel */
  differing: number;
  /** dark (text) pixels per image */
  textA: number;
  textB: number;
  /** text pixels in the 3-px bands along the inner tile edges, per image, and those differing there */
  edgeText: number;
  edgeDiffering: number;
}

const isText = (d: Buffer, i: number) => d[i + 3] > 160 && d[i] < 100 && d[i + 1] < 100 && d[i + 2] < 100;

async function compare(a: Buffer, b: Buffer, blk: Block, tol = 24): Promise<Comparison> {
  const A = await rgba(a);
  const B = await rgba(b);
  expect([A.width, A.height]).toEqual([B.width, B.height]);
  const c: Comparison = { drawn: 0, differing: 0, textA: 0, textB: 0, edgeText: 0, edgeDiffering: 0 };
  for (let y = 0; y < A.height; y++)
    for (let x = 0; x < A.width; x++) {
      const i = (y * A.width + x) * 4;
      const ta = isText(A.data, i);
      const tb = isText(B.data, i);
      if (ta) c.textA++;
      if (tb) c.textB++;
      if (!A.data[i + 3] && !B.data[i + 3]) continue;
      c.drawn++;
      let diff = false;
      for (let k = 0; k < 4; k++) if (Math.abs(A.data[i + k] - B.data[i + k]) > tol) diff = true;
      if (diff) c.differing++;
      const dx = x % 256;
      const dy = y % 256;
      const nearEdge = (x > 0 && (dx < 2 || dx > 253)) || (y > 0 && (dy < 2 || dy > 253));
      if (nearEdge && x < blk.cols * 256 - 2 && y < blk.rows * 256 - 2 && (ta || tb)) {
        c.edgeText++;
        if (ta !== tb) c.edgeDiffering++;
      }
    }
  return c;
}

async function save(name: string, a: Buffer, b: Buffer) {
  writeFileSync(path.join(out, `${name}-tiles.png`), a);
  writeFileSync(path.join(out, `${name}-getmap.png`), b);
  // a difference image: red where only the tiles draw text, blue where only GetMap does
  const A = await rgba(a);
  const B = await rgba(b);
  const d = Buffer.alloc(A.width * A.height * 4, 255);
  for (let i = 0; i < d.length; i += 4) {
    const ta = isText(A.data, i);
    const tb = isText(B.data, i);
    if (ta && !tb) d.set([255, 0, 0, 255], i);
    else if (tb && !ta) d.set([0, 0, 255, 255], i);
    else if (ta) d.set([160, 160, 160, 255], i);
  }
  writeFileSync(
    path.join(out, `${name}-diff.png`),
    await sharp(d, { raw: { width: A.width, height: A.height, channels: 4 } })
      .png()
      .toBuffer(),
  );
}

// the densest streets (Nancy) and points of interest (Strasbourg) of the demo data
const NANCY: [number, number] = [934000, 6847500];
const STRASBOURG: [number, number] = [1049500, 6840000];

describe('labels across tile and metatile edges', () => {
  const cases: [string, string, Block, number][] = [
    // street names at 1:17,000 (z15), point names at 1:8,500 (z16), place names at 1:68,000 (z13) and 1:270,000 (z11)
    ['road_names', 'names', block(...NANCY, 15), 500],
    ['poi_names', 'names', block(...STRASBOURG, 16), 20],
    ['commune_names', 'names', block(...STRASBOURG, 13), 20],
    ['commune_names', 'names', block(...STRASBOURG, 11), 100],
  ];
  for (const [layer, style, blk, minText] of cases) {
    it(`${layer} at z${blk.z}: the stitched tiles are the GetMap, no label cut at a tile edge`, async () => {
      const tiles = await stitched(layer, style, blk);
      const ref = await getMap(layer, style, blk);
      const name = `${layer}-z${blk.z}`;
      await save(name, tiles, ref);
      const c = await compare(tiles, ref, blk);
      console.info(`${name}: ${JSON.stringify(c)} (images in ${out})`);
      // the view holds labels, some of them across inner tile edges
      expect(c.textB).toBeGreaterThan(minText);
      expect(c.edgeText).toBeGreaterThan(0);
      // the same label pixels: every text pixel at a tile edge is on both images, and (antialiased
      // levels aside) the drawn pixels are the same
      expect(c.edgeDiffering).toBe(0);
      expect(Math.abs(c.textA - c.textB)).toBeLessThanOrEqual(c.textB * 0.002);
      expect(c.differing).toBeLessThanOrEqual(c.drawn * 0.002);
    });
  }

  it('the demo styles (roads, points of interest): geometry and labels agree too', async () => {
    for (const [layer, blk] of [
      ['roads', block(...NANCY, 15)],
      ['pois', block(...STRASBOURG, 16)],
    ] as const) {
      const tiles = await stitched(layer, '', blk);
      const ref = await getMap(layer, '', blk);
      const name = `${layer}-demo-z${blk.z}`;
      await save(name, tiles, ref);
      const c = await compare(tiles, ref, blk);
      console.info(`${name}: ${JSON.stringify(c)}`);
      expect(c.textB).toBeGreaterThan(20);
      expect(c.edgeDiffering).toBeLessThanOrEqual(2);
      expect(c.differing).toBeLessThanOrEqual(c.drawn * 0.01);
    }
  });
});
