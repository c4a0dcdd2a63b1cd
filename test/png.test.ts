/**
 * The renderer's PNG writer (src/render/png.ts), read back by an independent decoder (sharp /
 * libspng): premultiplied canvas pixels come out with straight alpha, opaque maps as RGB.
 */
import { describe, expect, it } from 'vitest';
import sharp from 'sharp';
import { createCanvas } from '@napi-rs/canvas';
import { allOpaque, encodePng } from '../src/render/png.js';
import { paintAndCut } from '../src/render/draw.js';

function canvasPixels() {
  const c = createCanvas(64, 48);
  const g = c.getContext('2d');
  g.fillStyle = 'rgba(200, 40, 10, 1)';
  g.fillRect(0, 0, 32, 48);
  g.fillStyle = 'rgba(20, 120, 240, 0.5)'; // half transparent over nothing and over red
  g.fillRect(16, 8, 40, 20);
  g.strokeStyle = '#000';
  g.lineWidth = 0.5;
  g.beginPath();
  g.arc(40, 36, 8, 0, Math.PI * 2);
  g.stroke(); // antialiased: many partial alphas
  return c.data();
}

describe('PNG writer', () => {
  it('RGBA: straight alpha, each channel within 1 of the exact unpremultiplied value', async () => {
    const px = canvasPixels();
    const png = encodePng(px, 64, 48, true);
    const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
    expect([info.width, info.height, info.channels]).toEqual([64, 48, 4]);
    let partial = 0;
    for (let i = 0; i < px.length; i += 4) {
      const a = px[i + 3];
      expect(data[i + 3]).toBe(a);
      if (a === 0) continue;
      if (a < 255) partial++;
      for (let k = 0; k < 3; k++) expect(Math.abs(data[i + k] - Math.min(255, (px[i + k] * 255) / a))).toBeLessThanOrEqual(1);
    }
    expect(partial).toBeGreaterThan(100);
    // the half-transparent blue alone, straight: (20, 120, 240, ~128)
    const at = (x: number, y: number) => Array.from(data.subarray((y * 64 + x) * 4, (y * 64 + x) * 4 + 4));
    const [r, gg, b, a] = at(50, 10);
    expect(Math.abs(r - 20) + Math.abs(gg - 120) + Math.abs(b - 240)).toBeLessThanOrEqual(6);
    expect(Math.abs(a - 128)).toBeLessThanOrEqual(1);
    expect(at(2, 2)).toEqual([200, 40, 10, 255]);
  });

  it('RGB for opaque maps: the colour channels as drawn', async () => {
    const c = createCanvas(32, 32);
    const g = c.getContext('2d');
    g.fillStyle = '#ffffff';
    g.fillRect(0, 0, 32, 32);
    g.fillStyle = '#3366cc';
    g.fillRect(4, 4, 10, 10);
    const png = encodePng(c.data(), 32, 32, false);
    const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
    expect(info.channels).toBe(3);
    expect(Array.from(data.subarray((5 * 32 + 5) * 3, (5 * 32 + 5) * 3 + 3))).toEqual([0x33, 0x66, 0xcc]);
    expect(Array.from(data.subarray(0, 3))).toEqual([255, 255, 255]);
  });

  it('cached tiles: RGB when a tile has no transparent pixel, RGBA otherwise, the same pixels either way', async () => {
    expect(allOpaque(new Uint8Array([1, 2, 3, 255, 4, 5, 6, 255]))).toBe(true);
    expect(allOpaque(new Uint8Array([1, 2, 3, 255, 4, 5, 6, 254]))).toBe(false);
    const cut = { tile: 256, cols: 2, rows: 1, buffer: 8 };
    const size = { width: 2 * 256 + 16, height: 256 + 16, format: 'image/png' as const };
    // an opaque metatile (a background colour): both tiles RGB, every pixel that colour
    for (const png of paintAndCut([], { ...size, transparent: false, bgcolor: '#3366cc' }, cut)) {
      expect(png[25]).toBe(2); // IHDR colour type: truecolour
      const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
      expect([info.width, info.height, info.channels]).toEqual([256, 256, 3]);
      let other = 0;
      for (let i = 0; i < data.length; i += 3) if (data[i] !== 0x33 || data[i + 1] !== 0x66 || data[i + 2] !== 0xcc) other++;
      expect(other).toBe(0);
    }
    // a transparent one: RGBA, every pixel transparent
    for (const png of paintAndCut([], { ...size, transparent: true }, cut)) {
      expect(png[25]).toBe(6); // truecolour with alpha
      const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
      expect(info.channels).toBe(4);
      expect(data.every((v, i) => i % 4 !== 3 || v === 0)).toBe(true);
    }
  });
});
