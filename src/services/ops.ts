/** Operations endpoints: Prometheus /metrics and usage statistics (JSON, CSV, HTML with charts). */
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { timingSafeEqual } from 'node:crypto';
import type { AppContext } from '../context.js';
import type { Metrics } from '../ops/metrics.js';
import type { UsageRow, UsageStats } from '../ops/usage.js';
import { isAdminRequest, principalOf } from '../security/auth.js';
import { layersFor, publicLayers } from '../security/access.js';
import { BlockList, isIP, isIPv6 } from 'node:net';
import { escapeText as esc } from '../ows/xml.js';
import { ServiceError } from '../errors/service-error.js';
import { sendProblem } from '../errors/render.js';

function bearerMatches(header: string | undefined, token: string): boolean {
  if (!header?.startsWith('Bearer ')) return false;
  const a = Buffer.from(header.slice(7));
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * Who may read /metrics, and which layer names they see. `all`: every layer named (the metrics
 * token, an admin); otherwise the names of the layers `readable` holds, every other layer's
 * series folded into layer="restricted" (so that a Prometheus on the same host, allowed by
 * address, learns nothing of the restricted layers). null: refused.
 */
export type MetricsReader = { names: 'all' } | { names: Set<string> } | null;

/** Addresses allowed to read /metrics on the main port without a token (net.BlockList). */
export function metricsAllowList(ctx: AppContext): BlockList {
  const list = new BlockList();
  const allow = ctx.config.ops.metricsAllow ?? (ctx.config.ops.metricsToken ? [] : ['127.0.0.0/8', '::1/128']);
  for (const entry of allow) {
    const [addr, bits] = entry.split('/');
    const type = isIPv6(addr) ? 'ipv6' : 'ipv4';
    if (bits === undefined) list.addAddress(addr, type);
    else list.addSubnet(addr, Number(bits), type);
  }
  return list;
}

function metricsReader(ctx: AppContext, allow: BlockList, req: FastifyRequest): MetricsReader {
  const token = ctx.config.ops.metricsToken;
  if (token && bearerMatches(req.headers.authorization, token)) return { names: 'all' };
  if (isAdminRequest(req)) return { names: 'all' };
  // behind a proxy that is not trusted, the peer address is the proxy's: the allow-list does not apply
  const proxied = !ctx.config.server.trustProxy && (req.headers['x-forwarded-for'] !== undefined || req.headers.forwarded !== undefined);
  const ip = req.ip;
  if (!proxied && ip && isIP(ip) && allow.check(ip, isIPv6(ip) ? 'ipv6' : 'ipv4')) {
    return {
      names: new Set(
        layersFor(ctx, req)
          .list()
          .map((l) => l.name),
      ),
    };
  }
  return null;
}

const LAYER_LABEL = /layer="((?:[^"\\]|\\.)*)"/;

/**
 * The Prometheus text with the series of layers the reader may not name relabelled
 * layer="restricted" and summed (counters and histogram buckets add up).
 */
export function foldRestrictedLayers(text: string, readable: Set<string>): string {
  const out: string[] = [];
  const merged = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = line.startsWith('#') ? null : LAYER_LABEL.exec(line);
    if (!m) {
      out.push(line);
      continue;
    }
    const name = m[1].replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    if (name === '' || readable.has(name)) {
      out.push(line);
      continue;
    }
    const sp = line.lastIndexOf(' ');
    const series = line.slice(0, sp).replace(LAYER_LABEL, 'layer="restricted"');
    const value = Number(line.slice(sp + 1));
    if (!merged.has(series)) out.push(series); // placeholder, value filled in below
    merged.set(series, (merged.get(series) ?? 0) + value);
  }
  return out.map((l) => (merged.has(l) ? `${l} ${merged.get(l)}` : l)).join('\n');
}

async function sendMetrics(metrics: Metrics, reader: MetricsReader, reply: FastifyReply, detail: string) {
  if (!reader) {
    return reply
      .code(401)
      .header('WWW-Authenticate', 'Bearer realm="metrics"')
      .type('application/problem+json')
      .send({ type: 'about:blank', title: 'Unauthorized', status: 401, detail });
  }
  const text = await metrics.text();
  return reply.type(metrics.registry.contentType).send(reader.names === 'all' ? text : foldRestrictedLayers(text, reader.names));
}

/**
 * A separate listener for /metrics (bind it to loopback or an internal interface): open to whoever
 * reaches it, or to the token when one is set; without the token, restricted layers are folded.
 */
export async function startMetricsServer(ctx: AppContext, port: number, host: string): Promise<FastifyInstance> {
  const m = Fastify({ logger: false });
  const metrics = ctx.runtime.metrics;
  const token = ctx.config.ops.metricsToken;
  m.get('/metrics', (req, reply) => {
    const full = token !== undefined && bearerMatches(req.headers.authorization, token);
    const reader: MetricsReader = full
      ? { names: 'all' }
      : token
        ? null
        : { names: new Set(publicLayers(ctx.registry).map((l) => l.name)) };
    return sendMetrics(metrics, reader, reply, 'metrics token required');
  });
  await m.listen({ port, host });
  return m;
}

const DATE = /^\d{4}-\d{2}-\d{2}$/;

function rangeOf(req: FastifyRequest): { from?: string; to?: string; layer?: string } {
  const q = req.query as Record<string, string | undefined>;
  for (const k of ['from', 'to'] as const) {
    if (q[k] !== undefined && !DATE.test(q[k]!)) {
      const e = new Error(`parameter '${k}' must be a date YYYY-MM-DD`) as Error & { statusCode: number };
      e.statusCode = 400;
      throw e;
    }
  }
  return { from: q.from, to: q.to, layer: q.layer };
}

