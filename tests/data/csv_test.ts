import assert from "node:assert/strict";
import { CsvError, formatCsv, parseCsv } from "../../src/data/csv.ts";

Deno.test("csv: quotes only fields that need it, CRLF records, like Python's csv module", () => {
  const text = formatCsv([["ID", "wrd"], ["a", 'say "hi", then go'], ["b", "two\nlines"], [
    "c",
    "",
  ]]);
  assert.equal(text, 'ID,wrd\r\na,"say ""hi"", then go"\r\nb,"two\nlines"\r\nc,\r\n');
});

Deno.test("csv: parse inverts format, and reads LF files too", () => {
  const records = [["x", "", "y"], ['"', ",", "\r\n"], ["DON'T STOP", "1.0", ""]];
  assert.deepEqual(parseCsv(formatCsv(records)), records);
  assert.deepEqual(parseCsv("a,b\nc,d\n"), [["a", "b"], ["c", "d"]]);
  assert.deepEqual(parseCsv("a,b"), [["a", "b"]]);
});

Deno.test("csv: malformed quoting is an error naming the source and line", () => {
  assert.throws(
    () => parseCsv('a\n"open,b\n', "x.csv"),
    (e: unknown) => e instanceof CsvError && e.message === "x.csv:2: unterminated quoted field",
  );
  assert.throws(
    () => parseCsv('"a"b,c\n', "x.csv"),
    (e: unknown) => e instanceof CsvError && e.message.startsWith("x.csv:1: text after"),
  );
});
