/**
 * Load shedding by event-loop delay. When the process is so busy that its event loop runs late
 * (the median delay of a 20 ms probe's ticks over the last second above a threshold), new heavy requests
 * (maps, feature pages and exports) are refused at once with 503 + Retry-After, before any
 * parsing, database or render work, so that the work already accepted finishes in time and cheap
 * requests (health, metrics, capabilities, cached tiles) keep being answered.
 */
/** Interval of the delay probe, in ms. */
const TICK_MS = 20;

export class LoadShedder {
  private readonly timer: NodeJS.Timeout | undefined;
  /** When each recent tick ran and how late it was (a ring). */
  private readonly at = new Float64Array(128);
  private readonly late = new Float64Array(128);
  private next = 0;
  private last = 0;
  /** The median event-loop delay of the ticks of the last window, in ms. */
  delayMs = 0;
  /** Heavy requests refused since start. */
  shed = 0;

  constructor(
    readonly thresholdMs: number,
    readonly windowMs = 1000,
    probe = true,
  ) {
    this.at.fill(Number.NEGATIVE_INFINITY);
    if (thresholdMs <= 0 || !probe) return;
    // a probe timer: how late each tick runs is how late the event loop is (one cheap callback
    // every 20 ms). The figure is the median delay of the ticks of the last second: a loop that is
    // late at every turn is overloaded; one long pause (a large GC, a big document parsed once)
    // is a single late tick among many, and refusing work for it would turn a hiccup into errors
    this.last = performance.now();
    this.timer = setInterval(() => {
      const now = performance.now();
      this.record(now, Math.max(0, now - this.last - TICK_MS));
      this.last = now;
    }, TICK_MS);
    this.timer.unref();
  }

  /** One tick of the probe: it ran at `now`, `lateMs` after it was due. */
  record(now: number, lateMs: number): void {
    this.at[this.next] = now;
    this.late[this.next] = lateMs;
    this.next = (this.next + 1) % this.at.length;
    const recent: number[] = [];
    for (let i = 0; i < this.at.length; i++) if (now - this.at[i] <= this.windowMs) recent.push(this.late[i]);
    recent.sort((x, y) => x - y);
    this.delayMs = recent.length ? recent[recent.length >> 1] : 0;
  }

  /** A delay that stands for the measured one (drills and tests: see the server's answers under overload on demand); undefined to measure again. */
  pinnedDelayMs: number | undefined;

  /** True when a heavy request arriving now should be refused. */
  get overloaded(): boolean {
    return this.thresholdMs > 0 && (this.pinnedDelayMs ?? this.delayMs) > this.thresholdMs;
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
  }
}

const HEAVY_OWS = new Set(['getmap', 'getfeatureinfo', 'getfeature', 'getpropertyvalue']);

/**
 * Is this request heavy (a map render, a feature page or export)? Decided from the URL alone,
 * without parsing a body: OWS KVP requests by their REQUEST parameter (POST bodies of OWS
 * services count as heavy: they are GetFeature or filters in practice), OGC API items and
 * downloads by path. Tiles are not heavy here: a cached tile is cheap, and a missing one waits
 * for the tile engine's own bounded gate.
 */
export function isHeavyRequest(method: string, url: string): boolean {
  const q = url.indexOf('?');
  const path = (q < 0 ? url : url.slice(0, q)).toLowerCase();
  if (path.startsWith('/downloads/')) return true;
  if (path.startsWith('/collections/') && /\/items(\/|$)/.test(path)) return true;
  if (path === '/wms' || path === '/wfs' || path === '/ows' || path === '/wms/' || path === '/wfs/' || path === '/ows/') {
    if (method === 'POST') return true;
    if (q < 0) return false;
    const m = /(?:^|&)request=([^&]*)/i.exec(url.slice(q + 1));
    return !!m && HEAVY_OWS.has(decodeURIComponent(m[1]).toLowerCase());
  }
  return false;
}
