/**
 * This run's WER per test split beside the paper's (CONMAMBA_SPEC.md §12), as rows both the
 * markdown summary and the HTML report render. Rows: the configured test splits, then splits
 * scored but not configured, then the paper's splits this run did not score.
 */

/** The paper's WER % on test-clean / test-other, without and (where it has them) with an LM. */
export interface PaperWer {
  clean: number;
  other: number;
  lmClean?: number;
  lmOther?: number;
}

export interface ComparisonRow {
  split: string;
  /** This run's WER %, null when the split was not scored. */
  wer: number | null;
  paperNoLm: number | null;
  paperLm: number | null;
  /** wer minus the paper's number in the comparable column (with LM iff this run used one). */
  delta: number | null;
}

export interface Comparison {
  rows: ComparisonRow[];
  lm: boolean;
  /** The paper's name of the experiment, whether or not the paper has numbers for it. */
  experiment: string;
  hasPaper: boolean;
}

const PAPER_SPLITS = ["test-clean", "test-other"];

function paperNumbers(split: string, paper: PaperWer | undefined): [number | null, number | null] {
  if (!paper) return [null, null];
  if (split === "test-clean") return [paper.clean, paper.lmClean ?? null];
  if (split === "test-other") return [paper.other, paper.lmOther ?? null];
  return [null, null];
}

export function compareWithPaper(
  results: Readonly<Record<string, { wer: number }>>,
  opts: { experiment: string; testSplits: readonly string[]; paper?: PaperWer; lm: boolean },
): Comparison {
  const splits = [...opts.testSplits, ...Object.keys(results)];
  if (opts.paper) splits.push(...PAPER_SPLITS);
  const rows = [...new Set(splits)].map((split): ComparisonRow => {
    const wer = Object.hasOwn(results, split) ? results[split].wer : null;
    const [paperNoLm, paperLm] = paperNumbers(split, opts.paper);
    const ref = opts.lm ? paperLm : paperNoLm;
    return {
      split,
      wer,
      paperNoLm,
      paperLm,
      delta: wer !== null && ref !== null ? wer - ref : null,
    };
  });
  return { rows, lm: opts.lm, experiment: opts.experiment, hasPaper: opts.paper !== undefined };
}

/** One sentence on which paper column this run compares with. */
export function comparisonNote(c: Comparison): string {
  if (!c.hasPaper) return `The paper has no numbers for ${c.experiment}.`;
  return c.lm
    ? `This run decodes with an LM: compare with the paper's with-LM column (${c.experiment}).`
    : `This run decodes without an LM: compare with the paper's no-LM column (${c.experiment}).`;
}
