/**
 * The renderer's drawing half, free of I/O: from the rows the layer queries returned (screen-space
 * TWKB and rule flags, src/render/index.ts) to a Skia canvas and an encoded image (a map), or the
 * encoded tiles of a metatile (paintAndCut). It runs in a render worker (src/render/workers.ts) for
 * renderMap and renderMetatile, so that the drawing of one map does not hold up the queries and
 * answers of the others, or on the main thread when no pool runs (drawMap, tests from sources).
 */
import { createCanvas, ImageData, Path2D, type Canvas, type SKRSContext2D } from '@napi-rs/canvas';
import { LRUCache } from 'lru-cache';
import sharp from 'sharp';
import { collectNative, noteNative, settleNative } from './native-memory.js';
import { decodeTwkb, VarintReader, type TwkbPart } from './twkb.js';
import { PathBytes, PixelList, RingList, writePath, type PathTarget } from './svgpath.js';
import { clipped, clipSegment, fillRings, paintDots, scanned, strokeRings, type Bitmap, type Paint } from './scan.js';
import {
  fontList,
  type LineSymbolizer,
  type PointSymbolizer,
  type PolygonSymbolizer,
  type Rule,
  type Symbolizer,
  type TextSymbolizer,
} from './style.js';
import { circleSprite, drawMark, stampSprites, unpremultiply, type CircleSprite } from './marks.js';
import { placeLabels, type LabelCandidate } from './labels.js';
import { allOpaque, encodePng } from './png.js';

// libvips's operation cache (sharp's default: up to 50 MB and 100 operations per process) keeps
// the results of operations on raw bitmaps that never come again (each map and metatile is new):
// memory held for no hit.
sharp.cache(false);

export type MapFormat = 'image/png' | 'image/png8' | 'image/jpeg' | 'image/webp';

/**
 * One row of a layer query: one feature (with its rule flags and anchor), or — `many` — the
 * sized TWKB of the layer's features concatenated in data order, each preceded by `mask` bytes of
 * rule flags (bit k: the k-th rule with a filter matches; src/render/index.ts, aggregated).
 */
export interface LayerRow {
  g: Uint8Array;
  match: boolean[];
  many: boolean;
  mask?: number;
  lx?: number | null;
  ly?: number | null;
}

/** One label candidate of a layer (src/render/index.ts labelQuery; placement: src/render/labels.ts). */
export interface LabelRow {
  /** rule matches, one per active rule (shared by the candidates with the same flags) */
  match: boolean[];
  /** one text per text symbolizer of the rules (textRules) */
  texts: (string | null)[];
  /** anchor on the map (px) and in the layer's CRS, the feature's size */
  x: number;
  y: number;
  wx: number;
  wy: number;
  size: number;
}

/** What one layer draws: its active rules, the rows of its query and its label candidates (structured-clonable). */
export interface LayerData {
  rules: Rule[];
  textRules: TextSymbolizer[];
  rows: LayerRow[];
  labels: LabelRow[];
}

/** The map's canvas settings (structured-clonable). */
export interface PaintOptions {
  width: number;
  height: number;
  format: MapFormat;
  transparent?: boolean;
  bgcolor?: string;
}

/**
 * One feature. Plain numbers rather than views and nested objects: a town-scale map has ~50,000
 * of them and the garbage collector's share of a render was ~20 % (profiled).
 */
interface Feature {
  /** screen-space TWKB at buf[start…end) */
  buf: Uint8Array;
  start: number;
  end: number;
  /** decoded on first use (point symbolizers) */
  parts: TwkbPart[] | undefined;
  /** where its SVG path data is in the layer's buffers, written on first use (a0 < 0: not yet) */
  a0: number;
  a1: number;
  l0: number;
  l1: number;
  /** its one-pixel parts in the layer's pixel lists: [p0, p1) area, [q0, q1) line */
  p0: number;
  p1: number;
  q0: number;
  q1: number;
  /** its polygon parts in the layer's ring list (scanned layers): [s0, s1) */
  s0: number;
  s1: number;
  /** its box in pixels, when measured (drawing order, below; bx0 NaN: not yet, > bx1: empty) */
  bx0: number;
  by0: number;
  bx1: number;
  by1: number;
  /** rule matches, one per active rule (shared by the features with the same flags) */
  match: boolean[];
  lx: number | null;
  ly: number | null;
}

function feature(
  buf: Uint8Array,
  start: number,
  end: number,
  match: boolean[],
  lx: number | null = null,
  ly: number | null = null,
): Feature {
  return {
    buf,
    start,
    end,
    parts: undefined,
    a0: -1,
    a1: 0,
    l0: 0,
    l1: 0,
    p0: 0,
    p1: 0,
    q0: 0,
    q1: 0,
    s0: 0,
    s1: 0,
    bx0: Number.NaN,
    by0: 0,
    bx1: 0,
    by1: 0,
    match,
    lx,
    ly,
  };
}

/** Write a feature's path data (once) into the layer's buffers; with `box`, measure its box too. */
function written(f: Feature, t: PathTarget, box = false): Feature {
  if (f.a0 < 0) {
    f.a0 = t.area.len;
    f.l0 = t.line.len;
    f.p0 = t.areaPixels?.len ?? 0;
    f.q0 = t.linePixels?.len ?? 0;
    f.s0 = t.rings?.len ?? 0;
    writePath(f.buf, f.start, t, box ? boxOut : undefined);
    f.a1 = t.area.len;
    f.l1 = t.line.len;
    f.p1 = t.areaPixels?.len ?? 0;
    f.q1 = t.linePixels?.len ?? 0;
    f.s1 = t.rings?.len ?? 0;
  } else if (box && Number.isNaN(f.bx0)) {
    // written before without its box (an earlier FeatureTypeStyle): measure it on scratch buffers
    scratch.area.len = scratch.line.len = 0;
    scratch.areaPixels!.len = scratch.linePixels!.len = scratch.rings!.len = 0;
    writePath(f.buf, f.start, scratch, boxOut);
  } else return f;
  if (box) {
    f.bx0 = boxOut[0];
    f.by0 = boxOut[1];
    f.bx1 = boxOut[2];
    f.by1 = boxOut[3];
  }
  return f;
}
const boxOut = new Float64Array(4);
const scratch: PathTarget = {
  area: new PathBytes(),
  line: new PathBytes(),
  areaPixels: new PixelList(),
  linePixels: new PixelList(),
  rings: new RingList(),
};

/**
 * Features per path: Skia fills one path of 50,000 small polygons about three times slower than
 * the same polygons in paths of a few hundred (its scan converter sorts every edge of the path
 * together; measured, docs/rasteriser.md).
 */
const CHUNK = 500;

/** Time spent building paths during the current (synchronous) draw loop, for MapOptions.timings. */
let pathMs = 0;
/** The next label priority class of the current (synchronous) draw loop. */
let labelClass = 0;

