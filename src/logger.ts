/** Structured logging shared by the controller and worker contexts. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';

export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

export const levelRank: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

export function parseLogLevel(value: string | undefined, fallback: LogLevel): LogLevel {
  return value !== undefined && value in levelRank ? (value as LogLevel) : fallback;
}

/** Writes one line per record to stderr, so that stdout stays the application's. */
export function createConsoleLogger(level: LogLevel, prefix = 'caphost'): Logger {
  const min = levelRank[level];
  const write = (lvl: Exclude<LogLevel, 'silent'>) => (message: string, fields?: Record<string, unknown>) => {
    if (levelRank[lvl] < min) return;
    const extra = fields === undefined ? '' : ` ${JSON.stringify(fields)}`;
    process.stderr.write(`${new Date().toISOString()} ${lvl.padEnd(5)} [${prefix}] ${message}${extra}\n`);
  };
  return { debug: write('debug'), info: write('info'), warn: write('warn'), error: write('error') };
}
