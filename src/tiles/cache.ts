/**
 * Tile cache tiers behind one interface: a memory LRU bounded in bytes, a disk tier (atomic
 * writes, sharded folders, survives restarts) and an optional Redis tier shared by several
 * processes. A TieredCache reads through them in that order and promotes hits upwards.
 *
 * An entry is the tile bytes plus its ETag and creation time; disk and Redis store it with a
 * small header (magic, created ms, etag) in front of the bytes.
 */
import { createHash, randomBytes } from 'node:crypto';
import { close as fsClose, fstat, open as fsOpen, read as fsRead } from 'node:fs';
import { lstat, mkdir, opendir, rename, rm, writeFile, unlink } from 'node:fs/promises';
import path from 'node:path';
import { LRUCache } from 'lru-cache';
import { createRequire } from 'node:module';
import type { Redis } from 'ioredis';
import type { Metrics } from '../ops/metrics.js';

export interface TileEntry {
  data: Buffer;
  etag: string;
  /** ms since epoch */
  created: number;
}

export interface CacheTier {
  readonly name: string;
  get(key: string): Promise<TileEntry | undefined>;
  put(key: string, entry: TileEntry): Promise<void>;
  delete(key: string): Promise<void>;
  /** Remove every key starting with prefix (a '/'-separated folder prefix). Returns a count when known. */
  deletePrefix(prefix: string): Promise<number>;
  close?(): Promise<void>;
}

export function makeEntry(data: Buffer): TileEntry {
  return { data, etag: `"${createHash('sha1').update(data).digest('base64url').slice(0, 22)}"`, created: Date.now() };
}

const MAGIC = 0x47445431; // 'GDT1'

export function encodeEntry(e: TileEntry): Buffer {
  const tag = Buffer.from(e.etag, 'utf8');
  const h = Buffer.alloc(4 + 8 + 1 + tag.length);
  h.writeUInt32BE(MAGIC, 0);
  h.writeDoubleBE(e.created, 4);
  h.writeUInt8(tag.length, 12);
  tag.copy(h, 13);
  return Buffer.concat([h, e.data]);
}

export function decodeEntry(b: Buffer): TileEntry | undefined {
  if (b.length < 13 || b.readUInt32BE(0) !== MAGIC) return undefined;
  const n = b.readUInt8(12);
  if (b.length < 13 + n) return undefined;
  return { created: b.readDoubleBE(4), etag: b.subarray(13, 13 + n).toString('utf8'), data: b.subarray(13 + n) };
}

type Counter = (tier: string, event: string, n?: number) => void;

export function counterFor(metrics?: Metrics): Counter {
  return (tier, event, n = 1) => metrics?.cache.inc({ tier, event }, n);
}

/** Memory tier: LRU bounded in bytes. */
export class MemoryTier implements CacheTier {
  readonly name = 'memory';
  private lru: LRUCache<string, TileEntry>;
  evictions = 0;
  constructor(maxBytes: number, count: Counter = () => undefined) {
    this.lru = new LRUCache<string, TileEntry>({
      maxSize: Math.max(1024, maxBytes),
      sizeCalculation: (e, k) => e.data.length + k.length + 64,
      dispose: (_v, _k, reason) => {
        if (reason === 'evict') {
          this.evictions++;
          count(this.name, 'eviction');
        }
      },
    });
  }
  get size(): number {
    return this.lru.size;
  }
  get bytes(): number {
    return this.lru.calculatedSize;
  }
  has(key: string): boolean {
    return this.lru.has(key);
  }
  /** The entry, synchronously (the hit fast path, src/services/wmts/fast.ts); refreshes its recency like get(). */
  peek(key: string): TileEntry | undefined {
    return this.lru.get(key);
  }
  async get(key: string) {
    return this.lru.get(key);
  }
  async put(key: string, entry: TileEntry) {
    this.lru.set(key, entry);
  }
  async delete(key: string) {
    this.lru.delete(key);
  }
  async deletePrefix(prefix: string) {
    let n = 0;
    for (const k of [...this.lru.keys()]) {
      if (k.startsWith(prefix)) {
        this.lru.delete(k);
        n++;
      }
    }
    return n;
  }
}

/** The first read of a tile file: most tiles are smaller (a larger one takes a second read). */
const READ_GUESS = 128 * 1024;

