import pino from "pino";

export type Logger = pino.Logger;

export function createLogger(level: string = "info", destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: "larder" },
      timestamp: pino.stdTimeFunctions.isoTime,
      // Keys must never reach the logs.
      redact: { paths: ["req.headers.authorization", "headers.authorization", "authorization"], censor: "[redacted]" },
    },
    destination,
  );
}

export const silentLogger = (): Logger => pino({ level: "silent" });
