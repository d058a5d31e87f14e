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
import { fill } from "./layout_ops.ts";
import { packBf16 } from "./bf16.ts";
import { add } from "./ops.ts";
import { collectAllocations, type Storage } from "./backend.ts";
import { ShapeError, type TapeNode, Tensor } from "./tensor.ts";

export class Tape {
  #nodes: TapeNode[] = [];
  /** False inside `noGrad` (evaluation): ops record nothing. */
  enabled = true;
  /** Whether `scope` and `backwardFrom` free dead step buffers (false: everything lives until
   * resetStep; the numbers are the same, tests compare both). */
  freeBuffers = true;
  /** Whether matmul keeps its saved activation operands packed in bf16 in bf16 matmul mode
   * (autograd_ops.matmul; the same gradients, half the memory; tests compare both). */
  packSaved = true;
  /** Whether backward closures may add an input's gradient to its gradient so far in place (a
   * kernel's accumulate flag, sparing an add; matmul and LayerNorm do); false: always a fresh
   * gradient and an add (the same values up to the order of float32 additions; tests compare). */
  accumulateInPlace = true;
  /** The packed bf16 copies of saved matmul operands, by the storage packed: one copy however
   * many products save it (the encoder's output feeds every decoder layer's K and V), freed after
   * its last user's backward. */
  #packs = new Map<Storage, { packed: Storage; users: number }>();

  /**
   * x packed in bf16 for a matmul's backward (bf16.ts packBf16), shared with every other node
   * that saves the same storage; each call must be matched by one `releasePacked(x)`.
   */
  savePacked(x: Tensor): Tensor {
    const e = this.#packs.get(x.storage);
    if (e && e.packed.length * 2 >= x.size && !e.packed.released) {
      e.users++;
      return new Tensor(x.backend, x.shape, e.packed, "bf16");
    }
    const p = packBf16(x);
    this.#packs.set(x.storage, { packed: p.storage, users: 1 });
    return p;
  }

  /** One user of savePacked(x)'s copy is done: the last frees it. */
  releasePacked(x: Tensor): void {
    const e = this.#packs.get(x.storage);
    if (!e) throw new ShapeError("releasePacked: nothing packed for this tensor");
    if (--e.users > 0) return;
    this.#packs.delete(x.storage);
    x.backend.free(e.packed);
  }

  /** True when a gradient must flow into t: a parameter, or the output of a recorded op. */
  static tracked(t: Tensor | null | undefined): boolean {
    return !!t && (t.requiresGrad || t.node !== null);
  }

  /**
   * Records an op when any input is tracked; `backward` returns one gradient per input (null for
   * an input that needs none), each shaped like that input. `saved`: the inputs and outputs that
   * `backward` reads (default: all); tensors private to the closure need not be listed (they are
   * no node's output, so no scope frees them).
   */
  record(
    inputs: readonly (Tensor | null)[],
    outputs: readonly Tensor[],
    backward: TapeNode["backward"],
    saved?: readonly (Tensor | null)[],
  ): void {
    if (!this.enabled || !inputs.some(Tape.tracked)) return;
    const node: TapeNode = { inputs, outputs, backward, saved };
    for (const o of outputs) o.node = node;
    this.#nodes.push(node);
  }

  get length(): number {
    return this.#nodes.length;
  }

