#!/usr/bin/env node
// Bootstrap for the two commands (npm start, npm test) and the CLI: installs the npm
// dependencies when missing, builds when the sources changed, then runs. No dependencies of
// its own, so it works on a fresh clone.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
process.chdir(root);

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: 'inherit', cwd: root, ...opts });
  if (r.error) throw r.error;
  return r.status ?? 1;
}

function newestMtime(dir) {
  let newest = 0;
  if (!existsSync(dir)) return 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) newest = Math.max(newest, newestMtime(p));
    else newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

// Installed dependencies are matched to package-lock.json by content (a hash written after a
// successful install), not by file times: a fresh checkout or a git merge must not reinstall.
function lockHash() {
  return createHash('sha256')
    .update(readFileSync(path.join(root, 'package-lock.json')))
    .digest('hex');
}

function ensureDeps() {
  const stamp = path.join(root, 'node_modules', '.geodata-lock-hash');
  const want = lockHash();
  if (existsSync(stamp) && readFileSync(stamp, 'utf8').trim() === want) return;
  if (!existsSync(stamp) && existsSync(path.join(root, 'node_modules', '.package-lock.json'))) {
    // installed by hand with the same lock file: npm's own record matches; adopt it
    const npmRecord = JSON.parse(readFileSync(path.join(root, 'node_modules', '.package-lock.json'), 'utf8'));
    const lock = JSON.parse(readFileSync(path.join(root, 'package-lock.json'), 'utf8'));
    const names = (o) =>
      Object.keys(o.packages ?? {})
        .filter((k) => k && !lock.packages?.[k]?.optional)
        .sort()
        .join('\n');
    if (names(npmRecord) === names(lock)) {
      writeFileSync(stamp, want);
      return;
    }
  }
  console.error('[geodata] installing npm dependencies (npm ci)…');
  let status = run('npm', ['ci', '--no-audit', '--no-fund', '--loglevel=error']);
  if (status !== 0) {
    console.error('[geodata] npm ci failed; trying npm install…');
    status = run('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error']);
  }
  if (status !== 0) process.exit(status);
  writeFileSync(stamp, lockHash());
}

function ensureBuild() {
  const out = path.join(root, 'dist', 'src', 'main.js');
  const srcNewest = Math.max(newestMtime(path.join(root, 'src')), statSync(path.join(root, 'tsconfig.json')).mtimeMs);
  if (existsSync(out) && statSync(out).mtimeMs >= srcNewest) return;
  console.error('[geodata] building (tsc)…');
  const status = run(process.execPath, [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json']);
  if (status !== 0) process.exit(status);
}

const [cmd, ...rest] = process.argv.slice(2);
switch (cmd) {
  case 'start': {
    ensureDeps();
    ensureBuild();
    // glibc malloc settings, read when the server's process starts (src/ops/malloc-env.ts;
    // docs/operations.md, "Memory budget"): from the build, which ensureBuild has just made
    const { mallocEnv } = await import(pathToFileURL(path.join(root, 'dist', 'src', 'ops', 'malloc-env.js')).href);
    process.exit(
      run(process.execPath, ['--enable-source-maps', 'dist/src/main.js', 'serve', ...rest], {
        env: mallocEnv(process.env),
      }),
    );
    break;
  }
  case 'cli':
    ensureDeps();
    ensureBuild();
    process.exit(run(process.execPath, ['--enable-source-maps', 'dist/src/main.js', ...rest]));
    break;
  case 'test': {
    ensureDeps();
    // formatting and lint (Biome) before anything else: a style or lint error fails the run
    const lint = run(process.execPath, [
      path.join(root, 'node_modules', '@biomejs', 'biome', 'bin', 'biome'),
      'ci',
      '--colors=off',
      '--diagnostic-level=error',
      '.',
    ]);
    if (lint !== 0) process.exit(lint);
    // build (and so type-check) first: the end-to-end tests start dist/src/main.js
    const tsc = run(process.execPath, [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json']);
    if (tsc !== 0) process.exit(tsc);
    process.exit(run(process.execPath, [path.join(root, 'node_modules', 'vitest', 'vitest.mjs'), 'run', ...rest]));
    break;
  }
  case 'bench':
    ensureDeps();
    ensureBuild();
    process.exit(run(process.execPath, ['bench/run.mjs', ...rest]));
    break;
  default:
    console.error('usage: node scripts/run.mjs start|test|cli|bench [args]');
    process.exit(2);
}
