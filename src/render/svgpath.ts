/**
 * TWKB → SVG path data, straight from the bytes, for the renderer's polygon and line layers.
 *
 * Building a Skia path with one N-API call per vertex (moveTo/lineTo) cost more than anything else
 * in Node at town scale; Skia parses path data given to `new Path2D(d)` in one call instead
 * (docs/rasteriser.md). The path data is written as ASCII bytes into a growing buffer (building
 * JS strings piece by piece cost more than Skia's parsing). Coordinates are absolute
 * (`M x y x y …`, implicit line-tos): with TWKB precision 1 they are integers in tenths of a
 * pixel, written exactly as `String(tenths / 10)` would, so they parse to the same float32 the
 * per-vertex calls gave Skia (relative steps would accumulate float32 rounding).
 *
 * The commands are the ones the per-vertex path issued, so the pixels are identical
 * (test/render-path.test.ts): each ring or line part with all its points, rings closed with `z`,
 * and a part whose first ring spans less than a pixel both ways — or a point — drawn as the one
 * pixel under its centre: a 1 px square of path data, or (when the target has pixel lists, as the
 * renderer's do) an entry in a list that src/render/draw.ts paints straight into a bitmap.
 */

import { VarintReader } from './twkb.js';

/** A growing buffer of ASCII path data. */
export class PathBytes {
  buf = new Uint8Array(1 << 14);
  len = 0;

  private grow(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.len + n));
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }

  byte(c: number): void {
    this.grow(1);
    this.buf[this.len++] = c;
  }

  /** `tenths / 10` as `String()` writes it, preceded by a space unless negative. */
  num(tenths: number): void {
    if (!Number.isSafeInteger(tenths) || Math.abs(tenths) >= 1e20) {
      this.ascii((tenths >= 0 ? ' ' : '') + String(tenths / 10));
      return;
    }
    this.grow(24);
    const b = this.buf;
    let v = tenths;
    if (v < 0) {
      b[this.len++] = 45; // -
      v = -v;
    } else b[this.len++] = 32; // space
    const frac = v % 10;
    let ip = (v - frac) / 10;
    // the integer part's digits, least significant first, then reversed in place
    const start = this.len;
    do {
      const d = ip % 10;
      b[this.len++] = 48 + d;
      ip = (ip - d) / 10;
    } while (ip > 0);
    for (let i = start, j = this.len - 1; i < j; i++, j--) {
      const t = b[i];
      b[i] = b[j];
      b[j] = t;
    }
    if (frac) {
      b[this.len++] = 46; // .
      b[this.len++] = 48 + frac;
    }
  }

  ascii(s: string): void {
    this.grow(s.length);
    for (let i = 0; i < s.length; i++) this.buf[this.len++] = s.charCodeAt(i);
  }

  /** Append bytes [start, end) of another buffer. */
  bytes(from: PathBytes, start: number, end: number): void {
    this.grow(end - start);
    this.buf.set(from.buf.subarray(start, end), this.len);
    this.len += end - start;
  }

  /** The bytes [start, end) as a string. */
  text(start = 0, end = this.len): string {
    return Buffer.from(this.buf.buffer, this.buf.byteOffset + start, end - start).toString('latin1');
  }
}

/**
 * Where one feature's path data lies: [areaStart, areaEnd) in the area buffer holds its polygon
 * parts and points (what a polygon symbolizer draws), [lineStart, lineEnd) in the line buffer its
 * line parts (a line symbolizer strokes both).
 */
export interface PathRange {
  areaStart: number;
  areaEnd: number;
  lineStart: number;
  lineEnd: number;
}

/** A growing list of whole-pixel positions (x, y pairs). */
export class PixelList {
  xy = new Int32Array(1 << 12);
  len = 0;

  push(x: number, y: number): void {
    if (this.len + 2 > this.xy.length) {
      const next = new Int32Array(this.xy.length * 2);
      next.set(this.xy);
      this.xy = next;
    }
    this.xy[this.len++] = x;
    this.xy[this.len++] = y;
  }
}

/**
 * A growing list of polygon parts, in pixels (float32), for the renderer's own scan converter
 * (src/render/scan.ts): per part, its ring count, then per ring its point count and points.
 */
export class RingList {
  v = new Float32Array(1 << 14);
  len = 0;

  reserve(n: number): void {
    if (this.len + n <= this.v.length) return;
    const next = new Float32Array(Math.max(this.v.length * 2, this.len + n));
    next.set(this.v.subarray(0, this.len));
    this.v = next;
  }
}

