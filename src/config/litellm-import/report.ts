/**
 * The import report: one entry per LiteLLM setting read, saying whether it
 * was translated, approximated (and how), or not translated (and why). It
 * names settings by path and never quotes their values, so a key written
 * literally in the LiteLLM file cannot reach a terminal or a CI log.
 */

export type ImportOutcome = 'translated' | 'approximated' | 'not translated';

export interface ImportReportEntry {
  /** Where the setting was in the LiteLLM file, e.g. `model_list[2].litellm_params.rpm`. */
  setting: string;
  outcome: ImportOutcome;
  /** What it became (`models.gpt-4o.targets.1.limits.rpm`), how it was approximated, or why not. */
  detail: string;
}

export class ImportReport {
  readonly entries: ImportReportEntry[] = [];

  translated(setting: string, detail: string): void {
    this.entries.push({ setting, outcome: 'translated', detail });
  }

  approximated(setting: string, detail: string): void {
    this.entries.push({ setting, outcome: 'approximated', detail });
  }

  notTranslated(setting: string, detail: string): void {
    this.entries.push({ setting, outcome: 'not translated', detail });
  }

  count(outcome: ImportOutcome): number {
    return this.entries.filter((e) => e.outcome === outcome).length;
  }
}

/** One line per entry, aligned, then a tally. */
export function formatReport(entries: readonly ImportReportEntry[]): string {
  const width = Math.max(0, ...entries.map((e) => e.outcome.length));
  const lines = entries.map((e) => `${e.outcome.padEnd(width)}  ${e.setting}: ${e.detail}`);
  const tally = (['translated', 'approximated', 'not translated'] as const)
    .map((o) => `${entries.filter((e) => e.outcome === o).length} ${o}`)
    .join(', ');
  return `${[...lines, tally].join('\n')}\n`;
}
