// Markdown output of a benchmark run.
const f = (v, d = 1) => (Number.isFinite(v) ? v.toFixed(d) : '–');
const kb = (v) => (Number.isFinite(v) && v > 0 ? (v >= 1e6 ? `${(v / 1e6).toFixed(1)} MB` : `${(v / 1e3).toFixed(1)} kB`) : '–');

export function markdown({ env, mode, rows, notes, settings }) {
  const out = [];
  out.push(`# Benchmark ${env.date} (${mode})`, '');
  out.push('| | |', '|---|---|');
  for (const [k, v] of Object.entries(env)) out.push(`| ${k} | ${String(v).replace(/\|/g, '\\|')} |`);
  out.push('', `Settings: ${settings}`, '');
  out.push(
    'Figures are from a shared development machine (2 cores, other jobs running): they are noisy; compare the ratios within a run, not absolute numbers across runs. Client, servers and PostgreSQL share the same cores.',
    '',
  );
  out.push('| scenario | server | req/s | p50 ms | p95 ms | p99 ms | bytes/resp | MB/s | errors | ours ÷ this (req/s) | notes |');
  out.push('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|');
  for (const r of rows) {
    if (r.status === 'not-implemented') {
      out.push(`| ${r.scenario} | ${r.server} | — | — | — | — | — | — | — | — | **not implemented** (${r.note}) |`);
      continue;
    }
    if (r.status === 'refused') {
      out.push(`| ${r.scenario} | ${r.server} | — | — | — | — | — | — | — | — | **${r.note}** |`);
      continue;
    }
    if (r.status === 'unavailable') {
      out.push(`| ${r.scenario} | ${r.server} | — | — | — | — | — | — | — | — | unavailable: ${r.note} |`);
      continue;
    }
    const s = r.summary;
    const flag = s.errors > 0 ? ` ⚠ **${s.errors} errors** (${s.firstErrors.join('; ')})` : '';
    out.push(
      `| ${r.scenario} | ${r.server} | ${f(s.reqPerSec)} | ${f(s.p50)} | ${f(s.p95)} | ${f(s.p99)} | ${kb(s.meanBytes)} | ${f(s.mbPerSec, 2)} | ${s.errors}/${s.requests}${s.errors ? ' ⚠' : ''} | ${r.ratio ?? ''} | ${[r.note, flag].filter(Boolean).join(' ')} |`,
    );
  }
  if (notes.length) out.push('', '## Notes', '', ...notes.map((n) => `- ${n}`));
  out.push('');
  return out.join('\n');
}

export { f as fmt };
