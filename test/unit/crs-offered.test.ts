/** The one list of offered CRSs: what each service derives from it. */
import { describe, expect, it } from 'vitest';
import { MAP_CRS_CODES, OFFERED_EPSG, isOfferedEpsg, offeredEpsg, offeredNames } from '../../src/crs/offered.js';
import { isKnownEpsg, resolveWmsCrs } from '../../src/crs/index.js';

describe('offered CRSs', () => {
  it("a layer's features: its own CRS first, then the offered list without repeating it", () => {
    expect(offeredEpsg(2154)).toEqual([2154, 3857, 4326, 4258, 3035]);
    expect(offeredEpsg(32632)).toEqual([32632, ...OFFERED_EPSG]);
    expect(isOfferedEpsg(32632, 32632)).toBe(true);
    expect(isOfferedEpsg(3857, 32632)).toBe(true);
    expect(isOfferedEpsg(3944, 2154)).toBe(false);
    expect(offeredNames(4326)).toBe('EPSG:4326, EPSG:2154, EPSG:3857, EPSG:4258, EPSG:3035, CRS84');
  });

  it('the map services offer the same list and the conic conformal zones, each one they can draw, then CRS:84', () => {
    for (const e of OFFERED_EPSG) expect(MAP_CRS_CODES).toContain(`EPSG:${e}`);
    expect(MAP_CRS_CODES).toContain('EPSG:3942');
    expect(MAP_CRS_CODES).toContain('EPSG:3950');
    expect(MAP_CRS_CODES.at(-1)).toBe('CRS:84');
    expect(new Set(MAP_CRS_CODES).size).toBe(MAP_CRS_CODES.length);
    for (const c of MAP_CRS_CODES) {
      const r = resolveWmsCrs(c, '1.3.0');
      expect(r, c).not.toBeNull();
      expect(isKnownEpsg(r!.epsg), c).toBe(true);
    }
  });
});
