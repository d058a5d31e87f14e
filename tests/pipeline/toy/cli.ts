/** The conmamba CLI wired to the toy product, for subprocess tests. */
import { runCli } from "../../../src/cli/app.ts";
import { toyProduct } from "./product.ts";

Deno.exit(await runCli(toyProduct, Deno.args));
