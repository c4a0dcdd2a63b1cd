// Pixel comparison of two PNG answers to the same GetMap (or the same tile): both decoded by sharp,
// composited over white (the requests ask for TRANSPARENT=TRUE: what a viewer shows), then compared
// pixel by pixel. A pixel differs when one of its channels differs by more than `tolerance` (0–255):
// anti-aliasing of the same edge by two rasterisers stays under it, a missing or extra feature, a
// wrong colour or a wider stroke does not.
import sharp from 'sharp';

async function flat(png) {
  const { data, info } = await sharp(png).flatten({ background: '#ffffff' }).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height, channels: info.channels };
}

/**
 * Share (0–1) of pixels differing beyond `tolerance`, plus the mean absolute channel difference.
 * Images of different sizes differ entirely (share 1).
 */
export async function comparePng(a, b, tolerance = 32) {
  const [x, y] = await Promise.all([flat(a), flat(b)]);
  if (x.width !== y.width || x.height !== y.height || x.channels !== y.channels)
    return { share: 1, meanDiff: 255, pixels: x.width * x.height, note: `sizes differ: ${x.width}×${x.height} vs ${y.width}×${y.height}` };
  const n = x.width * x.height;
  const c = x.channels;
  let differing = 0;
  let sum = 0;
  for (let i = 0; i < n; i++) {
    let worst = 0;
    for (let k = 0; k < c; k++) {
      const d = Math.abs(x.data[i * c + k] - y.data[i * c + k]);
      sum += d;
      if (d > worst) worst = d;
    }
    if (worst > tolerance) differing++;
  }
  return { share: differing / n, meanDiff: sum / (n * c), pixels: n };
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
