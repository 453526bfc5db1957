/**
 * Text → vector without a model or network: feature hashing of words and character trigrams
 * into a fixed dimension, L2-normalised. Deterministic, so texts sharing words land near each
 * other and a query by text finds them. A remote provider plugs in through the same interface.
 */
export interface Embedder {
  readonly name: string;
  readonly dimension: number;
  embed(texts: string[]): Promise<Float32Array[]>;
}

function fnv1a(text: string, seed = 0x811c9dc5): number {
  let hash = seed >>> 0;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash;
}

function features(text: string): string[] {
  const words = text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [];
  const grams: string[] = [];
  for (const word of words) {
    const padded = `#${word}#`;
    for (let i = 0; i + 3 <= padded.length; i++) grams.push(`3:${padded.slice(i, i + 3)}`);
  }
  return [...words.map((word) => `w:${word}`), ...grams];
}

export class HashingEmbedder implements Embedder {
  readonly name = 'hashing';

  constructor(readonly dimension = 384) {}

  embedOne(text: string): Float32Array {
    const vector = new Float32Array(this.dimension);
    for (const feature of features(text)) {
      const hash = fnv1a(feature);
      const weight = feature.startsWith('w:') ? 2 : 1;
      vector[hash % this.dimension]! += (hash & 0x80000000 ? -1 : 1) * weight;
    }
    let norm = 0;
    for (const value of vector) norm += value * value;
    norm = Math.sqrt(norm);
    if (norm === 0) vector[0] = 1;
    else for (let i = 0; i < vector.length; i++) vector[i]! /= norm;
    return vector;
  }

  async embed(texts: string[]): Promise<Float32Array[]> {
    return texts.map((text) => this.embedOne(text));
  }
}