const pathMemo = new WeakMap<Feature[], Map<string, Path2D[]>>();

/** Which path data of the features a symbolizer draws: polygon symbolizers skip line parts. */
type PathKind = 'area' | 'all';

/**
 * The path data of `feats[i..end)` as one string: a slice of a buffer when the features' data lie
 * end to end (the usual case: written in the order they are drawn), else copied together.
 */
function chunkText(feats: Feature[], i: number, end: number, kind: PathKind, t: PathTarget): string {
  const segs: [PathBytes, number, number][] = [];
  const add = (b: PathBytes, s: number, e: number) => {
    if (s === e) return;
    const last = segs[segs.length - 1];
    if (last && last[0] === b && last[2] === s) last[2] = e;
    else segs.push([b, s, e]);
  };
  for (let j = i; j < end; j++) {
    const f = feats[j];
    written(f, t);
    add(t.area, f.a0, f.a1);
    if (kind === 'all') add(t.line, f.l0, f.l1);
  }
  if (segs.length === 1) return segs[0][0].text(segs[0][1], segs[0][2]);
  const out = new PathBytes();
  for (const [b, s, e] of segs) out.bytes(b, s, e);
  return out.text();
}

/**
 * The features' paths in chunks of CHUNK features, each parsed by Skia from path data in one
 * call. With `merged` (an opacity below 1) one path for all, so that overlapping features (or
 * shared edges) are painted once, not compounded.
 */
function chunkedPaths(feats: Feature[], kind: PathKind, merged: boolean, t: PathTarget): Path2D[] {
  // a rule's symbolizers (fill and stroke, casings) draw the same features: parse them once
  const key = `${kind}${merged}`;
  let memo = pathMemo.get(feats);
  if (!memo) pathMemo.set(feats, (memo = new Map()));
  const hit = memo.get(key);
  if (hit) return hit;
  const t0 = performance.now();
  const paths: Path2D[] = [];
  const size = merged ? feats.length : CHUNK;
  for (let i = 0; i < feats.length; i += size) {
    const d = chunkText(feats, i, Math.min(feats.length, i + size), kind, t);
    if (!d) continue;
    paths.push(new Path2D(d));
    // Skia's path takes about twice the bytes of its path data (measured)
    noteNative(2 * d.length);
  }
  memo.set(key, paths);
  pathMs += performance.now() - t0;
  return paths;
}

/** RGBA (0–255, straight alpha) of a CSS colour, as Skia reads it; cached. */
const colours = new Map<string, [number, number, number, number]>();
function rgba(css: string): [number, number, number, number] {
  let c = colours.get(css);
  if (!c) {
    const g = createCanvas(1, 1).getContext('2d');
    g.fillStyle = css;
    g.fillRect(0, 0, 1, 1);
    const d = g.getImageData(0, 0, 1, 1).data;
    c = [d[0], d[1], d[2], d[3]];
    if (colours.size < 1000) colours.set(css, c);
  }
  return c;
}

/** A CSS colour as the scan converter's paint (straight RGBA, 0–255). */
function paintOf(css: string): Paint {
  const [r, g, b, a] = rgba(css);
  return { r, g, b, a };
}

/** Share of a 1 px square covered inside it by its own outline of width `w` (centred on its edges). */
const innerCover = (w: number) => (w >= 1 ? 1 : 1 - (1 - w) * (1 - w));

/** Native memory of a canvas besides its pixels (@napi-rs/canvas 1.0: ~280 kB each, measured). */
const CANVAS_BYTES = 280 << 10;

/** Premultiplied colour accumulator: `over` paints (colour, alpha) over what is there. */
class Cell {
  r = 0;
  g = 0;
  b = 0;
  a = 0;
  over(css: string, alpha: number): void {
    const [r, g, b, a0] = rgba(css);
    const a = (alpha * a0) / 255;
    this.r = r * a + this.r * (1 - a);
    this.g = g * a + this.g * (1 - a);
    this.b = b * a + this.b * (1 - a);
    this.a = a + this.a * (1 - a);
  }

  /** The accumulated colour as a straight opaque paint (its alpha: `a`). */
  paint(): Paint {
    return this.a > 0 ? { r: this.r / this.a, g: this.g / this.a, b: this.b / this.a, a: 255 } : { r: 0, g: 0, b: 0, a: 0 };
  }
}

/**
 * The features' one-pixel parts (sub-pixel polygons and lines, the per-pixel cells of a reduced or
 * overview query) are painted in one colour straight into a bitmap, drawn over the map before the
 * next vector drawing (flush): at region scale there are tens of thousands, and Skia spent most of
 * a map's time parsing, filling and stroking them as 1 px squares (profiled, docs/rasteriser.md).
 * The colour is what the symbolizer gives the inside of a 1 px square: fill, then the inner part
 * of its outline. Only the rectangle written since the last flush is drawn.
 *
 * A map's cell layer is kept for the next map of the same size drawn by this thread (cellLayer):
 * at street scale every map has scanned polygons, and a new bitmap and flush canvas per map (with
 * their native memory) forced a full collection every few dozen maps (measured, docs/rasteriser.md).
 */
class CellLayer implements Bitmap {
  /** circles composited before this layer's pending pixels (drawPoints), drawn first at each flush */
  readonly sprites: SpriteLayer;
  /** the bitmap, written in place and handed to Skia at each flush (one per layer, not one per flush) */
  image: ImageData;
  /** the image's pixels as bytes (written by blend, which rounds) */
  bytes: Uint8Array;
  /** the flushes' canvases by size (width · 65536 + height), the most recently used last */
  canvases = new Map<number, Canvas>();
  /** pixel bytes of the kept flush canvases */
  canvasBytes = 0;
  /** set while a map draws on it: a layer left dirty by a map that failed is not reused */
  busy = false;
  x0 = Infinity;
  y0 = Infinity;
  x1 = -Infinity;
  y1 = -Infinity;
  constructor(
    readonly width: number,
    readonly height: number,
  ) {
    const d = (this.image = new ImageData(width, height)).data;
    this.bytes = new Uint8Array(d.buffer, d.byteOffset, d.length);
    noteNative(width * height * 4);
    this.sprites = new SpriteLayer(width, height);
  }

  /** Whether pixels of this layer are pending (pending sprites apart). */
  get pending(): boolean {
    return this.x1 >= this.x0;
  }

  /** Paint `p` with coverage `alpha` on each one-pixel part, over what is pending there. */
  paint(feats: Feature[], t: PathTarget, withLines: boolean, p: Paint, alpha: number): void {
    if (alpha <= 0) return;
    const lists: [PixelList | undefined, 'p' | 'q'][] = [[t.areaPixels, 'p']];
    if (withLines) lists.push([t.linePixels, 'q']);
    let any = false;
    for (const f of feats) {
      written(f, t);
      if (f.p1 > f.p0 || (withLines && f.q1 > f.q0)) any = true;
    }
    if (!any) return;
    for (const f of feats) {
      for (const [list, k] of lists) {
        if (list) paintDots(list.xy, k === 'p' ? f.p0 : f.q0, k === 'p' ? f.p1 : f.q1, p, alpha, this);
      }
    }
  }

