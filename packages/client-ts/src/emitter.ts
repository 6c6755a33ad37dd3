/** A tiny typed event emitter: `on` answers a function that removes the listener. */
export class Emitter<M extends { [K in keyof M]: unknown }> {
  private readonly listeners: { [K in keyof M]?: Set<(v: M[K]) => void> } = {};

  on<K extends keyof M>(name: K, fn: (v: M[K]) => void): () => void {
    const set = (this.listeners[name] ??= new Set());
    set.add(fn);
    return () => set.delete(fn);
  }

  protected emit<K extends keyof M>(name: K, value: M[K]): void {
    for (const fn of [...(this.listeners[name] ?? [])]) {
      try {
        fn(value);
      } catch (e) {
        // a listener's fault must not break the socket's state machine: reported as uncaught, later
        queueMicrotask(() => {
          throw e;
        });
      }
    }
  }
}
