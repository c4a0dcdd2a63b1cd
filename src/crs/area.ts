/**
 * Area of a request's bounding box in km², measured in EPSG:3035 (ETRS89 Lambert azimuthal
 * equal-area), for the `limits.maxBboxAreaKm2` guard. The box is densified before projection, so
 * a degree box or a Web Mercator box gets its true ground area (up to the enclosing-box error).
 */
import type { Extent } from '../registry/types.js';
import { transformExtent } from './index.js';

export function bboxAreaKm2(e: Extent, epsg: number): number {
  let t: Extent;
  try {
    t = transformExtent(e, epsg, 3035);
  } catch {
    return Infinity; // not projectable at all: treat as too large
  }
  return ((t.maxx - t.minx) * (t.maxy - t.miny)) / 1e6;
}
