import assert from "node:assert/strict";
import type { GatewayProcess } from "./gateway-process.js";
import { eventually } from "./adversarial.js";

/** The metrics URL of a gateway started with `--metrics-port 0` (its port is in the `listening` log line). */
export async function metricsUrlOf(gw: GatewayProcess): Promise<string> {
  await eventually(() => gw.logLines().some((l) => l.event === "listening"), "the listening line");
  const port = gw.logLines().find((l) => l.event === "listening")?.metricsPort;
  assert.equal(typeof port, "number", "the metrics port is logged");
  return `http://127.0.0.1:${String(port)}/metrics`;
}

/** The exposition text, as Prometheus scrapes it. */
export async function scrape(url: string): Promise<string> {
  const res = await fetch(url);
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
  return res.text();
}

/** One sample's value from the exposition text (0 when the series is absent). */
export function sample(text: string, name: string, labels: Record<string, string> = {}): number {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const labelText = /\{([^}]*)\}/.exec(line)?.[1] ?? "";
    if (want.every((w) => labelText.split(",").includes(w))) return Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return 0;
}
