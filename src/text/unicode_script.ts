/**
 * The Unicode script of a code point (Scripts.txt, through the regex engine's Script property),
 * used as SentencePiece's split_by_unicode_script: a piece never mixes scripts, so "'" (Common)
 * and "S" (Latin) stay apart. Hiragana, Katakana and the prolonged sound mark count as Han, as
 * in SentencePiece. Cached per code point: a corpus has few distinct characters.
 */

// ISO 15924 codes of Unicode's scripts; the ones this engine does not know are dropped below.
const CODES = (
  "Adlm Aghb Ahom Arab Armi Armn Avst Bali Bamu Bass Batk Beng Bhks Bopo Brah Brai Bugi Buhd " +
  "Cakm Cans Cari Cham Cher Chrs Copt Cpmn Cprt Cyrl Deva Diak Dogr Dsrt Dupl Egyp Elba Elym " +
  "Ethi Geor Glag Gong Gonm Goth Gran Grek Gujr Guru Hang Hani Hano Hatr Hebr Hira Hluw Hmng " +
  "Hmnp Hung Ital Java Kali Kana Kawi Khar Khmr Khoj Kits Knda Kthi Lana Laoo Latn Lepc Limb " +
  "Lina Linb Lisu Lyci Lydi Mahj Maka Mand Mani Marc Medf Mend Merc Mero Mlym Modi Mong Mroo " +
  "Mtei Mult Mymr Nagm Nand Narb Nbat Newa Nkoo Nshu Ogam Olck Orkh Orya Osge Osma Ougr Palm " +
  "Pauc Perm Phag Phli Phlp Phnx Plrd Prti Rjng Rohg Runr Samr Sarb Saur Sgnw Shaw Shrd Sidd " +
  "Sind Sinh Sogd Sogo Sora Soyo Sund Sylo Syrc Tagb Takr Tale Talu Taml Tang Tavt Telu Tfng " +
  "Tglg Thaa Thai Tibt Tirh Tnsa Toto Ugar Vaii Wara Wcho Xpeo Xsux Yezi Yiii Zanb Zinh Zyyy"
).split(" ");

// Latin, Common and Inherited first: nearly every character of English text is one of them.
const ORDER = [
  "Latn",
  "Zyyy",
  "Zinh",
  ...CODES.filter((c) => !["Latn", "Zyyy", "Zinh"].includes(c)),
];
const TESTS: [string, RegExp][] = ORDER.flatMap((code) => {
  try {
    return [[code, new RegExp(`^\\p{Script=${code}}$`, "u")] as [string, RegExp]];
  } catch {
    return [];
  }
});

const cache = new Map<number, string>();

export function scriptOf(cp: number): string {
  let s = cache.get(cp);
  if (s !== undefined) return s;
  if (cp === 0x30fc) s = "Hani";
  else {
    const ch = String.fromCodePoint(cp);
    s = TESTS.find(([, re]) => re.test(ch))?.[0] ?? "Zzzz";
    if (s === "Hira" || s === "Kana") s = "Hani";
  }
  cache.set(cp, s);
  return s;
}
