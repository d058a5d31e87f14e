import { UserError } from "../pipeline/errors.ts";

/** A FLAC file that cannot be read: not FLAC, truncated, a bad checksum. Names the file. */
export class FlacError extends UserError {
  constructor(readonly file: string, readonly problem: string) {
    super(`${file}: ${problem}`, 1);
    this.name = "FlacError";
  }
}
