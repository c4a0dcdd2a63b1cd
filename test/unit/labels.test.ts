/**
 * World-anchored label placement (src/render/labels.ts): a map of any extent keeps the same labels
 * as a map of the whole area, when it reads the candidates within labelMargin of it.
 */
import { describe, expect, it } from 'vitest';
import { labelMargin, placeLabels, type LabelCandidate } from '../../src/render/labels.js';
import type { TextSymbolizer } from '../../src/render/style.js';

const sym: TextSymbolizer = {
  kind: 'text',
  label: 'nom',
  font: 'sans-serif',
  size: 10,
  fill: '#000000',
  halo: { radius: 1.5, fill: '#ffffff' },
  offset: [0, -9],
};
const big: TextSymbolizer = { ...sym, size: 14, offset: [0, 0] };
const measure = (text: string, s: TextSymbolizer) => text.length * s.size * 0.6;

/** A dense random field of candidates over size × size px (deterministic). */
function field(n: number, size: number): LabelCandidate[] {
  let seed = 7;
  const rnd = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  const out: LabelCandidate[] = [];
  for (let i = 0; i < n; i++) {
    const s = rnd() < 0.2 ? big : sym;
    const x = rnd() * size;
    const y = rnd() * size;
    out.push({
      text: `${'m'.repeat(Math.floor(rnd() * 20))}${i}`,
      x,
      y,
      sym: s,
      order: s === big ? 0 : 1,
      size: Math.floor(rnd() * 3),
      wx: x,
      wy: -y,
    });
  }
  return out;
}

const key = (c: LabelCandidate) => c.text;

describe('world-anchored label placement', () => {
  const W = 6000;
  const all = field(6000, W);
  const whole = placeLabels(all, measure, W, W);

  it('keeps no two overlapping labels, and many labels', () => {
    expect(whole.length).toBeGreaterThan(300);
    let overlaps = 0;
    for (let i = 0; i < whole.length; i++)
      for (let j = i + 1; j < whole.length; j++) {
        const a = whole[i].box;
        const b = whole[j].box;
        if (a[0] < b[2] && a[2] > b[0] && a[1] < b[3] && a[3] > b[1]) overlaps++;
      }
    expect(overlaps).toBe(0);
  });

  it('a view reading the candidates within labelMargin keeps exactly the labels of the whole that touch it', () => {
    const m = labelMargin([sym, big]);
    for (const [x0, y0, w, h] of [
      [2000, 2000, 256, 256],
      [2256, 2000, 256, 256],
      [1900, 2600, 1152, 1152],
      [3100, 1700, 700, 300],
    ]) {
      const near = all
        .filter((c) => c.x >= x0 - m && c.x <= x0 + w + m && c.y >= y0 - m && c.y <= y0 + h + m)
        .map((c) => ({ ...c, x: c.x - x0, y: c.y - y0 }))
        .reverse(); // in another order than the whole's
      const view = placeLabels(near, measure, w, h).map((p) => key(p.c));
      const expected = whole
        .filter((p) => p.box[2] >= x0 && p.box[0] <= x0 + w && p.box[3] >= y0 && p.box[1] <= y0 + h)
        .map((p) => key(p.c));
      expect(view.length).toBeGreaterThan(3);
      expect(view.sort()).toEqual(expected.sort());
    }
  });

  it('the label of a label-free area is kept whatever else is read', () => {
    const lone: LabelCandidate = { text: 'Seul', x: 25, y: 25, sym, order: 5, size: 0, wx: 100, wy: -100 };
    expect(placeLabels([lone], measure, 50, 50).map((p) => p.c.text)).toEqual(['Seul']);
  });
});
