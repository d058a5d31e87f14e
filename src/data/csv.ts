/**
 * CSV as Python's csv module writes it with its defaults (what SpeechBrain's preparation uses):
 * comma separated, a field is quoted only when it holds a comma, a double quote, CR or LF, quotes
 * inside are doubled, and every record ends with CRLF. The reader accepts CRLF or LF.
 */

export class CsvError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CsvError";
  }
}

function field(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replaceAll('"', '""')}"` : value;
}

/** Formats records (header first) as CSV text. */
export function formatCsv(records: readonly (readonly string[])[]): string {
  return records.map((r) => r.map(field).join(",") + "\r\n").join("");
}

/** Parses CSV text into records; `name` names the source in errors. */
export function parseCsv(text: string, name = "<csv>"): string[][] {
  const records: string[][] = [];
  const n = text.length;
  let i = 0;
  let line = 1;
  while (i < n) {
    const record: string[] = [];
    for (;;) {
      let value = "";
      if (text[i] === '"') {
        // Quoted field: runs to the closing quote; "" inside stands for one quote.
        const open = line;
        for (i++;; i++) {
          if (i >= n) throw new CsvError(`${name}:${open}: unterminated quoted field`);
          if (text[i] === '"') {
            if (text[i + 1] !== '"') break;
            i++;
          } else if (text[i] === "\n") line++;
          value += text[i];
        }
        i++;
        if (i < n && text[i] !== "," && text[i] !== "\r" && text[i] !== "\n") {
          throw new CsvError(`${name}:${line}: text after the closing quote of a field`);
        }
      } else {
        while (i < n && text[i] !== "," && text[i] !== "\r" && text[i] !== "\n") value += text[i++];
      }
      record.push(value);
      if (text[i] !== ",") break;
      i++;
    }
    if (text[i] === "\r") i++;
    if (text[i] === "\n") i++;
    line++;
    records.push(record);
  }
  return records;
}
