/**
 * Route selectors (`models.<name>.routes[].targets`): which of a model's
 * target entries a selector names. Written once and used twice, so the two
 * can never disagree: by the start-up check (config/validate-routing.ts: every
 * selector must name something) and by routing at run time
 * (routing/conditions.ts: the entries a matching rule allows).
 *
 * A selector names an entry when it is
 * - `*`: every entry;
 * - the entry's id: `<provider>/<model>` for an upstream, `group:<model>` for
 *   another model nested as a group (the ids logs and the admin API show);
 * - the nested model's name, for a group entry;
 * - one of the entry's tags.
 *
 * Only the model's own entries are named: a target inside a nested group is
 * reached through its group, not selected on its own.
 */

/** What a selector is matched against: a model's target entry. */
export interface SelectableEntry {
  id: string;
  /** The nested model's name, for a group entry. */
  group: string | undefined;
  tags: readonly string[];
}

const EVERY_ENTRY = '*';
const GROUP_ID_PREFIX = 'group:';

/** The id of a configured target entry: `<provider>/<model>`, or `group:<model>`. */
export function targetEntryId(target: {
  provider?: string | undefined;
  model?: string | undefined;
  group?: string | undefined;
}): string {
  return target.group !== undefined
    ? `${GROUP_ID_PREFIX}${target.group}`
    : `${target.provider}/${target.model}`;
}

export function selects(entry: SelectableEntry, selector: string): boolean {
  return (
    selector === EVERY_ENTRY ||
    selector === entry.id ||
    (entry.group !== undefined && selector === entry.group) ||
    entry.tags.includes(selector)
  );
}
