/**
 * The JSON object columns of keys and teams (limits, budget): only the fields
 * that are set are stored, none at all as null; read back failing closed.
 */

export function objectText(value: object | null | undefined): string | null {
  if (value === null || value === undefined) return null;
  const set = Object.fromEntries(Object.entries(value).filter(([, field]) => field !== undefined));
  return Object.keys(set).length === 0 ? null : JSON.stringify(set);
}

/** The column's object, or null; throws on anything else: damaged limits read as "none" would widen access. */
export function parseObject(owner: string, column: string, text: string | null): object | null {
  if (text === null || text === '') return null;
  const value: unknown = JSON.parse(text);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new Error(`${owner}: ${column} is not a JSON object`);
  }
  return value;
}
