import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

// Prometheus metrics, on a listener of their own (loopback unless configured
// otherwise): nothing of the gateway's port answers them, and nothing a
// client sends can name a label value (every label is a closed code).

/** What the gateway reads out when Prometheus scrapes (gauges are read, not kept). */
export interface MetricsSources {
  connections(): { readonly unauthenticated: number; readonly sessions: number };
  lockedKeys(): number;
  /** Upstream mode only. */
  upstreamSessions?(): number;
}

export type StoreOperation = "transact" | "read";
export type RelayErrorKind = "unavailable" | "refused";

export class GatewayMetrics {
  readonly registry = new Registry();
  private readonly handshakes: Counter<"outcome" | "code">;
  private readonly handshakeSeconds: Histogram<"outcome">;
  private readonly pairing: Counter<"outcome">;
  private readonly lockouts: Counter;
  private readonly storeSeconds: Histogram<"operation">;
  private readonly relayErrors: Counter<"kind">;

  constructor(sources: MetricsSources) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: "gatewarden_" });
    this.handshakes = new Counter({
      name: "gatewarden_handshakes_total",
      help: "Connect handshakes decided, by outcome (admit, pairing-required, reject) and details code (OK when admitted)",
      labelNames: ["outcome", "code"],
      registers,
    });
    this.handshakeSeconds = new Histogram({
      name: "gatewarden_handshake_duration_seconds",
      help: "From the connect request's arrival to its decision",
      labelNames: ["outcome"],
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers,
    });
    this.pairing = new Counter({
      name: "gatewarden_pairing_requests_total",
      help: "Pairing requests recorded and resolved in the store, as this instance saw them (requested, approved, rejected, expired)",
      labelNames: ["outcome"],
      registers,
    });
    this.lockouts = new Counter({ name: "gatewarden_lockouts_total", help: "Failed-authentication lockouts that began (this instance's or shared)", registers });
    this.storeSeconds = new Histogram({
      name: "gatewarden_store_operation_duration_seconds",
      help: "Store transactions and the reads that were not served from memory",
      labelNames: ["operation"],
      buckets: [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1, 5],
      registers,
    });
    this.relayErrors = new Counter({
      name: "gatewarden_relay_errors_total",
      help: "Upstream mode: relayed requests or upstream sessions that failed (unavailable: not reached in time; refused: the upstream said no)",
      labelNames: ["kind"],
      registers,
    });
    new Gauge({
      name: "gatewarden_connections",
      help: "Open WebSocket connections by state (unauthenticated: before a decision; session: admitted)",
      labelNames: ["state"],
      registers,
      collect() {
        const c = sources.connections();
        this.set({ state: "unauthenticated" }, c.unauthenticated);
        this.set({ state: "session" }, c.sessions);
      },
    });
    new Gauge({
      name: "gatewarden_locked_keys",
      help: "Addresses locked out now",
      registers,
      collect() {
        this.set(sources.lockedKeys());
      },
    });
    const upstream = sources.upstreamSessions;
    if (upstream) {
      new Gauge({
        name: "gatewarden_upstream_sessions",
        help: "Upstream mode: open sessions to the upstream gateway (one per admitted client)",
        registers,
        collect() {
          this.set(upstream());
        },
      });
    }
    // Every label combination that can occur is present from the start, at 0:
    // a rate over a series that appears only at its first event misses that event.
    for (const outcome of ["requested", "approved", "rejected", "expired"]) this.pairing.inc({ outcome }, 0);
    for (const kind of ["unavailable", "refused"]) this.relayErrors.inc({ kind }, 0);
    this.handshakes.inc({ outcome: "admit", code: "OK" }, 0);
  }

  handshake(outcome: "admit" | "pairing-required" | "reject", code: string, seconds: number | undefined): void {
    this.handshakes.inc({ outcome, code });
    if (seconds !== undefined) this.handshakeSeconds.observe({ outcome }, seconds);
  }

  pairingRequest(outcome: "requested" | "approved" | "rejected" | "expired"): void {
    this.pairing.inc({ outcome });
  }

  lockout(): void {
    this.lockouts.inc();
  }

  store(operation: StoreOperation, seconds: number): void {
    this.storeSeconds.observe({ operation }, seconds);
  }

  relayError(kind: RelayErrorKind): void {
    this.relayErrors.inc({ kind });
  }
}

/** `GET /metrics` (and nothing else) on its own listener. */
export async function listenMetrics(metrics: GatewayMetrics, host: string, port: number): Promise<{ readonly address: AddressInfo; close(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    if (req.method !== "GET" || (req.url !== "/metrics" && !req.url?.startsWith("/metrics?"))) {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found: metrics are at /metrics\n");
      return;
    }
    metrics.registry.metrics().then(
      (text) => res.writeHead(200, { "content-type": metrics.registry.contentType, "cache-control": "no-store" }).end(text),
      () => res.writeHead(500, { "content-type": "text/plain" }).end("metrics unavailable\n"),
    );
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = 15_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  return {
    address: server.address() as AddressInfo,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
