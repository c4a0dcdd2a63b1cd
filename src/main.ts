#!/usr/bin/env node
/**
 * Command-line entry:
 *   serve                 start the server (default): server.processes worker processes on one port (src/cluster.ts)
 *   demo [--parcels N] [--seed S]   (re)generate the demo data
 *   provision             provision the embedded database and print its URL (password hidden)
 *   check-config [file]   validate a configuration file
 *   hash-secret           hash a password or API key read from stdin (for config security.users/apiKeys)
 *   seed --layer L [--matrixset S] --zoom A-B [--bbox minlon,minlat,maxlon,maxlat | --polygon layer:id]
 *        [--style S] [--format png|mvt] [--concurrency N] [--progress-file F]   fill the tile cache
 *   catalog-import FILE…  import metadata files (ISO 19139, Dublin Core, DCAT RDF) into the catalogue
 *   replica [--port N] [--remove]   a streaming replica of the embedded cluster in .data/replica;
 *                         prints the URL to list in database.replicas
 */
import { pino } from 'pino';
import { ConfigError, loadConfig, type Config } from './config/index.js';
import { createPool, startupTimeout } from './db/pool.js';
import { redactUrl, resolveDatabase } from './db/resolve.js';
import { FEATURE_INSTALL_COMMAND } from './db/embedded.js';
import { missingFormats } from './features/formats.js';
import { probeTools, toolCommands } from './features/tools.js';
import { provisionReplica, readReplicaState, removeReplica, stopEmbeddedCluster, ProvisionError } from './db/embedded.js';
import path from 'node:path';
import { Registry, RegistryError } from './registry/registry.js';
import { generateDemo } from './demo/generator.js';
import { hashSecret } from './security/auth.js';
import cluster from 'node:cluster';
import net from 'node:net';
import { notifyReady, processSlot, runPrimary } from './cluster.js';

const log = pino({ level: process.env.LOG_LEVEL ?? 'info', base: { service: 'geodata-server' } });

function argValue(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  if (i >= 0) return args[i + 1];
  const eq = args.find((a) => a.startsWith(`${name}=`));
  return eq?.slice(name.length + 1);
}

function intArg(args: string[], name: string, fallback: number): number {
  const v = argValue(args, name);
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new ConfigError(`${name} must be a non-negative integer, got '${v}'`);
  return n;
}

/** The registry of published layers; on a first start with nothing published, the demo data is loaded first. */
async function loadRegistry(config: Config, pool: ReturnType<typeof createPool>): Promise<Registry> {
  const registry = new Registry(pool, config);
  await registry.reload();
  if (registry.list().length === 0 && config.demo.autoload && !config.layers) {
    log.info({ parcels: config.demo.parcels, seed: config.demo.seed }, 'no published layer: loading the demo data (first start only)');
    const summary = await generateDemo(pool, { seed: config.demo.seed, parcels: config.demo.parcels, log: (m) => log.info(m) });
    log.info(summary, 'demo data loaded');
    await registry.reload();
  }
  return registry;
}

function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const a = srv.address();
      srv.close(() => (typeof a === 'object' && a ? resolve(a.port) : reject(new Error('no free port'))));
    });
  });
}

/**
 * server.processes > 1: this process is the cluster's primary (src/cluster.ts). It provisions the
 * database and loads the demo data once, then forks the workers with the database URL.
 */
