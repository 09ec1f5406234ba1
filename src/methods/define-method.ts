import type { Static, TSchema } from "@sinclair/typebox";
import type { Grant } from "../admission/grant.js";
import type { Clock, Random } from "../clock.js";
import type { PairingLimits } from "../pairing/limits.js";
import type { ClientId, ClientMode } from "../protocol/enums.js";
import type { Result } from "../result.js";
import type { Store } from "../store/store.js";
import type { Requirement } from "./authorize.js";

/** The calling session, as methods see it. */
export interface CallerSession {
  readonly connId: string;
  readonly grant: Grant;
  readonly clientId: ClientId;
  readonly clientMode: ClientMode;
}

export interface PresenceEntry {
  host?: string;
  ip?: string;
  version?: string;
  platform?: string;
  deviceFamily?: string;
  modelIdentifier?: string;
  mode?: string;
  reason?: string;
  ts: number;
  deviceId?: string;
  roles?: string[];
  scopes?: string[];
  instanceId?: string;
  text?: string;
}

export interface GatewayIdentity {
  readonly deviceId: string;
  readonly publicKey: string;
}

/** What the gateway offers method handlers. */
export interface MethodServices {
  readonly store: Store;
  readonly clock: Clock;
  readonly random: Random;
  readonly pairingLimits: PairingLimits;
  readonly identity: GatewayIdentity;
  readonly version: string;
  readonly startedAtMs: number;
  readonly authMode: string;
  presence(): PresenceEntry[];
  /** Counts for status: sessions open and by role. */
  sessionCounts(): { total: number; operator: number; node: number };
  /** Tell the gateway the store changed, so it reacts (events, closes) now rather than at the next poll. */
  storeChanged(): void;
}

export interface MethodDefinition<T extends TSchema> {
  readonly name: string;
  /** Must match the protocol's table for upstream method names (checked at registration). */
  readonly requires: Requirement;
  /** A closed TypeBox schema; compiled once, when the method is defined. */
  readonly params: T;
  readonly handler: (params: Static<T>, caller: CallerSession, services: MethodServices) => Promise<Result<unknown>>;
}

/** A method with its parameter type erased, for the registry. */
export interface RegisteredMethod {
  readonly name: string;
  readonly requires: Requirement;
  call(rawParams: unknown, caller: CallerSession, services: MethodServices): Promise<Result<unknown>>;
}