  /** Fill (or, with `strokeWidth`, outline) the features' polygon parts in the ring list with `css` over what is pending. */
  scan(feats: Feature[], t: PathTarget, list: RingList, p: Paint, opacity: number, strokeWidth?: number): void {
    for (const f of feats) {
      written(f, t);
      if (f.s1 <= f.s0) continue;
      if (strokeWidth === undefined) fillRings(list, f.s0, f.s1, p, opacity, this);
      else strokeRings(list, f.s0, f.s1, p, opacity, strokeWidth, this);
    }
  }

  /**
   * One feature drawn by a polygon symbolizer of a scanned layer: fill, its one-pixel parts, outline
   * (its parts: [s0, s1) in the ring list, [p0, p1) in the area pixel list).
   */
  polygon(s: PolygonSymbolizer, t: PathTarget, s0: number, s1: number, p0: number, p1: number): void {
    const ps = polygonPaints(s);
    const rings = t.rings!;
    if (ps.fill && s1 > s0) fillRings(rings, s0, s1, ps.fill, s.fillOpacity, this);
    if (t.areaPixels && ps.cellAlpha > 0) paintDots(t.areaPixels.xy, p0, p1, ps.cell, ps.cellAlpha, this);
    if (ps.stroke && s1 > s0) strokeRings(rings, s0, s1, ps.stroke, s.strokeOpacity, s.strokeWidth, this);
  }

  /** Draw what is pending onto the map and clear it. */
  flush(g: SKRSContext2D): void {
    this.sprites.flush(g);
    if (this.x1 < this.x0) return;
    const { width, height, image } = this;
    const data = image.data;
    const x = this.x0;
    const y = this.y0;
    const w = this.x1 - x + 1;
    const h = this.y1 - y + 1;
    // A canvas about the pending rectangle's size (rounded up to 64 px, kept for the map):
    // drawImage takes a snapshot of its whole source, so a map-sized canvas cost ~0.3 ms per flush
    // whatever the rectangle; and a new canvas per flush costs ~280 kB of native memory each
    // (measured, docs/rasteriser.md)
    const bw = Math.min(width, Math.ceil(w / 64) * 64);
    const bh = Math.min(height, Math.ceil(h / 64) * 64);
    const key = bw * 65536 + bh;
    let c = this.canvases.get(key);
    if (c) this.canvases.delete(key);
    else {
      c = createCanvas(bw, bh);
      noteNative(CANVAS_BYTES + bw * bh * 4);
      // at most FLUSH_CANVASES sizes and twice the map's pixels kept: the least recently used are
      // left to the collector
      while (this.canvases.size && (this.canvases.size >= FLUSH_CANVASES || this.canvasBytes + bw * bh * 4 > 8 * width * height)) {
        const [k, old] = this.canvases.entries().next().value!;
        this.canvasBytes -= old.width * old.height * 4;
        this.canvases.delete(k);
      }
      this.canvasBytes += bw * bh * 4;
    }
    this.canvases.set(key, c);
    c.getContext('2d').putImageData(image, -x, -y, x, y, w, h);
    g.globalAlpha = 1;
    g.drawImage(c, 0, 0, w, h, x, y, w, h);
    // each flush leaves a copy of the canvas's pixels with Skia (the snapshot drawn, copied when the
    // canvas is next written) until the map's canvases are collected
    noteNative(bw * bh * 4);
    skiaDraws++;
    this.clear();
  }

  /** Clear what is pending (unless a map is using the bitmap as its pixels, it was just drawn). */
  clear(): void {
    if (this.x1 < this.x0) return;
    const { width, x0, y0 } = this;
    const w = this.x1 - x0 + 1;
    for (let r = y0; r <= this.y1; r++) this.image.data.fill(0, (r * width + x0) * 4, (r * width + x0 + w) * 4);
    this.x0 = this.y0 = Infinity;
    this.x1 = this.y1 = -Infinity;
  }
}

/**
 * Skia drawings of the current (synchronous) map: when a map has none, its pixels are the cell
 * layer's bitmap as it is (paintAndCut, paintAndEncode), without drawing it onto the canvas and
 * reading that back (a fifth of a metatile's time, measured).
 */
let skiaDraws = 0;

/** A polygon symbolizer's paints for the scan converter: fill, outline, and the colour of a one-pixel part. */
interface PolygonPaints {
  fill?: Paint;
  stroke?: Paint;
  cell: Paint;
  cellAlpha: number;
}
const paints = new WeakMap<PolygonSymbolizer, PolygonPaints>();
function polygonPaints(s: PolygonSymbolizer): PolygonPaints {
  let ps = paints.get(s);
  if (!ps) {
    const cell = new Cell();
    if (s.fill) cell.over(s.fill, s.fillOpacity);
    const outlined = Boolean(s.stroke) && s.strokeWidth > 0;
    if (outlined) cell.over(s.stroke!, s.strokeOpacity * innerCover(s.strokeWidth));
    ps = {
      fill: s.fill ? paintOf(s.fill) : undefined,
      stroke: outlined ? paintOf(s.stroke!) : undefined,
      cell: cell.paint(),
      cellAlpha: cell.a,
    };
    paints.set(s, ps);
  }
  return ps;
}

/** Flush canvases kept per cell layer, and cell layers (map sizes) kept per thread. */
const FLUSH_CANVASES = 8;
const CELL_LAYERS = 3;
const cellLayers = new Map<number, CellLayer>();

/** A clean cell layer for a map of this size: the last one of that size if its map ended well. */
function cellLayer(width: number, height: number): CellLayer {
  const key = width * 65536 + height;
  let layer = cellLayers.get(key);
  if (layer) cellLayers.delete(key);
  if (!layer || layer.busy) {
    layer = new CellLayer(width, height);
    if (cellLayers.size >= CELL_LAYERS) cellLayers.delete(cellLayers.keys().next().value!);
  }
  cellLayers.set(key, layer);
  layer.busy = true;
  return layer;
}

/**
 * Before each Skia drawing: what is pending in the cell layer goes under it (flushed), and the map
 * is counted as drawn by Skia (skiaDraws).
 */
function beforeSkia(g: SKRSContext2D, cells: CellLayer): void {
  cells.flush(g);
  skiaDraws++;
}

