// Minimal types for the two local stand-ins that ship none.
declare module 'dynalite' {
  import type { Server } from 'node:http';

  function dynalite(options?: {
    path?: string;
    createTableMs?: number;
    deleteTableMs?: number;
    updateTableMs?: number;
  }): Server;
  export default dynalite;
}

declare module 's3rver' {
  export default class S3rver {
    constructor(options: {
      address?: string;
      port?: number;
      silent?: boolean;
      directory: string;
      configureBuckets?: { name: string; configs: unknown[] }[];
    });
    run(): Promise<unknown>;
    close(): Promise<void>;
  }
}

declare module 'asl-validator' {
  function validator(definition: unknown): {
    isValid: boolean;
    errors: unknown[];
    errorsText(separator?: string): string;
  };
  export = validator;
}
