/**
 * The autograd tape. Differentiable ops (src/tensor/autograd_ops.ts) run their forward kernels and,
 * when an input needs a gradient, record one node: inputs, outputs and a closure that turns output
 * gradients into input gradients (each op's backward kernels). `backward(loss)` walks the nodes in
 * reverse order of recording.
 *
 * Memory: gradients of activations are "step" tensors, freed by `backwardFrom` once consumed
 * (activations too, after their last reader); gradients of parameters live in `param.grad`, a "param" buffer allocated on first use and accumulated into
 * by every backward (gradient accumulation over micro-batches), until `zeroGrad`. Nodes hold no
 * finalisers; `reset()` (after each step, with the backend's resetStep) forgets them.
 */
import { add } from "./ops.ts";
import type { Storage } from "./backend.ts";
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
   *
   * Memory: a "step" buffer is freed as soon as nothing can read it any more: it is no input or
   * output of a node still to be walked and no pending gradient (reference counts per storage,
   * so views and gradients passed through unchanged are safe). The seed tensors, their upstream
   * gradients and `keep` stay live. A closure's private tensors (e.g. LayerNorm's statistics) are
   * not counted and live until `resetStep()`. Any later use of a freed buffer throws.
   * `free: false` keeps everything until `resetStep()` (the same numbers; tests compare both).
   */
  backwardFrom(
    seeds: readonly (readonly [Tensor, Tensor])[],
    o: { keep?: readonly Tensor[]; free?: boolean } = {},
  ): void {
    const pinned = new Set<Storage>();
    for (const t of [...seeds.flat(), ...(o.keep ?? [])]) pinned.add(t.storage);
    const refs = new Map<Storage, number>(); // occurrences in the inputs/outputs of unwalked nodes
    const count = (t: Tensor | null, by: number) => {
      if (t && t.storage.lifetime === "step") refs.set(t.storage, (refs.get(t.storage) ?? 0) + by);
    };
    for (const n of this.#nodes) {
      n.inputs.forEach((t) => count(t, 1));
      n.outputs.forEach((t) => count(t, 1));
    }
    const grads = new Map<Tensor, Tensor>();
    const setGrad = (t: Tensor, g: Tensor) => {
      const prev = grads.get(t);
      if (prev) count(prev, -1);
      grads.set(t, g);
      count(g, 1);
    };
    const freeIfDead = (t: Tensor | null) => {
      if (!t) return;
      const s = t.storage;
      if (
        o.free !== false && s.lifetime === "step" && !s.released && !pinned.has(s) && !refs.get(s)
      ) {
        t.backend.free(s);
      }
    };
    for (const [t, g] of seeds) {
      if (g.size !== t.size) {
        throw new ShapeError(`seed [${g.shape}] for an output of [${t.shape}]`);
      }
      const prev = grads.get(t);
      setGrad(t, prev ? add(prev, g) : g);
    }
    for (let i = this.#nodes.length - 1; i >= 0; i--) {
      const node = this.#nodes[i];
      const dOut = node.outputs.map((o) => grads.get(o) ?? null);
      node.inputs.forEach((t) => count(t, -1));
      node.outputs.forEach((t) => count(t, -1));
      if (dOut.every((g) => g === null)) {
        for (const t of [...node.inputs, ...node.outputs]) freeIfDead(t);
        continue;
      }
      const dIn = node.backward(dOut);
      const stale: (Tensor | null)[] = [...node.inputs, ...node.outputs, ...dOut, ...dIn];
      node.inputs.forEach((input, j) => {
        const g = dIn[j];
        if (!input || !g || !Tape.tracked(input)) return;
        if (g.size !== input.size) {
          throw new ShapeError(`backward gave [${g.shape}] for an input of [${input.shape}]`);
        }
        if (input.requiresGrad && input.node === null) accumulateParamGrad(input, g);
        else {
          const prev = grads.get(input);
          if (prev) stale.push(prev);
          setGrad(input, prev ? add(prev, g.reshape(prev.shape)) : g.reshape(input.shape));
        }
      });
      for (const o of node.outputs) { // consumed: nothing later reads them
        const g = grads.get(o);
        if (g) count(g, -1);
        grads.delete(o);
      }
      for (const t of stale) freeIfDead(t);
    }
  }

  /** Forgets every node (call with the backend's resetStep). */
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
