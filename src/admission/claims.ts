import type { DeviceProofClaim } from "../identity/verify-device-proof.js";
import type { ClientId, ClientMode } from "../protocol/enums.js";
import type { ConnectParams } from "../protocol/frames.js";

/**
 * What the client says about itself. Labels for display and routing; they may
 * select which verified credential is used and ask for less than it allows,
 * never more. Nothing in this type is evidence.
 */
export interface Claims {
  readonly clientId: ClientId;
  readonly clientMode: ClientMode;
  readonly platform: string;
  readonly deviceFamily: string | undefined;
  readonly displayName: string | undefined;
  readonly version: string;
  readonly instanceId: string | undefined;
  readonly modelIdentifier: string | undefined;
  /** Raw requested role; validated by the decision. */
  readonly requestedRole: string;
  /** Raw requested scopes in the order sent (the signature covers that order). */
  readonly requestedScopes: readonly string[];
  readonly device: DeviceProofClaim | undefined;
  readonly minProtocol: number;
  readonly maxProtocol: number;
}

export function claimsFromConnect(params: ConnectParams): Claims {
  return {
    clientId: params.client.id,
    clientMode: params.client.mode,
    platform: params.client.platform,
    deviceFamily: params.client.deviceFamily,
    displayName: params.client.displayName,
    version: params.client.version,
    instanceId: params.client.instanceId,
    modelIdentifier: params.client.modelIdentifier,
    requestedRole: params.role ?? "operator",
    requestedScopes: params.scopes ?? [],
    device: params.device,
    minProtocol: params.minProtocol,
    maxProtocol: params.maxProtocol,
  };
}

/** Clients that run in a browser say so; the claim only adds the Origin check. */
export function claimsBrowserClient(claims: Claims): boolean {
  return claims.clientId === "openclaw-control-ui" || claims.clientId === "webchat-ui" || claims.clientMode === "webchat";
}
