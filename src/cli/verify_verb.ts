/** `verify`: rehash every artifact in the cache; list the corrupt ones; exit 1 if any. */
import { exists } from "../pipeline/fs_util.ts";
import { ArtifactStore } from "../pipeline/store.ts";
import { print } from "./format.ts";
import { cacheRoot } from "./product.ts";

export async function verifyVerb(opts: { cache?: string }): Promise<number> {
  const root = cacheRoot(opts.cache);
  const store = new ArtifactStore(root);
  if (!(await exists(root))) {
    print(`no cache at ${root}: nothing to verify`);
    return 0;
  }
  let bad = 0, good = 0;
  for (const { stage, key } of await store.list()) {
    const problems = await store.verify(stage, key);
    if (problems.length === 0) {
      good++;
      continue;
    }
    bad++;
    print(`CORRUPT ${stage}/${key}`);
    for (const p of problems) print(`  ${p}`);
  }
  print(`${good + bad} artifact(s) checked in ${root}: ${good} intact, ${bad} corrupt`);
  if (bad > 0) {
    print(`remove a corrupt artifact with: rm -r ${root}/artifacts/<stage>/<key> (then rerun)`);
  }
  return bad > 0 ? 1 : 0;
}
