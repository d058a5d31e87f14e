import { OPS, symbolOf } from "../../ffi/ops.ts";
import { renderHeader } from "../../ffi/gen_header.ts";
import { compileKernels } from "../../src/tensor/kernel_module.ts";
import { MAX_ARGS } from "../../src/tensor/worker_protocol.ts";

Deno.test("build/kernels.wasm exports exactly the cm_ ops of ffi/ops.ts", () => {
  const exported = WebAssembly.Module.exports(compileKernels())
    .filter((e) => e.kind === "function" && e.name.startsWith("cm_"))
    .map((e) => e.name);
  const listed = OPS.map(symbolOf);
  const missing = listed.filter((s) => !exported.includes(s));
  const extra = exported.filter((s) => !listed.includes(s));
  if (missing.length || extra.length) {
    throw new Error(
      `build/kernels.wasm and ffi/ops.ts disagree: missing [${missing}], not in the table ` +
        `[${extra}]; add the op to the table or the kernel to wasm/, then \`make wasm\``,
    );
  }
});

Deno.test("ffi/ops.h is the rendering of ffi/ops.ts", () => {
  const onDisk = Deno.readTextFileSync(new URL("../../ffi/ops.h", import.meta.url));
  if (onDisk !== renderHeader()) {
    throw new Error("ffi/ops.h is stale: run `deno run --allow-write ffi/gen_header.ts`");
  }
});

Deno.test("op names are unique and every op has a pointer argument", () => {
  const names = OPS.map((o) => o.name);
  if (new Set(names).size !== names.length) throw new Error(`duplicate op names in [${names}]`);
  for (const op of OPS) {
    if (op.args.length === 0 || op.args.length > MAX_ARGS) {
      throw new Error(`${op.name}: ${op.args.length} pointers (the pool passes 1 to ${MAX_ARGS})`);
    }
  }
});
