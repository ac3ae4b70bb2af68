/**
 * A warning logged at most once per interval for each subject (a cache tier,
 * a part that keeps failing): a dependency that is down fails on every
 * request, and one line per subject per interval says so without flooding.
 */
export function throttledWarning(
  logger: { warn(obj: object, msg: string): void },
  message: string,
  intervalMs: number,
): (subject: Record<string, string>, error: unknown) => void {
  const lastLogged = new Map<string, number>();
  return (subject, error) => {
    const id = JSON.stringify(subject);
    const now = Date.now();
    if (now - (lastLogged.get(id) ?? Number.NEGATIVE_INFINITY) < intervalMs) return;
    lastLogged.set(id, now);
    logger.warn(
      { ...subject, err: error instanceof Error ? error.message.slice(0, 200) : 'failed' },
      message,
    );
  };
}
