/**
 * Circle marks drawn from sprites (src/render/marks.ts, drawPoints in src/render/draw.ts), without
 * a database: a point layer's rows are written as the sized TWKB the layer query returns, painted
 * by paintMap, and read back as pixels; the reference is Skia drawing each circle in turn (path,
 * fill, stroke), as drawPoints did before the sprites.
 */
import { createCanvas } from '@napi-rs/canvas';
import { describe, expect, it } from 'vitest';
import sharp from 'sharp';
import { paintAndEncode, paintMap, type LayerData } from '../../src/render/draw.js';
import type { PointSymbolizer, Rule } from '../../src/render/style.js';

/** A point as ST_AsTWKB(p, 1, 0, 0, true) writes it (precision 1, with its size). */
function twkbPoint(x: number, y: number): number[] {
  const body: number[] = [];
  for (const v of [x, y]) {
    let z = Math.round(v * 10);
    z = z >= 0 ? z * 2 : -z * 2 - 1;
    while (z >= 0x80) {
      body.push((z % 0x80) | 0x80);
      z = Math.floor(z / 0x80);
    }
    body.push(z);
  }
  return [(2 << 4) | 1, 0x02, body.length, ...body];
}

const circle = (fill: string, size = 7, extra: Partial<PointSymbolizer> = {}): PointSymbolizer => ({
  kind: 'point',
  mark: 'circle',
  size,
  fill,
  fillOpacity: 1,
  stroke: '#ffffff',
  strokeWidth: 1,
  rotation: 0,
  ...extra,
});

/** One layer of one rule drawing `sym` at the points, in order. */
function layer(sym: PointSymbolizer, pts: [number, number][]): LayerData {
  const rule: Rule = { name: 'r', title: 'r', else: false, symbolizers: [sym] };
  return {
    rules: [rule],
    textRules: [],
    labels: [],
    rows: [{ g: Uint8Array.from(pts.flatMap(([x, y]) => twkbPoint(x, y))), match: [], many: true, mask: 0 }],
  };
}

/** Skia drawing each circle in turn, on white (the reference). */
function direct(layers: [PointSymbolizer, [number, number][]][], size = 64): Uint8Array {
  const c = createCanvas(size, size);
  const g = c.getContext('2d');
  g.fillStyle = '#ffffff';
  g.fillRect(0, 0, size, size);
  for (const [s, pts] of layers) {
    g.lineWidth = s.strokeWidth;
    for (const [x, y] of pts) {
      g.beginPath();
      g.arc(Math.round(x * 10) / 10, Math.round(y * 10) / 10, s.size / 2, 0, Math.PI * 2);
      g.globalAlpha = s.fillOpacity;
      g.fillStyle = s.fill!;
      g.fill();
      g.globalAlpha = 1;
      g.strokeStyle = s.stroke!;
      g.stroke();
    }
  }
  return c.data();
}

const painted = (layers: [PointSymbolizer, [number, number][]][], size = 64) =>
  paintMap(
    layers.map(([s, pts]) => layer(s, pts)),
    { width: size, height: size, format: 'image/png' },
  ).data();

/** Channels differing by more than `tol`, and the largest difference. */
function diff(a: Uint8Array, b: Uint8Array, tol: number): { over: number; max: number } {
  let over = 0;
  let max = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (d > tol) over++;
    if (d > max) max = d;
  }
  return { over, max };
}

const rgb = (px: Uint8Array, x: number, y: number, w = 64) => [...px.subarray((y * w + x) * 4, (y * w + x) * 4 + 3)];

describe('circle marks from sprites', () => {
  it('look like circles drawn one by one (centres within 1/8 px, edges within the antialiasing)', () => {
    // random centres, some overlapping, some across the map's edges
    let seed = 7;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648) * 70 - 3;
    const pts: [number, number][] = Array.from({ length: 60 }, () => [rnd(), rnd()]);
    const sym = circle('#e4572e');
    const a = painted([[sym, pts]]);
    const b = direct([[sym, pts]]);
    const d = diff(a, b, 48);
    // an edge pixel moves by at most 1/8 px of coverage: a few channels beyond 48/255, none far off
    expect(d.over / a.length).toBeLessThan(0.01);
    expect(d.max).toBeLessThan(128);
    // every circle is there: as many pixels of its fill as in the direct drawing
    const fills = (px: Uint8Array) => {
      let n = 0;
      for (let i = 0; i < px.length; i += 4) if (px[i] === 228 && px[i + 1] === 87 && px[i + 2] === 46) n++;
      return n;
    };
    expect(Math.abs(fills(a) - fills(b))).toBeLessThan(fills(b) * 0.05);
  });

  it('keep the drawing order: a later circle over an earlier one, within a batch and across layers', () => {
    const red = circle('#ff0000', 9);
    const blue = circle('#0000ff', 9);
    // one layer, two circles: the second on top where they overlap
    const one = painted([
      [
        red,
        [
          [20.5, 20.5],
          [24.5, 20.5],
        ],
      ],
    ]);
    // two layers: blue over red, then red over blue
    const ab = painted([
      [red, [[20.5, 40.5]]],
      [blue, [[24.5, 40.5]]],
    ]);
    const ba = painted([
      [blue, [[20.5, 40.5]]],
      [red, [[24.5, 40.5]]],
    ]);
    expect(rgb(one, 22, 20)).toEqual([255, 0, 0]);
    expect(rgb(one, 20, 20)[1]).toBeGreaterThan(100); // the second's white outline over the first's fill
    expect(rgb(ab, 22, 40)).toEqual([0, 0, 255]);
    expect(rgb(ba, 22, 40)).toEqual([255, 0, 0]);
    // the later circle's white outline runs across the earlier one's fill
    expect(rgb(ab, 20, 40)[1]).toBeGreaterThan(100);
    for (const [px, layers] of [
      [
        ab,
        [
          [red, [[20.5, 40.5]]],
          [blue, [[24.5, 40.5]]],
        ],
      ],
      [
        ba,
        [
          [blue, [[20.5, 40.5]]],
          [red, [[24.5, 40.5]]],
        ],
      ],
    ] as [Uint8Array, [PointSymbolizer, [number, number][]][]][])
      expect(diff(px, direct(layers), 48).over).toBeLessThan(12);
  });

  it('composite a translucent fill as the direct drawing does', () => {
    const sym = circle('#1f5fa8', 11, { fillOpacity: 0.4 });
    const pts: [number, number][] = [
      [30.3, 30.6],
      [34.1, 31.2],
      [31.7, 35.9],
    ];
    const d = diff(painted([[sym, pts]]), direct([[sym, pts]]), 48);
    expect(d.over).toBeLessThan(12);
  });

  it('are in a transparent PNG of circles alone (a map whose other pixels are its cell layer bitmap)', async () => {
    const png = await paintAndEncode([layer(circle('#1f5fa8', 9), [[20.5, 20.5]])], {
      width: 64,
      height: 64,
      format: 'image/png',
      transparent: true,
    });
    const { data } = await sharp(png).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
    expect([...data.subarray((20 * 64 + 20) * 4, (20 * 64 + 20) * 4 + 4)]).toEqual([31, 95, 168, 255]);
    expect(data[(40 * 64 + 40) * 4 + 3]).toBe(0);
  });

  it('draw circles too large for a sprite directly, as before', () => {
    const sym = circle('#2e9e44', 80);
    const pts: [number, number][] = [[32, 32]];
    expect(diff(painted([[sym, pts]]), direct([[sym, pts]]), 0).over).toBe(0);
  });
});
