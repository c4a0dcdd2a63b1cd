/**
 * The WMS `SLD` parameter (SLD 1.0 §6.4: GetMap with the URL of an SLD document). A server that
 * fetches URLs its clients choose can be turned against the network behind it (SSRF), so this is
 * off unless `wms.sldUrl.allowed` lists URL prefixes; then only http(s) URLs under one of them are
 * fetched, without following redirects, within a timeout and a size limit, and the document is
 * kept for a short while so that a map client asking for many tiles fetches it once.
 */
import type { AppContext } from '../../context.js';
import { OwsException } from '../../ows/exceptions.js';
import type { Entry, SldUrlOptions } from './sld-documents.js';

export type { SldUrlOptions };

/** `wms.sldUrl` with its defaults; undefined when the parameter is not enabled. */
export function sldUrlOptions(ctx: AppContext): SldUrlOptions | undefined {
  const o = ctx.config.wms?.sldUrl;
  if (!o || !o.allowed?.length) return undefined;
  return {
    allowed: o.allowed.map((p) => new URL(p).href),
    timeoutMs: o.timeoutMs ?? 5000,
    maxBytes: o.maxBytes ?? 1024 * 1024,
    cacheSeconds: o.cacheSeconds ?? 60,
  };
}

/** Why a document could not be fetched (answered as NoApplicableCode with locator `sld`). */
class FetchFailed extends Error {
  constructor(
    message: string,
    readonly status = 502,
  ) {
    super(message);
  }
}

/**
 * Check the URL against the configuration. Throws InvalidParameterValue (locator `sld`) when the
 * parameter is disabled, the URL is not an http(s) URL, carries credentials or is not under an
 * allowed prefix; returns the normalised URL otherwise.
 */
export function checkSldUrl(ctx: AppContext, raw: string): { url: URL; options: SldUrlOptions } {
  const options = sldUrlOptions(ctx);
  if (!options)
    throw new OwsException(
      'InvalidParameterValue',
      'the SLD parameter (a URL) is not enabled on this server; send the document in SLD_BODY',
      'sld',
    );
  let url: URL;
  try {
    url = new URL(raw.trim());
  } catch {
    throw new OwsException('InvalidParameterValue', `SLD must be an absolute http or https URL, got '${raw}'`, 'sld');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new OwsException('InvalidParameterValue', `SLD must be an http or https URL, not ${url.protocol}`, 'sld');
  if (url.username || url.password) throw new OwsException('InvalidParameterValue', 'SLD: URLs with credentials are not accepted', 'sld');
  url.hash = '';
  if (!options.allowed.some((p) => url.href.startsWith(p)))
    throw new OwsException('InvalidParameterValue', `SLD URL '${url.href}' is not under a location this server fetches styles from`, 'sld');
  return { url, options };
}

async function download(url: URL, o: SldUrlOptions): Promise<string> {
  const ac = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    ac.abort();
  }, o.timeoutMs);
  try {
    const res = await fetch(url, {
      redirect: 'manual',
      signal: ac.signal,
      headers: { accept: 'application/vnd.ogc.sld+xml, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.1' },
    });
    if (res.status >= 300 && res.status < 400) {
      throw new FetchFailed(
        `it answered ${res.status} (redirect${res.headers.get('location') ? ` to ${res.headers.get('location')}` : ''}); redirects are not followed`,
      );
    }
    if (!res.ok) throw new FetchFailed(`it answered HTTP ${res.status}`);
    const declared = Number(res.headers.get('content-length') ?? NaN);
    if (declared > o.maxBytes) throw new FetchFailed(`the document is too large (${declared} bytes, at most ${o.maxBytes})`);
    const chunks: Uint8Array[] = [];
    let size = 0;
    if (res.body) {
      const reader = res.body.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        size += value.byteLength;
        if (size > o.maxBytes) throw new FetchFailed(`the document is too large (more than ${o.maxBytes} bytes)`);
        chunks.push(value);
      }
    }
    const bytes = Buffer.concat(chunks);
    // UTF-8 unless the XML declaration says Latin-1 (as some desktop tools still write)
    const enc = /^\s*<\?xml[^>]*encoding\s*=\s*["']([\w.-]+)["']/i.exec(bytes.subarray(0, 200).toString('latin1'))?.[1].toLowerCase();
    return enc && /^(iso-8859-1|latin-?1|windows-1252|cp1252)$/.test(enc)
      ? new TextDecoder('windows-1252').decode(bytes)
      : bytes.toString('utf8');
  } catch (e) {
    if (timedOut) throw new FetchFailed(`no complete answer within ${o.timeoutMs} ms`, 504);
    if (e instanceof FetchFailed) throw e;
    const cause = (e as { cause?: { code?: string; message?: string } }).cause;
    throw new FetchFailed(cause?.code ?? cause?.message ?? (e as Error).message);
  } finally {
    clearTimeout(timer);
    // release the connection of a response we stopped reading
    if (!ac.signal.aborted) ac.abort();
  }
}

/**
 * The SLD document at the URL of the `SLD` parameter (checked with checkSldUrl), from the cache or
 * fetched. A failure is remembered for a few seconds, so that the tiles of one map view do not each
 * wait for the same unreachable server.
 */
export async function fetchSldDocument(ctx: AppContext, raw: string): Promise<{ text: string; url: string }> {
  const { url, options } = checkSldUrl(ctx, raw);
  const docs = ctx.runtime.sldDocuments;
  const st = { cache: docs.lru(options), inflight: docs.inflight };
  const key = url.href;
  let entry = st.cache.get(key);
  if (!entry) {
    let p = st.inflight.get(key);
    if (!p) {
      p = download(url, options).then(
        (text): Entry => ({ ok: true, text }),
        (e): Entry => ({ ok: false, message: (e as Error).message, status: e instanceof FetchFailed ? e.status : 502 }),
      );
      st.inflight.set(key, p);
      p.then(
        (en) => {
          st.inflight.delete(key);
          st.cache.set(key, en, en.ok ? undefined : { ttl: Math.min(5000, options.cacheSeconds * 1000 || 1) });
        },
        () => st.inflight.delete(key),
      );
    }
    entry = await p;
  }
  if (!entry.ok) throw new OwsException('NoApplicableCode', `SLD: could not fetch ${key}: ${entry.message}`, 'sld', entry.status);
  return { text: entry.text, url: key };
}
