/** Operations endpoints: Prometheus /metrics and usage statistics (JSON, CSV, HTML with charts). */
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { timingSafeEqual } from 'node:crypto';
import type { AppContext } from '../context.js';
import type { Metrics } from '../ops/metrics.js';
import type { UsageRow, UsageStats } from '../ops/usage.js';
import { principalOf, visibleLayers } from '../security/auth.js';
import { escapeText as esc } from '../ows/xml.js';
import { ServiceError } from '../errors/service-error.js';
import { sendProblem } from '../errors/render.js';

function bearerMatches(header: string | undefined, token: string): boolean {
  if (!header?.startsWith('Bearer ')) return false;
  const a = Buffer.from(header.slice(7));
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

async function sendMetrics(metrics: Metrics, token: string | undefined, req: FastifyRequest, reply: FastifyReply) {
  if (token && !bearerMatches(req.headers.authorization, token)) {
    return sendProblem(
      reply,
      req,
      new ServiceError('unauthenticated', 'metrics token required', { headers: { 'WWW-Authenticate': 'Bearer realm="metrics"' } }),
    );
  }
  return reply.type(metrics.registry.contentType).send(await metrics.registry.metrics());
}

/** A separate listener for /metrics (bind it to loopback or an internal interface). */
export async function startMetricsServer(metrics: Metrics, port: number, host: string, token?: string): Promise<FastifyInstance> {
  const m = Fastify({ logger: false });
  m.get('/metrics', (req, reply) => sendMetrics(metrics, token, req, reply));
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
  const allowed = new Set(visibleLayers(ctx.registry.list(), req).map((l) => l.name));
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
  const token = ctx.config.ops.metricsToken;
  if (ctx.config.ops.metricsPort === undefined) {
    app.get('/metrics', (req, reply) => sendMetrics(metrics, token, req, reply));
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
