/**
 * Renders ffi/ops.h from the op table in ffi/ops.ts.
 *
 *   deno run --allow-write ffi/gen_header.ts      rewrites ffi/ops.h
 *
 * tests/ops/op_table_test.ts checks that the checked-in header equals this rendering.
 */
import { OPS, type OpSpec, PARAM_STRUCTS, type ParamStruct, symbolOf } from "./ops.ts";

const C_TYPE = { i32: "int32_t", f32: "float" } as const;

function renderStruct(s: ParamStruct): string {
  const lines = s.fields.map(([name, type, doc]) => `  ${C_TYPE[type]} ${name}; /* ${doc} */`);
  return `typedef struct cm_${s.name}_params {\n${lines.join("\n")}\n} cm_${s.name}_params;\n`;
}

function renderOp(op: OpSpec): string {
  const args = [`const cm_${op.params.name}_params* p`].concat(
    op.args.map((a) => `${a.dir === "in" ? "const float*" : "float*"} ${a.name}`),
  );
  const shapes = op.args.map((a) =>
    ` *   ${a.name}: ${a.shape}${a.optional ? ", may be NULL" : ""}`
  );
  return `/* ${op.doc}\n${shapes.join("\n")} */\nCM_API void ${symbolOf(op)}(${
    args.join(", ")
  });\n`;
}

export function renderHeader(): string {
  return [
    "/* Generated from ffi/ops.ts by ffi/gen_header.ts: edit the table there, then regenerate. */",
    "#ifndef CM_OPS_H",
    "#define CM_OPS_H",
    "",
    "#include <stdint.h>",
    "",
    "#if defined(__wasm__)",
    '#define CM_API __attribute__((visibility("default")))',
    "#else",
    "#define CM_API",
    "#endif",
    "",
    `#define CM_OP_COUNT ${OPS.length}`,
    "",
    ...PARAM_STRUCTS.map(renderStruct),
    ...OPS.map(renderOp),
    "#endif /* CM_OPS_H */",
    "",
  ].join("\n");
}

if (import.meta.main) {
  const path = new URL("./ops.h", import.meta.url);
  Deno.writeTextFileSync(path, renderHeader());
  console.log(`wrote ${path.pathname} (${OPS.length} ops)`);
}
