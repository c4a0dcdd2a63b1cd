/**
 * The renderer's own scan converter (src/render/scan.ts): exact area coverage for fills, bands of
 * the stroke's width for outlines, clipping at the bitmap's edges. Checked against exact figures
 * where they are known (a rectangle on the pixel grid, half pixels, holes), and against Skia's
 * drawing of the same random polygons, which the renderer used before for these layers.
 */
import { describe, expect, it } from 'vitest';
import { createCanvas } from '@napi-rs/canvas';
import { clipSegment, clipped, FILL_GAMMA, fillRings, strokeRings, type Bitmap } from '../../src/render/scan.js';
import { prng } from '../../bench/lib/core.mjs';
import { RingList } from '../../src/render/svgpath.js';

const W = 64;
const H = 48;
const black = { r: 0, g: 0, b: 0, a: 255 };

/** A ring list of parts, each part a list of rings [x0, y0, x1, y1, …] (closed by repeating the first point). */
function rings(parts: number[][][]): RingList {
  const l = new RingList();
  for (const part of parts) {
    l.reserve(1 + part.reduce((n, r) => n + 1 + r.length + 2, 0));
    l.v[l.len++] = part.length;
    for (const r of part) {
      const closed = [...r, r[0], r[1]];
      l.v[l.len++] = closed.length / 2;
      for (const c of closed) l.v[l.len++] = c;
    }
  }
  return l;
}

/** A blank W×H bitmap with nothing pending. */
function bitmap(): Bitmap {
  return { bytes: new Uint8Array(W * H * 4), width: W, height: H, x0: Infinity, y0: Infinity, x1: -Infinity, y1: -Infinity };
}

/** Alpha (0–255) of each pixel after filling (or outlining, with `stroke`) the parts in black. */
/** Exact coverage unless `gamma` (fills): see FILL_GAMMA. */
function scan(
  parts: number[][][],
  stroke?: number,
  gamma = 1,
): { alpha: Uint8ClampedArray; pend: { x0: number; y0: number; x1: number; y1: number } } {
  const l = rings(parts);
  const bm = bitmap();
  if (stroke === undefined) fillRings(l, 0, l.len, black, 1, bm, gamma);
  else strokeRings(l, 0, l.len, black, 1, stroke, bm);
  const alpha = new Uint8ClampedArray(W * H);
  for (let i = 0; i < W * H; i++) alpha[i] = bm.bytes[i * 4 + 3];
  return { alpha, pend: { x0: bm.x0, y0: bm.y0, x1: bm.x1, y1: bm.y1 } };
}

/** The same parts drawn by Skia (non-zero fill, or a stroke with round joins), alpha per pixel. */
function skia(parts: number[][][], stroke?: number): Uint8ClampedArray {
  const c = createCanvas(W, H);
  const g = c.getContext('2d');
  g.beginPath();
  for (const part of parts)
    for (const r of part) {
      g.moveTo(r[0], r[1]);
      for (let i = 2; i < r.length; i += 2) g.lineTo(r[i], r[i + 1]);
      g.closePath();
    }
  if (stroke === undefined) {
    g.fillStyle = '#000';
    g.fill('nonzero');
  } else {
    g.strokeStyle = '#000';
    g.lineWidth = stroke;
    g.lineJoin = 'round';
    g.stroke();
  }
  const d = g.getImageData(0, 0, W, H).data;
  const alpha = new Uint8ClampedArray(W * H);
  for (let i = 0; i < W * H; i++) alpha[i] = d[i * 4 + 3];
  return alpha;
}

const at = (a: Uint8ClampedArray, x: number, y: number) => a[y * W + x];
const sum = (a: Uint8ClampedArray) => a.reduce((s, v) => s + v, 0);

