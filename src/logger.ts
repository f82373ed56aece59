import pino from "pino";

export type Logger = pino.Logger;

/**
 * Standard output as the server writes it: lines are gathered (up to 4 KiB) and written together, at the latest every
 * FLUSH_MS, as soon as the write in progress ends for warnings and errors (see createLogger), and on exit. One write(2)
 * per request line was the largest single cost of a small lookup (bench:online 1×10: about 0.73× the floor with it,
 * 0.85× without).
 */
const FLUSH_MS = 200;
const bufferedStdout = () => pino.destination({ dest: 1, sync: false, minLength: 4096, periodicFlush: FLUSH_MS });

/** A JSON logger; without a destination, to buffered standard output (the server's request log). */
export function createLogger(level: string = "info", destination?: pino.DestinationStream): Logger {
  const stream = destination ?? bufferedStdout();
  return pino(
    {
      level,
      base: { service: "larder" },
      timestamp: pino.stdTimeFunctions.isoTime,
      // Keys must never reach the logs.
      redact: { paths: ["req.headers.authorization", "headers.authorization", "authorization"], censor: "[redacted]" },
      hooks: {
        // What an operator must see now is not left in the buffer.
        logMethod(args, method, level) {
          method.apply(this, args);
          if (level >= 40 && "flush" in stream) (stream as { flush(): void }).flush();
        },
      },
    },
    stream,
  );
}

export const silentLogger = (): Logger => pino({ level: "silent" });

/**
 * Resolves once every line logged so far is written (or after `timeoutMs`). A process must wait for this before
 * process.exit: the exit hook writes what is buffered at once, but a chunk already handed to an asynchronous write can
 * land after it, so the last line ("stopped") could come out before earlier request lines.
 */
export function flushed(logger: Logger, timeoutMs = 2000): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, timeoutMs);
    try {
      logger.flush(() => {
        clearTimeout(timer);
        resolve();
      });
    } catch {
      clearTimeout(timer);
      resolve();
    }
  });
}
