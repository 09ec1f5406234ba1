/** One place in a LinkedList, handed out by `push` and given back to `remove`. */
export interface ListEntry<T> {
  /** The value, until the entry is removed. */
  readonly value: T | undefined;
}

class Node<T> implements ListEntry<T> {
  prev: Node<T> | undefined = undefined;
  next: Node<T> | undefined = undefined;
  constructor(
    public value: T | undefined,
    public owner: LinkedList<T> | undefined,
  ) {}
}

/**
 * An insertion-ordered list with O(1) removal through the entry `push`
 * returned. A removed entry lets go of everything it referenced.
 *
 * Why not a Set or Map for per-connection membership: V8 rehashes a
 * Map's table into a new one and leaves the old table holding its entries;
 * once a table lives in old space, every later table is allocated there too.
 * With a connection added and removed per handshake, each discarded table
 * kept the connections it had held alive through every scavenge until the
 * next mark-compact, which promoted them (BENCHMARKS.md, "Sixth round").
 */
export class LinkedList<T> {
  private head: Node<T> | undefined;
  private tail: Node<T> | undefined;
  private count = 0;

  get size(): number {
    return this.count;
  }

  /** Append `value`; the entry removes it again. */
  push(value: T): ListEntry<T> {
    const node = new Node<T>(value, this);
    if (this.tail === undefined) this.head = node;
    else {
      this.tail.next = node;
      node.prev = this.tail;
    }
    this.tail = node;
    this.count++;
    return node;
  }

  /** Remove `entry` if it is still in this list; returns whether it was. */
  remove(entry: ListEntry<T>): boolean {
    const node = entry as Node<T>;
    if (node.owner !== this) return false;
    if (node.prev === undefined) this.head = node.next;
    else node.prev.next = node.next;
    if (node.next === undefined) this.tail = node.prev;
    else node.next.prev = node.prev;
    node.prev = undefined;
    node.next = undefined;
    node.value = undefined;
    node.owner = undefined;
    this.count--;
    return true;
  }

  /** The oldest entry still in the list. */
  first(): ListEntry<T> | undefined {
    return this.head;
  }

  /** The values in insertion order, copied: the list may change while the copy is used. */
  toArray(): T[] {
    const out: T[] = [];
    for (let n = this.head; n !== undefined; n = n.next) out.push(n.value as T);
    return out;
  }

  /** Call `fn` on each value in insertion order; `fn` must not change the list. */
  forEach(fn: (value: T) => void): void {
    for (let n = this.head; n !== undefined; n = n.next) fn(n.value as T);
  }

  /** Remove every entry. */
  clear(): void {
    while (this.head !== undefined) this.remove(this.head);
  }
}