async function servePrimary(config: Config): Promise<void> {
  const n = config.server.processes;
  if (config.security.rateLimit.enabled && !config.redis.url)
    throw new ConfigError(
      `security.rateLimit with server.processes = ${n} needs redis.url (or REDIS_URL): without a shared counter each process would allow the limit on its own; set redis.url, or server.processes: 1`,
    );
  const db = await resolveDatabase(config, (m) => log.info(m));
  log.info({ database: redactUrl(db.url), embedded: Boolean(db.cluster), processes: n, redis: Boolean(config.redis.url) }, 'database');
  const pool = createPool({ url: db.url, max: 2, statementTimeoutMs: 0, log });
  try {
    await loadRegistry(config, pool);
  } finally {
    await pool.end();
  }
  if (!config.redis.url)
    log.info('no redis.url: the processes share tiles on disk and invalidations, locks and usage through PostgreSQL (docs/operations.md)');
  // port 0 (any free port): chosen here once, so that a replacement worker joins the same port
  const port = config.server.port || (await freePort(config.server.host));
  runPrimary({
    processes: n,
    log,
    env: { DATABASE_URL: db.url, PORT: String(port) },
    shutdownGraceMs: config.server.shutdownGraceMs,
    onStopped: async () => {
      if (db.cluster?.startedHere && process.env.GEODATA_KEEP_DB !== '1') stopEmbeddedCluster(db.cluster);
      log.info('stopped');
      process.exit(0);
    },
  });
}