function drawPolygons(g: SKRSContext2D, feats: Feature[], s: PolygonSymbolizer, t: PathTarget, cells: CellLayer): void {
  const ps = polygonPaints(s);
  if (s.fill) {
    // what Skia draws goes over what is pending; when it draws nothing here, nothing need be flushed
    const paths = chunkedPaths(feats, 'area', s.fillOpacity < 1, t);
    if (paths.length) {
      beforeSkia(g, cells);
      g.globalAlpha = s.fillOpacity;
      g.fillStyle = s.fill;
      for (const p of paths) g.fill(p, 'nonzero');
    }
    if (t.rings) cells.scan(feats, t, t.rings, ps.fill!, s.fillOpacity);
  }
  cells.paint(feats, t, false, ps.cell, ps.cellAlpha);
  if (ps.stroke) {
    if (t.rings) cells.scan(feats, t, t.rings, ps.stroke, s.strokeOpacity, s.strokeWidth);
    const paths = chunkedPaths(feats, 'area', s.strokeOpacity < 1, t);
    if (paths.length) {
      beforeSkia(g, cells);
      g.globalAlpha = s.strokeOpacity;
      g.strokeStyle = s.stroke!;
      g.lineWidth = s.strokeWidth;
      g.lineJoin = 'round';
      g.lineCap = 'round';
      g.setLineDash(s.dash ?? []);
      // dashes restart at each chunk's subpaths anyway (each ring is its own subpath)
      for (const p of paths) g.stroke(p);
    }
  }
  g.globalAlpha = 1;
}

function drawLines(g: SKRSContext2D, feats: Feature[], s: LineSymbolizer, t: PathTarget, cells: CellLayer): void {
  const cell = new Cell();
  cell.over(s.stroke, s.opacity * innerCover(s.width));
  cells.paint(feats, t, true, cell.paint(), cell.a);
  beforeSkia(g, cells);
  g.globalAlpha = s.opacity;
  g.strokeStyle = s.stroke;
  g.lineWidth = s.width;
  g.lineCap = s.cap;
  g.lineJoin = s.join;
  g.setLineDash(s.dash ?? []);
  for (const p of chunkedPaths(feats, 'all', s.opacity < 1, t)) g.stroke(p);
  g.setLineDash([]);
  g.globalAlpha = 1;
}

function partsOf(f: Feature): TwkbPart[] {
  return (f.parts ??= decodeTwkb(f.buf.subarray(f.start, f.end)));
}

/**
 * Where a feature's label (or point symbol, for a line or polygon) goes: the anchor PostGIS
 * computed (polygons), else the first point, else the middle of the line's part within the map
 * (by length along it: a long road is labelled where it is seen, not at its own middle kilometres
 * away). null when none of the line is within the map.
 */
function anchorOf(f: Feature, width: number, height: number): [number, number] | null {
  if (f.lx !== null && f.ly !== null) return [f.lx, f.ly];
  const parts = partsOf(f);
  for (const p of parts) if (p.kind === 1) return [p.rings[0][0], p.rings[0][1]];
  // visible length of every segment (clipped to the map, Liang–Barsky), then the point at half of it
  const segs: number[] = []; // x0, y0, x1, y1 of visible pieces
  let total = 0;
  for (const p of parts) {
    if (p.kind !== 2) continue;
    const r = p.rings[0];
    for (let i = 2; i < r.length; i += 2) {
      if (!clipSegment(r[i - 2], r[i - 1], r[i], r[i + 1], 0, 0, width, height)) continue;
      const c = clipped;
      segs.push(c[0], c[1], c[2], c[3]);
      total += Math.hypot(c[2] - c[0], c[3] - c[1]);
    }
  }
  if (!segs.length) return null;
  let half = total / 2;
  for (let i = 0; i < segs.length; i += 4) {
    const len = Math.hypot(segs[i + 2] - segs[i], segs[i + 3] - segs[i + 1]);
    if (half <= len || i + 4 >= segs.length) {
      const t = len > 0 ? Math.min(1, half / len) : 0;
      return [segs[i] + t * (segs[i + 2] - segs[i]), segs[i + 1] + t * (segs[i + 3] - segs[i + 1])];
    }
    half -= len;
  }
  return null;
}

function drawPoints(g: SKRSContext2D, feats: Feature[], s: PointSymbolizer, width: number, height: number, cells: CellLayer): void {
  const centres: number[] = [];
  for (const f of feats) {
    let anchored = false;
    for (const part of partsOf(f)) {
      if (part.kind === 1) centres.push(part.rings[0][0], part.rings[0][1]);
      else if (!anchored) {
        // one symbol per line or polygon feature
        anchored = true;
        const a = anchorOf(f, width, height);
        if (a) centres.push(a[0], a[1]);
      }
    }
  }
  const fill = s.fill ?? (s.stroke ? undefined : '#808080');
  const stroke = s.stroke && s.strokeWidth > 0 ? s.stroke : undefined;
  const sprite =
    s.mark === 'circle' ? circleSprite(s.size, fill, s.fillOpacity, stroke, s.strokeWidth, (n) => noteNative(CANVAS_BYTES + n * 4)) : null;
  if (sprite) {
    // over the circles pending from the batches before (drawn at the next flush); pixels pending
    // since lie over them: drawn first
    if (cells.pending) cells.flush(g);
    cells.sprites.stamp(sprite, centres);
    // drawn onto the canvas by Skia at the next flush: the map is not its cell layer's bitmap alone
    skiaDraws++;
    return;
  }
  beforeSkia(g, cells);
  g.setLineDash([]);
  g.lineWidth = s.strokeWidth;
  g.lineJoin = 'miter';
  if (fill) g.fillStyle = fill;
  if (stroke) g.strokeStyle = stroke;
  if (s.mark === 'circle') {
    // one path per circle: Skia's arcs appended to one big path cost O(n) each (measured)
    const r = s.size / 2;
    for (let i = 0; i < centres.length; i += 2) {
      g.beginPath();
      g.arc(centres[i], centres[i + 1], r, 0, Math.PI * 2);
      if (fill) {
        g.globalAlpha = s.fillOpacity;
        g.fill();
        g.globalAlpha = 1;
      }
      if (stroke) g.stroke();
    }
    return;
  }
  const path = new Path2D();
  for (let i = 0; i < centres.length; i += 2) drawMark(path, s.mark, centres[i], centres[i + 1], s.size, s.rotation);
  if (fill) {
    g.globalAlpha = s.fillOpacity;
    g.fill(path, 'nonzero');
    g.globalAlpha = 1;
  }
  if (stroke) g.stroke(path);
}

/**
 * Circles drawn from their sprites (src/render/marks.ts): composited in drawing order into a
 * premultiplied bitmap of the map's size, drawn onto the map (the rectangle written since) at the
 * next flush — which CellLayer.flush does first, before its own pixels and before any vector
 * drawing, so that the map gets the circles where they fall in the drawing order. Skia took
 * ~20 µs per circle (path, fill, stroke, then their rasterisation), most of a region map's POI
 * layer; one drawImage per batch of circles cost ~0.5 ms each, and a region map's POIs come in
 * hundreds of batches (one per rule and overlap level; docs/rasteriser.md).
 */
