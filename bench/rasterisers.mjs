#!/usr/bin/env node
/**
 * Rasteriser comparison for the WMS renderer (docs/rasteriser.md).
 *
 * Draws the same generated scene — 3,500 polygons (cadastre-like cells with 6–12 vertices),
 * 1,000 lines (30-vertex polylines in three widths, some cased) and 500 point marks — with
 *   (a) an SVG document rasterised by sharp (librsvg),
 *   (b) @resvg/resvg-js,
 *   (c) @napi-rs/canvas (Skia) with Path2D,
 * then encodes the image; and compares the encoders (Skia's PNG/JPEG/WebP vs sharp's, and
 * sharp's 8-bit palette PNG). Sizes: 256×256 and 1024×768. Prints a Markdown table of median ms.
 *
 *   node bench/rasterisers.mjs [--runs 7]
 */
import sharp from 'sharp';
import { Resvg } from '@resvg/resvg-js';
import { createCanvas, Path2D } from '@napi-rs/canvas';

const runs = Number(process.argv[process.argv.indexOf('--runs') + 1]) || 7;
sharp.concurrency(1);

// deterministic PRNG (mulberry32)
function rng(seed) {
  return () => {
    seed |= 0;
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A scene in unit coordinates [0,1]² so that it scales to any image size. */
function scene() {
  const r = rng(42);
  const polygons = [];
  for (let i = 0; i < 3500; i++) {
    const cx = r();
    const cy = r();
    const n = 6 + Math.floor(r() * 7);
    const rad = 0.004 + r() * 0.012;
    const ring = [];
    for (let k = 0; k < n; k++) {
      const a = (k / n) * Math.PI * 2;
      const rr = rad * (0.7 + 0.3 * r());
      ring.push(cx + rr * Math.cos(a), cy + rr * Math.sin(a));
    }
    polygons.push({ ring, built: r() < 0.4 });
  }
  const lines = [];
  for (let i = 0; i < 1000; i++) {
    let x = r();
    let y = r();
    let a = r() * Math.PI * 2;
    const pts = [x, y];
    for (let k = 0; k < 29; k++) {
      a += (r() - 0.5) * 0.6;
      x += Math.cos(a) * 0.01;
      y += Math.sin(a) * 0.01;
      pts.push(x, y);
    }
    lines.push({ pts, cls: i % 10 === 0 ? 0 : i % 3 === 0 ? 1 : 2 });
  }
  const points = [];
  for (let i = 0; i < 500; i++) points.push([r(), r()]);
  return { polygons, lines, points };
}

const S = scene();
const LINE_STYLES = [
  { casing: '#8c2a1c', casingWidth: 5, stroke: '#e8423f', width: 3 },
  { stroke: '#f5a623', width: 2 },
  { stroke: '#b0b0b0', width: 1 },
];

function svgDoc(w, h) {
  const f = (v) => v.toFixed(1);
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}">`,
    `<rect width="${w}" height="${h}" fill="#ffffff"/>`,
  ];
  for (const built of [true, false]) {
    let d = '';
    for (const p of S.polygons) {
      if (p.built !== built) continue;
      d += `M${f(p.ring[0] * w)} ${f(p.ring[1] * h)}`;
      for (let i = 2; i < p.ring.length; i += 2) d += `L${f(p.ring[i] * w)} ${f(p.ring[i + 1] * h)}`;
      d += 'Z';
    }
    parts.push(`<path d="${d}" fill="${built ? '#f4d6b0' : '#e8f0d8'}" stroke="${built ? '#a0522d' : '#7a8f5a'}" stroke-width="0.5"/>`);
  }
  const lineD = (cls) => {
    let d = '';
    for (const l of S.lines) {
      if (l.cls !== cls) continue;
      d += `M${f(l.pts[0] * w)} ${f(l.pts[1] * h)}`;
      for (let i = 2; i < l.pts.length; i += 2) d += `L${f(l.pts[i] * w)} ${f(l.pts[i + 1] * h)}`;
    }
    return d;
  };
  for (const [cls, st] of LINE_STYLES.entries()) {
    if (st.casing)
      parts.push(
        `<path d="${lineD(cls)}" fill="none" stroke="${st.casing}" stroke-width="${st.casingWidth}" stroke-linecap="round" stroke-linejoin="round"/>`,
      );
  }
  for (const cls of [2, 1, 0]) {
    const st = LINE_STYLES[cls];
    parts.push(
      `<path d="${lineD(cls)}" fill="none" stroke="${st.stroke}" stroke-width="${st.width}" stroke-linecap="round" stroke-linejoin="round"/>`,
    );
  }
  let pd = '';
  for (const [x, y] of S.points)
    pd += `M${f(x * w + 3)} ${f(y * h)}A3 3 0 1 0 ${f(x * w - 3)} ${f(y * h)}A3 3 0 1 0 ${f(x * w + 3)} ${f(y * h)}Z`;
  parts.push(`<path d="${pd}" fill="#e4572e" stroke="#ffffff" stroke-width="1"/>`);
  parts.push('</svg>');
  return parts.join('');
}