  /**
   * Runs `fn` (a layer's forward) and then frees the step buffers it made that nothing can read
   * any more: outputs of the nodes recorded inside that are not the result, not saved by any of
   * those nodes for backward, and not (views of) the tensors that came in from outside. E.g. a
   * ConMamba FFN's GELU output (read by dropout, whose backward needs no input) goes here, while
   * the dropout's output (a matmul operand) stays until backward. Forward-only code must not
   * keep tensors made inside `fn` other than its result (probes: run without scopes).
   */
  scope(fn: () => Tensor): Tensor {
    if (!this.enabled || !this.freeBuffers) return fn();
    const start = this.#nodes.length;
    const y = fn();
    const nodes = this.#nodes.slice(start);
    // By storage, in recording order: a storage first met as an input came from outside (views
    // of it made inside share it and must not free it); one first met as an output was made here.
    const seen = new Set<Storage>(), keep = new Set<Storage>([y.storage]);
    for (const n of nodes) {
      for (const t of n.inputs) {
        if (t && !seen.has(t.storage)) keep.add(t.storage);
        if (t) seen.add(t.storage);
      }
      for (const o of n.outputs) seen.add(o.storage);
      for (const t of n.saved ?? [...n.inputs, ...n.outputs]) if (t) keep.add(t.storage);
    }
    for (const n of nodes) {
      for (const o of n.outputs) {
        const s = o.storage;
        if (s.lifetime === "step" && !s.released && !keep.has(s)) o.backend.free(s);
      }
    }
    return y;
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
   * gradients and `keep` stay live. Buffers a backward closure allocates and does not return
   * (its temporaries) are freed when it returns; those a forward op keeps for its closure (e.g.
   * LayerNorm's statistics) live until `resetStep()`. Any later use of a freed buffer throws.
   * With `freeBuffers` false everything stays until `resetStep()`.
   */
  backwardFrom(
    seeds: readonly (readonly [Tensor, Tensor])[],
    o: { keep?: readonly Tensor[] } = {},
  ): void {
    if (seeds.length === 0) return;
    const backend = seeds[0][0].backend;
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
    const freeIfDead = (t: Tensor | Storage | null) => {
      if (!t) return;
      const s = t instanceof Tensor ? t.storage : t;
      if (
        this.freeBuffers && s.lifetime === "step" && !s.released && !pinned.has(s) && !refs.get(s)
      ) {
        backend.free(s);
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
      // Where an input's gradient so far may be added to in place: a parameter's grad, or an
      // activation's gradient that no pending gradient, unwalked node or seed shares (refs 1: the
      // map's) and that this node does not read either.
      const mine = new Set([...node.inputs, ...node.outputs].map((t) => t?.storage));
      const into = node.inputs.map((input) => {
        if (!this.accumulateInPlace || !input || !Tape.tracked(input)) return null;
        if (input.requiresGrad && input.node === null) return paramGrad(input);
        const prev = grads.get(input);
        const own = prev && prev.storage.lifetime === "step" && !pinned.has(prev.storage) &&
          refs.get(prev.storage) === 1 && !mine.has(prev.storage);
        return own ? prev : null;
      });
      // The closure's own temporaries (e.g. the Mamba core's ddelta) die with it unless returned.
      const [dIn, fresh] = collectAllocations(() => node.backward(dOut, into));
      const stale: (Tensor | null | Storage)[] = [...node.inputs, ...node.outputs, ...dOut, ...dIn];
      stale.push(...fresh);
      node.inputs.forEach((input, j) => {
        const g = dIn[j];
        if (!input || !g || !Tape.tracked(input)) return;
        if (g.size !== input.size) {
          throw new ShapeError(`backward gave [${g.shape}] for an input of [${input.shape}]`);
        }
        if (into[j] && g.storage === into[j]!.storage) return; // added in place already
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
    this.#packs.clear(); // what is still packed is a step buffer: the backend's resetStep frees it
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

/** Where a parameter's gradient goes when it has none yet (`setGradSlot`), else a new buffer. */
const gradSlots = new WeakMap<Tensor, Storage>();

/**
 * Reserves `slot` (a storage of param.size elements, typically a view of one flat buffer) for
 * param's gradient: the first backward that reaches param writes there. The optimiser then
 * zeroes and reduces all gradients in one call each (AsrTrainer). null releases the slot.
 */
export function setGradSlot(param: Tensor, slot: Storage | null): void {
  if (slot === null) {
    gradSlots.delete(param);
    return;
  }
  if (slot.length !== param.size) {
    throw new ShapeError(`gradient slot of ${slot.length} elements for [${param.shape}]`);
  }
  gradSlots.set(param, slot);
}

/** param.grad, allocated (in its slot when it has one) and zeroed the first time. */
export function paramGrad(param: Tensor): Tensor {
  if (!param.grad) {
    const slot = gradSlots.get(param);
    param.grad = slot
      ? new Tensor(param.backend, param.shape, slot)
      : Tensor.empty(param.backend, param.shape, "param");
    fill(param.grad, 0);
  }
  return param.grad;
}

/** param.grad += g. */
function accumulateParamGrad(param: Tensor, g: Tensor): void {
  const grad = paramGrad(param);
  add(grad, g.reshape(param.shape), grad);
}

/**
 * Sets the gradients of `params` to zero (after the optimiser step), on the device: a host upload
 * of zeros would move every gradient's bytes over PCIe each update (460 MB for conmamba_large).
 */
export function zeroGrad(params: readonly Tensor[]): void {
  for (const p of params) if (p.grad) fill(p.grad, 0);
}
