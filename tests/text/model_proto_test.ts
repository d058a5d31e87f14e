/** The wire format, the ModelProto round trip, %g formatting, digamma, normalisation. */
import assert from "node:assert/strict";
import { digamma } from "../../src/text/digamma.ts";
import { decodeModelProto, encodeModelProto } from "../../src/text/model_proto.ts";
import { denormalize, normalize, splitWords } from "../../src/text/normalize.ts";
import {
  fieldValue,
  ProtoFormatError,
  ProtoWriter,
  readFields,
} from "../../src/text/protobuf_wire.ts";
import { trainTokenizer } from "../../src/text/train.ts";
import { formatG } from "../../src/text/vocab_file.ts";

Deno.test("wire: int32 -1 takes ten bytes; values read back", () => {
  const inner = new ProtoWriter().string(1, "▁A").float(2, -1.5);
  const bytes = new ProtoWriter().int32(43, -1).int32(4, 300).bool(3, true).message(1, inner)
    .finish();
  // field 43 varint: tag 0xd8 0x02, then -1 as ten bytes.
  assert.deepEqual([...bytes.subarray(0, 12)], [0xd8, 0x02, ...Array(9).fill(0xff), 0x01]);
  const f = readFields(bytes);
  assert.deepEqual(f.map((x) => x.field), [43, 4, 3, 1]);
  assert.equal(fieldValue.int32(f[0]), -1);
  assert.equal(fieldValue.int32(f[1]), 300);
  assert.equal(fieldValue.bool(f[2]), true);
  const g = readFields(fieldValue.bytes(f[3]));
  assert.equal(fieldValue.string(g[0]), "▁A");
  assert.equal(fieldValue.float(g[1]), -1.5);
  assert.throws(() => readFields(bytes.subarray(0, bytes.length - 1)), ProtoFormatError);
  assert.throws(() => fieldValue.float(f[0]), ProtoFormatError);
});

Deno.test("ModelProto: decode(encode(model)) is the model; bad bytes are named errors", () => {
  const { model } = trainTokenizer(["THE CAT SAT ON THE MAT", "THE DOG SAT"], { type: "char" });
  assert.deepEqual(decodeModelProto(encodeModelProto(model)), model);
  assert.throws(() => decodeModelProto(new TextEncoder().encode("hello")), ProtoFormatError);
  assert.throws(() => decodeModelProto(new Uint8Array(0)), /no pieces/);
});

Deno.test("formatG prints as C's %g", () => {
  const cases: [number, string][] = [
    [0, "0"],
    [-3.0319299697875977, "-3.03193"],
    [-10.5, "-10.5"],
    [-12.345678, "-12.3457"],
    [0.0001, "0.0001"],
    [0.00001234, "1.234e-05"],
    [123456789, "1.23457e+08"],
    [999999.5, "1e+06"],
    [-1, "-1"],
  ];
  for (const [x, s] of cases) assert.equal(formatG(x), s, String(x));
});

Deno.test("digamma: known values", () => {
  const eulerGamma = 0.5772156649015329;
  assert.ok(Math.abs(digamma(1) + eulerGamma) < 1e-12);
  assert.ok(Math.abs(digamma(0.5) - (-eulerGamma - 2 * Math.LN2)) < 1e-12);
  assert.ok(Math.abs(digamma(10) - 2.251752589066721) < 1e-12);
  // psi(x + 1) = psi(x) + 1/x across the switch to the series.
  for (const x of [0.3, 5.5, 6, 7.25, 100]) {
    assert.ok(Math.abs(digamma(x + 1) - digamma(x) - 1 / x) < 1e-12, String(x));
  }
});

Deno.test("normalisation: SentencePiece's whitespace rules", () => {
  const rules = { addDummyPrefix: true, removeExtraWhitespaces: true, escapeWhitespaces: true };
  assert.equal(normalize("  HELLO   WORLD ", rules), "▁HELLO▁WORLD");
  assert.equal(normalize("   ", rules), "");
  assert.equal(normalize("A\tB", rules), "▁A\tB"); // only U+0020 is whitespace
  assert.deepEqual(splitWords("▁A▁CAT▁"), ["▁A", "▁CAT", "▁"]);
  assert.equal(denormalize(["▁HEL", "LO", "▁WORLD"], rules), "HELLO WORLD");
});
