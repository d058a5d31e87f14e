/** Reading and writing .model files, with errors that name the file. */
import { TokenizerError } from "./errors.ts";
import type { TokenizerModel } from "./model.ts";
import { decodeModelProto, encodeModelProto } from "./model_proto.ts";
import { ProtoFormatError } from "./protobuf_wire.ts";
import { Tokenizer } from "./tokenizer.ts";

export async function readModel(path: string): Promise<TokenizerModel> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    throw new TokenizerError(`${path}: cannot read the model (${(e as Error).message})`);
  }
  try {
    return decodeModelProto(bytes);
  } catch (e) {
    if (e instanceof ProtoFormatError) {
      throw new TokenizerError(`${path}: not a SentencePiece model: ${e.message}`);
    }
    throw e;
  }
}

export async function loadTokenizer(path: string): Promise<Tokenizer> {
  return new Tokenizer(await readModel(path), path);
}

export function modelBytes(model: TokenizerModel): Uint8Array {
  return encodeModelProto(model);
}
