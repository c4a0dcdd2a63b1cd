/**
 * The renderer's own scan converter for polygon layers with plain symbolizers (opaque fill, an
 * outline of at most 1.5 px, no dashes: `scanned` below): their polygon parts are filled
 * and outlined straight into the cell bitmap of src/render/draw.ts instead of being written as SVG
 * path data, parsed, recorded and rasterised by Skia. A dense layer's parts span a few pixels (a
 * town map's parcels) and Skia's fixed costs per polygon (path data, parsing, edge building, a blit
 * per span) were most of its time; and a layer drawn wholly here needs no flush of the bitmap
 * between Skia's drawings (profiled, docs/rasteriser.md, "Our scan converter").
 *
 * Coverage is exact area coverage (the share of each pixel inside the polygon, even-odd: the rings
 * of valid polygons do not cross, so holes are holes whatever their orientation, and the layer
 * query need not orient them), as Skia's anti-aliasing computes it. Outlines are
 * bands of the stroke's width along each edge, their coverage summed per polygon and capped at a
 * full pixel: a thin stroke's joins are within a fraction of a pixel of Skia's round joins.
 */
import type { RingList } from './svgpath.js';
import type { Rule, Symbolizer } from './style.js';

/**
 * Whether a layer drawn with these (active) rules is scanned here: every symbolizer a polygon
 * symbolizer with opaque paint (translucent ones are drawn by Skia as one path, so that overlaps
 * are not compounded), no dashes and an outline of at most 1.5 px, or a point or text symbolizer
 * (which do not use the polygons' paths). The layer query (src/render/index.ts) then leaves the
 * rings as they are (no simplification, no orientation: fills are even-odd) and the drawing
 * (src/render/draw.ts) lists them for this module.
 */
export function scanned(rules: Rule[]): boolean {
  return rules.every((r) => r.symbolizers.every(scanOk));
}

function scanOk(s: Symbolizer): boolean {
  if (s.kind === 'text' || s.kind === 'point') return true;
  if (s.kind !== 'polygon' || s.dash?.length) return false;
  if (s.fill && s.fillOpacity < 1) return false;
  return !s.stroke || s.strokeWidth <= 0 || (s.strokeOpacity >= 1 && s.strokeWidth <= 1.5);
}

/** Where a coordinate is clamped outside the bitmap: far enough that no pixel inside changes. */
const MARGIN = 2;

/**
 * The straight-alpha RGBA bitmap drawn into (`bytes`, `width`×`height`) and the rectangle written
 * since its last flush (inclusive pixel bounds), grown by every drawing.
 */
