/**
 * World-anchored label placement (docs/styles.md, "Labels and tiles"): which labels a map draws
 * and where depends only on the features and the scale, never on the map's extent, so that
 * neighbouring tiles, metatiles and a GetMap of any extent at the same scale draw the same label
 * pixels — a label crossing an edge is drawn whole on both sides.
 *
 * - Where: the anchor is a point of the feature computed from its whole geometry in PostGIS
 *   (src/render/index.ts labelQuery): the point, ST_PointOnSurface of a polygon, and along a line
 *   one candidate every LINE_SPACING pixels of its length at the map's scale (centred in equal
 *   stretches), so a long road is labelled wherever a map shows it, at the same places in every map.
 * - Which: collisions are settled in a fixed priority order (layer, rule, larger features first,
 *   then text and world position: no dependence on the order rows come back in) by ROUNDS rounds
 *   of a local rule: a label is kept when every higher-priority label overlapping it is dropped,
 *   dropped when one of them is kept, and still undecided labels are dropped after the last round.
 *   The decision about a label then depends only on the candidates within ROUNDS overlaps of it,
 *   which the label query reads (labelMargin); greedy placement (keep a label unless it overlaps
 *   one kept before) depends on chains of any length, which no buffer can hold.
 * - Labels wider than MAX_EMS font sizes are not drawn (they would need a wider margin).
 *
 * Pure: no canvas, no database (the drawing measures text and draws, src/render/draw.ts).
 */
import type { TextSymbolizer } from './style-rules.js';

/** Rounds of the local collision rule (each round decides labels one overlap further away). */
export const ROUNDS = 3;
/** Distance (px) between a line's label candidates along it. */
export const LINE_SPACING = 300;
/** Widest label drawn, in font sizes (about 55 characters). */
export const MAX_EMS = 30;

/** Space kept free around a label's text (its halo, plus one pixel). */
export const labelPad = (s: TextSymbolizer) => (s.halo?.radius ?? 0) + 1;

/** How far (px) from its anchor a label of `s` may reach. */
function reachOf(s: TextSymbolizer): number {
  const pad = labelPad(s);
  return Math.max((MAX_EMS * s.size) / 2 + pad + Math.abs(s.offset[0]), s.size / 2 + pad + Math.abs(s.offset[1]));
}

/**
 * The margin (px) around a map within which label candidates must be read so that the labels
 * the map shows are decided as in any other map: a label touching the map has its anchor within
 * one reach of it, and its decision depends on anchors within ROUNDS × two reaches of that.
 */
export function labelMargin(symbolizers: Iterable<TextSymbolizer>): number {
  let r = 0;
  for (const s of symbolizers) r = Math.max(r, reachOf(s));
  return r ? Math.ceil(r * (1 + 2 * ROUNDS)) + 1 : 0;
}

export interface LabelCandidate {
  text: string;
  /** anchor on the map (px), before the symbolizer's offset */
  x: number;
  y: number;
  sym: TextSymbolizer;
  /** priority class: smaller first (the text symbolizer's rank in layer and rule order) */
  order: number;
  /** the feature's size (area, length; 0 for points): larger first within a class */
  size: number;
  /** anchor in the layer's CRS (ties) */
  wx: number;
  wy: number;
}

export interface PlacedLabel {
  c: LabelCandidate;
  /** the text's width (px) */
  width: number;
  /** its box with the pad, on the map (px) */
  box: [number, number, number, number];
}

function before(a: LabelCandidate, b: LabelCandidate): number {
  return a.order - b.order || b.size - a.size || (a.text < b.text ? -1 : a.text > b.text ? 1 : 0) || b.wy - a.wy || a.wx - b.wx;
}

const CELL = 64;

/**
 * The labels to draw on a width × height map, in priority order: those the world-anchored rule
 * keeps (above) that touch the map. `measure` gives a text's width in pixels.
 */
export function placeLabels(
  candidates: LabelCandidate[],
  measure: (text: string, s: TextSymbolizer) => number,
  width: number,
  height: number,
): PlacedLabel[] {
  const items: PlacedLabel[] = [];
  for (const c of candidates) {
    const s = c.sym;
    const w = measure(c.text, s);
    if (!(w > 0) || w > MAX_EMS * s.size) continue;
    const pad = labelPad(s);
    const cx = c.x + s.offset[0];
    const cy = c.y + s.offset[1];
    items.push({ c, width: w, box: [cx - w / 2 - pad, cy - s.size / 2 - pad, cx + w / 2 + pad, cy + s.size / 2 + pad] });
  }
  items.sort((a, b) => before(a.c, b.c));
  const n = items.length;
  // the higher-priority candidates each one overlaps, through a grid of CELL px
  const grid = new Map<number, number[]>();
  const higher: number[][] = [];
  for (let i = 0; i < n; i++) {
    const b = items[i].box;
    const c0 = Math.floor(b[0] / CELL);
    const c1 = Math.floor(b[2] / CELL);
    const r0 = Math.floor(b[1] / CELL);
    const r1 = Math.floor(b[3] / CELL);
    const hits = new Set<number>();
    for (let r = r0; r <= r1; r++)
      for (let c = c0; c <= c1; c++) {
        const k = r * 1_000_003 + c;
        let cell = grid.get(k);
        if (!cell) grid.set(k, (cell = []));
        for (const j of cell) {
          const o = items[j].box;
          if (o[0] < b[2] && o[2] > b[0] && o[1] < b[3] && o[3] > b[1]) hits.add(j);
        }
        cell.push(i);
      }
    higher.push([...hits]);
  }
  // rounds of the local rule, each from the previous round's states: 0 undecided, 1 kept, 2 dropped
  let state = new Uint8Array(n);
  for (let round = 0; round < ROUNDS; round++) {
    const next = state.slice();
    for (let i = 0; i < n; i++) {
      if (state[i]) continue;
      let all = true;
      let kept = false;
      for (const j of higher[i]) {
        if (state[j] === 1) kept = true;
        if (state[j] !== 2) all = false;
      }
      if (kept) next[i] = 2;
      else if (all) next[i] = 1;
    }
    state = next;
  }
  return items.filter((it, i) => state[i] === 1 && it.box[2] >= 0 && it.box[0] <= width && it.box[3] >= 0 && it.box[1] <= height);
}