class SpriteLayer {
  /** the premultiplied pixels composited so far, straight alpha only while a flush puts them */
  private image: ImageData | null = null;
  private x0 = Infinity;
  private y0 = Infinity;
  private x1 = -Infinity;
  private y1 = -Infinity;
  constructor(
    readonly width: number,
    readonly height: number,
  ) {}

  stamp(sprite: CircleSprite, centres: number[]): void {
    const { width, height } = this;
    const image = (this.image ??= new ImageData(width, height));
    stampSprites(image.data, 0, 0, width, height, sprite, centres);
    const reach = sprite.pad + 1;
    for (let i = 0; i < centres.length; i += 2) {
      const x = centres[i];
      const y = centres[i + 1];
      if (x - reach < this.x0) this.x0 = x - reach;
      if (x + reach > this.x1) this.x1 = x + reach;
      if (y - reach < this.y0) this.y0 = y - reach;
      if (y + reach > this.y1) this.y1 = y + reach;
    }
  }

  /** Draw what is pending onto the map and clear it. */
  flush(g: SKRSContext2D): void {
    const { width, height, image } = this;
    if (!image || this.x1 < this.x0) return;
    const x = Math.max(0, Math.floor(this.x0));
    const y = Math.max(0, Math.floor(this.y0));
    const w = Math.min(width, Math.ceil(this.x1) + 1) - x;
    const h = Math.min(height, Math.ceil(this.y1) + 1) - y;
    this.x0 = this.y0 = Infinity;
    this.x1 = this.y1 = -Infinity;
    if (w <= 0 || h <= 0) return;
    const px = image.data;
    // the rectangle in straight alpha, put into a canvas of its size (a map has one flush per
    // run of point batches: usually one per POI layer) and drawn onto the map
    for (let r = y; r < y + h; r++) unpremultiply(px.subarray((r * width + x) * 4, (r * width + x + w) * 4));
    const c = createCanvas(w, h);
    // the canvas, and the copy of its pixels the drawing keeps (CellLayer.flush)
    noteNative(CANVAS_BYTES + 2 * w * h * 4);
    c.getContext('2d').putImageData(image, -x, -y, x, y, w, h);
    g.globalAlpha = 1;
    g.drawImage(c, x, y);
    for (let r = y; r < y + h; r++) px.fill(0, (r * width + x) * 4, (r * width + x + w) * 4);
    // the bitmap stays with its cell layer (kept per map size) unless the map is large
    if (width * height > SPRITE_LAYER_KEPT) this.image = null;
  }
}

/** Largest map (pixels) whose circle bitmap is kept for the next map of its size (4 MB). */
const SPRITE_LAYER_KEPT = 1 << 20;

/** A label drawn once (halo and text) at a whole-pixel origin, reused by later maps. */
interface Sprite {
  image: Canvas;
  /** where the label's anchor (text centre, middle baseline) is in the sprite */
  ax: number;
  ay: number;
}

/**
 * Labels seen a second time are drawn from sprites: road and place names repeat from map to map,
 * and Skia's stroking of glyph outlines for the halo was the costliest part of a street map's
 * labels (profiled). A name seen once is drawn directly (most POI names never come back, and a
 * sprite costs more than one direct drawing). At most 8 MB of sprites per thread (a name is a few
 * kB); bigger ones are not kept.
 */
const sprites = new LRUCache<string, Sprite>({
  maxSize: 8 << 20,
  maxEntrySize: 256 << 10,
  sizeCalculation: (s) => Math.max(1, s.image.width * s.image.height * 4),
});
const seen = new LRUCache<string, number>({ max: 50000 }); // label key → text width

/** Bytes held by this thread's label sprites (the main thread's, for /metrics). */
export function labelSpriteBytes(): number {
  return sprites.calculatedSize;
}

const labelKey = (text: string, s: TextSymbolizer, font: string) =>
  `${font}\n${s.fill}\n${s.halo && s.halo.radius > 0 ? `${s.halo.fill}\n${s.halo.radius}` : ''}\n${text}`;

function makeSprite(text: string, s: TextSymbolizer, font: string): Sprite {
  const halo = s.halo && s.halo.radius > 0 ? s.halo : null;
  const probe = createCanvas(1, 1).getContext('2d');
  probe.font = font;
  probe.textBaseline = 'middle';
  const m = probe.measureText(text);
  const pad = Math.ceil((halo?.radius ?? 0) + 1);
  const left = Math.ceil(Math.max(m.actualBoundingBoxLeft, 0)) + pad;
  const up = Math.ceil(Math.max(m.actualBoundingBoxAscent, s.size / 2)) + pad;
  const down = Math.ceil(Math.max(m.actualBoundingBoxDescent, s.size / 2)) + pad;
  const c = createCanvas(Math.max(1, left + Math.ceil(Math.max(m.actualBoundingBoxRight, m.width)) + pad), Math.max(1, up + down));
  drawText(c.getContext('2d'), text, s, font, left, up);
  return { image: c, ax: left + m.width / 2, ay: up };
}

/** Halo then text, left end of the middle baseline at (x, y). */
function drawText(g: SKRSContext2D, text: string, s: TextSymbolizer, font: string, x: number, y: number): void {
  g.font = font;
  g.textBaseline = 'middle';
  if (s.halo && s.halo.radius > 0) {
    g.strokeStyle = s.halo.fill;
    g.lineWidth = s.halo.radius * 2;
    g.lineJoin = 'round';
    g.setLineDash([]);
    g.strokeText(text, x, y);
  }
  g.fillStyle = s.fill;
  g.fillText(text, x, y);
}

/** Draw the labels the world-anchored rule keeps (src/render/labels.ts). */
function drawLabels(g: SKRSContext2D, labels: LabelCandidate[], width: number, height: number): void {
  let font = '';
  const measure = (text: string, s: TextSymbolizer) => {
    const f = `${s.size}px ${fontList(s.font)}`;
    const w = seen.get(labelKey(text, s, f));
    if (w !== undefined) return w;
    if (f !== font) g.font = font = f;
    return g.measureText(text).width;
  };
  for (const { c, width: w } of placeLabels(labels, measure, width, height)) {
    const s = c.sym;
    const f = `${s.size}px ${fontList(s.font)}`;
    const key = labelKey(c.text, s, f);
    const cx = c.x + s.offset[0];
    const cy = c.y + s.offset[1];
    let sp = sprites.get(key);
    if (!sp && seen.has(key)) sprites.set(key, (sp = makeSprite(c.text, s, f)));
    if (sp) {
      // whole-pixel origins keep the glyphs as sharp as they were drawn
      g.drawImage(sp.image, Math.round(cx - sp.ax), Math.round(cy - sp.ay));
    } else {
      seen.set(key, w);
      drawText(g, c.text, s, f, Math.round(cx - w / 2), Math.round(cy));
      font = f;
    }
  }
}

