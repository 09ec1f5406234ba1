import { Command, InvalidArgumentError } from "commander";
import { identityPath } from "../config.js";
import { systemClock } from "../clock.js";
import { pairWithUpstream, UPSTREAM_SCOPES } from "../relay/pair-upstream.js";
import { loadUpstreamSigner, readUpstreamCredentials, upstreamCredentialsPath, writeUpstreamCredentials } from "../relay/upstream-identity.js";
import { UpstreamLink } from "../relay/upstream-link.js";
import { loadOrCreateIdentity } from "../server/gateway-identity.js";
import { CliError } from "./admin-store.js";
import { printJson } from "./output.js";
import type { StateDirOption } from "./state-dir-option.js";

const TOKEN_ENV = "GATEWARDEN_UPSTREAM_TOKEN";

function wsUrl(v: string): string {
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    throw new InvalidArgumentError("must be a ws:// or wss:// URL");
  }
  if (u.protocol !== "ws:" && u.protocol !== "wss:") throw new InvalidArgumentError("must be a ws:// or wss:// URL");
  return u.toString().replace(/\/$/, "");
}

function seconds(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0 || n > 86_400) throw new InvalidArgumentError("must be a number of seconds (0-86400)");
  return n;
}

export function upstreamCommand(opts: StateDirOption): Command {
  const cmd = new Command("upstream").description("gatewarden's own identity towards the OpenClaw gateway it fronts");

  cmd
    .command("pair")
    .description(`pair gatewarden's device key with the upstream OpenClaw gateway (its shared token from ${TOKEN_ENV}); keeps the device token it issues`)
    .requiredOption("--url <url>", "the upstream gateway, e.g. ws://127.0.0.1:18790", wsUrl)
    .option("--wait <seconds>", "how long to wait for the upstream owner's approval", seconds, 300)
    .option("--json", "print JSON (never the device token)")
    .action(async (o: { url: string; wait: number; json?: boolean }) => {
      const sharedToken = process.env[TOKEN_ENV]?.trim();
      if (!sharedToken) throw new CliError(`set ${TOKEN_ENV} to the upstream gateway's shared token (it is used to pair, never stored)`);
      const stateDir = opts.stateDir();
      const idPath = identityPath(stateDir);
      loadOrCreateIdentity(idPath, systemClock.now());
      const signer = loadUpstreamSigner(idPath);
      const outcome = await pairWithUpstream({
        url: o.url,
        sharedToken,
        signer,
        waitMs: o.wait * 1000,
        nowMs: () => systemClock.now(),
        onPending: (requestId) => {
          process.stderr.write(
            `the upstream recorded a pairing request for gatewarden (device ${signer.deviceId.slice(0, 16)}…).\n` +
              `approve it on the upstream host: openclaw devices approve ${requestId ?? "<requestId from openclaw devices list>"}\n` +
              `waiting up to ${o.wait} s (run this command again to resume)…\n`,
          );
        },
      });
      if (!outcome.ok) throw new CliError(outcome.requestId ? `${outcome.message}: openclaw devices approve ${outcome.requestId}, then run this again` : outcome.message);
      const path = upstreamCredentialsPath(stateDir);
      writeUpstreamCredentials(path, outcome.credentials);
      const { credentials } = outcome;
      if (o.json) return printJson({ paired: true, url: credentials.url, deviceId: credentials.deviceId, scopes: credentials.scopes, protocol: credentials.protocol, serverVersion: outcome.serverVersion ?? null });
      process.stdout.write(
        `paired with ${credentials.url} (protocol ${credentials.protocol}${outcome.serverVersion ? `, OpenClaw ${outcome.serverVersion}` : ""})\n` +
          `  device ${credentials.deviceId}\n  scopes ${credentials.scopes.join(",") || "(none)"}\n  device token kept in ${path} (0600); ${TOKEN_ENV} is no longer needed\n`,
      );
    });

  cmd
    .command("status")
    .description("whether the upstream is reachable and what gatewarden's upstream identity may do there")
    .option("--json", "print JSON (never the device token)")
    .action(async (o: { json?: boolean }) => {
      const stateDir = opts.stateDir();
      const credentials = readUpstreamCredentials(upstreamCredentialsPath(stateDir));
      if (!credentials) throw new CliError("gatewarden is not paired with an upstream: run `gatewarden upstream pair --url ws://HOST:PORT`");
      const signer = loadUpstreamSigner(identityPath(stateDir));
      const r = await UpstreamLink.open({ url: credentials.url, signer, role: "operator", scopes: UPSTREAM_SCOPES, auth: { deviceToken: credentials.deviceToken }, timeoutMs: 5000 });
      const status = r.ok
        ? { url: credentials.url, reachable: true, admitted: true, scopes: ((r.hello.auth ?? {}) as { scopes?: string[] }).scopes ?? [], protocol: r.hello.protocol ?? null, error: null }
        : { url: credentials.url, reachable: !r.unreachable, admitted: false, scopes: [], protocol: null, error: r.error.message };
      if (r.ok) r.link.close();
      if (o.json) printJson({ ...status, deviceId: credentials.deviceId });
      else if (r.ok) process.stdout.write(`upstream ${status.url}: reachable, gatewarden admitted (protocol ${String(status.protocol)})\n  scopes ${status.scopes.join(",") || "(none)"}\n`);
      else process.stdout.write(`upstream ${status.url}: ${status.reachable ? "reachable, but gatewarden was refused" : "unreachable"}: ${status.error}\n`);
      if (!r.ok) process.exitCode = 1;
    });

  return cmd;
}
