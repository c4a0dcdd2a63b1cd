/** Well-known marks (SE 1.1 §11.3.2): circle, square, triangle, star, cross, x. */
import type { Path2D } from '@napi-rs/canvas';
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
