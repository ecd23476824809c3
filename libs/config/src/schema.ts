/** The one configuration schema every Lading process reads: defaults, types and limits in one place. */
import { z } from 'zod';

const DURATION_UNITS_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;
const DURATION = /^(\d+)(ms|s|m|h)$/;

/** Converts a duration such as `500ms`, `30s`, `5m` or `24h` to milliseconds. */
export function durationMs(value: string): number {
  const m = DURATION.exec(value);
  if (!m) throw new Error(`not a duration: ${value}`);
  return Number(m[1]) * DURATION_UNITS_MS[m[2] as keyof typeof DURATION_UNITS_MS];
}

const duration = z.string().regex(DURATION, 'a duration such as 500ms, 30s, 5m or 24h');

/** The configuration schema. Keys never contain `_`, so `LADING_A_B` maps mechanically onto `a.b`. */
export const configSchema = z
  .object({
    mode: z.enum(['embedded', 'distributed']).default('embedded'),
    http: z
      .object({
        addr: z.string().regex(/^(\[[0-9a-fA-F:.]+\]|[^:\s]*):\d{1,5}$/, 'host:port, e.g. 0.0.0.0:5000').default('0.0.0.0:5000'),
        /** The externally visible base URL, used in Location headers when set (else they are relative). */
        host: z.string().url().optional(),
      })
      .strict()
      .prefault({}),
    data: z
      .object({
        /** Where the embedded mode keeps its PGlite database and filesystem blobs. */
        dir: z.string().min(1).default('./data'),
      })
      .strict()
      .prefault({}),
    storage: z
      .object({
        driver: z.enum(['filesystem']).default('filesystem'),
        /** Root of the filesystem driver; defaults to `<data.dir>/blobs`. */
        root: z.string().min(1).optional(),
      })
      .strict()
      .prefault({}),
    database: z
      .object({
        driver: z.enum(['pglite']).default('pglite'),
        /** Directory of the PGlite database; defaults to `<data.dir>/metadata`. */
        path: z.string().min(1).optional(),
      })
      .strict()
      .prefault({}),
    registry: z
      .object({
        /** Whether DELETE of manifests, tags and blobs is allowed (405 UNSUPPORTED when not). */
        deleteEnabled: z.boolean().default(true),
        /** Largest manifest accepted, in bytes. */
        manifestMaxBytes: z.number().int().positive().max(64 * 1024 * 1024).default(4 * 1024 * 1024),
        /** Largest page `n` honoured by tags/list and _catalog; larger requests are clamped. */
        maxPageSize: z.number().int().positive().max(100000).default(1000),
      })
      .strict()
      .prefault({}),
    gc: z
      .object({
        /** How long unreferenced content waits before the collector reviews it. */
        reviewDelay: duration.default('24h'),
        /** Allows review delays under one minute (tests only: a short delay races slow clients). */
        allowShortDelay: z.boolean().default(false),
      })
      .strict()
      .prefault({})
      .refine((gc) => gc.allowShortDelay || durationMs(gc.reviewDelay) >= 60_000, {
        message: 'review delays under one minute need gc.allowShortDelay=true',
        path: ['reviewDelay'],
      }),
    log: z
      .object({
        level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
        access: z.boolean().default(true),
      })
      .strict()
      .prefault({}),
  })
  .strict();

/** The validated configuration of a Lading process. */
export type LadingConfig = z.infer<typeof configSchema>;
/** Configuration as written in a file or a test: every key optional. */
export type LadingConfigInput = z.input<typeof configSchema>;
