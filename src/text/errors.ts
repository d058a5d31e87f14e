/** Errors of the tokenizer: a sentence naming the file or setting at fault (exit code 2). */
import { UserError } from "../pipeline/errors.ts";

export class TokenizerError extends UserError {
  constructor(message: string) {
    super(message, 2);
    this.name = "TokenizerError";
  }
}
