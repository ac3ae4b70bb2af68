/**
 * OpenAI's cursor-paged list (`GET /v1/files`, `/v1/batches`,
 * `/v1/responses/{id}/input_items`): `{ object: 'list', data, first_id,
 * last_id, has_more }`. Callers fetch one row beyond the page, so `has_more`
 * needs no count.
 */
export interface ListPage<V> {
  object: 'list';
  data: V[];
  first_id: string | null;
  last_id: string | null;
  has_more: boolean;
}

/** The page of `rows` (fetched up to `limit + 1`), each shown through `view`. */
export function listPage<T extends { id: string }, V>(
  rows: readonly T[],
  limit: number,
  view: (row: T) => V,
): ListPage<V> {
  const page = rows.slice(0, limit);
  return {
    object: 'list',
    data: page.map(view),
    first_id: page[0]?.id ?? null,
    last_id: page.at(-1)?.id ?? null,
    has_more: rows.length > limit,
  };
}
