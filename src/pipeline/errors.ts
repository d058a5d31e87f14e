/**
 * Errors a user can act on. `exitCode` 2 means "you asked for something invalid" (bad config,
 * unknown experiment or stage); 1 means "it was valid but failed" (a stage threw, corrupt store).
 * The CLI prints `error: <message>` on one line and exits with that code.
 */
export class UserError extends Error {
  constructor(message: string, readonly exitCode: 1 | 2 = 2) {
    super(message);
    this.name = "UserError";
  }
}

/** A stage read a configuration key it did not declare: its cache key would not cover it. */
export class UndeclaredConfigKeyError extends Error {
  constructor(readonly stage: string, readonly key: string) {
    super(
      `stage "${stage}" read config key "${key}" that it does not declare in \`reads\`; ` +
        `add it there so the key covers it (the cache would otherwise go stale silently)`,
    );
    this.name = "UndeclaredConfigKeyError";
  }
}

export class StageFailedError extends Error {
  readonly exitCode = 1;
  constructor(readonly stage: string, readonly key: string, cause: unknown) {
    const why = cause instanceof Error ? cause.message : String(cause);
    super(`stage "${stage}" (key ${key.slice(0, 12)}) failed: ${why}`, { cause });
    this.name = "StageFailedError";
  }
}

/** The exit code an error should end the process with (2 for usage, 1 otherwise). */
export function exitCodeOf(e: unknown): number {
  if (e && typeof e === "object" && "exitCode" in e && typeof e.exitCode === "number") {
    return e.exitCode;
  }
  return 1;
}
