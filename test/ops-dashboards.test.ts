/**
 * The Grafana dashboard (ops/grafana/geodata.json) and the Prometheus alert rules
 * (ops/prometheus/alerts.yml) only use metrics the server exposes: every metric name in their
 * expressions is on a running app's /metrics, and every label they select or group by is one
 * that metric carries. The compose file of the scaled-out set-up (ops/compose/) is valid YAML whose
 * services, mounts and URLs fit together (and `docker compose config` accepts it where Docker
 * Compose is installed).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { makeTestApp, type TestApp } from './helpers/app.js';
import { validateConfig } from '../src/config/index.js';

const root = new URL('..', import.meta.url);
const dashboard = JSON.parse(readFileSync(new URL('ops/grafana/geodata.json', root), 'utf8'));
const rules = parse(readFileSync(new URL('ops/prometheus/alerts.yml', root), 'utf8'));

interface Panel {
  type: string;
  title: string;
  targets?: { expr: string; refId: string }[];
  panels?: Panel[];
}

const panels: Panel[] = (dashboard.panels as Panel[]).flatMap((p) => [p, ...(p.panels ?? [])]);
const dashboardExprs = panels.flatMap((p) => (p.targets ?? []).map((t) => ({ where: `panel '${p.title}'`, expr: t.expr })));
const ruleList: { alert: string; expr: string; for?: string; labels?: Record<string, string>; annotations?: Record<string, string> }[] =
  rules.groups.flatMap((g: { rules: unknown[] }) => g.rules);
const ruleExprs = ruleList.map((r) => ({ where: `alert ${r.alert}`, expr: String(r.expr) }));

/** metric name → label names seen on its samples (empty set: declared, no sample yet). */
function exposition(text: string): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)/.exec(line);
    if (type) {
      out.set(type[1], out.get(type[1]) ?? new Set());
      if (type[2] === 'histogram' || type[2] === 'summary')
        for (const s of ['_bucket', '_sum', '_count']) out.set(type[1] + s, out.get(type[1] + s) ?? new Set());
      continue;
    }
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\}/.exec(line);
    if (sample) {
      const set = out.get(sample[1]) ?? new Set<string>();
      for (const m of sample[2].matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="/g)) set.add(m[1]);
      out.set(sample[1], set);
    }
  }
  return out;
}

/** Each metric selector of a PromQL expression: its name and the labels it matches on. */
function selectors(expr: string): { name: string; labels: string[] }[] {
  const out: { name: string; labels: string[] }[] = [];
  for (const m of expr.matchAll(/\b(geodata_[a-z0-9_]+)(\{([^}]*)\})?/g)) {
    const labels = [...(m[3] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!=|!~|=)/g)].map((x) => x[1]);
    out.push({ name: m[1], labels });
  }
  return out;
}

/** Labels named in `by (…)` clauses. */
const byLabels = (expr: string) => [...expr.matchAll(/\bby \(([^)]*)\)/g)].flatMap((m) => m[1].split(',').map((s) => s.trim()));

