/** An event map: each event name to the arguments its listeners receive. */
// biome-ignore lint/suspicious/noExplicitAny: listener argument lists are declared per event by the map
export type EventMap = Record<string, (...args: any[]) => void>;

/**
 * A minimal typed event emitter: `on('have', (index) => …)` is checked
 * against the map, so a misspelt event or a wrong argument is a compile
 * error. A listener that throws does not stop the others; the error goes to
 * `onListenerError`, because an event source (a socket handler) has nobody
 * above it to throw to.
 */
export class TypedEmitter<Events extends EventMap> {
  private readonly listeners = new Map<keyof Events, Set<Events[keyof Events]>>();
  /** Where a throwing listener's error goes; the owner of the emitter decides (a Connection closes). */
  protected onListenerError: (error: unknown, event: keyof Events) => void = (error) => {
    queueMicrotask(() => {
      throw error;
    });
  };

  on<E extends keyof Events>(event: E, listener: Events[E]): () => void {
    let set = this.listeners.get(event);
    if (!set) {
      set = new Set();
      this.listeners.set(event, set);
    }
    set.add(listener);
    return () => this.off(event, listener);
  }

  once<E extends keyof Events>(event: E, listener: Events[E]): () => void {
    const wrapper = ((...args: Parameters<Events[E]>) => {
      this.off(event, wrapper);
      listener(...args);
    }) as Events[E];
    return this.on(event, wrapper);
  }

  off<E extends keyof Events>(event: E, listener: Events[E]): void {
    this.listeners.get(event)?.delete(listener);
  }

  listenerCount(event: keyof Events): number {
    return this.listeners.get(event)?.size ?? 0;
  }

  protected emit<E extends keyof Events>(event: E, ...args: Parameters<Events[E]>): void {
    const set = this.listeners.get(event);
    if (!set) return;
    for (const listener of [...set]) {
      try {
        listener(...args);
      } catch (error) {
        this.onListenerError(error, event);
      }
    }
  }
}