/**
 * Encode a canvas in the requested format. PNG through our writer over Node's zlib (src/render/png.ts,
 * faster than sharp's and Skia's encoders at the same size, docs/rasteriser.md): RGBA when
 * transparent, 24-bit RGB otherwise; the 8-bit palette through sharp (libimagequant); JPEG and WebP
 * with Skia's encoders (as fast as sharp's, without the pixel copy).
 */
export async function encodeCanvas(canvas: Canvas, format: MapFormat, transparent: boolean): Promise<Buffer> {
  // Skia's buffer is premultiplied RGBA; sharp takes it as is (getImageData's unpremultiply costs more than the encode)
  const raw = { width: canvas.width, height: canvas.height, channels: 4 as const, premultiplied: true };
  switch (format) {
    case 'image/png8':
      return sharp(canvas.data(), { raw }).png({ palette: true, effort: 1 }).toBuffer();
    case 'image/jpeg':
      return canvas.encode('jpeg', 85);
    case 'image/webp':
      return canvas.encode('webp', 85);
    case 'image/png':
    default:
      return encodePng(canvas.data(), canvas.width, canvas.height, transparent);
  }
}

/** The layer's features in data order; features with the same rule flags share one `match` array. */
function toFeatures(rows: LayerRow[], rules: Rule[]): Feature[] {
  const features: Feature[] = [];
  const byKey = new Map<string, boolean[]>();
  const fromMask = maskMatcher(rules);
  for (const row of rows) {
    if (row.many) eachFeature(row, fromMask, (g, pos, end, match) => features.push(feature(g, pos, end, match)));
    else {
      const key = row.match.map((b) => (b ? 1 : 0)).join('');
      let match = byKey.get(key);
      if (!match) byKey.set(key, (match = row.match));
      features.push(feature(row.g, 0, row.g.length, match, row.lx ?? null, row.ly ?? null));
    }
  }
  return features;
}

/** The rule matches of a rule-flag mask (bit k: the k-th filtered rule), one shared array per mask. */
function maskMatcher(rules: Rule[]): (mask: number) => boolean[] {
  const filtered = rules.flatMap((r, i) => (r.filter ? [i] : []));
  const byMask = new Map<number, boolean[]>();
  return (m) => {
    let match = byMask.get(m);
    if (!match) {
      match = rules.map(() => true);
      filtered.forEach((i, k) => {
        match![i] = Math.floor(m / 2 ** k) % 2 === 1;
      });
      byMask.set(m, match);
    }
    return match;
  };
}

/** Whether these rules draw with polygon symbolizers only (and labels). */
const polygonsOnly = (rules: Rule[]) => rules.every((r) => r.symbolizers.every((s) => s.kind === 'polygon' || s.kind === 'text'));

/**
 * Draw a scanned layer's aggregated rows feature by feature as they are read, for one
 * FeatureTypeStyle of polygon symbolizers: each feature's rings written into `t` (emptied for each)
 * and drawn at once with the rules `drawn(match)` gives it. No feature objects: at town scale they
 * were ~10 MB a map for the collector (profiled).
 */
function scanRows(
  rows: LayerRow[],
  rules: Rule[],
  fromMask: (m: number) => boolean[],
  drawn: (match: boolean[]) => number[],
  t: PathTarget,
  cells: CellLayer,
): void {
  const rings = t.rings!;
  const pixels = t.areaPixels!;
  for (const row of rows)
    eachFeature(row, fromMask, (g, pos, _end, match) => {
      const set = drawn(match);
      if (!set.length) return;
      rings.len = 0;
      pixels.len = 0;
      t.area.len = t.line.len = 0;
      writePath(g, pos, t);
      for (const i of set) for (const s of rules[i].symbolizers) if (s.kind === 'polygon') cells.polygon(s, t, 0, rings.len, 0, pixels.len);
    });
}

/** Each feature of an aggregated row: its sized TWKB at g[pos…end) and its rule matches. */
function eachFeature(
  row: LayerRow,
  fromMask: (m: number) => boolean[],
  visit: (g: Uint8Array, pos: number, end: number, match: boolean[]) => void,
): void {
  const mask = row.mask ?? 0;
  const g = row.g;
  let pos = 0;
  while (pos < g.length) {
    let m = 0;
    for (let k = 0; k < mask; k++) m += g[pos + k] * 2 ** (8 * k);
    pos += mask;
    const end = twkbEnd(g, pos);
    visit(g, pos, end, mask ? fromMask(m) : row.match.length ? row.match : fromMask(0));
    pos = end;
  }
}

/** End of the sized TWKB geometry starting at `pos` (ST_AsTWKB(…, include_size => true)). */
function twkbEnd(buf: Uint8Array, pos: number): number {
  const r = reader;
  r.buf = buf;
  r.pos = pos + 1; // type and precision
  const meta = r.byte();
  if (meta & 0x08) r.byte(); // extended dimensions
  if (!(meta & 0x02)) throw new Error('TWKB: geometry without its size');
  const size = r.varint();
  return r.pos + size;
}
const reader = new VarintReader();

/** How far (px) a symbolizer draws beyond its feature's geometry. */
function reach(s: Symbolizer): number {
  switch (s.kind) {
    case 'polygon':
      return s.stroke ? s.strokeWidth / 2 : 0;
    case 'line':
      return s.width / 2;
    case 'point':
      // a mark lies within its size's circle once rotated; its outline is centred on its edge
      return (s.size * Math.SQRT2) / 2 + s.strokeWidth / 2;
    default:
      return 0;
  }
}

/** Grid cell (px) of the overlap index used to order batches, and entries kept exact per cell. */
const GRID = 16;
const PER_CELL = 8;

/**
 * The drawing order of one FeatureTypeStyle: SE draws each feature, in data order, with every rule
 * that applies to it. Drawing feature by feature would cost one Skia path (and fill, stroke) per
 * feature; instead the features are put in batches of one signature (the set of rules that draw
 * them), drawn one after the other, such that any two features whose drawings may overlap are
 * drawn in data order: a feature goes to level max(level of an earlier overlapping feature, +1
 * when its signature differs), and the batches are drawn level by level. Features that cannot
 * overlap (tested on their boxes grown by the widest stroke or mark of the FeatureTypeStyle,
 * less 1 px so that neighbours sharing an edge — whose outlines only meet — are not ordered) are
 * drawn together whatever their order; a map of one signature is one batch. Within a batch, each
 * symbolizer is drawn over the batch (as the passes did), the exception to SE's order being one
 * feature's second symbolizer against a same-signature neighbour's first.
 */
