export { makeUpserts, randomEmbedding, seededRandom, toJsonl } from '../../local/synthetic-records.ts';
