/**
 * The autograd tape. Differentiable ops (src/tensor/autograd_ops.ts) run their forward kernels and,
 * when an input needs a gradient, record one node: inputs, outputs and a closure that turns output
 * gradients into input gradients (each op's backward kernels). `backward(loss)` walks the nodes in
 * reverse order of recording.
 *
 * Memory: gradients of activations are "step" tensors (freed with the step arena); gradients of
 * parameters live in `param.grad`, a "param" buffer allocated on first use and accumulated into
 * by every backward (gradient accumulation over micro-batches), until `zeroGrad`. Nodes hold no
 * finalisers; `reset()` (after each step, with the arena) forgets them.
 */
import { add } from "./ops.ts";
import { ShapeError, type TapeNode, Tensor } from "./tensor.ts";

export class Tape {
  #nodes: TapeNode[] = [];
  /** False inside `noGrad` (evaluation): ops record nothing. */
  enabled = true;

  /** True when a gradient must flow into t: a parameter, or the output of a recorded op. */
  static tracked(t: Tensor | null | undefined): boolean {
    return !!t && (t.requiresGrad || t.node !== null);
  }

  /**
   * Records an op when any input is tracked; `backward` returns one gradient per input (null for
   * an input that needs none), each shaped like that input.
   */
  record(
    inputs: readonly (Tensor | null)[],
    outputs: readonly Tensor[],
    backward: TapeNode["backward"],
  ): void {
    if (!this.enabled || !inputs.some(Tape.tracked)) return;
    const node: TapeNode = { inputs, outputs, backward };
    for (const o of outputs) o.node = node;
    this.#nodes.push(node);
  }

  get length(): number {
    return this.#nodes.length;
  }

  /**
   * Back-propagates from `loss` (seeded with `seed`, default ones) through every recorded node,
   * newest first, and accumulates into the `grad` of each parameter reached.
   */
  backward(loss: Tensor, seed?: Tensor): void {
    this.backwardFrom([[
      loss,
      seed ?? Tensor.from(loss.backend, loss.shape, new Float32Array(loss.size).fill(1)),
    ]]);
  }

  /**
   * One backward pass from several outputs at once, each with its upstream gradient (e.g. the
   * CTC and the attention heads of a joint loss): shared parts of the graph are walked once.
   */
  backwardFrom(seeds: readonly (readonly [Tensor, Tensor])[]): void {
    const grads = new Map<Tensor, Tensor>();
    for (const [t, g] of seeds) {
      if (g.size !== t.size) {
        throw new ShapeError(`seed [${g.shape}] for an output of [${t.shape}]`);
      }
      const prev = grads.get(t);
      grads.set(t, prev ? add(prev, g) : g);
    }
    for (let i = this.#nodes.length - 1; i >= 0; i--) {
      const node = this.#nodes[i];
      const dOut = node.outputs.map((o) => grads.get(o) ?? null);
      if (dOut.every((g) => g === null)) continue;
      const dIn = node.backward(dOut);
      node.inputs.forEach((input, j) => {
        const g = dIn[j];
        if (!input || !g || !Tape.tracked(input)) return;
        if (g.size !== input.size) {
          throw new ShapeError(`backward gave [${g.shape}] for an input of [${input.shape}]`);
        }
        if (input.requiresGrad && input.node === null) accumulateParamGrad(input, g);
        else {
          const prev = grads.get(input);
          grads.set(input, prev ? add(prev, g.reshape(prev.shape)) : g.reshape(input.shape));
        }
      });
      for (const o of node.outputs) grads.delete(o); // consumed: nothing later reads them
    }
  }

  /** Forgets every node (call with the step arena's reset). */
  reset(): void {
    for (const n of this.#nodes) for (const o of n.outputs) o.node = null;
    this.#nodes = [];
  }

  /** Runs fn without recording (evaluation, decoding). */
  noGrad<T>(fn: () => T): T {
    const was = this.enabled;
    this.enabled = false;
    try {
      return fn();
    } finally {
      this.enabled = was;
    }
  }
}

/** param.grad += g, allocating a zeroed "param" buffer the first time. */
function accumulateParamGrad(param: Tensor, g: Tensor): void {
  if (!param.grad) {
    param.grad = Tensor.from(param.backend, param.shape, new Float32Array(param.size), "param");
  }
  add(param.grad, g.reshape(param.shape), param.grad);
}

/** Sets the gradients of `params` to zero (after the optimiser step). */
export function zeroGrad(params: readonly Tensor[]): void {
  for (const p of params) {
    if (p.grad) p.backend.upload(p.grad.storage, new Float32Array(p.size));
  }
}
