// Closed-loop load generator: `concurrency` workers, each sending the next request of a shared list
// over keep-alive connections, for a bounded time. Every response is checked (lib/core.mjs).
import http from 'node:http';
import { createHash } from 'node:crypto';
import { checkResponse } from './core.mjs';

export function makeAgent(concurrency) {
  return new http.Agent({ keepAlive: true, maxSockets: concurrency, maxFreeSockets: concurrency, keepAliveMsecs: 30000 });
}

/** One request; returns { status, contentType, body (or head/tail when streaming), bytes, ttfbMs, ms }. */
export function fetchOnce(url, { agent, timeoutMs = 60000, stream = false } = {}) {
  return new Promise((resolve) => {
    const t0 = process.hrtime.bigint();
    const since = () => Number(process.hrtime.bigint() - t0) / 1e6;
    let done = false;
    const finish = (r) => {
      if (done) return;
      done = true;
      resolve({ ...r, ms: since() });
    };
    const req = http.get(url, { agent, headers: { 'accept-encoding': 'identity' } }, (res) => {
      const ttfbMs = since();
      const chunks = [];
      let bytes = 0;
      let head = null;
      let tail = Buffer.alloc(0);
      res.on('data', (c) => {
        bytes += c.length;
        if (!stream) chunks.push(c);
        else {
          if (!head) head = c.subarray(0, 4096);
          tail = Buffer.concat([tail, c]).subarray(-512);
        }
      });
      res.on('end', () => {
        const body = stream ? Buffer.concat([head ?? Buffer.alloc(0), Buffer.from('\n'), tail]) : Buffer.concat(chunks);
        finish({ status: res.statusCode, contentType: res.headers['content-type'], body, bytes, ttfbMs, streamed: stream });
      });
      res.on('error', (e) => finish({ status: 0, error: `response: ${e.message}`, bytes, ttfbMs }));
      res.on('aborted', () => finish({ status: 0, error: 'response aborted', bytes, ttfbMs }));
    });
    req.setTimeout(timeoutMs, () => {
      req.destroy(new Error(`timeout after ${timeoutMs / 1000} s`));
    });
    req.on('error', (e) => finish({ status: 0, error: e.message, bytes: 0 }));
  });
}

/** Validity of a streamed (bulk) answer: status, content type, head and tail of the document. */
function checkStreamed(r, expect) {
  if (r.status < 200 || r.status > 299) return `HTTP ${r.status}`;
  const ct = (r.contentType || '').toLowerCase();
  const s = r.body.toString('utf8');
  if (expect === 'geojson') {
    if (!/json/.test(ct)) return `content-type ${ct}`;
    if (!/^\s*\{/.test(s) || !/FeatureCollection/.test(s.slice(0, 4096))) return 'not a FeatureCollection';
    if (!/\}\s*$/.test(s)) return 'truncated JSON';
    return null;
  }
  if (!/xml/.test(ct)) return `content-type ${ct}`;
  if (/ExceptionReport/.test(s.slice(0, 4096))) return 'OGC exception';
  if (!/FeatureCollection>\s*$/.test(s)) return 'truncated GML';
  return null;
}

// Identical answers (same status, type and bytes: a cached tile served again) are decoded once; the
// key is a SHA-1 of the whole body, so a different byte anywhere is checked again.
const verdicts = new Map();
async function cachedCheck(r, expect) {
  const key = `${expect} ${r.status} ${r.contentType} ${createHash('sha1').update(r.body).digest('base64')}`;
  if (verdicts.has(key)) return verdicts.get(key);
  const v = await checkResponse(r.status, r.contentType, r.body, expect);
  if (verdicts.size > 20000) verdicts.clear();
  verdicts.set(key, v);
  return v;
}

/**
 * Run `urls` (array of strings, cycled) with `concurrency` workers for `durationMs`
 * (or until `maxRequests` are done, or the list is exhausted when `once`).
 */
export async function runLoad({
  urls,
  expect,
  concurrency,
  durationMs,
  maxRequests = Infinity,
  once = false,
  timeoutMs,
  stream = false,
  agent,
}) {
  const own = !agent;
  agent = agent ?? makeAgent(concurrency);
  const samples = [];
  let next = 0;
  const t0 = process.hrtime.bigint();
  const cpu0 = process.cpuUsage();
  const deadline = Date.now() + durationMs;
  const worker = async () => {
    while (Date.now() < deadline && samples.length < maxRequests) {
      if (once && next >= urls.length) break;
      const url = urls[next++ % urls.length];
      const r = await fetchOnce(url, { agent, timeoutMs, stream });
      let error = r.error ?? null;
      if (!error) error = stream ? checkStreamed(r, expect) : await cachedCheck(r, expect);
      samples.push({ ms: r.ms, ttfbMs: r.ttfbMs, bytes: r.bytes, error });
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  if (own) agent.destroy();
  return { samples, wall, clientCpu: (cpu.user + cpu.system) / 1e6 / wall };
}