function batches(feats: Feature[], sigs: Int32Array, grow: number, t: PathTarget, width: number, height: number): [number, Feature[]][] {
  const distinct = new Set(sigs);
  if (distinct.size <= 1) return feats.length ? [[sigs[0], feats]] : [];
  const m = Math.ceil(grow) + GRID;
  const cols = Math.ceil((width + 2 * m) / GRID);
  const rows = Math.ceil((height + 2 * m) / GRID);
  // per cell: summary level and signature (-1: none; signature -2: several), then exact entries
  const sumLevel = new Int32Array(cols * rows).fill(-1);
  const sumSig = new Int32Array(cols * rows).fill(-1);
  const entries: (number[] | undefined)[] = new Array(cols * rows);
  const levels: Map<number, Feature[]>[] = [];
  const order: number[] = []; // signatures by first appearance
  const rank = new Map<number, number>();
  const g = grow - 1;
  for (let n = 0; n < feats.length; n++) {
    const f = feats[n];
    const sig = sigs[n];
    written(f, t, true);
    if (!rank.has(sig)) {
      rank.set(sig, order.length);
      order.push(sig);
    }
    let level = 0;
    if (f.bx0 <= f.bx1) {
      const x0 = f.bx0 - g;
      const y0 = f.by0 - g;
      const x1 = f.bx1 + g;
      const y1 = f.by1 + g;
      const c0 = Math.max(0, Math.min(cols - 1, Math.floor((x0 + m) / GRID)));
      const c1 = Math.max(0, Math.min(cols - 1, Math.floor((x1 + m) / GRID)));
      const r0 = Math.max(0, Math.min(rows - 1, Math.floor((y0 + m) / GRID)));
      const r1 = Math.max(0, Math.min(rows - 1, Math.floor((y1 + m) / GRID)));
      for (let r = r0; r <= r1; r++)
        for (let c = c0; c <= c1; c++) {
          const k = r * cols + c;
          const sl = sumLevel[k];
          if (sl >= 0) level = Math.max(level, sl + (sumSig[k] === sig ? 0 : 1));
          const e = entries[k];
          if (!e) continue;
          for (let i = 0; i < e.length; i += 6)
            if (e[i] < x1 && e[i + 2] > x0 && e[i + 1] < y1 && e[i + 3] > y0)
              level = Math.max(level, e[i + 4] + (e[i + 5] === sig ? 0 : 1));
        }
      for (let r = r0; r <= r1; r++)
        for (let c = c0; c <= c1; c++) {
          const k = r * cols + c;
          let e = entries[k];
          if (!e) entries[k] = e = [];
          if (e.length >= PER_CELL * 6) {
            // fold the cell's entries into its summary (conservative: as if they covered the whole cell)
            for (let i = 0; i < e.length; i += 6) {
              const el = e[i + 4];
              const es = e[i + 5];
              if (el > sumLevel[k]) {
                sumLevel[k] = el;
                sumSig[k] = es;
              } else if (el === sumLevel[k] && sumSig[k] !== es) sumSig[k] = -2;
            }
            e.length = 0;
          }
          e.push(x0, y0, x1, y1, level, sig);
        }
    }
    let byLevel = levels[level];
    if (!byLevel) levels[level] = byLevel = new Map();
    let batch = byLevel.get(sig);
    if (!batch) byLevel.set(sig, (batch = []));
    batch.push(f);
  }
  const out: [number, Feature[]][] = [];
  for (const byLevel of levels) {
    if (!byLevel) continue;
    for (const sig of order) {
      const batch = byLevel.get(sig);
      if (batch) out.push([sig, batch]);
    }
  }
  return out;
}

/**
 * Draw one layer: each FeatureTypeStyle (consecutive rules with the same `fts`) is one pass over
 * the features, in order; its labels are collected for the end.
 */
function paintLayer(g: SKRSContext2D, data: LayerData, labels: LabelCandidate[], width: number, height: number, cells: CellLayer): void {
  const { rules, textRules } = data;
  const target: PathTarget = { area: new PathBytes(), line: new PathBytes(), areaPixels: new PixelList(), linePixels: new PixelList() };
  if (scanned(rules)) target.rings = new RingList();
  // a scanned layer of polygon symbolizers in aggregated rows is drawn as it is read (scanRows)
  const streamed = target.rings !== undefined && data.rows.every((r) => r.many) && polygonsOnly(rules);
  const features = streamed ? [] : toFeatures(data.rows, rules);
  const fromMask = maskMatcher(rules);
  let t = 0;
  for (let a = 0; a < rules.length; ) {
    let b = a + 1;
    while (b < rules.length && (rules[b].fts ?? 0) === (rules[a].fts ?? 0)) b++;
    // which of the FeatureTypeStyle's rules apply to a feature: its filter, or for an else rule
    // none of the FeatureTypeStyle's filtered rules (per distinct match array, shared by features)
    const applies = new Map<boolean[], number[]>();
    const sigOf = new Map<number[], number>();
    const keys = new Map<string, number[]>();
    const ruleSets: number[][] = [];
    const drawing = (i: number) => rules[i].symbolizers.some((s) => s.kind !== 'text');
    const ruleSet = (match: boolean[]): number[] => {
      let set = applies.get(match);
      if (!set) {
        const anyFiltered = rules.slice(a, b).some((r, j) => !r.else && r.filter !== undefined && match[a + j]);
        set = [];
        for (let i = a; i < b; i++) if (rules[i].else ? match[i] && !anyFiltered : match[i]) set.push(i);
        const key = set.filter(drawing).join(',');
        let shared = keys.get(key);
        if (!shared) {
          keys.set(key, (shared = set));
          sigOf.set(shared, ruleSets.length);
          ruleSets.push(set.filter(drawing));
        }
        applies.set(match, set);
        if (!sigOf.has(set)) sigOf.set(set, sigOf.get(shared)!);
      }
      return set;
    };
    let grow = 0;
    for (let i = a; i < b; i++) for (const s of rules[i].symbolizers) grow = Math.max(grow, reach(s));
    const sigs = new Int32Array(features.length);
    const drawn: Feature[] = [];
    const drawnSigs: number[] = [];
    features.forEach((f) => {
      const set = ruleSet(f.match);
      const sig = sigOf.get(set)!;
      if (!ruleSets[sig].length) return;
      drawn.push(f);
      drawnSigs.push(sig);
    });
    sigs.set(drawnSigs);
    // a scanned layer's pass of polygon symbolizers only: each feature drawn whole in data order
    // with every rule that applies to it, as SE says (and MapServer does), all in the cell bitmap
    if (streamed) scanRows(data.rows, rules, fromMask, (match) => ruleSets[sigOf.get(ruleSet(match))!], target, cells);
    else if (target.rings && polygonsOnly(rules.slice(a, b))) {
      for (let n = 0; n < drawn.length; n++) {
        const f = written(drawn[n], target);
        for (const i of ruleSets[sigs[n]])
          for (const s of rules[i].symbolizers) if (s.kind === 'polygon') cells.polygon(s, target, f.s0, f.s1, f.p0, f.p1);
      }
    } else
      for (const [sig, feats] of batches(drawn, sigs.subarray(0, drawn.length), grow, target, width, height)) {
        for (const i of ruleSets[sig]) {
          for (const s of rules[i].symbolizers) {
            if (s.kind === 'polygon') drawPolygons(g, feats, s, target, cells);
            else if (s.kind === 'line') drawLines(g, feats, s, target, cells);
            else if (s.kind === 'point') drawPoints(g, feats, s, width, height, cells);
          }
        }
      }
    // label candidates, each text symbolizer a priority class in layer and rule order (placed after every layer)
    for (let i = a; i < b; i++) {
      for (const s of rules[i].symbolizers) {
        if (s.kind !== 'text') continue;
        const k = textRules.indexOf(s, t);
        t = k + 1;
        const order = labelClass++;
        for (const l of data.labels) {
          const text = l.texts[k];
          if (text && ruleSet(l.match).includes(i)) labels.push({ text, x: l.x, y: l.y, sym: s, order, size: l.size, wx: l.wx, wy: l.wy });
        }
      }
    }
    a = b;
  }
  // what is pending stays so: the next Skia drawing flushes it first, and a map without any is
  // its cell layer's bitmap (paint)
}