async function serve(config: Config): Promise<void> {
  if (cluster.isPrimary && config.server.processes > 1) return servePrimary(config);
  const db = await resolveDatabase(config, (m) => log.info(m));
  if (!cluster.isWorker) log.info({ database: redactUrl(db.url), embedded: Boolean(db.cluster) }, 'database');
  const missing = missingFormats(probeTools(toolCommands(config)));
  if (missing.length)
    log.warn(
      { formats: missing.map((m) => m.def.id) },
      `not offered on this machine: ${missing.map((m) => m.def.title).join(', ')} (they need GDAL's ogr2ogr; install it with: ${FEATURE_INSTALL_COMMAND})`,
    );
  const pool = createPool({ url: db.url, max: config.database.poolSize, statementTimeoutMs: startupTimeout(config), log });
  // a worker's primary has loaded the demo data already
  const registry = cluster.isWorker ? new Registry(pool, config) : await loadRegistry(config, pool);
  if (cluster.isWorker) await registry.reload();
  // the services (and their libraries: Skia, sharp, Fastify…) are loaded here, not at the top: a
  // cluster's primary serves nothing and stays small without them (docs/operations.md, "Memory budget")
  const [{ createContext }, { buildApp }, { startMetricsServer }] = await Promise.all([
    import('./context.js'),
    import('./app.js'),
    import('./services/ops.js'),
  ]);
  const ctx = createContext({ config, pool, registry, log });
  const app = await buildApp(ctx, { logger: log });
  await app.listen({ port: config.server.port, host: config.server.host });
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : config.server.port;
  log.info(
    { url: `http://${config.server.host}:${port}/`, layers: registry.list().map((l) => l.name), process: processSlot(), pid: process.pid },
    'server ready',
  );
  notifyReady();
  const metricsServer =
    config.ops.metricsPort !== undefined
      ? await startMetricsServer(ctx, config.ops.metricsPort, process.env.METRICS_HOST ?? '127.0.0.1')
      : undefined;
  if (metricsServer) log.info({ port: config.ops.metricsPort }, 'metrics on a separate listener');

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down: draining requests in flight');
    const force = setTimeout(() => {
      log.warn('grace period over: exiting with requests still open');
      process.exit(1);
    }, config.server.shutdownGraceMs);
    force.unref();
    try {
      await app.close(); // drains requests in flight, flushes usage statistics
      await metricsServer?.close();
      await pool.end();
      if (db.cluster?.startedHere && process.env.GEODATA_KEEP_DB !== '1') stopEmbeddedCluster(db.cluster);
      log.info('stopped');
      process.exit(0);
    } catch (e) {
      log.error({ err: e }, 'error during shutdown');
      process.exit(1);
    }
  };
  // once serving, a stray error must not take the whole server down
  process.on('unhandledRejection', (reason) => log.error({ err: reason }, 'unhandled rejection (kept running)'));
  process.on('uncaughtException', (err) => log.error({ err }, 'uncaught exception (kept running)'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
  // a worker whose primary is gone (killed) stops too, rather than serve on unwatched
  if (cluster.isWorker) process.on('disconnect', () => void shutdown('primary gone'));
  process.on('SIGHUP', () => {
    registry.reload().then(
      () => log.info({ layers: registry.list().length }, 'registry reloaded'),
      (e) => log.error({ err: e.message }, 'registry reload failed; keeping the previous one'),
    );
  });
}

async function demo(config: Config, args: string[]): Promise<void> {
  const db = await resolveDatabase(config, (m) => log.info(m));
  const pool = createPool({ url: db.url, max: 4, log });
  try {
    const summary = await generateDemo(pool, {
      seed: intArg(args, '--seed', config.demo.seed),
      parcels: intArg(args, '--parcels', config.demo.parcels),
      log: (m) => log.info(m),
    });
    log.info(summary, 'demo data generated');
  } finally {
    await pool.end();
  }
}

async function main(): Promise<void> {
  const [cmd = 'serve', ...args] = process.argv.slice(2);
  try {
    switch (cmd) {
      case 'serve': {
        await serve(loadConfig(argValue(args, '--config')));
        break;
      }
      case 'demo':
        await demo(loadConfig(argValue(args, '--config')), args);
        break;
      case 'provision': {
        const db = await resolveDatabase(loadConfig(argValue(args, '--config')), (m) => log.info(m));
        process.stdout.write(`${redactUrl(db.url)}\n`);
        break;
      }
      case 'hash-secret': {
        // reads the secret from stdin so it stays out of shell history
        const chunks: Buffer[] = [];
        for await (const c of process.stdin) chunks.push(c as Buffer);
        const secret = Buffer.concat(chunks)
          .toString('utf8')
          .replace(/\r?\n$/, '');
        if (!secret) throw new ConfigError('hash-secret: give the password or API key on standard input');
        process.stdout.write(`${hashSecret(secret)}\n`);
        break;
      }
      case 'seed': {
        const { seedCommand } = await import('./tiles/seed-cli.js');
        await seedCommand(loadConfig(argValue(args, '--config')), args, log);
        break;
      }
      case 'replica': {
        const db = await resolveDatabase(loadConfig(argValue(args, '--config')), (m) => log.info(m));
        if (!db.cluster)
          throw new ConfigError(
            'replica: the database is not the embedded cluster (database.url / DATABASE_URL is set); set up streaming replication with your PostgreSQL tools',
          );
        const dir = path.join(db.cluster.home, 'replica');
        if (args.includes('--remove')) {
          const saved = readReplicaState(dir);
          await removeReplica(db.cluster, { dataDir: dir, slot: saved?.slot });
          process.stdout.write(`replica removed (${dir})\n`);
          break;
        }
        const port = argValue(args, '--port');
        const r = await provisionReplica(db.cluster, dir, {
          port: port === undefined ? undefined : intArg(args, '--port', 0),
          slot: 'geodata_replica',
          log: (m) => log.info(m),
        });
        process.stdout.write(
          `replica of ${redactUrl(db.url)} running on 127.0.0.1:${r.port} (${r.dataDir})\n` +
            `add it to the configuration:\n  database:\n    replicas:\n      - ${r.url}\n` +
            `or start the server with DATABASE_REPLICAS=${r.url}\n`,
        );
        break;
      }
      case 'check-config': {
        const cfg = loadConfig(args[0]);
        process.stdout.write(`configuration OK (${cfg.source ?? 'defaults'})\n`);
        break;
      }
      case 'catalog-import': {
        const { catalogImport } = await import('./catalog/cli.js');
        process.exitCode = await catalogImport(
          loadConfig(argValue(args, '--config')),
          args.filter((a, i) => !a.startsWith('--config') && args[i - 1] !== '--config'),
        );
        break;
      }
      default:
        process.stderr.write(
          `unknown command '${cmd}'. Commands: serve, demo, provision, replica, check-config, hash-secret, catalog-import, seed\n`,
        );
        process.exit(2);
    }
  } catch (e) {
    if (e instanceof ConfigError || e instanceof ProvisionError || e instanceof RegistryError) {
      process.stderr.write(`error: ${e.message}\n`);
      process.exit(1);
    }
    log.fatal({ err: e }, `${cmd} failed`);
    process.exit(1);
  }
}

await main();