describe('dashboard and alert rules', () => {
  let t: TestApp;
  let metrics: Map<string, Set<string>>;

  beforeAll(async () => {
    t = await makeTestApp({ tiles: { diskDir: null } });
    // some traffic, so the labelled metrics have samples
    await t.app.inject({ method: 'GET', url: '/tiles/communes/8/132/89.png' });
    await t.app.inject({ method: 'GET', url: '/tiles/communes/8/132/89.png' });
    await t.app.inject({ method: 'GET', url: '/collections/communes/items?limit=2' });
    await t.app.inject({ method: 'GET', url: '/wms?SERVICE=WMS&REQUEST=GetMap&VERSION=1.3.0' });
    const res = await t.app.inject({ method: 'GET', url: '/metrics' });
    expect(res.statusCode).toBe(200);
    metrics = exposition(res.body);
  }, 120_000);

  afterAll(async () => {
    await t?.close();
  });

  it('the dashboard is a Grafana dashboard whose panels all query something', () => {
    expect(dashboard.uid).toBe('geodata-server');
    expect(typeof dashboard.schemaVersion).toBe('number');
    const graphs = panels.filter((p) => p.type !== 'row');
    expect(graphs.length).toBeGreaterThanOrEqual(12);
    for (const p of graphs) expect(p.targets?.length, p.title).toBeGreaterThan(0);
    // what the issue asks a dashboard to show
    const all = dashboardExprs.map((e) => e.expr).join('\n');
    for (const m of [
      'geodata_requests_total',
      'geodata_request_duration_seconds_bucket',
      'geodata_cache_events_total',
      'geodata_gate_slots',
      'geodata_db_pool_connections',
      'geodata_db_replica_lag_seconds',
      'status=~"5.."',
    ])
      expect(all).toContain(m);
  });

  it('the alert rules are well-formed Prometheus rules', () => {
    expect(ruleList.length).toBeGreaterThanOrEqual(6);
    for (const r of ruleList) {
      expect(r.alert).toMatch(/^[A-Za-z][A-Za-z0-9]*$/);
      expect(r.expr.trim().length).toBeGreaterThan(0);
      if (r.for) expect(r.for).toMatch(/^\d+[smh]$/);
      expect(['page', 'warn', 'info']).toContain(r.labels?.severity);
      expect(r.annotations?.summary).toBeTruthy();
    }
    const names = ruleList.map((r) => r.alert);
    expect(new Set(names).size).toBe(names.length);
  });

  it('every metric and label they use is on /metrics', () => {
    const missing: string[] = [];
    for (const { where, expr } of [...dashboardExprs, ...ruleExprs]) {
      const sels = selectors(expr);
      expect(sels.length, `${where}: no geodata metric in ${expr}`).toBeGreaterThan(0);
      for (const s of sels) {
        const labels = metrics.get(s.name);
        if (!labels) {
          missing.push(`${where}: ${s.name}`);
          continue;
        }
        // labels are checked where the metric has samples here (replica metrics have none without replicas)
        if (labels.size) for (const l of s.labels) if (!labels.has(l)) missing.push(`${where}: ${s.name} has no label ${l}`);
      }
      // a `by (…)` label must be carried by at least one metric of the expression
      for (const l of byLabels(expr)) {
        if (l === 'le') continue;
        const carried = sels.some((s) => {
          const labels = metrics.get(s.name);
          return !labels || labels.size === 0 || labels.has(l);
        });
        if (!carried) missing.push(`${where}: no metric carries label ${l}`);
      }
    }
    expect(missing).toEqual([]);
  });
});

describe('compose file of the scaled-out set-up', () => {
  const dir = new URL('ops/compose/', root);
  const compose = parse(readFileSync(new URL('compose.yaml', dir), 'utf8'));
  const services = compose.services as Record<string, Record<string, any>>;

  it('runs servers, Redis, a primary, a replica and HAProxy that fit together', () => {
    for (const s of ['db', 'replica', 'redis', 'server', 'haproxy', 'demo']) expect(services[s], s).toBeTruthy();
    for (const [name, svc] of Object.entries(services)) {
      const deps = Array.isArray(svc.depends_on) ? svc.depends_on : Object.keys(svc.depends_on ?? {});
      for (const d of deps) expect(services[d], `${name} depends on ${d}`).toBeTruthy();
      for (const v of svc.volumes ?? []) {
        const src = String(v).split(':')[0];
        if (src.startsWith('./')) expect(existsSync(new URL(src, dir)), `${name} mounts ${src}`).toBe(true);
        else expect(compose.volumes?.[src] !== undefined, `${name} uses volume ${src}`).toBe(true);
      }
    }
    const env = services.server.environment;
    expect(new URL(env.DATABASE_URL).hostname).toBe('db');
    expect(new URL(env.DATABASE_REPLICAS).hostname).toBe('replica');
    expect(new URL(env.REDIS_URL).hostname).toBe('redis');
    // the servers' configuration file is a valid configuration
    const cfg = validateConfig(parse(readFileSync(new URL('server.yaml', dir), 'utf8')), 'server.yaml');
    expect(cfg.server.trustProxy).toBe(true);
    // HAProxy sends to the server service on its port and checks readiness
    const haproxy = readFileSync(new URL('haproxy.cfg', dir), 'utf8');
    expect(haproxy).toMatch(new RegExp(`server-template \\S+ \\d+ server:${env.PORT} `));
    expect(haproxy).toContain('GET /readyz');
    // the replica copies the primary it depends on
    expect(readFileSync(new URL('replica-start.sh', dir), 'utf8')).toMatch(/pg_basebackup -h db .* -R /);
  });

  const hasCompose = spawnSync('docker', ['compose', 'version'], { stdio: 'ignore' }).status === 0;
  it.skipIf(!hasCompose)('docker compose config accepts it', () => {
    const r = spawnSync('docker', ['compose', '-f', fileURLToPath(new URL('compose.yaml', dir)), 'config', '-q'], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
  });
});
