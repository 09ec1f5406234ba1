import type { HandshakePhases } from "./ipc.js";

// What one benchmark run measures for one server. Medians over runs go in the report.

export type TargetName = "bare" | "gatewarden";

export interface HandshakeSample {
  /** Completed handshakes (connect → hello-ok → close) per second. */
  readonly rate: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** Server CPU time per completed handshake, in microseconds. */
  readonly serverCpuUs: number;
  /** Server CPU time / wall time: 1.0 means its core was saturated. */
  readonly serverBusy: number;
  /** Load generator CPU time / wall time. */
  readonly clientBusy: number;
  readonly helloBytes: number;
  /** Median time per step of a handshake (load generator's clock). */
  readonly phases: HandshakePhases;
  readonly errors: number;
  readonly firstError: string | undefined;
  /** Share of the machine's CPU that processes other than the benchmark's used during the phase. */
  readonly foreign: number;
}

export interface RoundTripSample {
  readonly rate: number;
  readonly serverCpuUs: number;
  readonly serverBusy: number;
  readonly clientBusy: number;
  readonly replyBytes: number;
  readonly errors: number;
  readonly foreign: number;
}

export interface RssSample {
  readonly baselineBytes: number;
  /** Sessions requested → server RSS with that many idle sessions open. */
  readonly at: ReadonlyMap<number, number>;
  /** Server CPU per session opened while going from the previous count to this one, µs. */
  readonly openCpuUs: ReadonlyMap<number, number>;
  readonly errors: number;
  readonly firstError: string | undefined;
}

export interface TargetResults {
  readonly handshakes: Map<number, HandshakeSample[]>;
  readonly roundTrips: Map<number, RoundTripSample[]>;
  readonly rss: RssSample[];
}

export function emptyResults(): TargetResults {
  return { handshakes: new Map(), roundTrips: new Map(), rss: [] };
}

export function pushTo<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}
