/** The disk tile tier cleans what a killed process left: old temporary files and half-deleted folders, nothing else. */
import { existsSync, mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DiskTier } from '../src/tiles/cache.js';

describe('disk tier start-up sweep', () => {
  it('removes abandoned *.tmp files and *.deleted-* folders, keeps tiles and fresh temporary files', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'tiles-sweep-'));
    try {
      const d = path.join(dir, 'parcels', 'v1', 'WebMercatorQuad', '12', '2101');
      mkdirSync(d, { recursive: true });
      const tile = path.join(d, '1460.png');
      const oldTmp = path.join(d, '1461.png.4242.abcd1234.tmp');
      const freshTmp = path.join(d, '1462.png.4243.abcd1235.tmp');
      writeFileSync(tile, 'tile');
      writeFileSync(oldTmp, 'half');
      writeFileSync(freshTmp, 'writing');
      const old = new Date(Date.now() - 10 * 60_000);
      utimesSync(oldTmp, old, old);
      const deleted = path.join(dir, 'roads.deleted-0a1b2c3d');
      mkdirSync(path.join(deleted, 'v3', '5'), { recursive: true });
      writeFileSync(path.join(deleted, 'v3', '5', 'x.png'), 'old');
      const tier = new DiskTier(dir);
      const swept = await tier.swept;
      expect(swept).toEqual({ files: 1, folders: 1 });
      expect(existsSync(tile)).toBe(true);
      expect(existsSync(freshTmp)).toBe(true);
      expect(existsSync(oldTmp)).toBe(false);
      expect(existsSync(deleted)).toBe(false);
      // a missing folder is not an error
      expect(await new DiskTier(path.join(dir, 'nope')).swept).toEqual({ files: 0, folders: 0 });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
