/**
 * Well-known marks (SE 1.1 §11.3.2): circle, square, triangle, star, cross, x; and the sprites
 * circles are drawn from (src/render/draw.ts drawPoints).
 */
import { createCanvas, type Path2D } from '@napi-rs/canvas';
import { LRUCache } from 'lru-cache';
import type { MarkName } from './style.js';

const UNIT: Record<Exclude<MarkName, 'circle'>, number[]> = {
  square: [-0.5, -0.5, 0.5, -0.5, 0.5, 0.5, -0.5, 0.5],
  triangle: [0, -0.5, 0.5, 0.4330127, -0.5, 0.4330127],
  star: (() => {
    const pts: number[] = [];
    for (let i = 0; i < 10; i++) {
      const r = i % 2 === 0 ? 0.5 : 0.2;
      const a = -Math.PI / 2 + (i * Math.PI) / 5;
      pts.push(r * Math.cos(a), r * Math.sin(a));
    }
    return pts;
  })(),
  cross: [
    -0.125, -0.5, 0.125, -0.5, 0.125, -0.125, 0.5, -0.125, 0.5, 0.125, 0.125, 0.125, 0.125, 0.5, -0.125, 0.5, -0.125, 0.125, -0.5, 0.125,
    -0.5, -0.125, -0.125, -0.125,
  ],
  x: [],
};
UNIT.x = (() => {
  const c = Math.SQRT1_2;
  const out: number[] = [];
  for (let i = 0; i < UNIT.cross.length; i += 2) {
    const x = UNIT.cross[i];
    const y = UNIT.cross[i + 1];
    out.push(x * c - y * c, x * c + y * c);
  }
  return out;
})();

/** Append a mark of `size` pixels centred on (x, y), rotated clockwise by `rotation` degrees. */
export function drawMark(path: Path2D, mark: MarkName, x: number, y: number, size: number, rotation: number): void {
  if (mark === 'circle') {
    path.moveTo(x + size / 2, y);
    path.arc(x, y, size / 2, 0, Math.PI * 2);
    path.closePath();
    return;
  }
  const pts = UNIT[mark];
  const a = (rotation * Math.PI) / 180;
  const cos = Math.cos(a) * size;
  const sin = Math.sin(a) * size;
  for (let i = 0; i < pts.length; i += 2) {
    const px = x + pts[i] * cos - pts[i + 1] * sin;
    const py = y + pts[i] * sin + pts[i + 1] * cos;
    if (i === 0) path.moveTo(px, py);
    else path.lineTo(px, py);
  }
  path.closePath();
}

/**
 * A circle symbol drawn once per sub-pixel phase: `phases` × `phases` premultiplied RGBA bitmaps
 * of `side` × `side` pixels, the circle's centre at (pad + i / phases, pad + j / phases) in bitmap
 * (i, j) (index j · phases + i).
 */
export interface CircleSprite {
  side: number;
  pad: number;
  phases: number;
  bitmaps: Uint8Array[];
  /** per bitmap, per row: the first and past-the-last column with ink */
  spans: Int16Array[];
}

/** Sub-pixel phases per axis: a centre is placed within 1/8 px (the TWKB grid is 0.1 px). */
export const SPRITE_PHASES = 4;

/** Largest circle drawn from sprites (size plus outline, px); larger ones are drawn one by one. */
const SPRITE_MAX = 64;

/** The circle sprites of this thread by style, at most 4 MB (a 7 px circle's 16 phases: ~11 kB). */
const circleSprites = new LRUCache<string, CircleSprite>({
  maxSize: 4 << 20,
  sizeCalculation: (s) => Math.max(1, s.bitmaps.length * s.side * s.side * 4),
});

/**
 * The sprites of a circle of `size` px filled with `fill` (at `fillOpacity`) and outlined with
 * `stroke` of `strokeWidth` px, drawn by Skia exactly as one circle of the map is (path, fill,
 * then stroke); null when the circle is too large to gain from sprites. `fresh` is told the
 * native bytes of a canvas made to draw them.
 */
