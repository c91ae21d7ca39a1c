import pino, { type Logger } from 'pino';

/**
 * Paths pino blanks out. Personal data, secrets and codes never reach a log line:
 * bodies are not logged at all, and these cover the places where they could slip in
 * through headers or objects a handler chooses to log.
 */
export const REDACTED_PATHS = [
  'req.headers.cookie',
  'req.headers.authorization',
  'req.headers["x-csrf-token"]',
  'req.headers.dpop',
  'res.headers["set-cookie"]',
  '*.password',
  '*.code',
  '*.otp',
  '*.secret',
  '*.token',
  '*.snils',
  '*.inn',
  '*.passport',
  '*.phone',
  '*.email',
];

export interface LoggerOptions {
  name: string;
  level: string;
  /** Where lines go; defaults to stdout. Tests pass a stream to inspect them. */
  destination?: pino.DestinationStream;
}

export function createLogger(opts: LoggerOptions): Logger {
  return pino(
    {
      name: opts.name,
      level: opts.level,
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
      serializers: {
        // Only the path is logged: query strings can carry codes and tokens.
        req: (req: { id: string; method: string; url: string; ip?: string }) => ({
          id: req.id,
          method: req.method,
          path: req.url.split('?')[0],
        }),
        res: (res: { statusCode: number }) => ({ status: res.statusCode }),
      },
    },
    opts.destination,
  );
}
