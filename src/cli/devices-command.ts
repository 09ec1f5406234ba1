import { createInterface } from "node:readline/promises";
import { Command } from "commander";
import { systemClock, systemRandom } from "../clock.js";
import { approvePairing, rejectPairing } from "../pairing/approve.js";
import { removeDevice, revokeDeviceToken, rotateDeviceToken } from "../pairing/device-tokens.js";
import { OWNER } from "../pairing/actor.js";
import { effectiveRoles, liveRoleScopes } from "../pairing/role-grant.js";
import { terminalSafe } from "./terminal-text.js";
import { isKnownScope, isRole, type Scope } from "../protocol/enums.js";
import type { Result } from "../result.js";
import { pairedToWire, pendingToWire } from "../methods/wire-records.js";
import { CliError, withAdminReader, withAdminStore } from "./admin-store.js";
import { ago, inTime, printJson, short, table } from "./output.js";
import { resolveId } from "./resolve-id.js";
import { VERIFICATION_CODE_DIGITS, isVerificationCode, verificationCode } from "../pairing/verification-code.js";
import type { StateDirOption } from "./state-dir-option.js";
import type { PendingRequestRecord } from "../store/records.js";


function unwrap<T>(r: Result<T>): T {
  if (!r.ok) throw new CliError(r.error.message, 1, r.error.detailCode);
  return r.value;
}

/**
 * operator.admin is full control of the gateway: it is approved only after a
 * look at who asks. From a terminal: a preview and a question; otherwise
 * (a script) only with --yes.
 */
async function confirmAdmin(request: PendingRequestRecord): Promise<void> {
  const who =
    `device ${short(request.deviceId)} "${terminalSafe(request.displayName ?? "unnamed")}" (${terminalSafe(`${request.clientId ?? "-"}/${request.clientMode ?? "-"}`)} on ${terminalSafe(request.platform ?? "-")}) ` +
    `from ${terminalSafe(request.remoteIp ?? request.requesterIp)}, verification code ${verificationCode(request)}`;
  const asks = `request ${request.requestId} asks for operator.admin (full control of this gateway)`;
  if (!process.stdin.isTTY || !process.stderr.isTTY) {
    throw new CliError(`${asks} for ${who}: check it (devices list), then approve with --yes, or grant less with --scopes`);
  }
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await rl.question(`${asks}:\n  ${who}\n  scopes asked: ${request.scopes.join(", ")}\nApprove operator.admin for this device? [y/N] `);
    if (!/^y(es)?$/i.test(answer.trim())) throw new CliError("not approved");
  } finally {
    rl.close();
  }
}

function parseRole(role: string) {
  if (!isRole(role)) throw new CliError(`unknown role ${JSON.stringify(role)} (operator or node)`);
  return role;
}

function parseScopes(list: readonly string[] | undefined): Scope[] | undefined {
  if (!list) return undefined;
  const scopes = list.flatMap((s) => s.split(",")).map((s) => s.trim()).filter(Boolean);
  for (const s of scopes) if (!isKnownScope(s)) throw new CliError(`unknown scope ${JSON.stringify(s)}`);
  return scopes as Scope[];
}

