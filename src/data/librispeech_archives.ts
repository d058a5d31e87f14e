/**
 * The LibriSpeech archives (OpenSLR resource 12): where to get them and how to recognise them.
 * Sizes and MD5 sums are those OpenSLR publishes; an archive is accepted only when both match.
 */
export const LIBRISPEECH_MIRRORS = [
  "https://www.openslr.org/resources/12",
  "https://us.openslr.org/resources/12",
  "https://openslr.elda.org/resources/12",
];

export interface ArchiveInfo {
  md5: string;
  size: number; // bytes
}

export const LIBRISPEECH_ARCHIVES: Record<string, ArchiveInfo> = {
  "dev-clean": { md5: "42e2234ba48799c1f50f24a7926300a1", size: 337926286 },
  "dev-other": { md5: "c8d0bcc9cca99d4f8b62fcc847357931", size: 314305928 },
  "test-clean": { md5: "32fa31d27d2e1cad72775fee3f4849a9", size: 346663984 },
  "test-other": { md5: "fb5a50374b501bb3bac4815ee91d3135", size: 328757843 },
  "train-clean-100": { md5: "2a93770f6d5c6c964bc36631d331a522", size: 6387309499 },
  "train-clean-360": { md5: "c0e676e450a7ff2f54aeade5171606fa", size: 23049477885 },
  "train-other-500": { md5: "d1a0fd59409feb2c614ce4d30c387708", size: 30593501606 },
};
