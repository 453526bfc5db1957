/**
 * The environment of a server we spawn (Chroma, the local S3 and DynamoDB), with glibc's malloc
 * asked to back its heap with transparent huge pages (`glibc.malloc.hugetlb=1`, glibc 2.35+).
 *
 * On a Firecracker VM (this project's CI machines; Lambda is one too) a page fault costs ~11 us:
 * touching 64 MB of fresh memory took 185 ms in 4 KB pages, ~100 ms and down to 19 ms with huge
 * pages. Chroma's HNSW index preallocates its whole file, and a build moves hundreds of MB
 * through these servers, so a 3,000 x 1536-d run spent a second in page faults (docs/benchmarks.md).
 * An older glibc ignores the unknown tunable, and with THP set to `never` it does nothing; a
 * hugetlb value already in the environment is left as it is.
 */
export function withHugePageMalloc(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  if (hasHugePageSetting(env)) return env;
  const tunables = env.GLIBC_TUNABLES?.trim();
  return { ...env, GLIBC_TUNABLES: tunables ? `${tunables}:${HUGE_PAGE_MALLOC}` : HUGE_PAGE_MALLOC };
}

const HUGE_PAGE_MALLOC = 'glibc.malloc.hugetlb=1';

/** Whether the environment already says how malloc uses huge pages (ours, or the user's own value). */
export function hasHugePageSetting(env: NodeJS.ProcessEnv): boolean {
  return /(^|:)glibc\.malloc\.hugetlb=/.test(env.GLIBC_TUNABLES ?? '');
}