describe('scan converter: fills', () => {
  it('covers a pixel-aligned rectangle exactly and its half and quarter pixels by their share', () => {
    const { alpha, pend } = scan([[[2, 3, 10, 3, 10, 9, 2, 9]]]);
    for (let y = 0; y < H; y++)
      for (let x = 0; x < W; x++) expect(at(alpha, x, y), `${x},${y}`).toBe(x >= 2 && x < 10 && y >= 3 && y < 9 ? 255 : 0);
    expect(pend).toEqual({ x0: 2, y0: 3, x1: 11, y1: 8 });
    // shifted by half a pixel across and a quarter down
    const half = scan([[[2.5, 3.25, 10.5, 3.25, 10.5, 9.25, 2.5, 9.25]]]).alpha;
    expect(Math.abs(at(half, 2, 5) - 127.5)).toBeLessThanOrEqual(1); // half of the column
    expect(Math.abs(at(half, 10, 5) - 127.5)).toBeLessThanOrEqual(1);
    expect(Math.abs(at(half, 5, 3) - 191.25)).toBeLessThanOrEqual(1); // three quarters of the row
    expect(Math.abs(at(half, 5, 9) - 63.75)).toBeLessThanOrEqual(1);
    expect(Math.abs(at(half, 2, 3) - 95.6)).toBeLessThanOrEqual(1); // a half by three quarters
    expect(at(half, 5, 5)).toBe(255);
    // the renderer's fills: coverage over 0.75 (MapServer's polygon gamma), capped at a whole pixel
    const g = scan([[[2.5, 3.25, 10.5, 3.25, 10.5, 9.25, 2.5, 9.25]]], undefined, FILL_GAMMA).alpha;
    expect(Math.abs(at(g, 2, 5) - 170)).toBeLessThanOrEqual(1);
    expect(at(g, 5, 3)).toBe(255);
    expect(Math.abs(at(g, 5, 9) - 85)).toBeLessThanOrEqual(1);
    expect(Math.abs(at(g, 2, 3) - 127.5)).toBeLessThanOrEqual(1);
    expect(at(g, 5, 5)).toBe(255);
  });

  it('fills both ring orientations alike and leaves a hole empty whatever its winding', () => {
    const cw = scan([[[4, 4, 20, 4, 20, 20, 4, 20]]]).alpha;
    const ccw = scan([[[4, 4, 4, 20, 20, 20, 20, 4]]]).alpha;
    expect(Buffer.from(cw).equals(Buffer.from(ccw))).toBe(true);
    const holed = scan([
      [
        [4, 4, 20, 4, 20, 20, 4, 20],
        [8, 8, 8, 16, 16, 16, 16, 8],
      ],
    ]).alpha;
    expect(at(holed, 5, 5)).toBe(255);
    expect(at(holed, 12, 12)).toBe(0);
    expect(sum(holed)).toBe(255 * (16 * 16 - 8 * 8));
    // even-odd: a hole wound as its shell is a hole too (the layer query no longer orients rings)
    const same = scan([
      [
        [4, 4, 20, 4, 20, 20, 4, 20],
        [8, 8, 16, 8, 16, 16, 8, 16],
      ],
    ]).alpha;
    expect(Buffer.from(same).equals(Buffer.from(holed))).toBe(true);
  });

  it('draws what lies inside the bitmap of parts crossing its edges, and nothing of parts outside it', () => {
    // a polygon far wider and taller than the bitmap covers every pixel
    const all = scan([[[-5000, -3000, 9000, -3000, 9000, 7000, -5000, 7000]]]).alpha;
    expect(all.every((v) => v === 255)).toBe(true);
    // a triangle whose left part is off the bitmap: the inside part as Skia draws it
    const tri = [[[-30, 2, 40, 10, -30, 40]]];
    const ours = scan(tri).alpha;
    const ref = skia(tri);
    let worst = 0;
    for (let i = 0; i < W * H; i++) worst = Math.max(worst, Math.abs(ours[i] - ref[i]));
    expect(worst).toBeLessThanOrEqual(32);
    expect(at(ours, 0, 20)).toBe(255);
    // wholly outside: nothing painted, nothing pending
    const out = scan([[[-20, -20, -5, -20, -5, -5]], [[W + 1, 0, W + 9, 0, W + 9, 9]]]);
    expect(out.alpha.every((v) => v === 0)).toBe(true);
    expect(out.pend.x1).toBe(-Infinity);
  });

  it('gives random small and large polygons the coverage Skia gives them', () => {
    const rnd = prng(20261207);
    for (let k = 0; k < 200; k++) {
      const size = k < 150 ? 1 + rnd() * 6 : 5 + rnd() * 40;
      const cx = rnd() * W;
      const cy = rnd() * H;
      const n = 3 + Math.floor(rnd() * 6);
      const ring: number[] = [];
      // a star-shaped polygon (possibly concave) around the centre
      for (let i = 0; i < n; i++) {
        const t = (i / n) * 2 * Math.PI;
        const r = size * (0.4 + 0.6 * rnd());
        ring.push(Math.round((cx + r * Math.cos(t)) * 10) / 10, Math.round((cy + r * Math.sin(t)) * 10) / 10);
      }
      const ours = scan([[ring]]).alpha;
      const ref = skia([[ring]]);
      let worst = 0;
      for (let i = 0; i < W * H; i++) worst = Math.max(worst, Math.abs(ours[i] - ref[i]));
      // Skia samples coverage on a sub-pixel grid, ours is exact: for a polygon within the bitmap,
      // close to Skia's per pixel, and in total the polygon's area (shoelace), give or take the
      // rounding of each pixel to 8 bits

      let area = 0;
      for (let i = 0; i < ring.length; i += 2) {
        const j = (i + 2) % ring.length;
        area += ring[i] * ring[j + 1] - ring[j] * ring[i + 1];
      }
      const inside = ring.every((v, i) => v >= 0 && v <= (i % 2 ? H : W));
      const painted = ours.reduce((n, v) => n + (v ? 1 : 0), 0);
      if (!inside) continue;
      expect(worst, `polygon ${k}: ${ring.join(' ')}`).toBeLessThanOrEqual(64);
      expect(Math.abs(sum(ours) - (Math.abs(area) / 2) * 255), `polygon ${k}`).toBeLessThanOrEqual(0.5 * painted + 4);
    }
  });
});