/**
 * The buffers the features of one layer are written into. With `areaPixels`/`linePixels`, the
 * one-pixel features (points, parts under a pixel) are listed there for direct drawing instead of
 * being written as 1 px squares into the path data. With `rings`, the other polygon parts are
 * listed there instead of written as path data.
 */
export interface PathTarget {
  area: PathBytes;
  line: PathBytes;
  areaPixels?: PixelList;
  linePixels?: PixelList;
  rings?: RingList;
}

class Cursor extends VarintReader {
  /** current absolute position in the geometry's integer units (deltas run across parts) */
  x = 0;
  y = 0;
  /** box of the points last read ahead (peekBox) */
  minx = 0;
  miny = 0;
  maxx = 0;
  maxy = 0;
  /** with `track`, the box of every point read (geometry integers) and the scale to pixels */
  track = false;
  tx0 = 0;
  ty0 = 0;
  tx1 = 0;
  ty1 = 0;
  tscale = 1;
}

interface Header {
  type: number;
  /** multiplier from the geometry's integers to pixels */
  scale: number;
  /** multiplier from the geometry's integers to tenths of a pixel */
  toTenths: number;
  /** dimensions beyond x and y (skipped) */
  extra: number;
  ids: boolean;
}

function header(c: Cursor): Header | null {
  const head = c.byte();
  const precZ = head >> 4;
  const precision = precZ % 2 === 1 ? -(precZ + 1) / 2 : precZ / 2;
  const meta = c.byte();
  let extra = 0;
  if (meta & 0x08) {
    const ext = c.byte();
    if (ext & 0x01) extra++;
    if (ext & 0x02) extra++;
  }
  if (meta & 0x02) c.varint(); // size
  if (meta & 0x01) for (let i = 0; i < (2 + extra) * 2; i++) c.zigzag(); // bbox
  if (meta & 0x10) return null; // empty
  return { type: head & 0x0f, scale: 10 ** -precision, toTenths: 10 ** (1 - precision), extra, ids: (meta & 0x04) !== 0 };
}

/** Read one point's deltas into the cursor. */
function step(c: Cursor, extra: number): void {
  c.x += c.zigzag();
  c.y += c.zigzag();
  for (let d = 0; d < extra; d++) c.zigzag();
  if (c.track) {
    if (c.x < c.tx0) c.tx0 = c.x;
    if (c.x > c.tx1) c.tx1 = c.x;
    if (c.y < c.ty0) c.ty0 = c.y;
    if (c.y > c.ty1) c.ty1 = c.y;
  }
}

/** Skip `n` points (deltas still accumulate). */
function skip(c: Cursor, h: Header, n: number): void {
  for (let i = 0; i < n; i++) step(c, h.extra);
}

/** One pixel whose top-left corner is (x, y) in whole pixels. */
function pixel(out: PathBytes, x: number, y: number): void {
  out.byte(77); // M
  out.num(x * 10);
  out.num(y * 10);
  out.ascii('h1v1h-1z');
}

/** Write `n` (≥ 2) points as a subpath: `M` then implicit line-tos; `close` ends it with `z`. */
function subpath(c: Cursor, h: Header, n: number, close: boolean, out: PathBytes): void {
  const k = h.toTenths;
  out.byte(77); // M
  for (let i = 0; i < n; i++) {
    step(c, h.extra);
    out.num(Math.round(c.x * k));
    out.num(Math.round(c.y * k));
  }
  if (close) out.byte(122); // z
}

/** Box of the next `n` points into c.minx…c.maxy, read ahead; the cursor is then put back. */
function peekBox(c: Cursor, h: Header, n: number): void {
  const { pos, x, y } = c;
  let minx = Infinity;
  let miny = Infinity;
  let maxx = -Infinity;
  let maxy = -Infinity;
  for (let i = 0; i < n; i++) {
    step(c, h.extra);
    if (c.x < minx) minx = c.x;
    if (c.x > maxx) maxx = c.x;
    if (c.y < miny) miny = c.y;
    if (c.y > maxy) maxy = c.y;
  }
  c.pos = pos;
  c.x = x;
  c.y = y;
  c.minx = minx;
  c.miny = miny;
  c.maxx = maxx;
  c.maxy = maxy;
}

// Box tests in pixels, with the same floating-point arithmetic as the per-vertex path had.
function subPixel(c: Cursor, h: Header): boolean {
  return c.maxx * h.scale - c.minx * h.scale < 1 && c.maxy * h.scale - c.miny * h.scale < 1;
}

/** One pixel, into the pixel list when there is one, else as a square of path data. */
function onePixel(out: PathBytes, list: PixelList | undefined, x: number, y: number): void {
  if (list) list.push(x, y);
  else pixel(out, x, y);
}

