/** MSB-first bit writer, for hand-built FLAC streams in tests (the inverse of BitReader). */
export class BitWriter {
  #bytes: number[] = [];
  #acc = 0;
  #bits = 0;

  /** Writes the low n bits of v (two's complement for negative v), 0 <= n <= 32. */
  write(v: number, n: number): this {
    for (let i = n - 1; i >= 0; i--) {
      const bit = Math.floor(v / 2 ** i) & 1; // floor division keeps negatives two's complement
      this.#acc = (this.#acc << 1) | bit;
      if (++this.#bits === 8) {
        this.#bytes.push(this.#acc);
        this.#acc = 0;
        this.#bits = 0;
      }
    }
    return this;
  }

  /** q zero bits then a one: FLAC's unary code. */
  unary(q: number): this {
    for (let i = 0; i < q; i++) this.write(0, 1);
    return this.write(1, 1);
  }

  /** Pads with zero bits to a byte boundary. */
  align(): this {
    while (this.#bits !== 0) this.write(0, 1);
    return this;
  }

  get length(): number {
    return this.#bytes.length;
  }

  bytes(): Uint8Array {
    if (this.#bits !== 0) throw new Error("BitWriter: not byte aligned");
    return Uint8Array.from(this.#bytes);
  }
}