async function usageRows(ctx: AppContext, usage: UsageStats, req: FastifyRequest): Promise<UsageRow[]> {
  const rows = await usage.query(rangeOf(req));
  // a caller sees the statistics of the layers it may see (and service-level rows)
  const allowed = new Set(
    layersFor(ctx, req)
      .list()
      .map((l) => l.name),
  );
  return rows.filter((r) => r.layer === '' || allowed.has(r.layer));
}

function csv(rows: UsageRow[]): string {
  const q = (s: string) => (/[",;\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);
  return (
    [
      'day,layer,service,caller,requests,features,bytes',
      ...rows.map((r) => [r.day, q(r.layer), r.service, r.caller, r.requests, r.features, r.bytes].join(',')),
    ].join('\n') + '\n'
  );
}

function bars(title: string, data: [string, number][], unit: string): string {
  const max = Math.max(1, ...data.map(([, v]) => v));
  const h = 22;
  const rows = data
    .map(([k, v], i) => {
      const w = Math.round((v / max) * 420);
      return `<text x="0" y="${i * h + 15}" font-size="12">${esc(k || '(service)')}</text><rect x="180" y="${i * h + 4}" width="${w}" height="14" fill="#3b7dd8"/><text x="${186 + w}" y="${i * h + 15}" font-size="12">${v.toLocaleString('fr-FR')} ${unit}</text>`;
    })
    .join('');
  return `<h3>${esc(title)}</h3><svg xmlns="http://www.w3.org/2000/svg" width="760" height="${Math.max(h, data.length * h)}" role="img" aria-label="${esc(title)}">${rows}</svg>`;
}

function html(rows: UsageRow[]): string {
  const sum = (key: (r: UsageRow) => string, field: 'requests' | 'features' | 'bytes') => {
    const m = new Map<string, number>();
    for (const r of rows) m.set(key(r), (m.get(key(r)) ?? 0) + r[field]);
    return [...m.entries()].sort((a, b) => b[1] - a[1]);
  };
  const byDay = sum((r) => r.day, 'requests').sort((a, b) => a[0].localeCompare(b[0]));
  return `<!DOCTYPE html><html lang="fr"><head><meta charset="utf-8"><title>Usage statistics</title>
<style>body{font-family:system-ui,sans-serif;max-width:60em;margin:2em auto;padding:0 1em}table{border-collapse:collapse}td,th{padding:.2em .6em;border-bottom:1px solid #ddd;text-align:right}td:first-child,th:first-child{text-align:left}</style></head><body>
<h1>Usage statistics per dataset</h1>
<p>${rows.length} rows · <a href="usage?f=json">JSON</a> · <a href="usage.csv">CSV</a></p>
${bars(
  'Requests per dataset',
  sum((r) => r.layer, 'requests'),
  'req.',
)}
${bars(
  'Features served per dataset',
  sum((r) => r.layer, 'features'),
  'features',
)}
${bars(
  'Bytes served per dataset',
  sum((r) => r.layer, 'bytes'),
  'B',
)}
${bars(
  'Requests per service',
  sum((r) => r.service, 'requests'),
  'req.',
)}
${bars(
  'Requests per caller class',
  sum((r) => r.caller, 'requests'),
  'req.',
)}
${bars('Requests per day', byDay, 'req.')}
<h2>Detail</h2><table><thead><tr><th>day</th><th>layer</th><th>service</th><th>caller</th><th>requests</th><th>features</th><th>bytes</th></tr></thead><tbody>
${rows.map((r) => `<tr><td>${r.day}</td><td>${esc(r.layer)}</td><td>${esc(r.service)}</td><td>${r.caller}</td><td>${r.requests}</td><td>${r.features}</td><td>${r.bytes}</td></tr>`).join('\n')}
</tbody></table></body></html>`;
}

export function registerOps(app: FastifyInstance, ctx: AppContext, metrics: Metrics, usage: UsageStats): void {
  if (ctx.config.ops.metricsPort === undefined) {
    const allow = metricsAllowList(ctx);
    app.get('/metrics', (req, reply) =>
      sendMetrics(
        metrics,
        metricsReader(ctx, allow, req),
        reply,
        'metrics are served to the metrics token (Authorization: Bearer), an admin, or the addresses of ops.metricsAllow (loopback by default when no token is set)',
      ),
    );
  }
  app.get('/usage', async (req, reply) => {
    const rows = await usageRows(ctx, usage, req);
    const f = String((req.query as Record<string, unknown>).f ?? '').toLowerCase();
    const accept = String(req.headers.accept ?? '');
    if (f === 'csv') return reply.type('text/csv; charset=utf-8').send(csv(rows));
    if (f === 'html' || (!f && accept.includes('text/html'))) return reply.type('text/html; charset=utf-8').send(html(rows));
    return { rows, caller: principalOf(req).authenticated ? 'authenticated' : 'anonymous' };
  });
  app.get('/usage.csv', async (req, reply) =>
    reply
      .type('text/csv; charset=utf-8')
      .header('Content-Disposition', 'attachment; filename="usage.csv"')
      .send(csv(await usageRows(ctx, usage, req))),
  );
  app.get('/usage.html', async (req, reply) => reply.type('text/html; charset=utf-8').send(html(await usageRows(ctx, usage, req))));
}