/**
 * Draw the layers in order on a new canvas, labels last. `timings` (optional) receives the
 * milliseconds spent building paths (`path`) and recording the drawing (`paint`).
 */
export function paintMap(layers: LayerData[], o: PaintOptions, timings?: Record<string, number>): Canvas {
  const { canvas, g, cells } = paint(layers, o, timings);
  cells.flush(g);
  return canvas;
}

/** A map painted: its canvas, and its cell layer, whose pending pixels are not drawn on the canvas yet. */
interface Painted {
  canvas: Canvas;
  g: SKRSContext2D;
  cells: CellLayer;
  /** nothing was drawn by Skia: the map's pixels are the cell layer's bitmap (straight alpha) */
  direct: boolean;
}

function paint(layers: LayerData[], o: PaintOptions, timings?: Record<string, number>): Painted {
  collectNative();
  skiaDraws = 0;
  const canvas = createCanvas(o.width, o.height);
  noteNative(o.width * o.height * 4);
  const g = canvas.getContext('2d');
  if (!o.transparent || o.format === 'image/jpeg') {
    g.fillStyle = o.bgcolor ?? '#ffffff';
    g.fillRect(0, 0, o.width, o.height);
  }
  const labels: LabelCandidate[] = [];
  pathMs = 0;
  labelClass = 0;
  const t0 = performance.now();
  const cells = cellLayer(o.width, o.height);
  for (const data of layers) paintLayer(g, data, labels, o.width, o.height, cells);
  cells.busy = false;
  if (labels.length) {
    beforeSkia(g, cells);
    drawLabels(g, labels, o.width, o.height);
  }
  if (timings) {
    timings.path = (timings.path ?? 0) + pathMs;
    timings.paint = (timings.paint ?? 0) + performance.now() - t0 - pathMs;
  }
  // the paths are garbage now (the canvas once the caller is done with it)
  settleNative();
  return { canvas, g, cells, direct: skiaDraws === 0 && Boolean(o.transparent) && o.format !== 'image/jpeg' };
}

/**
 * zlib level of cached tiles: encoded once, sent many times, so the smaller file wins over the
 * encode time (level 6 as the tile cache always used; our file is then within 1 % of MapCache's
 * for the same pixels: docs/services/tiles.md).
 */
const TILE_PNG_LEVEL = 6;

/** How a metatile is cut into tiles: `cols` × `rows` tiles of `tile` px, inside a margin of `buffer` px. */
export interface TileCut {
  tile: number;
  cols: number;
  rows: number;
  buffer: number;
}

/**
 * Paint a metatile and encode each of its tiles as a PNG (row by row, left to right; RGBA, or RGB
 * for a tile without a transparent pixel):
 * one drawing, one read of Skia's premultiplied pixels, each tile's rows copied out and written by
 * the renderer's PNG writer — in a render worker when the pool runs, so that the event loop is not
 * held by a metatile's drawing and encoding.
 */
export function paintAndCut(layers: LayerData[], o: PaintOptions, cut: TileCut, timings?: Record<string, number>): Buffer[] {
  const { canvas, g, cells, direct } = paint(layers, o, timings);
  let t = performance.now();
  if (!direct) cells.flush(g);
  const px = direct ? cells.bytes : canvas.data();
  if (timings) timings.raster = (timings.raster ?? 0) + performance.now() - t;
  t = performance.now();
  const { tile: ts, buffer: b } = cut;
  const stride = canvas.width * 4;
  const one = new Uint8Array(ts * ts * 4);
  const out: Buffer[] = [];
  for (let j = 0; j < cut.rows; j++)
    for (let i = 0; i < cut.cols; i++) {
      for (let y = 0; y < ts; y++) {
        const s = (b + j * ts + y) * stride + (b + i * ts) * 4;
        one.set(px.subarray(s, s + ts * 4), y * ts * 4);
      }
      // a tile with no transparent pixel is written as RGB (the same pixels, no alpha bytes to deflate)
      out.push(encodePng(one, ts, ts, !allOpaque(one), TILE_PNG_LEVEL, direct));
    }
  if (direct) cells.clear();
  if (timings) timings.encode = (timings.encode ?? 0) + performance.now() - t;
  return out;
}

/**
 * Paint and encode; with `timings`, the rasterisation Skia defers until the pixels are read is
 * timed apart (`raster`) from the encoding (`encode`).
 */
export async function paintAndEncode(layers: LayerData[], o: PaintOptions, timings?: Record<string, number>): Promise<Buffer> {
  const { canvas, g, cells, direct } = paint(layers, o, timings);
  if (direct && o.format === 'image/png') {
    // the bitmap's straight-alpha pixels as they are, then cleared for the next map
    const t = performance.now();
    const out = encodePng(cells.bytes, o.width, o.height, true, undefined, true);
    cells.clear();
    if (timings) timings.encode = (timings.encode ?? 0) + performance.now() - t;
    return out;
  }
  cells.flush(g);
  if (!timings) return encodeCanvas(canvas, o.format, Boolean(o.transparent));
  let t = performance.now();
  canvas.data();
  timings.raster = (timings.raster ?? 0) + performance.now() - t;
  t = performance.now();
  const out = await encodeCanvas(canvas, o.format, Boolean(o.transparent));
  timings.encode = (timings.encode ?? 0) + performance.now() - t;
  return out;
}
