import type { LoadClient } from "./client-process.js";
import { gatewardenCli, type ServerHandle } from "./servers.js";

/** gatewarden's config for the benchmark: only the bounds a load test on one machine must raise. */
export function benchConfig(maxSessions: number): Record<string, unknown> {
  return {
    limits: {
      // 200 concurrent handshakes per source address would exceed the default 32.
      maxPreauthPerIp: 1024,
      maxConnectionsPerIp: maxSessions + 2048,
      maxConnections: maxSessions + 4096,
    },
    // Pairing a pool of devices from loopback makes more than the default 16 pending requests per IP.
    pairing: { maxPendingPerIp: 1024, maxPendingTotal: 4096 },
    // The rate limiter counts failed authentications only; the benchmark makes none, so it keeps its defaults.
  };
}

/**
 * Pair `n` devices with the running gateway the way an operator would:
 * each connects (NOT_PAIRED, a pending request), `gatewarden devices approve`
 * approves it (two CLI processes at a time: two cores), and each reconnects
 * for its device token. The load generator keeps the devices and tokens.
 */
export async function pairDevices(root: string, client: LoadClient, gw: ServerHandle, stateDir: string, n: number): Promise<void> {
  const token = gw.token;
  if (!token) throw new Error("gatewarden printed no generated token");
  await client.run({ cmd: "createDevices", n });
  const { requestIds } = await client.run({ cmd: "requestPairing", url: gw.url, token });
  // The admin CLI, as an operator would run it; two at a time (two cores).
  let next = 0;
  await Promise.all(
    [0, 1].map(async () => {
      while (next < requestIds.length) {
        const id = requestIds[next++] as string;
        const r = await gatewardenCli(root, stateDir, ["devices", "approve", "--yes", id]);
        if (r.code !== 0) throw new Error(`devices approve ${id} failed: ${r.stderr}`);
      }
    }),
  );
  const { tokens } = await client.run({ cmd: "fetchDeviceTokens", url: gw.url, token });
  if (tokens !== n) throw new Error(`only ${tokens} of ${n} devices got a device token`);
}
