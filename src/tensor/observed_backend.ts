/**
 * A Backend that delegates everything to another and shows each op call to an observer first:
 * how benchmarks count FLOPs and the parity suite records which ops a case ran.
 */
import type { Backend, BufferArg, Lifetime, Storage } from "./backend.ts";

export type OpObserver = (name: string, params: Readonly<Record<string, number>>) => void;

export class ObservedBackend implements Backend {
  constructor(readonly inner: Backend, readonly observe: OpObserver) {}
  get name() {
    return this.inner.name;
  }
  get threads() {
    return this.inner.threads;
  }
  get matmulPrecision() {
    return this.inner.matmulPrecision;
  }
  alloc(length: number, lifetime: Lifetime): Storage {
    return this.inner.alloc(length, lifetime);
  }
  free(s: Storage): void {
    this.inner.free(s);
  }
  resetStep(): void {
    this.inner.resetStep();
  }
  memoryBytes(): number {
    return this.inner.memoryBytes();
  }
  upload(s: Storage, data: Float32Array, offset?: number): void {
    this.inner.upload(s, data, offset);
  }
  download(s: Storage, offset?: number, length?: number): Float32Array {
    return this.inner.download(s, offset, length);
  }
  run(name: string, params: Readonly<Record<string, number>>, args: readonly BufferArg[]): void {
    this.observe(name, params);
    this.inner.run(name, params, args);
  }
  close(): void {
    this.inner.close();
  }
}