describe('scan converter: outlines', () => {
  it('covers a horizontal and a vertical edge by the stroke width, centred on the edge', () => {
    const { alpha } = scan([[[10.5, 10.5, 30.5, 10.5, 30.5, 30.5, 10.5, 30.5]]], 0.6);
    expect(Math.abs(at(alpha, 20, 10) - 153)).toBeLessThanOrEqual(1); // 0.6 of a pixel, the top edge through its middle
    expect(Math.abs(at(alpha, 10, 20) - 153)).toBeLessThanOrEqual(1);
    expect(at(alpha, 20, 20)).toBe(0);
    expect(at(alpha, 20, 9)).toBe(0);
    // an edge on a pixel boundary shares its width between the two rows
    const grid = scan([[[10, 10, 30, 10, 30, 30, 10, 30]]], 0.6).alpha;
    expect(Math.abs(at(grid, 20, 9) - 76.5)).toBeLessThanOrEqual(1);
    expect(Math.abs(at(grid, 20, 10) - 76.5)).toBeLessThanOrEqual(1);
  });

  it('inks random outlines as much as Skia does, in the same places', () => {
    const rnd = prng(7);
    let ours = 0;
    let ref = 0;
    let far = 0;
    for (let k = 0; k < 100; k++) {
      const ring: number[] = [];
      const cx = 8 + rnd() * (W - 16);
      const cy = 8 + rnd() * (H - 16);
      for (let i = 0; i < 5; i++) {
        const t = (i / 5) * 2 * Math.PI;
        ring.push(cx + (2 + rnd() * 6) * Math.cos(t), cy + (2 + rnd() * 6) * Math.sin(t));
      }
      const a = scan([[ring]], 0.6).alpha;
      const b = skia([[ring]], 0.6);
      ours += sum(a);
      ref += sum(b);
      // no ink of ours further than a pixel from Skia's
      for (let y = 0; y < H; y++)
        for (let x = 0; x < W; x++) {
          if (!at(a, x, y)) continue;
          let near = false;
          for (let dy = -1; dy <= 1 && !near; dy++) for (let dx = -1; dx <= 1 && !near; dx++) near = (b[(y + dy) * W + x + dx] ?? 0) > 0;
          if (!near) far++;
        }
    }
    expect(far).toBe(0);
    // the band's area is the stroke's (width × length); Skia's thin-stroke hairlines ink a little less
    expect(Math.abs(ours - ref) / ref).toBeLessThan(0.2);
  });
});

describe('segment clipping', () => {
  it('keeps the part of a segment inside a box, and nothing of one outside', () => {
    expect(clipSegment(-10, 5, 20, 5, 0, 0, 10, 10)).toBe(true);
    expect([...clipped]).toEqual([0, 5, 10, 5]);
    expect(clipSegment(-10, -10, 20, 20, 0, 0, 10, 10)).toBe(true);
    expect([...clipped]).toEqual([0, 0, 10, 10]);
    expect(clipSegment(-10, 20, 20, 20, 0, 0, 10, 10)).toBe(false);
    expect(clipSegment(3, 3, 4, 4, 0, 0, 10, 10)).toBe(true);
    expect([...clipped]).toEqual([3, 3, 4, 4]);
  });
});
