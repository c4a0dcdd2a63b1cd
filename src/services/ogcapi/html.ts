/** Minimal HTML faces of the OGC API resources (no scripts, no external assets). */
import { escapeText as esc } from '../../ows/xml.js';
import type { ApiLink } from './common.js';

export function page(title: string, body: string, links: ApiLink[] = []): string {
  const alt = links
    .filter((l) => l.rel === 'alternate' || l.rel === 'next' || l.rel === 'prev' || l.rel === 'collection' || l.rel === 'items')
    .map((l) => `<a href="${esc(l.href)}">${esc(l.title ?? `${l.rel} (${l.type ?? ''})`)}</a>`)
    .join(' · ');
  return `<!DOCTYPE html>
<html lang="fr"><head><meta charset="utf-8"><title>${esc(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font-family:system-ui,sans-serif;max-width:75em;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:.3em .5em;text-align:left;vertical-align:top}
code{background:#f4f4f4;padding:0 .2em}nav{margin:.5em 0 1em}</style>
</head><body>
<nav><a href="/">home</a> · <a href="/collections?f=html">collections</a> · <a href="/api.html">API</a> · <a href="/conformance?f=html">conformance</a></nav>
<h1>${esc(title)}</h1>
${body}
${alt ? `<p>${alt}</p>` : ''}
</body></html>`;
}

export function table(head: string[], rows: string[][]): string {
  return `<table><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>
${rows.map((r) => `<tr>${r.map((c) => `<td>${c}</td>`).join('')}</tr>`).join('\n')}
</tbody></table>`;
}

export function a(href: string, text: string): string {
  return `<a href="${esc(href)}">${esc(text)}</a>`;
}

export function val(v: unknown): string {
  if (v === null || v === undefined) return '<em>null</em>';
  if (typeof v === 'object') return `<code>${esc(JSON.stringify(v))}</code>`;
  return esc(String(v));
}

/** A readable page listing the operations of the OpenAPI document. */
export function apiHtml(doc: Record<string, any>): string {
  const rows: string[][] = [];
  for (const [p, item] of Object.entries<Record<string, any>>(doc.paths ?? {})) {
    let it = item;
    if (it.$ref) {
      const target = String(it.$ref)
        .replace(/^#\/paths\//, '')
        .replace(/~1/g, '/')
        .replace(/~0/g, '~');
      it = doc.paths[target] ?? {};
    }
    for (const m of ['get', 'post', 'put', 'delete', 'patch']) {
      const op = it[m];
      if (!op) continue;
      const params = [...(it.parameters ?? []), ...(op.parameters ?? [])]
        .map((x: any) => {
          if (x.$ref) return String(x.$ref).split('/').pop();
          return x.name;
        })
        .join(', ');
      rows.push([`<strong>${m.toUpperCase()}</strong>`, `<code>${esc(p)}</code>`, esc(op.summary ?? ''), esc(params)]);
    }
  }
  return page(
    `${doc.info?.title ?? 'API'} — API`,
    `<p>${esc(doc.info?.description ?? '')}</p>
<p>OpenAPI ${esc(doc.openapi ?? '')} document: ${a('/api?f=json', 'JSON')} · ${a('/openapi.yaml', 'YAML')} · try it in ${a('/api.html', 'Swagger UI')}</p>
${table(['method', 'path', 'summary', 'parameters'], rows)}`,
  );
}
