/**
 * The two checksums of FLAC frames (RFC 9639 §9.1.8 and §9.3): CRC-8 with polynomial
 * x^8 + x^2 + x + 1 (0x07) over the frame header, CRC-16 with x^16 + x^15 + x^2 + 1 (0x8005) over
 * the whole frame; both MSB-first, initial value 0, no final xor.
 */

function table(poly: number, width: 8 | 16): Uint16Array {
  const top = 1 << (width - 1);
  const mask = (1 << width) - 1;
  const t = new Uint16Array(256);
  for (let byte = 0; byte < 256; byte++) {
    let crc = byte << (width - 8);
    for (let bit = 0; bit < 8; bit++) {
      crc = crc & top ? ((crc << 1) ^ poly) & mask : (crc << 1) & mask;
    }
    t[byte] = crc;
  }
  return t;
}

const CRC8_TABLE = table(0x07, 8);
const CRC16_TABLE = table(0x8005, 16);

/** CRC-8 of data[start, end). */
export function crc8(data: Uint8Array, start = 0, end = data.length): number {
  let crc = 0;
  for (let i = start; i < end; i++) crc = CRC8_TABLE[crc ^ data[i]];
  return crc;
}

/** CRC-16 of data[start, end). */
export function crc16(data: Uint8Array, start = 0, end = data.length): number {
  let crc = 0;
  for (let i = start; i < end; i++) crc = ((crc << 8) & 0xffff) ^ CRC16_TABLE[(crc >> 8) ^ data[i]];
  return crc;
}