export function circleSprite(
  size: number,
  fill: string | undefined,
  fillOpacity: number,
  stroke: string | undefined,
  strokeWidth: number,
  fresh: (canvasPixels: number) => void,
): CircleSprite | null {
  const reach = size / 2 + (stroke ? strokeWidth / 2 : 0);
  if (!(reach * 2 <= SPRITE_MAX)) return null;
  const key = `${size}\n${fill ?? ''}\n${fillOpacity}\n${stroke ?? ''}\n${strokeWidth}`;
  const hit = circleSprites.get(key);
  if (hit) return hit;
  // one pixel of room on each side for the antialiased edge, one more for the phase offset
  const pad = Math.ceil(reach) + 1;
  const side = 2 * pad + 1;
  const P = SPRITE_PHASES;
  const canvas = createCanvas(side * P, side * P);
  fresh(side * P * side * P);
  const g = canvas.getContext('2d');
  g.lineWidth = strokeWidth;
  g.lineJoin = 'miter';
  if (fill) g.fillStyle = fill;
  if (stroke) g.strokeStyle = stroke;
  for (let j = 0; j < P; j++)
    for (let i = 0; i < P; i++) {
      g.beginPath();
      g.arc(i * side + pad + i / P, j * side + pad + j / P, size / 2, 0, Math.PI * 2);
      if (fill) {
        g.globalAlpha = fillOpacity;
        g.fill();
        g.globalAlpha = 1;
      }
      if (stroke) g.stroke();
    }
  // Skia's own premultiplied pixels, cut into one bitmap per phase
  const all = canvas.data();
  const stride = side * P * 4;
  const bitmaps: Uint8Array[] = [];
  const spans: Int16Array[] = [];
  for (let j = 0; j < P; j++)
    for (let i = 0; i < P; i++) {
      const b = new Uint8Array(side * side * 4);
      const span = new Int16Array(side * 2);
      for (let y = 0; y < side; y++) {
        const s = (j * side + y) * stride + i * side * 4;
        b.set(all.subarray(s, s + side * 4), y * side * 4);
        let x0 = 0;
        let x1 = side;
        while (x0 < side && b[(y * side + x0) * 4 + 3] === 0) x0++;
        while (x1 > x0 && b[(y * side + x1 - 1) * 4 + 3] === 0) x1--;
        span[2 * y] = x0;
        span[2 * y + 1] = x1;
      }
      bitmaps.push(b);
      spans.push(span);
    }
  const sprite = { side, pad, phases: P, bitmaps, spans };
  circleSprites.set(key, sprite);
  return sprite;
}

/**
 * Composite a sprite at each centre (x, y pairs, in order: a later circle over an earlier one,
 * as drawing them one by one does) onto `out`, a premultiplied RGBA bitmap of `w` × `h` pixels
 * whose top left is the map's pixel (x0, y0). Source-over is associative: these circles composited
 * together, then the bitmap over the map, give the map the circles composited one by one would.
 */
export function stampSprites(
  out: Uint8Array | Uint8ClampedArray,
  x0: number,
  y0: number,
  w: number,
  h: number,
  sprite: CircleSprite,
  centres: number[],
): void {
  const { side, pad, phases: P, bitmaps, spans } = sprite;
  for (let k = 0; k < centres.length; k += 2) {
    // the nearest phase: the circle lands within 1 / (2 · phases) px of its centre
    const sx = Math.round(centres[k] * P);
    const sy = Math.round(centres[k + 1] * P);
    const fx = ((sx % P) + P) % P;
    const fy = ((sy % P) + P) % P;
    const left = (sx - fx) / P - pad - x0;
    const top = (sy - fy) / P - pad - y0;
    const b = bitmaps[fy * P + fx];
    const span = spans[fy * P + fx];
    const j0 = Math.max(0, -top);
    const j1 = Math.min(side, h - top);
    for (let j = j0; j < j1; j++) {
      const i0 = Math.max(span[2 * j], -left);
      const i1 = Math.min(span[2 * j + 1], w - left);
      let s = (j * side + i0) * 4;
      let d = ((top + j) * w + left + i0) * 4;
      for (let i = i0; i < i1; i++, s += 4, d += 4) {
        const a = b[s + 3];
        if (a === 255) {
          out[d] = b[s];
          out[d + 1] = b[s + 1];
          out[d + 2] = b[s + 2];
          out[d + 3] = 255;
        } else if (a !== 0) {
          // s + d · (255 − a) / 255, rounded (premultiplied: never above 255)
          const f = 255 - a;
          let v = out[d] * f + 128;
          out[d] = b[s] + ((v + (v >> 8)) >> 8);
          v = out[d + 1] * f + 128;
          out[d + 1] = b[s + 1] + ((v + (v >> 8)) >> 8);
          v = out[d + 2] * f + 128;
          out[d + 2] = b[s + 2] + ((v + (v >> 8)) >> 8);
          v = out[d + 3] * f + 128;
          out[d + 3] = a + ((v + (v >> 8)) >> 8);
        }
      }
    }
  }
}

/** Turn premultiplied RGBA into the straight alpha of an ImageData, in place. */
export function unpremultiply(px: Uint8ClampedArray): void {
  for (let i = 0; i < px.length; i += 4) {
    const a = px[i + 3];
    if (a === 0 || a === 255) continue;
    const f = 255 / a;
    px[i] = px[i] * f;
    px[i + 1] = px[i + 1] * f;
    px[i + 2] = px[i + 2] * f;
  }
}