function drawCanvas(w, h) {
  const c = createCanvas(w, h);
  const g = c.getContext('2d');
  g.fillStyle = '#ffffff';
  g.fillRect(0, 0, w, h);
  for (const built of [true, false]) {
    const path = new Path2D();
    for (const p of S.polygons) {
      if (p.built !== built) continue;
      path.moveTo(p.ring[0] * w, p.ring[1] * h);
      for (let i = 2; i < p.ring.length; i += 2) path.lineTo(p.ring[i] * w, p.ring[i + 1] * h);
      path.closePath();
    }
    g.fillStyle = built ? '#f4d6b0' : '#e8f0d8';
    g.fill(path);
    g.strokeStyle = built ? '#a0522d' : '#7a8f5a';
    g.lineWidth = 0.5;
    g.stroke(path);
  }
  const linePath = (cls) => {
    const path = new Path2D();
    for (const l of S.lines) {
      if (l.cls !== cls) continue;
      path.moveTo(l.pts[0] * w, l.pts[1] * h);
      for (let i = 2; i < l.pts.length; i += 2) path.lineTo(l.pts[i] * w, l.pts[i + 1] * h);
    }
    return path;
  };
  g.lineCap = 'round';
  g.lineJoin = 'round';
  for (const [cls, st] of LINE_STYLES.entries()) {
    if (!st.casing) continue;
    g.strokeStyle = st.casing;
    g.lineWidth = st.casingWidth;
    g.stroke(linePath(cls));
  }
  for (const cls of [2, 1, 0]) {
    const st = LINE_STYLES[cls];
    g.strokeStyle = st.stroke;
    g.lineWidth = st.width;
    g.stroke(linePath(cls));
  }
  // one path per circle, as the renderer does: arcs appended to one Path2D cost O(n) each
  g.fillStyle = '#e4572e';
  g.strokeStyle = '#ffffff';
  g.lineWidth = 1;
  for (const [x, y] of S.points) {
    g.beginPath();
    g.arc(x * w, y * h, 3, 0, Math.PI * 2);
    g.fill();
    g.stroke();
  }
  return c;
}

/** Skia's premultiplied RGBA buffer (sharp is told so: getImageData's unpremultiply is slower). */
function rawOf(c) {
  return c.data();
}

async function time(fn) {
  await fn(); // warm-up
  const ts = [];
  let bytes = 0;
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    const out = await fn();
    ts.push(Number(process.hrtime.bigint() - t0) / 1e6);
    bytes = out?.length ?? 0;
  }
  ts.sort((a, b) => a - b);
  return { ms: ts[Math.floor(ts.length / 2)], bytes };
}

const sizes = [
  [256, 256],
  [1024, 768],
];
const cases = {
  'SVG → sharp (librsvg) → PNG': (w, h) => () =>
    sharp(Buffer.from(svgDoc(w, h)))
      .png()
      .toBuffer(),
  'SVG → resvg → PNG': (w, h) => () => new Resvg(svgDoc(w, h)).render().asPng(),
  'resvg render only (SVG built + rasterised, no encode)': (w, h) => () => (new Resvg(svgDoc(w, h)).render(), Buffer.alloc(0)),
  'Skia canvas (draw + encode PNG)': (w, h) => () => drawCanvas(w, h).encode('png'),
  // @napi-rs/canvas records drawing and rasterises when pixels are read: data() forces it
  'Skia canvas draw + rasterise (no encode)': (w, h) => () => (drawCanvas(w, h).data(), Buffer.alloc(0)),
  'Skia draw + sharp PNG (from raw)': (w, h) => () =>
    sharp(rawOf(drawCanvas(w, h)), { raw: { width: w, height: h, channels: 4, premultiplied: true } })
      .png()
      .toBuffer(),
  'Skia draw + sharp PNG (from raw, zlib level 3)': (w, h) => () =>
    sharp(rawOf(drawCanvas(w, h)), { raw: { width: w, height: h, channels: 4, premultiplied: true } })
      .png({ compressionLevel: 3 })
      .toBuffer(),
  'Skia draw + sharp PNG 8-bit palette': (w, h) => () =>
    sharp(rawOf(drawCanvas(w, h)), { raw: { width: w, height: h, channels: 4, premultiplied: true } })
      .png({ palette: true, effort: 1 })
      .toBuffer(),
  'Skia draw + Skia JPEG q85': (w, h) => () => drawCanvas(w, h).encode('jpeg', 85),
  'Skia draw + sharp JPEG q85': (w, h) => () =>
    sharp(rawOf(drawCanvas(w, h)), { raw: { width: w, height: h, channels: 4, premultiplied: true } })
      .removeAlpha()
      .jpeg({ quality: 85 })
      .toBuffer(),
  'Skia draw + Skia WebP q85': (w, h) => () => drawCanvas(w, h).encode('webp', 85),
  'Skia draw + sharp WebP q85': (w, h) => () =>
    sharp(rawOf(drawCanvas(w, h)), { raw: { width: w, height: h, channels: 4, premultiplied: true } })
      .webp({ quality: 85 })
      .toBuffer(),
};

const rows = [];
for (const [name, make] of Object.entries(cases)) {
  const cells = [];
  for (const [w, h] of sizes) {
    const r = await time(make(w, h));
    cells.push(`${r.ms.toFixed(1)} ms${r.bytes ? ` (${(r.bytes / 1024).toFixed(0)} KiB)` : ''}`);
  }
  rows.push(`| ${name} | ${cells.join(' | ')} |`);
  process.stderr.write('.');
}
process.stderr.write('\n');
console.log(
  `Scene: ${S.polygons.length} polygons, ${S.lines.length} lines (30 vertices), ${S.points.length} point marks; median of ${runs} runs; node ${process.version}, ${process.platform}/${process.arch}.\n`,
);
console.log('| rasteriser / encoder | 256×256 | 1024×768 |');
console.log('|---|---|---|');
for (const r of rows) console.log(r);
