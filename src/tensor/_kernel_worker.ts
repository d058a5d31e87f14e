/// <reference lib="deno.worker" />
/**
 * A pool worker: instantiates the kernels on the shared memory with its own C stack, then serves
 * kernel calls from its control slot until told to quit. It blocks in Atomics.wait between calls.
 */
import { instantiateKernels } from "./kernel_module.ts";
import {
  ARGS,
  DONE,
  ERROR,
  MAX_ARGS,
  OP,
  PARAMS,
  QUIT,
  SEQ,
  SLOT,
  type WorkerInit,
} from "./worker_protocol.ts";

self.onmessage = (e: MessageEvent<WorkerInit>) => {
  const { module, memory, control, slot, stackTop } = e.data;
  const kernels = instantiateKernels(module, memory);
  kernels.setStackTop(stackTop);
  const ctl = new Int32Array(control);
  const base = slot * SLOT;
  const args = new Array<number>(MAX_ARGS + 1);
  // Read the sequence number before saying "ready": the caller may dispatch the first call the
  // moment it hears from us, and a number read after that would wait for a change already made.
  let seen = Atomics.load(ctl, base + SEQ);
  self.postMessage("ready");
  for (;;) {
    Atomics.wait(ctl, base + SEQ, seen);
    seen = Atomics.load(ctl, base + SEQ);
    const op = ctl[base + OP];
    if (op === QUIT) break;
    args[0] = ctl[base + PARAMS];
    for (let i = 0; i < MAX_ARGS; i++) args[i + 1] = ctl[base + ARGS + i];
    try {
      kernels.fns[op](...args);
      ctl[base + ERROR] = 0;
    } catch (err) {
      ctl[base + ERROR] = 1;
      console.error(`kernel worker ${slot}:`, err);
    }
    Atomics.store(ctl, base + DONE, seen);
    Atomics.notify(ctl, base + DONE);
  }
  self.close();
};
