/**
 * PNG writer for the renderer's canvases: Skia's premultiplied RGBA straight into a truecolour PNG
 * (RGBA when transparent, RGB otherwise), filter type 0 on every row, deflated by Node's zlib.
 *
 * Why not sharp here: for a 256² map the work is the deflate, and Node's zlib at level 2 gives files
 * as small as sharp's (libvips) at level 3 in about 60 % of the time; sharp also had to be handed
 * the pixels through a libvips pipeline. Measured on the street-scale bench maps
 * (docs/rasteriser.md, "PNG encoding"). Paletted PNG (image/png8) still goes through sharp, which
 * quantises with libimagequant.
 */
import zlib from 'node:zlib';

const SIGNATURE = Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]);
const IEND = chunk('IEND', Buffer.alloc(0));

function chunk(type: string, data: Buffer): Buffer {
  const out = Buffer.allocUnsafe(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'latin1');
  data.copy(out, 8);
  out.writeUInt32BE(zlib.crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

/** zlib level: 2 is the measured knee (size within 3 % of level 3, clearly faster). */
export const PNG_LEVEL = 2;

/** Whether every pixel of RGBA `px` is opaque (stops at the first that is not). */
export function allOpaque(px: Uint8Array): boolean {
  for (let i = 3; i < px.length; i += 4) if (px[i] !== 255) return false;
  return true;
}

/**
 * Encode premultiplied RGBA pixels (`width`×`height`, rows packed) as a PNG: RGBA with straight
 * (unpremultiplied) alpha when `alpha`, else RGB (the canvas is then opaque: alpha is dropped).
 * `straight`: the pixels' alpha is straight already (the renderer's cell bitmap), taken as it is.
 */
export function encodePng(px: Uint8Array, width: number, height: number, alpha: boolean, level = PNG_LEVEL, straight = false): Buffer {
  const bpp = alpha ? 4 : 3;
  const stride = width * bpp;
  const raw = Buffer.allocUnsafe((stride + 1) * height);
  for (let y = 0; y < height; y++) {
    let o = y * (stride + 1);
    raw[o++] = 0; // filter: none
    let s = y * width * 4;
    const end = s + width * 4;
    if (alpha) {
      raw.set(px.subarray(s, end), o);
      // unpremultiply what is not fully opaque or fully transparent
      if (!straight)
        for (; s < end; s += 4, o += 4) {
          const a = px[s + 3];
          if (a === 255 || a === 0) continue;
          const f = 255 / a;
          raw[o] = Math.min(255, Math.round(px[s] * f));
          raw[o + 1] = Math.min(255, Math.round(px[s + 1] * f));
          raw[o + 2] = Math.min(255, Math.round(px[s + 2] * f));
        }
    } else {
      for (; s < end; s += 4, o += 3) {
        raw[o] = px[s];
        raw[o + 1] = px[s + 1];
        raw[o + 2] = px[s + 2];
      }
    }
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = alpha ? 6 : 2; // colour type: RGBA / RGB
  // ihdr[10..12] = 0: deflate, adaptive filtering method 0, no interlace
  const idat = zlib.deflateSync(raw, { level, memLevel: 9 });
  return Buffer.concat([SIGNATURE, chunk('IHDR', ihdr), chunk('IDAT', idat), IEND]);
}
