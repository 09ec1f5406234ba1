// Messages between the orchestrator (bench/run.ts) and the load generator
// process (bench/load-client.ts), over the child_process IPC channel.

/**
 * Where a handshake's time went, median ms per step on the load generator's
 * clock. The first three add up to about the latency window; the close is
 * after it.
 */
export interface HandshakePhases {
  /** `connect()` called → TCP connected: the load generator's own wait for its event loop. */
  readonly tcpMs: number;
  /** TCP connected → 101 and challenge received: the server's accept queue, then the upgrade. */
  readonly challengeMs: number;
  /** Challenge received → hello-ok received: signing, the connect frame, its verification, hello-ok. */
  readonly helloMs: number;
  /** Close frame sent → connection closed (after the latency window). */
  readonly closeMs: number;
}

export interface HandshakeRun {
  readonly completed: number;
  readonly errors: number;
  readonly firstError: string | undefined;
  readonly elapsedMs: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  /** Mean size of the hello-ok `res` frame received, in bytes. */
  readonly helloBytes: number;
  /** CPU seconds the load generator spent (user + system) during the run. */
  readonly clientCpuS: number;
  readonly phases: HandshakePhases;
}

export interface RoundTripRun {
  readonly completed: number;
  readonly errors: number;
  readonly elapsedMs: number;
  readonly replyBytes: number;
  readonly clientCpuS: number;
}

export interface SessionsOpened {
  readonly open: number;
  readonly errors: number;
  readonly firstError: string | undefined;
  readonly elapsedMs: number;
}

export type ClientCommand =
  | { readonly cmd: "createDevices"; readonly n: number }
  | { readonly cmd: "requestPairing"; readonly url: string; readonly token: string }
  | { readonly cmd: "fetchDeviceTokens"; readonly url: string; readonly token: string }
  | { readonly cmd: "handshakes"; readonly url: string; readonly concurrency: number; readonly durationMs: number }
  | { readonly cmd: "openSessions"; readonly url: string; readonly total: number; readonly concurrency: number }
  | { readonly cmd: "closeSessions" }
  | { readonly cmd: "sample"; readonly url: string }
  | { readonly cmd: "roundTrips"; readonly url: string; readonly window: number; readonly durationMs: number };

export interface ClientReplies {
  createDevices: { readonly created: number };
  requestPairing: { readonly requestIds: readonly string[] };
  fetchDeviceTokens: { readonly tokens: number };
  handshakes: HandshakeRun;
  openSessions: SessionsOpened;
  closeSessions: { readonly closed: number };
  /** The hello-ok payload and a `health` payload, as a device-token session receives them. */
  sample: { readonly hello: unknown; readonly health: unknown };
  roundTrips: RoundTripRun;
}

export interface ClientRequest {
  readonly seq: number;
  readonly command: ClientCommand;
}

export type ClientResponse = { readonly seq: number; readonly ok: true; readonly value: unknown } | { readonly seq: number; readonly ok: false; readonly error: string };
