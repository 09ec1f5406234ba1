import type { WebSocket } from "ws";
import type { Grant } from "../admission/grant.js";
import type { PresenceEntry } from "../methods/define-method.js";
import type { ClientId, ClientMode } from "../protocol/enums.js";
import type { EventFrame } from "../protocol/frames.js";
import { mayReceive } from "./event-delivery.js";

export interface Session {
  readonly connId: string;
  readonly ws: WebSocket;
  readonly grant: Grant;
  readonly clientId: ClientId;
  readonly clientMode: ClientMode;
  readonly clientIp: string;
  readonly presence: PresenceEntry | undefined;
  seq: number;
  inflight: number;
  unauthorizedStreak: number;
}

/**
 * Presence changes within this window go out as one broadcast. Every
 * broadcast carries the whole list to every session, so one per connect made
 * N connects cost O(N²) events and O(N³) bytes.
 */
export const PRESENCE_COALESCE_MS = 250;

/**
 * The admitted sessions, indexed for the closes that revocation needs.
 * Broadcasts check each receiver's grant and drop slow consumers.
 */
export class SessionRegistry {
  private readonly sessions = new Map<string, Session>();
  /**
   * The presence entries of the sessions that have one, in session order.
   * Kept beside `sessions` because every hello-ok snapshots presence: a scan
   * of all sessions made each handshake cost O(open sessions).
   */
  private readonly presences = new Map<string, PresenceEntry>();
  private presenceVersion = 0;
  private presenceBroadcast: NodeJS.Timeout | undefined;

  constructor(private readonly maxBufferedBytes: number) {}

  add(session: Session): void {
    this.sessions.set(session.connId, session);
    if (session.presence) {
      this.presences.set(session.connId, session.presence);
      this.presenceChanged();
    } else {
      this.presences.delete(session.connId); // connIds are unique; this keeps the index exact regardless
    }
  }

  remove(connId: string): void {
    const s = this.sessions.get(connId);
    if (!s) return;
    this.sessions.delete(connId);
    if (s.presence) {
      this.presences.delete(connId);
      this.presenceChanged();
    }
  }

  get size(): number {
    return this.sessions.size;
  }

  all(): IterableIterator<Session> {
    return this.sessions.values();
  }

  counts(): { total: number; operator: number; node: number } {
    let operator = 0;
    for (const s of this.sessions.values()) if (s.grant.role === "operator") operator++;
    return { total: this.sessions.size, operator, node: this.sessions.size - operator };
  }

  presence(): PresenceEntry[] {
    return [...this.presences.values()];
  }

  get stateVersion(): { presence: number; health: number } {
    return { presence: this.presenceVersion, health: 0 };
  }

  /** Close every session matching `match`; returns how many. */
  closeWhere(match: (s: Session) => boolean, code: number, reason: string): number {
    let n = 0;
    for (const s of [...this.sessions.values()]) {
      if (!match(s)) continue;
      this.remove(s.connId);
      s.ws.close(code, reason);
      n++;
    }
    return n;
  }

  broadcast(event: string, payload: unknown): void {
    // Every receiver gets the same event, payload and state version: serialize
    // them once, then add each session's seq (fields stay in EventFrame order).
    let head: string | undefined;
    let tail: string | undefined;
    for (const s of this.sessions.values()) {
      if (!mayReceive(s.grant, event)) continue;
      head ??= JSON.stringify({ type: "event", event, payload } satisfies EventFrame).slice(0, -1);
      tail ??= `,"stateVersion":${JSON.stringify(this.stateVersion)}}`;
      this.sendText(s, `${head},"seq":${++s.seq}${tail}`);
    }
  }

  private sendText(s: Session, text: string): void {
    if (s.ws.bufferedAmount > this.maxBufferedBytes) {
      this.remove(s.connId);
      s.ws.close(1008, "slow consumer");
      return;
    }
    s.ws.send(text);
  }

  private presenceChanged(): void {
    this.presenceVersion++;
    if (this.presenceBroadcast) return;
    this.presenceBroadcast = setTimeout(() => {
      this.presenceBroadcast = undefined;
      this.broadcast("presence", { presence: this.presence() });
    }, PRESENCE_COALESCE_MS);
    this.presenceBroadcast.unref();
  }
}
