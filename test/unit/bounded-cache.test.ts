import { describe, expect, it } from 'vitest';
import { BoundedCache } from '../../lambdas/core/storage/bounded-cache.ts';

describe('BoundedCache', () => {
  it('holds at most its capacity, dropping the earliest inserted first', () => {
    const cache = new BoundedCache<string, number>(2);
    cache.set('a', 1);
    cache.set('b', 2);
    cache.set('a', 10); // a value set again keeps its place
    cache.set('c', 3);
    expect(cache.get('a')).toBeUndefined();
    expect(cache.get('b')).toBe(2);
    expect(cache.get('c')).toBe(3);
  });
});
