/**
 * A throw-away redis-server for tests: Debian's redis-server (installed when missing and the test
 * runs as root), started on a free loopback port without persistence. `redisBin` is null when it
 * is neither installed nor installable (the tests using it then skip visibly).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import net from 'node:net';

function findRedis(): string | null {
  for (const p of ['/usr/bin/redis-server', '/usr/local/bin/redis-server']) if (existsSync(p)) return p;
  if (process.getuid?.() === 0) {
    spawnSync('apt-get', ['install', '-y', '-q', 'redis-server'], { stdio: 'ignore', timeout: 240_000 });
    if (existsSync('/usr/bin/redis-server')) return '/usr/bin/redis-server';
  }
  return null;
}

export const redisBin = findRedis();

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => (typeof a === 'object' && a ? resolve(a.port) : reject(new Error('no port'))));
    });
  });
}

async function waitPort(port: number): Promise<void> {
  const until = Date.now() + 10_000;
  for (;;) {
    const ok = await new Promise<boolean>((r) => {
      const c = net.connect(port, '127.0.0.1', () => {
        c.end();
        r(true);
      });
      c.on('error', () => r(false));
    });
    if (ok) return;
    if (Date.now() > until) throw new Error('redis-server did not start');
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Start a redis-server; resolves once it accepts connections. */
export async function startRedis(): Promise<{ url: string; process: ChildProcess; stop: () => void }> {
  if (!redisBin) throw new Error('redis-server is not available');
  const port = await freePort();
  const child = spawn(redisBin, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  await waitPort(port);
  return { url: `redis://127.0.0.1:${port}/0`, process: child, stop: () => child.kill('SIGTERM') };
}
