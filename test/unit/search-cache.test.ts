/**
 * The catalogue's search cache without a database: a version read in flight is never handed to a
 * request that arrived after it was sent (such requests share the next read); entries of another
 * version are never served; the byte budget evicts the least recently used.
 */
import { describe, it, expect } from 'vitest';
import { SearchCache } from '../../src/catalog/search-cache.js';

describe('SearchCache', () => {
  it('requests arriving during a version read share the next read, sent after it', async () => {
    const c = new SearchCache();
    let version = 1;
    const sent: number[] = [];
    const pending: (() => void)[] = [];
    const read = () =>
      new Promise<string>((resolve) => {
        const at = version; // the snapshot is taken when the read is sent
        sent.push(at);
        pending.push(() => resolve(String(at)));
      });
    const a = c.readVersion('s', read);
    version = 2; // a change commits while A's read is in flight
    const b = c.readVersion('s', read);
    const d = c.readVersion('s', read);
    expect(sent).toEqual([1]); // B and D wait: A's read may predate the change
    pending.shift()!();
    expect(await a).toBe('1');
    await new Promise((r) => setTimeout(r, 0));
    expect(sent).toEqual([1, 2]); // one read for B and D, sent after they arrived
    pending.shift()!();
    expect(await b).toBe('2');
    expect(await d).toBe('2');
    // nothing in flight: a new request reads at once
    const e = c.readVersion('s', read);
    expect(sent).toEqual([1, 2, 2]);
    pending.shift()!();
    expect(await e).toBe('2');
  });

  it('a failed read fails its requests only; the next read is sent', async () => {
    const c = new SearchCache();
    let n = 0;
    const a = c.readVersion('s', () => Promise.reject(new Error('down')));
    const b = c.readVersion('s', async () => String(++n));
    await expect(a).rejects.toThrow('down');
    expect(await b).toBe('1');
  });

  it('serves an entry under its own version only, and evicts the least recently used over the budget', () => {
    const c = new SearchCache(80); // an entry of 10 characters holds 30 bytes
    const e = (body: string) => ({ matched: 1, returned: 1, body });
    const k = (v: string, n: number) => SearchCache.key('s', v, [n]);
    c.get('s', '1', k('1', 0));
    c.set('s', '1', k('1', 1), e('a'.repeat(10)));
    c.set('s', '1', k('1', 2), e('b'.repeat(10)));
    expect(c.get('s', '1', k('1', 1))?.body).toBe('a'.repeat(10));
    c.set('s', '1', k('1', 3), e('c'.repeat(10))); // over 80 bytes: entry 2, the least recently used, goes
    expect(c.get('s', '1', k('1', 2))).toBeUndefined();
    expect(c.get('s', '1', k('1', 1))).toBeDefined();
    // a newer version seen: the older entries are dropped, and an answer of the older one is not kept
    expect(c.get('s', '2', k('2', 1))).toBeUndefined();
    c.set('s', '1', k('1', 4), e('d'));
    expect(c.get('s', '1', k('1', 4))).toBeUndefined();
    c.enabled = false;
    c.set('s', '2', k('2', 5), e('e'));
    expect(c.get('s', '2', k('2', 5))).toBeUndefined();
  });
});
