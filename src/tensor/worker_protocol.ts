/**
 * The control block shared by the pool and its workers: one SLOT of Int32 words per worker in a
 * SharedArrayBuffer. The caller fills OP, PARAMS and ARGS, bumps SEQ and notifies; the worker runs
 * the kernel, writes ERROR, stores SEQ into DONE and notifies.
 */
export const SEQ = 0;
export const DONE = 1;
export const OP = 2;
export const ERROR = 3;
export const PARAMS = 4;
export const ARGS = 5;
export const MAX_ARGS = 24;
export const SLOT = 32;

/** OP value that ends the worker's loop. */
export const QUIT = -1;

export interface WorkerInit {
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  control: SharedArrayBuffer;
  slot: number;
  stackTop: number;
}
