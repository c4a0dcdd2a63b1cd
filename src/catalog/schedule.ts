/**
 * Scheduled and on-demand harvesting.
 *  - config `catalog.harvest[]`: each source harvested every `intervalMinutes` (default daily),
 *    the first run one minute after start; runs of one source never overlap; with several server
 *    processes (one machine or many) each period's run happens in one of them (src/ops/jobs.ts);
 *  - POST /catalog/harvest (Bearer GEODATA_ADMIN_TOKEN): run one configured source by `name`, or
 *    an ad-hoc `{name, url, type, minKeptShare?}`; `confirmDeletions: true` applies a clean run that
 *    the minKeptShare safeguard would refuse. Answers the run report (status, new/updated/deleted/failed).
 *  - CSW Harvest requests with a HarvestInterval (src/services/csw/harvest.ts): kept in the
 *    catalogue table `harvest_schedule` (they survive a restart); every minute each process claims
 *    the rows that are due (FOR UPDATE SKIP LOCKED: one process runs each, however many there are)
 *    and re-harvests them.
 * Reserved names ('local', 'csw-t', any case) are refused, in the config (schema) and here.
 */
import { ServiceError, invalidParam } from '../errors/service-error.js';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AppContext } from '../context.js';
import { harvest, isReservedSourceName, RESERVED_SOURCE_NAMES, type HarvestReport, type HarvestSource } from './harvest.js';
import { migrateCatalog, schemaOf } from './store.js';
import { toRecords } from './import.js';
import { claimRun } from '../ops/jobs.js';

const running = new Map<string, Promise<HarvestReport>>();

export async function runHarvest(ctx: AppContext, src: HarvestSource, confirmDeletions = false): Promise<HarvestReport> {
  const current = running.get(src.name);
  if (current) return current;
  const p = (async () => {
    await migrateCatalog(ctx.pool, schemaOf(ctx));
    const report = await harvest(ctx.pool, src, {
      schema: schemaOf(ctx),
      confirmDeletions,
      readRecord: (el, source, at) => toRecords(el, at, source),
    });
    ctx.log[report.status === 'done' ? 'info' : 'warn'](
      { harvest: report },
      `harvest of '${src.name}' ${report.ok ? report.status : 'failed; nothing changed'}`,
    );
    return report;
  })().finally(() => running.delete(src.name));
  running.set(src.name, p);
  return p;
}

/** Record (or, with `everySeconds` null, end) the periodic re-harvest of `src`; the next run is one period from now. */
export async function setHarvestSchedule(ctx: AppContext, src: HarvestSource, everySeconds: number | null): Promise<void> {
  const S = schemaOf(ctx);
  if (everySeconds === null) {
    await ctx.pool.query(`DELETE FROM ${S}.harvest_schedule WHERE name = $1`, [src.name]);
    return;
  }
  await ctx.pool.query(
    `INSERT INTO ${S}.harvest_schedule (name, source, every_seconds, next_run) VALUES ($1, $2, $3::int, now() + make_interval(secs => $3::int))
     ON CONFLICT (name) DO UPDATE SET source = EXCLUDED.source, every_seconds = EXCLUDED.every_seconds, next_run = EXCLUDED.next_run`,
    [src.name, JSON.stringify(src), everySeconds],
  );
}

/**
 * Run the scheduled harvests that are due (claimed in one statement, so that two processes never
 * run the same one); returns their reports. Called every minute; callable directly (tests).
 */
export async function runDueHarvests(ctx: AppContext): Promise<HarvestReport[]> {
  const S = schemaOf(ctx);
  const due = await ctx.pool.query<{ name: string; source: HarvestSource }>(
    `UPDATE ${S}.harvest_schedule s SET next_run = now() + make_interval(secs => s.every_seconds), last_run = now()
      WHERE s.name IN (SELECT name FROM ${S}.harvest_schedule WHERE next_run <= now() ORDER BY next_run LIMIT 10 FOR UPDATE SKIP LOCKED)
      RETURNING s.name, s.source`,
  );
  const reports: HarvestReport[] = [];
  for (const row of due.rows) {
    const report = await runHarvest(ctx, row.source);
    await ctx.pool.query(`UPDATE ${S}.harvest_schedule SET last_status = $2 WHERE name = $1`, [row.name, report.status]);
    reports.push(report);
  }
  return reports;
}

export function registerHarvesting(app: FastifyInstance, ctx: AppContext): void {
  const sources = ctx.config.catalog?.harvest ?? [];
  // an admin route (config.admin): src/security/admin.ts checks the caller before the body is read
  app.post('/catalog/harvest', { config: { admin: true } }, async (req: FastifyRequest, reply: FastifyReply) => {
    const body = (typeof req.body === 'string' ? safeJson(req.body) : req.body) as Record<string, unknown> | null;
    if (!body || typeof body !== 'object') throw invalidParam('body', 'a JSON body {name} or {name, url, type} is required');
    const name = String(body.name ?? '');
    if (isReservedSourceName(name))
      throw invalidParam(
        'name',
        `the source name '${name.slice(0, 64)}' is reserved (${RESERVED_SOURCE_NAMES.join(', ')}: records of this server and of CSW-T)`,
      );
    if (body.confirmDeletions !== undefined && typeof body.confirmDeletions !== 'boolean')
      throw invalidParam('confirmDeletions', 'confirmDeletions must be true or false');
    let src: HarvestSource | undefined = sources.find((s) => s.name === name);
    if (!src && body.url) {
      const url = String(body.url);
      const type = String(body.type ?? '');
      const share = body.minKeptShare;
      if (
        !/^https?:\/\//.test(url) ||
        (type !== 'csw' && type !== 'dcat') ||
        !/^[A-Za-z0-9_.:-]{1,64}$/.test(name) ||
        (share !== undefined && (typeof share !== 'number' || !(share >= 0 && share <= 1)))
      ) {
        throw invalidParam(
          'body',
          'ad-hoc sources need name (1-64 letters, digits, _.:-), url (http/https), type (csw or dcat) and optionally minKeptShare (0..1)',
        );
      }
      src = { name, url, type, minKeptShare: share as number | undefined };
    }
    if (!src) throw new ServiceError('not-found', `no configured harvest source '${name}'`);
    return reply.send(await runHarvest(ctx, src, body.confirmDeletions === true));
  });

  const timers: NodeJS.Timeout[] = [];
  app.addHook('onReady', async () => {
    const poll = setInterval(() => {
      // a catalogue never migrated has no schedule yet (42P01): nothing to do
      runDueHarvests(ctx).catch((e) => {
        if ((e as { code?: string }).code !== '42P01') ctx.log.error({ err: e }, 'scheduled CSW harvests failed');
      });
    }, 60_000);
    poll.unref();
    timers.push(poll);
    for (const s of sources) {
      const every = Math.max(5, s.intervalMinutes ?? 1440) * 60_000;
      // once per cluster: the process that claims this period's run harvests, the others skip it
      const run = () =>
        void claimRun(ctx.pool, `harvest:${s.name}`, every / 2)
          .then((mine) => (mine ? runHarvest(ctx, s) : undefined))
          .catch((e) => ctx.log.error({ err: e }, `harvest of '${s.name}' crashed`));
      const first = setTimeout(() => {
        run();
        const t = setInterval(run, every);
        t.unref();
        timers.push(t);
      }, 60_000);
      first.unref();
      timers.push(first);
    }
  });
  app.addHook('onClose', async () => {
    for (const t of timers) clearTimeout(t); // clears intervals too
  });
}

function safeJson(s: string): unknown {
  try {
    return JSON.parse(s);
  } catch {
    return null;
  }
}
