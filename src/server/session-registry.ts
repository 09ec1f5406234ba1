import type { WebSocket } from "ws";
import type { Grant } from "../admission/grant.js";
import type { PresenceEntry } from "../methods/define-method.js";
import type { ClientId, ClientMode } from "../protocol/enums.js";
import type { EventFrame } from "../protocol/frames.js";
import { mayReceive } from "./event-delivery.js";
import type { RelaySession } from "../relay/upstream-relay.js";
import { closeSocket, writable } from "./frame-io.js";
import { LinkedList, type ListEntry } from "./linked-list.js";

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
  /** Upstream mode: this session's own session with the OpenClaw gateway behind gatewarden. */
  readonly relay: RelaySession | undefined;
}

/**
 * Presence changes within this window go out as one broadcast. Every
 * broadcast carries the whole list to every session, so one per connect made
 * N connects cost O(N²) events and O(N³) bytes.
 */
export const PRESENCE_COALESCE_MS = 250;

/** A session in the registry, as `add` returns it; `remove` takes it. */
export interface RegisteredSession {
  readonly session: Session;
}

class Registration implements RegisteredSession {
  /** Set as soon as the registration is in the list. */
  entry: ListEntry<Registration> | undefined;
  constructor(
    readonly session: Session,
    readonly presenceEntry: ListEntry<PresenceEntry> | undefined,
  ) {}
}

/**
 * The admitted sessions, for broadcasts and the closes that revocation needs.
 * Broadcasts check each receiver's grant and drop slow consumers. Lists, not
 * Maps keyed by connId: a session comes and goes with each handshake (see
 * LinkedList).
 */
export class SessionRegistry {
  private readonly sessions = new LinkedList<Registration>();
  /**
   * The presence entries of the sessions that have one, in session order.
   * Kept beside `sessions` because every hello-ok snapshots presence: a scan
   * of all sessions made each handshake cost O(open sessions).
   */
  private readonly presences = new LinkedList<PresenceEntry>();
  private presenceVersion = 0;
  private presenceBroadcast: NodeJS.Timeout | undefined;

  constructor(
    private readonly maxBufferedBytes: number,
    private readonly closeGraceMs: number,
  ) {}

  add(session: Session): RegisteredSession {
    const registration = new Registration(session, session.presence ? this.presences.push(session.presence) : undefined);
    registration.entry = this.sessions.push(registration);
    if (registration.presenceEntry) this.presenceChanged();
    return registration;
  }

  /** Take a session out; harmless if it is already out. */
  remove(registered: RegisteredSession): void {
    const registration = registered as Registration;
    if (registration.entry === undefined || !this.sessions.remove(registration.entry)) return;
    if (registration.presenceEntry && this.presences.remove(registration.presenceEntry)) this.presenceChanged();
  }

  get size(): number {
    return this.sessions.size;
  }

  counts(): { total: number; operator: number; node: number } {
    let operator = 0;
    this.sessions.forEach((r) => {
      if (r.session.grant.role === "operator") operator++;
    });
    return { total: this.sessions.size, operator, node: this.sessions.size - operator };
  }

  presence(): PresenceEntry[] {
    return this.presences.toArray();
  }

  get stateVersion(): { presence: number; health: number } {
    return { presence: this.presenceVersion, health: 0 };
  }

  /** Close every session matching `match`; returns how many. */
  closeWhere(match: (s: Session) => boolean, code: number, reason: string): number {
    let n = 0;
    for (const r of this.sessions.toArray()) {
      if (!match(r.session)) continue;
      this.remove(r);
      closeSocket(r.session.ws, code, reason, this.closeGraceMs);
      n++;
    }
    return n;
  }

  /** `deviceId`: the device a pairing event is about (see mayReceive). */
  broadcast(event: string, payload: unknown, deviceId?: string): void {
    // Every receiver gets the same event, payload and state version: serialize
    // them once, then add each session's seq (fields stay in EventFrame order).
    let head: string | undefined;
    let tail: string | undefined;
    // A copy: a slow consumer is removed on the way.
    for (const r of this.sessions.toArray()) {
      const s = r.session;
      if (!mayReceive(s.grant, event, deviceId)) continue;
      head ??= JSON.stringify({ type: "event", event, payload } satisfies EventFrame).slice(0, -1);
      tail ??= `,"stateVersion":${JSON.stringify(this.stateVersion)}}`;
      this.sendText(r, `${head},"seq":${++s.seq}${tail}`);
    }
  }

  /** One event to one session (a relayed upstream event), numbered in this session's own sequence. */
  sendEvent(registered: RegisteredSession, event: string, payload: unknown): void {
    const r = registered as Registration;
    if (r.entry === undefined) return;
    const s = r.session;
    this.sendText(r, JSON.stringify({ type: "event", event, payload, seq: ++s.seq, stateVersion: this.stateVersion } satisfies EventFrame));
  }

  private sendText(r: Registration, text: string): void {
    const { ws } = r.session;
    if (!writable(ws, this.maxBufferedBytes, this.closeGraceMs)) {
      this.remove(r);
      return;
    }
    ws.send(text);
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
