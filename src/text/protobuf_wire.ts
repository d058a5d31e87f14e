/**
 * The protobuf wire format, as much of it as SentencePiece's ModelProto needs: varints (int32,
 * bool, enum), fixed32 floats and length-delimited fields (strings, bytes, nested messages).
 * Fields are written in the order the caller writes them, so output bytes are deterministic.
 */

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_LEN = 2;
const WIRE_FIXED32 = 5;

export class ProtoWriter {
  #buf = new Uint8Array(256);
  #len = 0;

  #reserve(n: number) {
    if (this.#len + n <= this.#buf.length) return;
    const next = new Uint8Array(Math.max(this.#buf.length * 2, this.#len + n));
    next.set(this.#buf.subarray(0, this.#len));
    this.#buf = next;
  }

  #rawVarint(v: bigint) {
    this.#reserve(10);
    do {
      let b = Number(v & 0x7fn);
      v >>= 7n;
      if (v !== 0n) b |= 0x80;
      this.#buf[this.#len++] = b;
    } while (v !== 0n);
  }

  #tag(field: number, wire: number) {
    this.#rawVarint(BigInt((field << 3) | wire));
  }

  /** int32/enum: negative values take ten bytes (sign-extended to 64 bits), as protobuf does. */
  int32(field: number, v: number): this {
    if (!Number.isInteger(v) || v < -(2 ** 31) || v >= 2 ** 31) {
      throw new RangeError(`protobuf field ${field}: ${v} is not an int32`);
    }
    this.#tag(field, WIRE_VARINT);
    this.#rawVarint(BigInt.asUintN(64, BigInt(v)));
    return this;
  }

  uint64(field: number, v: number): this {
    this.#tag(field, WIRE_VARINT);
    this.#rawVarint(BigInt(v));
    return this;
  }

  bool(field: number, v: boolean): this {
    return this.int32(field, v ? 1 : 0);
  }

  float(field: number, v: number): this {
    this.#tag(field, WIRE_FIXED32);
    this.#reserve(4);
    new DataView(this.#buf.buffer).setFloat32(this.#len, v, true);
    this.#len += 4;
    return this;
  }

  bytes(field: number, v: Uint8Array): this {
    this.#tag(field, WIRE_LEN);
    this.#rawVarint(BigInt(v.length));
    this.#reserve(v.length);
    this.#buf.set(v, this.#len);
    this.#len += v.length;
    return this;
  }

  string(field: number, v: string): this {
    return this.bytes(field, new TextEncoder().encode(v));
  }

  message(field: number, m: ProtoWriter): this {
    return this.bytes(field, m.finish());
  }

  finish(): Uint8Array {
    return this.#buf.slice(0, this.#len);
  }
}

/** One field as read: varints as bigint, fixed32/fixed64 as raw bytes, LEN as bytes. */
export interface ProtoField {
  field: number;
  wire: number;
  varint?: bigint;
  data?: Uint8Array;
}

export class ProtoFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ProtoFormatError";
  }
}

/** Splits a message into its fields, in file order; throws ProtoFormatError on malformed input. */
export function readFields(buf: Uint8Array): ProtoField[] {
  const out: ProtoField[] = [];
  let i = 0;
  const varint = (): bigint => {
    let v = 0n;
    for (let shift = 0n;; shift += 7n) {
      if (i >= buf.length) throw new ProtoFormatError(`truncated varint at byte ${i}`);
      if (shift > 63n) throw new ProtoFormatError(`varint longer than 10 bytes at byte ${i}`);
      const b = buf[i++];
      v |= BigInt(b & 0x7f) << shift;
      if (!(b & 0x80)) return BigInt.asUintN(64, v);
    }
  };
  const take = (n: number): Uint8Array => {
    if (i + n > buf.length) throw new ProtoFormatError(`field runs past the end (byte ${i})`);
    const d = buf.subarray(i, i + n);
    i += n;
    return d;
  };
  while (i < buf.length) {
    const tag = varint();
    const field = Number(tag >> 3n);
    const wire = Number(tag & 7n);
    if (field === 0) throw new ProtoFormatError(`field number 0 at byte ${i}`);
    switch (wire) {
      case WIRE_VARINT:
        out.push({ field, wire, varint: varint() });
        break;
      case WIRE_FIXED64:
        out.push({ field, wire, data: take(8) });
        break;
      case WIRE_LEN:
        out.push({ field, wire, data: take(Number(varint())) });
        break;
      case WIRE_FIXED32:
        out.push({ field, wire, data: take(4) });
        break;
      default:
        throw new ProtoFormatError(`unsupported wire type ${wire} (field ${field})`);
    }
  }
  return out;
}

/** Typed views of a read field; each checks the wire type. */
export const fieldValue = {
  int32(f: ProtoField): number {
    if (f.varint === undefined) throw new ProtoFormatError(`field ${f.field} is not a varint`);
    return Number(BigInt.asIntN(32, f.varint));
  },
  uint64(f: ProtoField): number {
    if (f.varint === undefined) throw new ProtoFormatError(`field ${f.field} is not a varint`);
    return Number(f.varint);
  },
  bool(f: ProtoField): boolean {
    if (f.varint === undefined) throw new ProtoFormatError(`field ${f.field} is not a varint`);
    return f.varint !== 0n;
  },
  float(f: ProtoField): number {
    if (f.wire !== WIRE_FIXED32 || !f.data) {
      throw new ProtoFormatError(`field ${f.field} is not a fixed32 float`);
    }
    return new DataView(f.data.buffer, f.data.byteOffset, 4).getFloat32(0, true);
  },
  bytes(f: ProtoField): Uint8Array {
    if (f.wire !== WIRE_LEN || !f.data) {
      throw new ProtoFormatError(`field ${f.field} is not length-delimited`);
    }
    return f.data;
  },
  string(f: ProtoField): string {
    try {
      return new TextDecoder("utf-8", { fatal: true }).decode(fieldValue.bytes(f));
    } catch (e) {
      if (e instanceof ProtoFormatError) throw e;
      throw new ProtoFormatError(`field ${f.field} is not valid UTF-8`);
    }
  },
};
