/**
 * MSB-first bit reader over a byte array, as FLAC stores everything (RFC 9639 §5).
 * Values up to 53 bits are returned as exact JS numbers (FLAC needs at most 36: the sample count,
 * and 33 for the side channel of a 32-bit stream).
 */

/** Thrown when a read runs past the end of the data; callers turn it into a FlacError. */
export class OutOfDataError extends Error {
  constructor(readonly at: number) {
    super(`unexpected end of data at byte ${at}`);
    this.name = "OutOfDataError";
  }
}

export class BitReader {
  /** Index of the byte being read. */
  pos: number;
  /** Bits of data[pos] already consumed (0..7). */
  bit = 0;

  constructor(readonly data: Uint8Array, start = 0) {
    this.pos = start;
  }

  get byteAligned(): boolean {
    return this.bit === 0;
  }

  /** Unsigned n-bit value, 0 <= n <= 53. */
  readBits(n: number): number {
    let value = 0;
    while (n > 0) {
      if (this.pos >= this.data.length) throw new OutOfDataError(this.pos);
      const left = 8 - this.bit;
      const take = n < left ? n : left;
      const chunk = (this.data[this.pos] >> (left - take)) & ((1 << take) - 1);
      value = value * (1 << take) + chunk; // multiply, not shift: stays exact beyond 32 bits
      n -= take;
      this.bit += take;
      if (this.bit === 8) {
        this.bit = 0;
        this.pos++;
      }
    }
    return value;
  }

  /** Two's complement n-bit value, 0 <= n <= 53 (n = 0 reads nothing and gives 0). */
  readSigned(n: number): number {
    if (n === 0) return 0;
    const v = this.readBits(n);
    const half = 2 ** (n - 1);
    return v >= half ? v - 2 * half : v;
  }

  /** Number of 0 bits before the next 1 bit (the 1 is consumed): FLAC's unary code. */
  readUnary(): number {
    let count = 0;
    for (;;) {
      if (this.pos >= this.data.length) throw new OutOfDataError(this.pos);
      const rest = (this.data[this.pos] << this.bit) & 0xff; // unread bits, moved to the top
      if (rest !== 0) {
        const zeros = Math.clz32(rest) - 24;
        count += zeros;
        this.bit += zeros + 1;
        if (this.bit === 8) {
          this.bit = 0;
          this.pos++;
        }
        return count;
      }
      count += 8 - this.bit;
      this.bit = 0;
      this.pos++;
    }
  }

  /** Skips the padding bits up to the next byte boundary. */
  alignToByte(): void {
    if (this.bit !== 0) {
      this.bit = 0;
      this.pos++;
    }
  }
}
