/**
 * Module: a node of the model tree whose parameter and buffer names follow the original's PyTorch
 * state_dict (CONMAMBA_SPEC.md 5), so that `stateDict()` lists exactly the names of
 * shared/reference/statedicts/<experiment>.txt in the same order: for each module its own
 * parameters, then its own buffers, then its children in registration order.
 */
import type { Backend, Storage } from "../tensor/backend.ts";
import type { Tape } from "../tensor/autograd.ts";
import { Tensor } from "../tensor/tensor.ts";

/** What a forward pass needs besides its input. */
export interface ForwardContext {
  tape: Tape;
  /** Train mode: dropout active. Eval mode (false): dropout is the identity. */
  training: boolean;
  /** Dropout seed of the run (32 bits). */
  seed: number;
  /** Dropout stream counter: each dropout call takes the next value, so masks differ by site. */
  stream: number;
  /** Optional probe: called with a module path ("encoder.layers.0.mamba") and its output. */
  capture?: (name: string, t: Tensor) => void;
}

/**
 * Runs one layer's forward in a tape scope (Tape.scope: its dead intermediates are freed when it
 * returns), except under probes, which keep tensors made inside.
 */
export function scoped(ctx: ForwardContext, fn: () => Tensor): Tensor {
  return ctx.capture ? fn() : ctx.tape.scope(fn);
}

export function evalContext(tape: Tape, capture?: ForwardContext["capture"]): ForwardContext {
  return { tape, training: false, seed: 0, stream: 0, capture };
}

export abstract class Module {
  #params: [string, Tensor][] = [];
  #buffers: [string, Tensor][] = [];
  #children: [string, Module][] = [];
  /** Storages the module owns beyond its tensors' own (a flat parameter buffer: `adopt`). */
  #owned: Storage[] = [];

  constructor(readonly backend: Backend) {}

  /** A zero-filled trainable parameter (init.ts or a checkpoint fills it). */
  protected param(name: string, shape: readonly number[]): Tensor {
    const t = Tensor.param(this.backend, shape, new Float32Array(shape.reduce((a, b) => a * b, 1)));
    this.#params.push([name, t]);
    return t;
  }

  /** A persistent buffer (in the state_dict, no gradient). */
  protected buffer(name: string, shape: readonly number[], data: Float32Array): Tensor {
    const t = Tensor.from(this.backend, shape, data, "param");
    this.#buffers.push([name, t]);
    return t;
  }

  protected child<M extends Module>(name: string, m: M): M {
    this.#children.push([name, m]);
    return m;
  }

  *namedParameters(prefix = ""): Generator<[string, Tensor]> {
    for (const [n, t] of this.#params) yield [prefix + n, t];
    for (const [n, c] of this.#children) yield* c.namedParameters(`${prefix}${n}.`);
  }

  *namedBuffers(prefix = ""): Generator<[string, Tensor]> {
    for (const [n, t] of this.#buffers) yield [prefix + n, t];
    for (const [n, c] of this.#children) yield* c.namedBuffers(`${prefix}${n}.`);
  }

  /** Parameters and buffers in PyTorch's state_dict order. */
  *stateDict(prefix = ""): Generator<[string, Tensor]> {
    for (const [n, t] of this.#params) yield [prefix + n, t];
    for (const [n, t] of this.#buffers) yield [prefix + n, t];
    for (const [n, c] of this.#children) yield* c.stateDict(`${prefix}${n}.`);
  }

  *namedModules(prefix = ""): Generator<[string, Module]> {
    yield [prefix.replace(/\.$/, ""), this];
    for (const [n, c] of this.#children) yield* c.namedModules(`${prefix}${n}.`);
  }

  parameters(): Tensor[] {
    return [...this.namedParameters()].map(([, t]) => t);
  }

  /**
   * Takes ownership of a storage its parameters live in (views of it: AsrTrainer's flat buffer),
   * freed by `free` after them.
   */
  adopt(storage: Storage): void {
    this.#owned.push(storage);
  }

  /** Frees every parameter, buffer and gradient, then what the module adopted. */
  free(): void {
    for (const [, t] of this.stateDict()) {
      t.grad?.free();
      t.free();
    }
    for (const s of this.#owned.splice(0)) this.backend.free(s);
  }
}
