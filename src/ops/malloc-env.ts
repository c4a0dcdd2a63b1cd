/**
 * glibc malloc settings for the server's processes, read by glibc when a process starts: `npm
 * start` (scripts/run.mjs) gives them to the server it runs and the cluster's primary to the
 * workers it forks; an operator's own value of each wins. docs/operations.md, "Memory budget".
 *
 * - MALLOC_ARENA_MAX=2: two arenas instead of eight per core (the render workers' and libvips's
 *   threads each took an arena of their own and kept its freed memory).
 * - MALLOC_MMAP_THRESHOLD_=131072: blocks of 128 kB and more (map bitmaps, PNG rows, deflate
 *   windows, page buffers) are mapped and unmapped on their own. glibc's default threshold starts
 *   there but rises to the largest block freed so far (a metatile's 5 MB pixels), after which
 *   such blocks were carved from the arenas and their freed space kept: glibc held 505 MB of
 *   which 85 MB in use after a town-and-metatile run (malloc_stats).
 * - MALLOC_TRIM_THRESHOLD_=131072: free space above 128 kB at the top of an arena goes back to the
 *   system (setting the mmap threshold fixes this one at 128 kB too; written out for clarity).
 */
export const MALLOC_DEFAULTS: Readonly<Record<string, string>> = {
  MALLOC_ARENA_MAX: '2',
  MALLOC_MMAP_THRESHOLD_: '131072',
  MALLOC_TRIM_THRESHOLD_: '131072',
};

/** `env` with the malloc defaults added where it has no value of its own. */
export function mallocEnv(env: NodeJS.ProcessEnv | Record<string, string | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(MALLOC_DEFAULTS)) out[k] = env[k] ?? v;
  for (const [k, v] of Object.entries(env)) if (v !== undefined) out[k] = v;
  return out;
}