export function devicesCommand(opts: StateDirOption): Command {
  const cmd = new Command("devices").description("list and manage device pairings and device tokens");

  cmd
    .command("list")
    .description("show pending pairing requests and paired devices")
    .option("--json", "print JSON")
    .action((o: { json?: boolean }) =>
      withAdminReader(opts, async (store) => {
        const now = systemClock.now();
        const pending = (await store.listPendingRequests()).filter((p) => p.expiresAtMs > now);
        const paired = await store.listPairedDevices();
        if (o.json) return printJson({ pending: pending.map(pendingToWire), paired: paired.map(pairedToWire) });
        process.stdout.write(`Pending (${pending.length})\n`);
        if (pending.length > 0) {
          process.stdout.write(
            table(
              ["REQUEST", "CODE", "DEVICE", "NAME", "CLIENT", "ROLE", "SCOPES", "REASON", "FROM", "AGE", "EXPIRES"],
              pending.map((p) => [
                p.requestId,
                verificationCode(p),
                short(p.deviceId),
                p.displayName ?? "-",
                `${p.clientId ?? "-"}/${p.clientMode ?? "-"}`,
                p.roles.join(","),
                p.scopes.join(",") || "-",
                p.reason,
                p.remoteIp ?? p.requesterIp,
                ago(p.ts, now),
                inTime(p.expiresAtMs, now),
              ]),
            ) + "\n",
          );
        }
        process.stdout.write(`\nPaired (${paired.length})\n`);
        if (paired.length > 0) {
          process.stdout.write(
            table(
              ["DEVICE", "NAME", "PLATFORM", "ROLES", "SCOPES", "TOKENS", "APPROVED"],
              paired.map((d) => [
                short(d.deviceId),
                d.displayName ?? "-",
                d.platform ?? "-",
                d.roles.join(","),
                d.approvedScopes.join(",") || "-",
                Object.values(d.tokens)
                  .filter((t) => t !== undefined)
                  .map((t) => `${t.role}${t.revokedAtMs !== undefined ? "(revoked)" : ""}`)
                  .join(",") || "-",
                ago(d.approvedAtMs, now),
              ]),
            ) + "\n",
          );
        }
      }),
    );

  cmd
    .command("approve")
    .description("approve a pending pairing request (grants the role and the scopes it asked for, or only those given with --scopes)")
    .argument("<requestId>", "request id (or a unique prefix of 6+ characters)")
    .option("--code <digits>", "the verification code the device shows: refuse to approve if it differs")
    .option("--scopes <list...>", "approve only these of the requested scopes (comma-separated)")
    .option("--yes", "approve a request for operator.admin without asking (needed when not run from a terminal)")
    .option("--json", "print JSON")
    .action((requestId: string, o: { json?: boolean; code?: string; scopes?: string[]; yes?: boolean }) =>
      withAdminStore(opts, async (store) => {
        if (o.code !== undefined && !isVerificationCode(o.code)) throw new CliError(`--code takes the ${VERIFICATION_CODE_DIGITS} digits the device shows`);
        const pendingRequests = await store.listPendingRequests();
        const id = resolveId("request", requestId, pendingRequests.map((p) => p.requestId));
        const request = pendingRequests.find((p) => p.requestId === id);
        if (o.code !== undefined && request !== undefined && verificationCode(request) !== o.code) {
          throw new CliError(`the verification code of request ${id} is not ${o.code}: not approved (this may not be the device you expect)`);
        }
        const narrowTo = parseScopes(o.scopes);
        if (request !== undefined && (narrowTo ?? request.scopes).includes("operator.admin") && o.yes !== true) {
          await confirmAdmin(request);
        }
        const { device, granted } = unwrap(await approvePairing(store, id, OWNER, systemClock.now(), narrowTo));
        if (o.json) return printJson({ requestId: id, granted, device: pairedToWire(device) });
        // Names exactly what this approval granted, escaped: the owner reads what was approved, not what a client's name painted.
        process.stdout.write(
          `approved ${id}: device ${short(device.deviceId)} (${terminalSafe(device.displayName ?? "unnamed")})\n` +
            `  granted role ${granted.roles.join(",")} with scopes ${granted.scopes.join(",") || "(none)"}\n` +
            `  the device may now use: ${effectiveRoles(device).map((r) => `${r} [${liveRoleScopes(device, r).join(",") || "no scopes"}]`).join("; ") || "nothing"}\n`,
        );
      }),
    );

  cmd
    .command("reject")
    .description("reject a pending pairing request")
    .argument("<requestId>", "request id (or a unique prefix of 6+ characters)")
    .option("--json", "print JSON")
    .action((requestId: string, o: { json?: boolean }) =>
      withAdminStore(opts, async (store) => {
        const id = resolveId("request", requestId, (await store.listPendingRequests()).map((p) => p.requestId));
        const r = unwrap(await rejectPairing(store, id, OWNER, systemClock.now()));
        if (o.json) return printJson(r);
        process.stdout.write(`rejected ${id} (device ${r.deviceId})\n`);
      }),
    );

  cmd
    .command("remove")
    .description("remove a paired device, its tokens and pending requests; its live sessions are closed")
    .argument("<deviceId>", "device id (or a unique prefix of 6+ characters)")
    .option("--json", "print JSON")
    .action((deviceId: string, o: { json?: boolean }) =>
      withAdminStore(opts, async (store) => {
        const id = resolveId("device", deviceId, (await store.listPairedDevices()).map((d) => d.deviceId));
        const r = unwrap(await removeDevice(store, id, OWNER, systemClock.now()));
        if (o.json) return printJson(r);
        process.stdout.write(`removed device ${r.deviceId}\n`);
      }),
    );

  cmd
    .command("rotate")
    .description("mint a new device token for a role (the old one stops working; the new one is shown once)")
    .requiredOption("--device <deviceId>", "device id (or a unique prefix)")
    .requiredOption("--role <role>", "operator or node")
    .option("--scope <scope...>", "narrow the token to these scopes (within the device's approval)")
    .option("--json", "print JSON")
    .action((o: { device: string; role: string; scope?: string[]; json?: boolean }) =>
      withAdminStore(opts, async (store) => {
        const id = resolveId("device", o.device, (await store.listPairedDevices()).map((d) => d.deviceId));
        const scopes = parseScopes(o.scope);
        const r = unwrap(
          await rotateDeviceToken(store, { deviceId: id, role: parseRole(o.role), ...(scopes ? { scopes } : {}) }, OWNER, {
            nowMs: systemClock.now(),
            random: systemRandom,
          }),
        );
        if (o.json) return printJson(r);
        process.stdout.write(`rotated ${r.role} token of ${r.deviceId} (scopes ${r.scopes.join(",") || "none"}); shown once:\n  ${r.token}\n`);
      }),
    );

  cmd
    .command("revoke")
    .description("revoke a device's token for a role; its live sessions for that role are closed")
    .requiredOption("--device <deviceId>", "device id (or a unique prefix)")
    .requiredOption("--role <role>", "operator or node")
    .option("--json", "print JSON")
    .action((o: { device: string; role: string; json?: boolean }) =>
      withAdminStore(opts, async (store) => {
        const id = resolveId("device", o.device, (await store.listPairedDevices()).map((d) => d.deviceId));
        const now = systemClock.now();
        const r = unwrap(await revokeDeviceToken(store, { deviceId: id, role: parseRole(o.role) }, OWNER, now));
        if (o.json) return printJson(r);
        process.stdout.write(
          r.revokedAtMs < now ? `the ${r.role} token of ${r.deviceId} was already revoked (${new Date(r.revokedAtMs).toISOString()}); nothing changed\n` : `revoked ${r.role} token of ${r.deviceId}\n`,
        );
      }),
    );

  return cmd;
}

export { parseScopes };
