/**
 * What a stage is: a named, versioned function from (declared config keys, upstream artifacts,
 * external files) to a directory of files. The engine owns caching, locking, resume and atomic
 * publication; a stage only writes into `ctx.out`.
 */
import type { Checkpoints } from "./checkpoints.ts";
import type { Progress } from "./progress.ts";

/** An upstream artifact as a stage sees it. */
export interface ArtifactRef {
  stage: string;
  key: string;
  contentHash: string;
  /** Directory holding the artifact's files (read-only by convention). */
  path: string;
}

export interface StageContext<Cfg> {
  /** The declared config keys, and only those: reading any other key throws. */
  readonly config: Readonly<Cfg>;
  /** Directory to write the artifact into. Everything in it is published, atomically, on success. */
  readonly out: string;
  /** Upstream artifacts by stage name. */
  readonly inputs: Readonly<Record<string, ArtifactRef>>;
  /** External paths (files or directories) with their content hashes, as declared. */
  readonly externals: readonly { path: string; contentHash: string }[];
  /** True when an interrupted run of this same key left state behind (`out`, checkpoints). */
  readonly resumed: boolean;
  /**
   * A directory that survives interrupted attempts of this key but is never published (e.g.
   * archives being downloaded). Removed once the artifact is published.
   */
  readonly scratch: string;
  /** Durable checkpoints of this key, kept outside `out` and never published. */
  readonly checkpoints: Checkpoints;
  readonly progress: Progress;
  /** Write a file under `out` atomically (temp + fsync + rename); creates parent directories. */
  writeFile(relPath: string, data: Uint8Array | string): Promise<void>;
}

export interface Stage<C extends object = Record<string, unknown>> {
  name: string;
  /** Bump when the code changes what the stage produces: it is part of the key. */
  version: number;
  description: string;
  /** Config keys the stage reads; part of the key. */
  reads: readonly (keyof C & string)[];
  /** Upstream stages whose artifacts are inputs; their content hashes are part of the key. */
  after: readonly string[];
  /**
   * External files or directories whose contents enter the key (e.g. a corpus the user points
   * at). Hashes are cached by (device, inode, size, mtime).
   */
  externals?(config: Readonly<Partial<C>>): string[];
  /**
   * True when the stage computes with build/kernels.wasm: the binary's sha256 then enters the
   * key, so a kernel change (even a rounding change) rebuilds what it computed.
   */
  usesKernels?: boolean;
  run(ctx: StageContext<Partial<C>>): Promise<void>;
}

/**
 * Declares a stage with its config typed by the keys it reads, so that `ctx.config.x` for an
 * undeclared `x` is a compile error as well as a run-time one.
 */
export function defineStage<C extends object, K extends keyof C & string>(def: {
  name: string;
  version: number;
  description: string;
  reads: readonly K[];
  after: readonly string[];
  externals?(config: Readonly<Pick<C, K>>): string[];
  usesKernels?: boolean;
  run(ctx: StageContext<Pick<C, K>>): Promise<void>;
}): Stage<C> {
  return def as unknown as Stage<C>;
}

/** The pipeline of one experiment: stages in an order where every `after` comes earlier. */
export interface Pipeline<C extends object> {
  experiment: string;
  config: C;
  stages: Stage<C>[];
}
