/** Legend graphics: one row per rule (icon + title), drawn with the rule's own symbolizers. */
import { createCanvas, Path2D, type SKRSContext2D } from '@napi-rs/canvas';
import type { Layer } from '../registry/types.js';
import type { Rule, Style, Symbolizer } from './style.js';
import { drawMark } from './marks.js';

const FONT = '12px "DejaVu Sans", sans-serif';
const PAD = 4;

function legendRules(style: Style): Rule[] {
  return style.rules.filter((r) => r.symbolizers.some((s) => s.kind !== 'text'));
}

/** Merge rules that share a title (casing + fill of the same road class are one entry). */
function entries(style: Style): { title: string; symbolizers: Symbolizer[] }[] {
  const out: { title: string; symbolizers: Symbolizer[] }[] = [];
  for (const r of legendRules(style)) {
    const hit = out.find((e) => e.title === r.title);
    const syms = r.symbolizers.filter((s) => s.kind !== 'text');
    if (hit) hit.symbolizers.push(...syms);
    else out.push({ title: r.title, symbolizers: syms });
  }
  return out;
}

const measurer = createCanvas(1, 1).getContext('2d');

export function legendSize(style: Style, layer: Layer, icon = { width: 20, height: 20 }): { width: number; height: number } {
  measurer.font = FONT;
  const es = entries(style);
  const titles = es.length > 1 ? es.map((e) => e.title) : [layer.title];
  const textW = Math.max(0, ...titles.map((t) => measurer.measureText(t).width));
  return { width: Math.ceil(PAD * 3 + icon.width + textW), height: Math.max(1, es.length) * (icon.height + PAD) + PAD };
}

function drawIcon(g: SKRSContext2D, syms: Symbolizer[], x: number, y: number, w: number, h: number): void {
  for (const s of syms) {
    const path = new Path2D();
    if (s.kind === 'polygon') {
      path.rect(x + 1.5, y + 1.5, w - 3, h - 3);
      if (s.fill) {
        g.globalAlpha = s.fillOpacity;
        g.fillStyle = s.fill;
        g.fill(path);
      }
      if (s.stroke) {
        g.globalAlpha = s.strokeOpacity;
        g.strokeStyle = s.stroke;
        g.lineWidth = Math.min(s.strokeWidth, 3);
        g.stroke(path);
      }
    } else if (s.kind === 'line') {
      path.moveTo(x + 1, y + h - 4);
      path.lineTo(x + w * 0.4, y + 4);
      path.lineTo(x + w * 0.6, y + h - 4);
      path.lineTo(x + w - 1, y + 4);
      g.globalAlpha = s.opacity;
      g.strokeStyle = s.stroke;
      g.lineWidth = Math.min(s.width, h / 2);
      g.lineCap = s.cap;
      g.lineJoin = s.join;
      g.setLineDash(s.dash ?? []);
      g.stroke(path);
      g.setLineDash([]);
    } else if (s.kind === 'point') {
      drawMark(path, s.mark, x + w / 2, y + h / 2, Math.min(s.size, Math.min(w, h) - 2), s.rotation);
      if (s.fill) {
        g.globalAlpha = s.fillOpacity;
        g.fillStyle = s.fill;
        g.fill(path);
      }
      if (s.stroke) {
        g.globalAlpha = 1;
        g.strokeStyle = s.stroke;
        g.lineWidth = s.strokeWidth;
        g.stroke(path);
      }
    }
    g.globalAlpha = 1;
  }
}

function drawLegend(g: SKRSContext2D, style: Style, layer: Layer, icon: { width: number; height: number }, top: number): void {
  const es = entries(style);
  es.forEach((e, i) => {
    const y = top + PAD + i * (icon.height + PAD);
    drawIcon(g, e.symbolizers, PAD, y, icon.width, icon.height);
    g.font = FONT;
    g.fillStyle = '#000000';
    g.textBaseline = 'middle';
    g.fillText(es.length > 1 ? e.title : layer.title, PAD * 2 + icon.width, y + icon.height / 2);
  });
}

/** Render the legend of a style as PNG. */
export async function renderLegend(style: Style, layer: Layer, icon = { width: 20, height: 20 }): Promise<Buffer> {
  const size = legendSize(style, layer, icon);
  const canvas = createCanvas(size.width, size.height);
  const g = canvas.getContext('2d');
  g.fillStyle = '#ffffff';
  g.fillRect(0, 0, size.width, size.height);
  drawLegend(g, style, layer, icon, 0);
  return canvas.encode('png');
}

/** One member of a layer group's legend: the layer and the style it is drawn with. */
export interface LegendPart {
  layer: Layer;
  style: Style;
}

const TITLE_FONT = 'bold 12px "DejaVu Sans", sans-serif';
/** Height of a member's title row above its legend. */
export const GROUP_TITLE_HEIGHT = 18;

/**
 * Size of a layer group's legend: per member, in the order given, a title row
 * (GROUP_TITLE_HEIGHT) above that member's own legend (legendSize).
 */
export function groupLegendSize(parts: LegendPart[], icon = { width: 20, height: 20 }): { width: number; height: number } {
  measurer.font = TITLE_FONT;
  let width = 1;
  let height = 0;
  for (const p of parts) {
    const s = legendSize(p.style, p.layer, icon);
    measurer.font = TITLE_FONT;
    width = Math.max(width, s.width, Math.ceil(PAD * 2 + measurer.measureText(p.layer.title).width));
    height += GROUP_TITLE_HEIGHT + s.height;
  }
  return { width, height: Math.max(1, height) };
}

/** Render a layer group's legend as one PNG: each member's title above its legend, stacked in the order given. */
export async function renderGroupLegend(parts: LegendPart[], icon = { width: 20, height: 20 }): Promise<Buffer> {
  const size = groupLegendSize(parts, icon);
  const canvas = createCanvas(size.width, size.height);
  const g = canvas.getContext('2d');
  g.fillStyle = '#ffffff';
  g.fillRect(0, 0, size.width, size.height);
  let top = 0;
  for (const p of parts) {
    g.font = TITLE_FONT;
    g.fillStyle = '#000000';
    g.textBaseline = 'middle';
    g.fillText(p.layer.title, PAD, top + GROUP_TITLE_HEIGHT / 2 + 1);
    top += GROUP_TITLE_HEIGHT;
    drawLegend(g, p.style, p.layer, icon, top);
    top += legendSize(p.style, p.layer, icon).height;
  }
  return canvas.encode('png');
}
