// Pixel comparison of two PNG answers to the same GetMap (or the same tile): both decoded by sharp,
// composited over white (the requests ask for TRANSPARENT=TRUE: what a viewer shows), then compared
// pixel by pixel. Two rasterisers never anti-alias an edge identically (a 0.6 px outline covers a
// pixel at 40% in one and 70% in the other, or lands one pixel over), so a pixel of one image matches
// when a pixel within `radius` (default 1) of the same place in the other image is within `tolerance`
// on every channel; the share is the worse of the two directions. A missing or extra feature, a wrong
// colour or a stroke wider by more than a pixel still counts. The strict figure (radius 0) is returned
// too, for information.
import sharp from 'sharp';

async function flat(png) {
  const { data, info } = await sharp(png).flatten({ background: '#ffffff' }).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height, channels: info.channels };
}

function unmatched(x, y, tolerance, radius) {
  const { width: W, height: H, channels: c } = x;
  let bad = 0;
  for (let j = 0; j < H; j++)
    for (let i = 0; i < W; i++) {
      const p = (j * W + i) * c;
      let ok = false;
      for (let dj = -radius; dj <= radius && !ok; dj++) {
        const jj = j + dj;
        if (jj < 0 || jj >= H) continue;
        for (let di = -radius; di <= radius && !ok; di++) {
          const ii = i + di;
          if (ii < 0 || ii >= W) continue;
          const q = (jj * W + ii) * c;
          let worst = 0;
          for (let k = 0; k < c; k++) worst = Math.max(worst, Math.abs(x.data[p + k] - y.data[q + k]));
          ok = worst <= tolerance;
        }
      }
      if (!ok) bad++;
    }
  return bad / (W * H);
}

/**
 * Share (0–1) of pixels without a match (see above), the strict share (same pixel only) and the mean
 * absolute channel difference. Images of different sizes differ entirely (share 1).
 */
export async function comparePng(a, b, tolerance = 48, radius = 1) {
  const [x, y] = await Promise.all([flat(a), flat(b)]);
  if (x.width !== y.width || x.height !== y.height || x.channels !== y.channels)
    return {
      share: 1,
      strict: 1,
      meanDiff: 255,
      pixels: x.width * x.height,
      note: `sizes differ: ${x.width}×${x.height} vs ${y.width}×${y.height}`,
    };
  let sum = 0;
  for (let i = 0; i < x.data.length; i++) sum += Math.abs(x.data[i] - y.data[i]);
  return {
    share: Math.max(unmatched(x, y, tolerance, radius), unmatched(y, x, tolerance, radius)),
    strict: unmatched(x, y, tolerance, 0),
    meanDiff: sum / x.data.length,
    pixels: x.width * x.height,
  };
}

/** Share of pixels that are not white once flattened: an image of nothing compares equal to any other image of nothing. */
export async function inkShare(png) {
  const x = await flat(png);
  const n = x.width * x.height;
  let ink = 0;
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < x.channels; k++)
      if (x.data[i * x.channels + k] < 250) {
        ink++;
        break;
      }
  }
  return ink / n;
}
