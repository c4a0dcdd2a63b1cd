/** The built server as a real process: start, answer, refuse a bad config, drain on SIGTERM. */
import { describe, it, expect } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { testDatabaseUrl } from './helpers/app.js';

const main = path.join(process.cwd(), 'dist', 'src', 'main.js');

describe.skipIf(!existsSync(main))('server process', () => {
  it('refuses a config with a wrong key, naming it', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'cfg-'));
    const f = path.join(dir, 'bad.yaml');
    writeFileSync(f, 'service:\n  title: x\nlimts:\n  maxFeatures: 10\n');
    const r = spawnSync(process.execPath, [main, 'serve', '--config', f], {
      encoding: 'utf8',
      env: { ...process.env, DATABASE_URL: testDatabaseUrl() },
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain("unknown key 'limts'");
  });

  it('starts on PORT, serves, and exits 0 on SIGTERM', async () => {
    const child = spawn(process.execPath, [main, 'serve'], {
      env: { ...process.env, DATABASE_URL: testDatabaseUrl(), PORT: '0', HOST: '127.0.0.1', GEODATA_CONFIG: '', LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    const url = await new Promise<string>((resolve, reject) => {
      // the default start is one worker per core, all starting at once: slow on a busy machine
      const timer = setTimeout(() => reject(new Error(`no 'server ready' line:\n${out}`)), 120_000);
      child.stdout.on('data', (d) => {
        out += d;
        const m = /"url":"(http:\/\/[^"]+)"/.exec(out);
        if (m && out.includes('server ready')) {
          clearTimeout(timer);
          resolve(m[1]);
        }
      });
      child.on('exit', (code) => reject(new Error(`exited ${code}:\n${out}`)));
    });
    const ready = await fetch(`${url}readyz`);
    expect(ready.status).toBe(200);
    const landing = await (await fetch(`${url}?f=json`)).json();
    expect(landing.layers.length).toBeGreaterThanOrEqual(4);
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(out).toContain('shutting down');
    // every log line is JSON with a request id on request logs
    const reqLine = out.split('\n').find((l) => l.includes('"reqId"'));
    expect(reqLine && JSON.parse(reqLine).reqId).toBeTruthy();
  }, 180_000);
});
