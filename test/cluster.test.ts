/**
 * The real server as a cluster: `node dist/src/main.js serve` with server.processes = 2 on one
 * port and a real redis-server. Every request below opens its own connection, so the primary
 * hands them to both workers in turn. Checked as a client sees it:
 *  - both workers answer; /metrics carries both processes' series (process label); /readyz;
 *  - a cold metatile asked of both processes at once is rendered once in the cluster;
 *  - an edit in PostGIS: once a tile or a GetMap shows it, no process serves the old picture;
 *  - a worker killed (SIGKILL) under load: no request started after the kill fails, and the
 *    primary starts a new worker;
 *  - a rolling restart (SIGHUP to the primary) under load: no request fails, every worker replaced;
 *  - /usage counts equal the requests the client made, a worker killed before any flush included.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import sharp from 'sharp';
import { testDatabaseUrl } from './helpers/app.js';
import { redisBin, startRedis } from './helpers/redis.js';
import { transformPoint } from '../src/crs/index.js';
import { WEB_MERCATOR_QUAD as W } from '../src/tiles/matrixsets.js';

const main = path.join(process.cwd(), 'dist', 'src', 'main.js');

interface Res {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** One GET on a connection of its own (no keep-alive): the primary picks the worker. */
function get(base: string, p: string): Promise<Res> {
  return new Promise((resolve, reject) => {
    const req = http.get(`${base}${p}`, { agent: false, timeout: 30_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

async function alphaAtCentre(png: Buffer): Promise<number> {
  const { data, info } = await sharp(png).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  const i = (Math.floor(info.height / 2) * info.width + Math.floor(info.width / 2)) * info.channels;
  return data[i + 3];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(!existsSync(main) || !redisBin)('cluster: two processes on one port with Redis', () => {
  let redis: Awaited<ReturnType<typeof startRedis>>;
  let server: ChildProcess;
  let base = '';
  let out = '';
  let dir = '';
  const db = new pg.Client({ connectionString: testDatabaseUrl() });
  // successful requests of layer 'csq' this file made (the /usage check compares with them)
  let csqSent = 0;
  const CX = 905000;
  const CY = 6805000;
  const [mx, my] = transformPoint(CX, CY, 2154, 3857);
  const z = 11;
  const span = W.matrices[z].resolution * 256;
  const tx = Math.floor((mx - W.origin[0]) / span);
  const ty = Math.floor((W.origin[1] - my) / span);
  const tile = `/tiles/csq/${z}/${tx}/${ty}.png`;
  const getMap = `/wms?SERVICE=WMS&VERSION=1.3.0&REQUEST=GetMap&LAYERS=csq&STYLES=&CRS=EPSG:2154&BBOX=${CX - 1000},${CY - 1000},${CX + 1000},${CY + 1000}&WIDTH=64&HEIGHT=64&FORMAT=image/png&TRANSPARENT=TRUE`;

  /** Worker pids by slot, from the 'server ready' lines logged so far (the latest per slot). */
  const workers = () => {
    const m = new Map<string, number>();
    for (const line of out.split('\n')) {
      if (!line.includes('"server ready"')) continue;
      const j = JSON.parse(line);
      m.set(String(j.process), j.pid);
    }
    return m;
  };
  const waitLog = async (test: () => boolean, what: string, ms = 60_000) => {
    const until = Date.now() + ms;
    while (!test()) {
      if (Date.now() > until) throw new Error(`${what}: not seen in the log:\n${out.slice(-3000)}`);
      await sleep(50);
    }
  };

  /** `clients` loops of GETs until stop(); every outcome with its start time. */
  function load(paths: string[], clients: number) {
    let running = true;
    const results: { at: number; ok: boolean; status: number; err?: string; path: string; body?: string }[] = [];
    const loops = Array.from({ length: clients }, async (_, c) => {
      for (let i = c; running; i++) {
        const p = paths[i % paths.length];
        const at = Date.now();
        try {
          const r = await get(base, p);
          const ok = r.status === 200;
          results.push({ at, ok, status: r.status, path: p, ...(ok ? {} : { body: r.body.toString().slice(-300) }) });
        } catch (e) {
          results.push({ at, ok: false, status: 0, err: (e as Error).message, path: p });
        }
      }
    });
    return {
      results,
      stop: async () => {
        running = false;
        await Promise.all(loops);
        return results;
      },
    };
  }

  beforeAll(async () => {
    redis = await startRedis();
    await db.connect();
    await db.query(`CREATE SCHEMA IF NOT EXISTS clustertest;
      DROP TABLE IF EXISTS clustertest.squares;
      CREATE TABLE clustertest.squares (id int PRIMARY KEY, geom geometry(Polygon, 2154));
      INSERT INTO clustertest.squares VALUES (1, ST_MakeEnvelope(${CX - 5000}, ${CY - 5000}, ${CX + 5000}, ${CY + 5000}, 2154));
      CREATE SCHEMA IF NOT EXISTS geodata_ops;
      CREATE TABLE IF NOT EXISTS geodata_ops.usage_daily (day date NOT NULL, layer text NOT NULL, service text NOT NULL, caller text NOT NULL,
        requests bigint NOT NULL DEFAULT 0, features bigint NOT NULL DEFAULT 0, bytes bigint NOT NULL DEFAULT 0, PRIMARY KEY (day, layer, service, caller));
      DELETE FROM geodata_ops.usage_daily WHERE layer IN ('csq', 'csq2');`);
    dir = mkdtempSync(path.join(os.tmpdir(), 'cluster-'));
    const cfg = path.join(dir, 'config.yaml');
    writeFileSync(
      cfg,
      [
        'server:',
        '  processes: 2',
        '  shutdownGraceMs: 10000',
        'redis:',
        `  url: ${redis.url}`,
        'database:',
        '  schemas: [clustertest]',
        'tiles:',
        `  diskDir: ${path.join(dir, 'tiles')}`,
        // this shared test machine is slow, and a starting worker slows the others: overload refusals
        // (shedding, ServerBusy after a long wait for a render slot) would hide what is tested here
        'limits:',
        '  shedEventLoopDelayMs: 0',
        '  maxQueueWaitMs: 120000',
        'ops:',
        '  usageFlushSeconds: 3600',
        'catalog:',
        `  schema: cat_cluster_${process.pid}`,
        'layers:',
        '  - { table: clustertest.squares, name: csq }',
        '  - { table: clustertest.squares, name: csq2 }',
        '',
      ].join('\n'),
    );
    server = spawn(process.execPath, [main, 'serve', '--config', cfg], {
      env: {
        ...process.env,
        DATABASE_URL: testDatabaseUrl(),
        PORT: '0',
        HOST: '127.0.0.1',
        LOG_LEVEL: 'info',
        PROCESSES: '',
        REDIS_URL: '',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    server.stdout!.on('data', (d) => {
      out += d;
    });
    server.stderr!.on('data', (d) => {
      out += d;
    });
    await waitLog(() => out.includes('"cluster ready"') && workers().size === 2, 'cluster ready with two workers', 120_000);
    base = /"url":"(http:\/\/[^"]+)\/"/.exec(out)![1];
  }, 180_000);

  afterAll(async () => {
    if (server && server.exitCode === null) {
      const exited = new Promise((r) => server.once('exit', r));
      server.kill('SIGTERM');
      await exited;
    }
    redis?.stop();
    if (process.env.CLUSTER_TEST_LOG) writeFileSync(process.env.CLUSTER_TEST_LOG, out);
    await db.query(`DROP SCHEMA IF EXISTS cat_cluster_${process.pid} CASCADE`).catch(() => undefined);
    await db.end();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it('two workers answer on the port; /metrics has both processes; /readyz answers per process', async () => {
    expect(workers().size).toBe(2);
    const ready = await Promise.all(Array.from({ length: 4 }, () => get(base, '/readyz')));
    for (const r of ready) {
      expect(r.status).toBe(200);
      expect(JSON.parse(r.body.toString()).status).toBe('ready');
    }
    expect(new Set(ready.map((r) => JSON.parse(r.body.toString()).process)).size).toBe(2);
    const metrics = (await get(base, '/metrics')).body.toString();
    for (const slot of ['0', '1']) expect(metrics).toMatch(new RegExp(`geodata_process_cpu_seconds_total\\{[^}]*process="${slot}"`));
  });

  it('a cold metatile asked of both processes at once is rendered once in the cluster', async () => {
    const rs = await Promise.all(Array.from({ length: 8 }, () => get(base, tile)));
    for (const r of rs) expect(r.status).toBe(200);
    csqSent += rs.length;
    const tiers = rs.map((r) => r.headers['x-cache-tier']);
    expect(tiers.filter((t) => t === 'render')).toHaveLength(1);
    expect(new Set(rs.map((r) => r.body.toString('base64'))).size).toBe(1);
    expect(await alphaAtCentre(rs[0].body)).toBeGreaterThan(0);
  });

  it('an edit in PostGIS: once seen through one process, never served stale by the other (tile and GetMap)', async () => {
    const before = await get(base, getMap);
    expect(before.status).toBe(200);
    csqSent++;
    expect(await alphaAtCentre(before.body)).toBeGreaterThan(0);
    // warm both processes' memory tiers with the tile
    for (let i = 0; i < 6; i++) expect((await get(base, tile)).status).toBe(200);
    csqSent += 6;
    // move the square away: the centre of the tile and of the map becomes empty
    await db.query('UPDATE clustertest.squares SET geom = ST_Translate(geom, 50000, 0)');
    const until = Date.now() + 20_000;
    for (;;) {
      const r = await get(base, tile);
      csqSent++;
      if ((await alphaAtCentre(r.body)) === 0) break;
      if (Date.now() > until) throw new Error('the edit never showed in the tile');
      await sleep(25);
    }
    for (let i = 0; i < 20; i++) {
      const [t, m] = await Promise.all([get(base, tile), get(base, getMap)]);
      csqSent += 2;
      expect(t.status).toBe(200);
      expect(m.status).toBe(200);
      expect(await alphaAtCentre(t.body), `tile request ${i} (${t.headers['x-cache-tier']})`).toBe(0);
      expect(await alphaAtCentre(m.body), `GetMap request ${i}`).toBe(0);
    }
  }, 60_000);

  it('a worker killed under load: nothing started after the kill fails, and the primary starts another', async () => {
    const before = workers();
    const victim = before.get('0')!;
    const l = load(['/tiles/csq2/11/' + tx + '/' + ty + '.png', '/healthz'], 6);
    await sleep(800);
    const killedAt = Date.now();
    process.kill(victim, 'SIGKILL');
    await waitLog(() => workers().get('0') !== victim, 'a new worker 0');
    await sleep(800);
    const results = await l.stop();
    const after = results.filter((r) => r.at > killedAt + 100);
    expect(after.length).toBeGreaterThan(10);
    expect(after.filter((r) => !r.ok)).toEqual([]);
    // only requests in flight at the kill could fail: one per client at most
    expect(results.filter((r) => !r.ok).length).toBeLessThanOrEqual(6);
    expect(out).toContain('worker process died; starting a new one');
    const ready = await Promise.all(Array.from({ length: 4 }, () => get(base, '/readyz')));
    expect(new Set(ready.map((r) => JSON.parse(r.body.toString()).process)).size).toBe(2);
  }, 90_000);

  it('a rolling restart (SIGHUP to the primary) under load drops no request and replaces every worker', async () => {
    const before = workers();
    const l = load([tile, getMap, '/healthz'], 6);
    await sleep(500);
    server.kill('SIGHUP');
    await waitLog(() => out.includes('rolling restart done'), 'rolling restart done', 280_000);
    await sleep(300);
    const results = await l.stop();
    csqSent += results.filter((r) => r.ok && r.path !== '/healthz').length;
    expect(results.length).toBeGreaterThan(20);
    expect(results.filter((r) => !r.ok)).toEqual([]);
    const now = workers();
    for (const slot of ['0', '1']) expect(now.get(slot)).not.toBe(before.get(slot));
  }, 300_000);

  it('/usage counts equal what the client sent, a worker killed before any flush included', async () => {
    const rs = await Promise.all(Array.from({ length: 30 }, (_, i) => get(base, i % 3 ? tile : getMap)));
    for (const r of rs) expect(r.status).toBe(200);
    csqSent += rs.length;
    const day = new Date().toISOString().slice(0, 10);
    const total = async () => {
      const u = JSON.parse((await get(base, `/usage?layer=csq&from=${day}&to=${day}`)).body.toString());
      return u.rows.reduce((a: number, r: { requests: number }) => a + r.requests, 0) as number;
    };
    // usage is counted as each response ends, sent to Redis a moment later: wait until every count
    // has arrived (on a loaded machine a worker's event loop can be late by more than a fixed pause),
    // then kill a worker hard — counts already sent must survive it, none added twice
    const until = Date.now() + 10_000;
    while ((await total()) !== csqSent && Date.now() < until) await sleep(100);
    expect(await total()).toBe(csqSent);
    const w = workers();
    process.kill(w.get('1')!, 'SIGKILL');
    await waitLog(() => workers().get('1') !== w.get('1'), 'a new worker 1');
    for (let i = 0; i < 4; i++) expect(await total()).toBe(csqSent);
  }, 90_000);

  it('SIGTERM to the primary drains every worker and exits 0', async () => {
    const exited = new Promise<number | null>((r) => server.once('exit', (code) => r(code)));
    server.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(out).toContain('every worker drains its requests');
    expect(out).toContain('"stopped"');
  }, 60_000);
});
it.skipIf(Boolean(redisBin))('cluster test skipped: redis-server is not installed and cannot be installed (not root)', () => undefined);
