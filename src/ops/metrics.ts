/**
 * Prometheus metrics (prom-client): one registry per application instance. In a cluster
 * (src/cluster.ts) every series carries a `process` label (the worker's slot), and text() returns
 * every worker's series, gathered by the primary.
 */
import client from 'prom-client';
import type pg from 'pg';
import { clusterMetrics, processSlot } from '../cluster.js';

export class Metrics {
  readonly registry = new client.Registry();
  readonly requests: client.Counter<'service' | 'operation' | 'layer' | 'status'>;
  readonly duration: client.Histogram<'service' | 'operation'>;
  readonly bytes: client.Counter<'service'>;
  readonly cache: client.Counter<'tier' | 'event'>;
  readonly harvestRuns: client.Counter<'source' | 'result'>;
  readonly features: client.Counter<'service' | 'layer'>;
  /** Bytes held by each bounded in-process cache, read when /metrics is scraped. */
  private readonly memorySources = new Map<string, () => number>();
  /** Sources counting in batches (the tile hit fast path): called before the series are read. */
  private readonly beforeCollect: (() => void)[] = [];

  constructor(pool?: pg.Pool) {
    const r = this.registry;
    const slot = processSlot();
    if (slot !== undefined) {
      r.setDefaultLabels({ process: slot });
      // the primary asks each worker for this registry's series
      client.AggregatorRegistry.setRegistries([r]);
      new client.AggregatorRegistry();
    }
    client.collectDefaultMetrics({ register: r, prefix: 'geodata_' });
    const before = this.beforeCollect;
    this.requests = new client.Counter({
      name: 'geodata_requests_total',
      help: 'Requests by service, operation, layer and HTTP status',
      labelNames: ['service', 'operation', 'layer', 'status'],
      registers: [r],
      // the first of this registry's own series to be read: batched counts land in every series before any is read
      collect() {
        for (const fn of before) fn();
      },
    });
    this.duration = new client.Histogram({
      name: 'geodata_request_duration_seconds',
      help: 'Request latency by service and operation',
      labelNames: ['service', 'operation'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers: [r],
    });
    this.bytes = new client.Counter({
      name: 'geodata_response_bytes_total',
      help: 'Bytes sent by service',
      labelNames: ['service'],
      registers: [r],
    });
    this.features = new client.Counter({
      name: 'geodata_features_total',
      help: 'Features served by service and layer',
      labelNames: ['service', 'layer'],
      registers: [r],
    });
    this.cache = new client.Counter({
      name: 'geodata_cache_events_total',
      help: 'Tile cache hits, misses and evictions per tier',
      labelNames: ['tier', 'event'],
      registers: [r],
    });
    this.harvestRuns = new client.Counter({
      name: 'geodata_harvest_runs_total',
      help: 'Catalogue harvest runs by source and result',
      labelNames: ['source', 'result'],
      registers: [r],
    });
    const sources = this.memorySources;
    new client.Gauge({
      name: 'geodata_memory_bytes',
      help: 'Bytes held by each bounded in-process cache (the budget per component: docs/operations.md)',
      labelNames: ['component'],
      registers: [r],
      collect() {
        for (const [component, read] of sources) this.set({ component }, read());
      },
    });
    if (pool) {
      new client.Gauge({
        name: 'geodata_db_pool_connections',
        help: 'Database pool connections by state',
        labelNames: ['state'],
        registers: [r],
        collect() {
          this.set({ state: 'total' }, pool.totalCount);
          this.set({ state: 'idle' }, pool.idleCount);
          this.set({ state: 'in_use' }, pool.totalCount - pool.idleCount);
          this.set({ state: 'waiting' }, pool.waitingCount);
        },
      });
    }
  }

  /** Run `fn` (hand batched counts over) before the series are read. */
  onBeforeCollect(fn: () => void): void {
    this.beforeCollect.push(fn);
  }

  /** Report the bytes a component holds under `geodata_memory_bytes{component}`. */
  memorySource(component: string, read: () => number): void {
    this.memorySources.set(component, read);
  }

  /** The exposition text: every process's series in a cluster, this registry's otherwise. */
  async text(): Promise<string> {
    return (await clusterMetrics()) ?? this.registry.metrics();
  }
}