export interface Bitmap {
  bytes: Uint8Array;
  width: number;
  height: number;
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

/** What one pass paints: straight-alpha colour (0–255) and opacity (0–1). */
export interface Paint {
  r: number;
  g: number;
  b: number;
  a: number;
}

/**
 * Fills' coverage is scaled by 1 / 0.75 (capped at a whole pixel), as MapServer's AGG renderer does
 * with its default polygon gamma (`gamma_linear(0, 0.75)`): where two polygons share an edge, each
 * half-covered pixel is painted at two thirds by each rather than half, so the seam is nearly
 * opaque instead of showing the background, as in MapServer's maps; tiles are then within a few
 * percent of MapCache's bytes (measured, docs/rasteriser.md). Outlines keep their exact coverage.
 */
export const FILL_GAMMA = 1 / 0.75;

/** Coverage under this is not painted (less than half a level of 8-bit alpha); above FULL, a whole pixel. */
const MIN_COVER = 1 / 512;
const FULL = 1 - 1 / 512;

/**
 * Scratch buffers, grown on demand (one set per thread: the drawing is synchronous): the
 * accumulation buffer (all zero between parts), the columns each row's edges touched (fills: the
 * sweep of a row runs over them only), and the entries a stroke touched (its sweep visits them only).
 */
let acc = new Float64Array(1024);
let rowMin = new Int32Array(64);
let rowMax = new Int32Array(64);
let touched = new Int32Array(1024);
let nTouched = 0;
function scratch(n: number, rows: number): Float64Array {
  if (acc.length < n) acc = new Float64Array(Math.max(n, acc.length * 2));
  if (rowMin.length < rows) {
    rowMin = new Int32Array(Math.max(rows, rowMin.length * 2));
    rowMax = new Int32Array(rowMin.length);
  }
  return acc;
}
function touch(k: number): void {
  if (nTouched === touched.length) {
    const next = new Int32Array(touched.length * 2);
    next.set(touched);
    touched = next;
  }
  touched[nTouched++] = k;
}

/**
 * Paint colour `p` with coverage `alpha` (0–1, opacity included) over the straight-alpha RGBA at
 * byte `o` of `data` (a byte view of the bitmap: rounded here, not clamped by the array).
 */
function blend(data: Uint8Array, o: number, p: Paint, alpha: number): void {
  const da = data[o + 3];
  if (alpha >= 1 || da === 0) {
    data[o] = p.r;
    data[o + 1] = p.g;
    data[o + 2] = p.b;
    data[o + 3] = alpha >= 1 ? 255 : alpha * 255 + 0.5;
    return;
  }
  const d = (da / 255) * (1 - alpha);
  const out = alpha + d;
  const k = 1 / out;
  data[o] = (p.r * alpha + data[o] * d) * k + 0.5;
  data[o + 1] = (p.g * alpha + data[o + 1] * d) * k + 0.5;
  data[o + 2] = (p.b * alpha + data[o + 2] * d) * k + 0.5;
  data[o + 3] = out * 255 + 0.5;
}

/** Paint `p` with coverage `alpha` on the whole pixels listed in `xy[from…to)` (x, y pairs), growing the pending rectangle. */
export function paintDots(xy: Int32Array, from: number, to: number, p: Paint, alpha: number, bm: Bitmap): void {
  const { bytes, width, height } = bm;
  for (let i = from; i < to; i += 2) {
    const x = xy[i];
    const y = xy[i + 1];
    if (x < 0 || y < 0 || x >= width || y >= height) continue;
    if (x < bm.x0) bm.x0 = x;
    if (x > bm.x1) bm.x1 = x;
    if (y < bm.y0) bm.y0 = y;
    if (y > bm.y1) bm.y1 = y;
    blend(bytes, (y * width + x) * 4, p, alpha);
  }
}

/** Box of the part at `v[pos]` (its ring count): [minx, miny, maxx, maxy] into `box`; the offset after it. */
function partBox(v: Float32Array, pos: number, box: Float64Array): number {
  const nr = v[pos++];
  let minx = Infinity;
  let miny = Infinity;
  let maxx = -Infinity;
  let maxy = -Infinity;
  for (let r = 0; r < nr; r++) {
    const n = v[pos++];
    for (let i = 0; i < n; i++, pos += 2) {
      const x = v[pos];
      const y = v[pos + 1];
      if (x < minx) minx = x;
      if (x > maxx) maxx = x;
      if (y < miny) miny = y;
      if (y > maxy) maxy = y;
    }
  }
  box[0] = minx;
  box[1] = miny;
  box[2] = maxx;
  box[3] = maxy;
  return pos;
}
const box = new Float64Array(4);

/** The segment clipSegment last kept: x0, y0, x1, y1. */
export const clipped = new Float64Array(4);
const lb = new Float64Array(8);

/**
 * The part of segment (x0, y0)–(x1, y1) inside the box [minx, maxx]×[miny, maxy] (Liang–Barsky)
 * into `clipped`; false when none of it is inside.
 */
export function clipSegment(
  x0: number,
  y0: number,
  x1: number,
  y1: number,
  minx: number,
  miny: number,
  maxx: number,
  maxy: number,
): boolean {
  const dx = x1 - x0;
  const dy = y1 - y0;
  let t0 = 0;
  let t1 = 1;
  // each side: p < 0 where the segment enters across it, p > 0 where it leaves
  const sides = lb;
  sides[0] = -dx;
  sides[1] = x0 - minx;
  sides[2] = dx;
  sides[3] = maxx - x0;
  sides[4] = -dy;
  sides[5] = y0 - miny;
  sides[6] = dy;
  sides[7] = maxy - y0;
  for (let k = 0; k < 8; k += 2) {
    const p = sides[k];
    const q = sides[k + 1];
    if (p === 0) {
      if (q < 0) return false;
      continue;
    }
    const r = q / p;
    if (p < 0) {
      if (r > t1) return false;
      if (r > t0) t0 = r;
    } else {
      if (r < t0) return false;
      if (r < t1) t1 = r;
    }
  }
  clipped[0] = x0 + t0 * dx;
  clipped[1] = y0 + t0 * dy;
  clipped[2] = x0 + t1 * dx;
  clipped[3] = y0 + t1 * dy;
  return true;
}

const clamp = (v: number, lo: number, hi: number) => (v < lo ? lo : v > hi ? hi : v);

/**
 * Add edge (xa, ya)–(xb, yb) with its pieces left of `lo` or right of `hi` moved onto those lines
 * (same heights, same rows): the coverage of every pixel between them is unchanged, and the buffer
 * need not reach further.
 */
function clampedEdge(
  a: Float64Array,
  bw: number,
  bh: number,
  xa: number,
  ya: number,
  xb: number,
  yb: number,
  lo: number,
  hi: number,
): void {
  if (xa >= lo && xa <= hi && xb >= lo && xb <= hi) {
    edge(a, bw, bh, xa, ya, xb, yb);
    return;
  }
  // where the edge crosses the two lines (as shares of its length), in order along it
  const dx = xb - xa;
  let t1 = dx === 0 ? -1 : (lo - xa) / dx;
  let t2 = dx === 0 ? -1 : (hi - xa) / dx;
  if (t1 > t2) {
    const t = t1;
    t1 = t2;
    t2 = t;
  }
  let t0 = 0;
  let x0 = clamp(xa, lo, hi);
  let y0 = ya;
  for (const t of [t1, t2, 1]) {
    if (t <= t0 || t > 1) continue;
    const x1 = t === 1 ? clamp(xb, lo, hi) : clamp(xa + dx * t, lo, hi);
    const y1 = t === 1 ? yb : ya + (yb - ya) * t;
    edge(a, bw, bh, x0, y0, x1, y1);
    t0 = t;
    x0 = x1;
    y0 = y1;
  }
}

/**
 * Add edge (xa, ya)–(xb, yb) (buffer coordinates) to the accumulation buffer `a` of row length `bw`:
 * for each row it crosses, each pixel receives the signed height of the edge within it times the
 * share of the pixel to the right of the edge, and the next pixel the rest, so that a running sum
 * along the row gives the winding-weighted coverage of every pixel.
 */
function edge(a: Float64Array, bw: number, bh: number, xa: number, ya: number, xb: number, yb: number): void {
  if (ya === yb) return;
  let dir = 1;
  if (ya > yb) {
    let t = xa;
    xa = xb;
    xb = t;
    t = ya;
    ya = yb;
    yb = t;
    dir = -1;
  }
  if (yb <= 0 || ya >= bh) return;
  const dxdy = (xb - xa) / (yb - ya);
  // rows above and below the buffer are not drawn: the edge from its first row inside to its last
  let y = ya;
  let x = xa;
  if (y < 0) {
    x = xa - dxdy * ya;
    y = 0;
  }
  if (yb > bh) {
    xb = xa + dxdy * (bh - ya);
    yb = bh;
  }
  let row = Math.floor(y);
  while (y < yb) {
    const yn = Math.min(row + 1, yb);
    const xn = yn === yb ? xb : xa + dxdy * (yn - ya);
    const h = (yn - y) * dir;
    const base = row * bw;
    const xl = x < xn ? x : xn;
    const xr = x < xn ? xn : x;
    let c = Math.floor(xl);
    if (c < rowMin[row]) rowMin[row] = c;
    if (xr <= c + 1) {
      const m = (xl + xr) * 0.5 - c;
      a[base + c] += h * (1 - m);
      a[base + c + 1] += h * m;
      if (c + 1 > rowMax[row]) rowMax[row] = c + 1;
    } else {
      // across several columns: each column's piece by its share of the height
      const k = h / (xr - xl);
      let lo = xl;
      while (lo < xr) {
        const hi = Math.min(c + 1, xr);
        const piece = (hi - lo) * k;
        const m = (lo + hi) * 0.5 - c;
        a[base + c] += piece * (1 - m);
        a[base + c + 1] += piece * m;
        lo = hi;
        c++;
      }
      if (c > rowMax[row]) rowMax[row] = c;
    }
    x = xn;
    y = yn;
    row++;
  }
}

/**
 * Fill the polygon parts listed in `list.v[from…to)` with `p` (opacity `opacity`) into the bitmap,
 * each part over what is there, growing its pending rectangle; coverage times `gamma` (FILL_GAMMA;
 * 1: exact coverage), capped at a whole pixel.
 */
export function fillRings(list: RingList, from: number, to: number, p: Paint, opacity: number, bm: Bitmap, gamma = FILL_GAMMA): void {
  paintRings(list, from, to, p, opacity, -1, bm, gamma);
}

/** Outline the polygon parts listed in `list.v[from…to)` with `p` (opacity `opacity`, `strokeWidth` px), as fillRings does. */
export function strokeRings(list: RingList, from: number, to: number, p: Paint, opacity: number, strokeWidth: number, bm: Bitmap): void {
  paintRings(list, from, to, p, opacity, strokeWidth, bm, 1);
}

/** Fill (`strokeWidth` < 0) or outline each part: its box, its edges into the scratch buffer, the sweep. */
function paintRings(
  list: RingList,
  from: number,
  to: number,
  p: Paint,
  opacity: number,
  strokeWidth: number,
  bm: Bitmap,
  gamma: number,
): void {
  const { width, height } = bm;
  const v = list.v;
  const alpha = opacity * (p.a / 255);
  const fill = strokeWidth < 0;
  // fills: x clamped a little outside the bitmap (an edge left of it still counts for every pixel
  // to its right), y to it (rows outside are not drawn); outlines: the part's box grown by the
  // outline, within the bitmap grown as much (segments are clipped to it)
  const grow = fill ? 0 : strokeWidth / 2 + 1;
  const cx0 = fill ? -MARGIN : -grow;
  const cx1 = fill ? width + MARGIN : width + grow;
  let pos = from;
  while (pos < to) {
    const next = partBox(v, pos, box);
    const ox = Math.floor(Math.max(box[0], cx0) - grow);
    const oy = Math.floor(Math.max(box[1], -grow) - grow);
    const bw = Math.floor(Math.min(box[2], cx1) + grow) - ox + 2;
    const bh = Math.ceil(Math.min(box[3], height + grow) + grow) - oy + (fill ? 0 : 1);
    if (bh <= 0 || ox >= width || oy >= height || box[2] < -grow || box[3] < -grow) {
      pos = next;
      continue;
    }
    const a = scratch(bw * bh, bh);
    if (fill) {
      rowMin.fill(bw, 0, bh);
      rowMax.fill(-1, 0, bh);
    } else nTouched = 0;
    // a part within the grown bitmap needs no clipping
    const inside = box[0] >= -grow && box[1] >= -grow && box[2] <= width + grow && box[3] <= height + grow;
    const nr = v[pos++];
    for (let r = 0; r < nr; r++) {
      const n = v[pos++];
      const end = pos + 2 * n;
      if (n >= 2) {
        // each edge then the closing one (TWKB rings repeat their first point: a ring that does not is closed here)
        for (let i = pos; i < end; i += 2) {
          const j = i + 2 < end ? i + 2 : pos;
          if (fill) clampedEdge(a, bw, bh, v[i] - ox, v[i + 1] - oy, v[j] - ox, v[j + 1] - oy, cx0 - ox, cx1 - ox);
          else if (inside) band(a, bw, v[i] - ox, v[i + 1] - oy, v[j] - ox, v[j + 1] - oy, strokeWidth);
          else if (clipSegment(v[i], v[i + 1], v[j], v[j + 1], -grow, -grow, width + grow, height + grow))
            band(a, bw, clipped[0] - ox, clipped[1] - oy, clipped[2] - ox, clipped[3] - oy, strokeWidth);
        }
      }
      pos = end;
    }
    if (fill) sweepFill(a, bw, bh, ox, oy, p, alpha, bm, gamma);
    else sweepStroke(a, bw, bh, ox, oy, p, alpha, bm);
  }
}

/**
 * Add the coverage of a band of width `w` centred on segment (xa, ya)–(xb, yb) to `a` (not
 * accumulated: each pixel's own coverage): column by column along an x-major segment (row by row
 * along a y-major one), the band's piece spread over the rows (columns) its thickness spans.
 */
function band(a: Float64Array, bw: number, xa: number, ya: number, xb: number, yb: number, w: number): void {
  const dx = xb - xa;
  const dy = yb - ya;
  const adx = dx < 0 ? -dx : dx;
  const ady = dy < 0 ? -dy : dy;
  if (adx === 0 && ady === 0) return;
  const length = Math.sqrt(dx * dx + dy * dy);
  // along the major axis u, across it v; an entry of `a` is at u · su + v · sv
  if (adx >= ady) spread(a, xa, xb, ya, dy / dx, (w * length) / adx / 2, 1, bw);
  else spread(a, ya, yb, xa, dx / dy, (w * length) / ady / 2, bw, 1);
}

/** The band of half-thickness `half` across a segment from u = ua (v = va) to ub, of slope dv/du. */
function spread(a: Float64Array, ua: number, ub: number, va: number, slope: number, half: number, su: number, sv: number): void {
  let lo = ua < ub ? ua : ub;
  const end = ua < ub ? ub : ua;
  let c = Math.floor(lo);
  while (lo < end) {
    const hi = c + 1 < end ? c + 1 : end;
    const len = hi - lo;
    const vm = va + slope * ((lo + hi) * 0.5 - ua);
    const v0 = vm - half;
    const v1 = vm + half;
    for (let r = Math.floor(v0); r < v1; r++) {
      const cover = len * ((r + 1 < v1 ? r + 1 : v1) - (r > v0 ? r : v0));
      if (cover <= 0) continue;
      const k = c * su + r * sv;
      if (a[k] === 0) touch(k);
      a[k] += cover;
    }
    lo = hi;
    c++;
  }
}

/**
 * Paint the accumulated buffer `a` (`bw`×`bh`, its origin at pixel (ox, oy)) onto the bitmap and
 * clear it: running sums along each row over the columns its edges touched (a row's sum is back to
 * zero after its last edge), even-odd.
 */
function sweepFill(
  a: Float64Array,
  bw: number,
  bh: number,
  ox: number,
  oy: number,
  p: Paint,
  alpha: number,
  bm: Bitmap,
  gamma: number,
): void {
  const { bytes: data, width, height } = bm;
  let painted = false;
  // whole pixels of opaque paint are one 32-bit store (the bitmap's bytes are RGBA in memory order)
  const words = alpha >= 1 ? wordsOf(data) : null;
  const word = littleEndian ? (255 << 24) | (p.b << 16) | (p.g << 8) | p.r : (p.r << 24) | (p.g << 16) | (p.b << 8) | 255;
  for (let r = 0; r < bh; r++) {
    const c0 = rowMin[r];
    const c1 = Math.min(rowMax[r], bw - 1);
    if (c1 < c0) continue;
    const y = oy + r;
    const base = r * bw;
    if (y < 0 || y >= height) {
      a.fill(0, base + c0, base + c1 + 1);
      continue;
    }
    let sum = 0;
    for (let c = c0; c <= c1; c++) {
      const k = base + c;
      sum += a[k];
      a[k] = 0;
      // even-odd: a winding of 2 (a hole wound as its shell, or none) is outside
      let cover = sum < 0 ? -sum : sum;
      if (cover > 1) {
        cover %= 2;
        if (cover > 1) cover = 2 - cover;
      }
      cover *= gamma;
      if (cover < MIN_COVER) continue;
      const x = ox + c;
      if (x < 0 || x >= width) continue;
      painted = true;
      if (cover < FULL) blend(data, (y * width + x) * 4, p, cover * alpha);
      else if (!words) blend(data, (y * width + x) * 4, p, alpha);
      else {
        // whole pixels up to the next column an edge touched: one fill of 32-bit words
        let e = c + 1;
        while (e <= c1 && a[base + e] === 0 && ox + e < width) e++;
        words.fill(word, y * width + x, y * width + ox + e);
        c = e - 1;
      }
    }
  }
  if (painted) grow(bm, ox, oy, bw, bh);
}

const littleEndian = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** The bitmap as 32-bit words (the last one's view kept: a view per part cost an allocation each). */
let lastBytes: Uint8Array | null = null;
let lastWords: Uint32Array = new Uint32Array(0);
function wordsOf(data: Uint8Array): Uint32Array {
  if (data !== lastBytes) {
    lastBytes = data;
    lastWords = new Uint32Array(data.buffer, data.byteOffset, data.length >> 2);
  }
  return lastWords;
}

/** Paint the entries of `a` a stroke touched (each a pixel's coverage, capped at 1) onto the bitmap and clear them. */
function sweepStroke(a: Float64Array, bw: number, bh: number, ox: number, oy: number, p: Paint, alpha: number, bm: Bitmap): void {
  const { bytes: data, width, height } = bm;
  let painted = false;
  for (let i = 0; i < nTouched; i++) {
    const k = touched[i];
    const cover = a[k];
    a[k] = 0;
    if (cover < MIN_COVER) continue;
    const r = (k / bw) | 0;
    const x = ox + k - r * bw;
    const y = oy + r;
    if (x < 0 || y < 0 || x >= width || y >= height) continue;
    blend(data, (y * width + x) * 4, p, cover >= 1 ? alpha : cover * alpha);
    painted = true;
  }
  nTouched = 0;
  if (painted) grow(bm, ox, oy, bw, bh);
}

/** Grow the bitmap's pending rectangle by box (ox, oy, bw, bh), within the bitmap. */
function grow(pend: Bitmap, ox: number, oy: number, bw: number, bh: number): void {
  const { width, height } = pend;
  if (ox < pend.x0) pend.x0 = Math.max(0, ox);
  if (oy < pend.y0) pend.y0 = Math.max(0, oy);
  if (ox + bw - 1 > pend.x1) pend.x1 = Math.min(width - 1, ox + bw - 1);
  if (oy + bh - 1 > pend.y1) pend.y1 = Math.min(height - 1, oy + bh - 1);
}