/** A temporary tile file this old was abandoned (a write takes milliseconds): its process died mid-write. */
const ABANDONED_TMP_MS = 60_000;

/** Disk tier: one file per tile under `dir/<key>`; writes go to a temp file renamed into place. */
export class DiskTier implements CacheTier {
  readonly name = 'disk';
  private readonly scratch: Buffer[] = [];
  /** The start-up sweep of what a killed process left (`*.tmp` files, `*.deleted-*` folders). */
  readonly swept: Promise<{ files: number; folders: number }>;
  constructor(readonly dir: string) {
    this.swept = this.sweep().catch(() => ({ files: 0, folders: 0 }));
  }

  /**
   * Remove what an interrupted process left behind: temporary files older than a minute (a kill -9
   * between write and rename) and folders renamed for deletion whose removal did not finish. Walks
   * the tree asynchronously, one directory handle at a time; safe while other processes share the
   * folder (their temporary files are fresh).
   */
  async sweep(now = Date.now()): Promise<{ files: number; folders: number }> {
    const out = { files: 0, folders: 0 };
    const walk = async (dir: string): Promise<void> => {
      let handle: import('node:fs').Dir;
      try {
        handle = await opendir(dir);
      } catch {
        return;
      }
      for await (const e of handle) {
        const p = path.join(dir, e.name);
        if (e.isDirectory()) {
          if (/\.deleted-[0-9a-f]+$/.test(e.name)) {
            await rm(p, { recursive: true, force: true });
            out.folders++;
          } else await walk(p);
        } else if (e.name.endsWith('.tmp')) {
          const st = await lstat(p).catch(() => undefined);
          if (st && now - st.mtimeMs > ABANDONED_TMP_MS) {
            await unlink(p).catch(() => undefined);
            out.files++;
          }
        }
      }
    };
    await walk(this.dir);
    return out;
  }
  private file(key: string): string {
    const p = path.join(this.dir, key);
    if (!p.startsWith(path.resolve(this.dir) + path.sep) && !p.startsWith(this.dir + path.sep)) throw new Error(`bad cache key ${key}`);
    return p;
  }
  async get(key: string) {
    try {
      return decodeEntry(await this.read(this.file(key)));
    } catch {
      return undefined;
    }
  }
  /**
   * The file's bytes in two thread-pool trips rather than readFile's four (open, fstat, read,
   * close): open, then one read into a buffer the size of most tiles; only a larger file takes a
   * stat and a second read. The close is not waited for.
   */
  private async read(file: string): Promise<Buffer> {
    const fd = await new Promise<number>((ok, ko) => fsOpen(file, 'r', (e, fd) => (e ? ko(e) : ok(fd))));
    const readAt = (buf: Buffer, at: number, length: number, position: number) =>
      new Promise<number>((ok, ko) => fsRead(fd, buf, at, length, position, (e, n) => (e ? ko(e) : ok(n))));
    // the first read lands in a scratch buffer reused across reads (no 128 kB allocation per read,
    // which would drive V8's external-memory collections); the tile is copied out at its size
    const first = this.scratch.pop() ?? Buffer.allocUnsafeSlow(READ_GUESS);
    try {
      const n = await readAt(first, 0, READ_GUESS, 0);
      if (n < READ_GUESS) return Buffer.from(first.subarray(0, n));
      const size = await new Promise<number>((ok, ko) => fstat(fd, (e, st) => (e ? ko(e) : ok(st.size))));
      const all = Buffer.allocUnsafe(Math.max(size, READ_GUESS));
      first.copy(all);
      const rest = size > READ_GUESS ? await readAt(all, READ_GUESS, size - READ_GUESS, READ_GUESS) : 0;
      return all.subarray(0, READ_GUESS + rest);
    } finally {
      if (this.scratch.length < 8) this.scratch.push(first);
      fsClose(fd, () => undefined);
    }
  }
  async put(key: string, entry: TileEntry) {
    const f = this.file(key);
    const tmp = `${f}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    await mkdir(path.dirname(f), { recursive: true });
    try {
      await writeFile(tmp, encodeEntry(entry));
      await rename(tmp, f);
    } catch (e) {
      await unlink(tmp).catch(() => undefined);
      throw e;
    }
  }
  async delete(key: string) {
    await rm(this.file(key), { force: true });
  }
  async deletePrefix(prefix: string) {
    const p = prefix.replace(/\/+$/, '');
    if (!p) return 0;
    // rename first so readers stop seeing it at once, then remove in the background of this call
    const target = this.file(p);
    const gone = `${target}.deleted-${randomBytes(4).toString('hex')}`;
    try {
      await rename(target, gone);
    } catch {
      return 0;
    }
    await rm(gone, { recursive: true, force: true });
    return 1;
  }
}

/** Redis tier, shared by every process pointing at the same server. */
export class RedisTier implements CacheTier {
  readonly name = 'redis';
  readonly redis: Redis;
  constructor(
    url: string,
    private readonly prefix = 'geodata:tile:',
    private readonly ttlSeconds = 0,
    private readonly onError: (e: Error) => void = () => undefined,
  ) {
    // a dead Redis must not stall tile requests: commands time out and count as misses
    // ioredis is loaded only when a Redis tier is configured (~45 modules, resident memory for nothing otherwise)
    const { Redis: RedisClient } = createRequire(import.meta.url)('ioredis') as typeof import('ioredis');
    this.redis = new RedisClient(url, {
      lazyConnect: false,
      maxRetriesPerRequest: 1,
      enableOfflineQueue: true,
      connectTimeout: 2000,
      commandTimeout: 500,
    });
    this.redis.on('error', (e) => this.onError(e));
  }
  async get(key: string) {
    try {
      const b = await this.redis.getBuffer(this.prefix + key);
      return b ? decodeEntry(b) : undefined;
    } catch (e) {
      this.onError(e as Error);
      return undefined;
    }
  }
  async put(key: string, entry: TileEntry) {
    try {
      if (this.ttlSeconds > 0) await this.redis.set(this.prefix + key, encodeEntry(entry), 'EX', this.ttlSeconds);
      else await this.redis.set(this.prefix + key, encodeEntry(entry));
    } catch (e) {
      this.onError(e as Error);
    }
  }
  async delete(key: string) {
    try {
      await this.redis.del(this.prefix + key);
    } catch (e) {
      this.onError(e as Error);
    }
  }
  async deletePrefix(prefix: string) {
    let n = 0;
    try {
      let cursor = '0';
      const pattern = `${(this.prefix + prefix).replace(/[*?[\]\\]/g, (c) => `\\${c}`)}*`;
      do {
        const [next, keys] = await this.redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
        cursor = next;
        if (keys.length) n += await this.redis.unlink(...keys);
      } while (cursor !== '0');
    } catch (e) {
      this.onError(e as Error);
    }
    return n;
  }
  async close() {
    this.redis.disconnect();
  }
}

export interface CacheResult {
  entry: TileEntry;
  tier: string;
}

/** Reads through the tiers in order, promotes hits to the faster tiers, writes and deletes in all. */
export class TieredCache {
  constructor(
    readonly tiers: CacheTier[],
    private readonly count: Counter = () => undefined,
  ) {}

  get memory(): MemoryTier | undefined {
    return this.tiers.find((t): t is MemoryTier => t instanceof MemoryTier);
  }

  async get(key: string): Promise<CacheResult | undefined> {
    for (let i = 0; i < this.tiers.length; i++) {
      const t = this.tiers[i];
      const e = await t.get(key);
      if (e) {
        this.count(t.name, 'hit');
        for (let j = 0; j < i; j++) await this.tiers[j].put(key, e).catch(() => undefined);
        return { entry: e, tier: t.name };
      }
      this.count(t.name, 'miss');
    }
    return undefined;
  }

  async put(key: string, entry: TileEntry): Promise<void> {
    await Promise.all(this.tiers.map((t) => t.put(key, entry)));
  }

  async delete(key: string): Promise<void> {
    await Promise.all(this.tiers.map((t) => t.delete(key)));
  }

  async deletePrefix(prefix: string): Promise<number> {
    const n = await Promise.all(this.tiers.map((t) => t.deletePrefix(prefix)));
    return n.reduce((a, b) => a + b, 0);
  }

  async close(): Promise<void> {
    for (const t of this.tiers) await t.close?.();
  }
}