function centrePixel(out: PathBytes, list: PixelList | undefined, c: Cursor, h: Header): void {
  onePixel(out, list, Math.floor((c.minx * h.scale + c.maxx * h.scale) / 2), Math.floor((c.miny * h.scale + c.maxy * h.scale) / 2));
}

/** A polygon part: its rings, or one pixel when its outer ring spans less than a pixel. */
function polygon(c: Cursor, h: Header, out: PathTarget): void {
  const nr = c.varint();
  if (nr === 0) return;
  const n0 = c.varint();
  peekBox(c, h, n0);
  if (n0 === 0 || subPixel(c, h)) {
    if (n0 > 0) centrePixel(out.area, out.areaPixels, c, h);
    skip(c, h, n0);
    for (let r = 1; r < nr; r++) skip(c, h, c.varint());
    return;
  }
  if (out.rings) {
    ringsOf(c, h, nr, n0, out.rings);
    return;
  }
  for (let r = 0; r < nr; r++) {
    const n = r === 0 ? n0 : c.varint();
    if (n < 2) skip(c, h, n);
    else subpath(c, h, n, true, out.area);
  }
}

/** A polygon part's rings into the ring list (pixels). */
function ringsOf(c: Cursor, h: Header, nr: number, n0: number, out: RingList): void {
  const k = h.scale;
  out.reserve(1 + nr);
  out.v[out.len++] = nr;
  for (let r = 0; r < nr; r++) {
    const n = r === 0 ? n0 : c.varint();
    out.reserve(1 + 2 * n);
    const v = out.v;
    v[out.len++] = n;
    for (let i = 0; i < n; i++) {
      step(c, h.extra);
      v[out.len++] = c.x * k;
      v[out.len++] = c.y * k;
    }
  }
}

/** A line part: open, or one pixel when it spans less than a pixel. */
function line(c: Cursor, h: Header, out: PathTarget): void {
  const n = c.varint();
  if (n === 0) return;
  peekBox(c, h, n);
  if (subPixel(c, h)) {
    centrePixel(out.line, out.linePixels, c, h);
    skip(c, h, n);
  } else subpath(c, h, n, false, out.line);
}

function point(c: Cursor, h: Header, out: PathTarget): void {
  step(c, h.extra);
  onePixel(out.area, out.areaPixels, Math.floor(c.x * h.scale), Math.floor(c.y * h.scale));
}

function geometry(c: Cursor, out: PathTarget): void {
  const h = header(c);
  if (!h) return;
  c.tscale = h.scale;
  c.x = 0;
  c.y = 0;
  switch (h.type) {
    case 1:
      return point(c, h, out);
    case 2:
      return line(c, h, out);
    case 3:
      return polygon(c, h, out);
    case 4:
    case 5:
    case 6:
    case 7: {
      const n = c.varint();
      if (h.ids) for (let i = 0; i < n; i++) c.zigzag();
      for (let i = 0; i < n; i++) {
        if (h.type === 4) point(c, h, out);
        else if (h.type === 5) line(c, h, out);
        else if (h.type === 6) polygon(c, h, out);
        else geometry(c, out);
      }
      return;
    }
    default:
      throw new Error(`TWKB: unknown geometry type ${h.type}`);
  }
}

/** One cursor for all calls (the writing is synchronous): no allocation per feature. */
const cursor = new Cursor();

/**
 * Append the SVG path data of the TWKB geometry at `twkb[start…]` (see the module comment); with
 * `box`, its bounding box in pixels is written there (minx, miny, maxx, maxy; Infinity when empty).
 */
export function writePath(twkb: Uint8Array, start: number, out: PathTarget, box?: Float64Array): void {
  cursor.buf = twkb;
  cursor.pos = start;
  if (!box) {
    geometry(cursor, out);
    return;
  }
  cursor.track = true;
  cursor.tx0 = cursor.ty0 = Infinity;
  cursor.tx1 = cursor.ty1 = -Infinity;
  try {
    geometry(cursor, out);
  } finally {
    cursor.track = false;
  }
  const k = cursor.tscale;
  box[0] = cursor.tx0 * k;
  box[1] = cursor.ty0 * k;
  box[2] = cursor.tx1 * k;
  box[3] = cursor.ty1 * k;
}

/** Append the SVG path data of one TWKB geometry; where it went in each buffer. */
export function writePathData(twkb: Uint8Array, out: PathTarget): PathRange {
  const areaStart = out.area.len;
  const lineStart = out.line.len;
  writePath(twkb, 0, out);
  return { areaStart, areaEnd: out.area.len, lineStart, lineEnd: out.line.len };
}
