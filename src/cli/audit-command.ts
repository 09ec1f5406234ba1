import { existsSync } from "node:fs";
import { Command, InvalidArgumentError } from "commander";
import { identityPath } from "../config.js";
import { loadUpstreamSigner } from "../relay/upstream-identity.js";
import { describeAuditBreak, type AuditHead, type AuditRow, type AuditVerdict } from "../store/audit-chain.js";
import { verifyAuditLog } from "../store/audit-verify.js";
import type { StoreReader } from "../store/store.js";
import { CliError, withAdminReader } from "./admin-store.js";
import { printJson } from "./output.js";
import type { StateDirOption } from "./state-dir-option.js";
import { terminalSafe } from "./terminal-text.js";

const FOLLOW_POLL_MS = 500;
const MAX_LINES = 100_000;
const KEY = /^[A-Za-z0-9_-]{43}$/;

function linesArg(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > MAX_LINES) throw new InvalidArgumentError(`must be a whole number from 1 to ${MAX_LINES}`);
  return n;
}

/** `SEQ:HASH`, as `audit verify` prints the head ("head #SEQ:HASH" without the #). */
function headArg(v: string): AuditHead {
  const m = /^#?(\d{1,15}):([0-9a-f]{64})$/.exec(v);
  if (!m) throw new InvalidArgumentError("must be SEQ:HASH, the head an earlier `gatewarden audit verify` printed (e.g. 1520:9f2c…, 64 hex digits)");
  return { seq: Number(m[1]), hash: m[2] as string };
}

/**
 * Whether the earlier head `expected` is still in the (verified) chain: the
 * entry of that number has that hash, or a checkpoint ends exactly there. A
 * chain cut back below it, or rewritten since, no longer holds it.
 */
async function holdsHead(reader: StoreReader, verdict: Extract<AuditVerdict, { ok: true }>, expected: AuditHead): Promise<string | undefined> {
  const cp = verdict.checkpoint;
  if (expected.seq > verdict.head.seq) return `entry #${expected.seq} (the head recorded earlier) is gone: the log now ends at #${verdict.head.seq}, so its newest entries were deleted`;
  if (cp && expected.seq < cp.throughSeq) return `entry #${expected.seq} (the head recorded earlier) was pruned under the checkpoint at #${cp.throughSeq}: it can no longer be checked; record heads more often than the retention`;
  const hash = cp && expected.seq === cp.throughSeq ? cp.hash : (await reader.auditRows(expected.seq - 1, 1)).find((r) => r.seq === expected.seq)?.hash;
  if (hash !== expected.hash) return `entry #${expected.seq} is not the one recorded earlier (its hash differs): the log was rewritten since`;
  return undefined;
}

function keyArg(v: string, prev: string[] = []): string[] {
  if (!KEY.test(v)) throw new InvalidArgumentError("must be a raw Ed25519 public key in base64url (43 characters), as `gatewarden audit key` prints it");
  return [...prev, v];
}

/** One entry as a JSON object: where it sits in the chain, then what it says. */
function entryObject(row: AuditRow): Record<string, unknown> {
  let event: Record<string, unknown>;
  try {
    event = JSON.parse(row.event) as Record<string, unknown>;
  } catch {
    event = { unreadable: row.event };
  }
  return { seq: row.seq, time: new Date(row.ts).toISOString(), ...event, hash: row.hash };
}

const FIRST = ["kind", "actor"];

/** A plain word is shown bare; anything else (spaces, quotes, `=`, a comma, an empty string or list) as JSON, so a client's text cannot pose as another field. */
const PLAIN = /^[^\s"=,]+$/u;
function fieldValue(v: unknown): string {
  if (Array.isArray(v)) return v.length > 0 && v.every((item) => PLAIN.test(String(item))) ? v.join(",") : JSON.stringify(v);
  const text = String(v);
  return PLAIN.test(text) ? text : JSON.stringify(text);
}

/** One line for a terminal: seq, time, kind, actor, then the other fields as key=value, every one escaped. */
function entryLine(row: AuditRow): string {
  const e = entryObject(row);
  const rest = Object.entries(e)
    .filter(([k]) => !["seq", "time", "hash", ...FIRST].includes(k))
    .map(([k, v]) => `${k}=${fieldValue(v)}`);
  return terminalSafe([`#${row.seq}`, String(e.time), String(e.kind), String(e.actor), ...rest].join("  "));
}

async function newestRows(reader: StoreReader, n: number): Promise<AuditRow[]> {
  const newest = await reader.newestAuditRow();
  if (!newest) return [];
  return reader.auditRows(Math.max(0, newest.seq - n), n);
}

/** This install's checkpoint key: the gateway's identity in the state dir, if the gateway has run here. */
function localKey(stateDir: string): string | undefined {
  const path = identityPath(stateDir);
  if (!existsSync(path)) return undefined;
  try {
    return loadUpstreamSigner(path).publicKey;
  } catch (e) {
    throw new CliError(e instanceof Error ? e.message : String(e));
  }
}

export function auditCommand(opts: StateDirOption): Command {
  const cmd = new Command("audit").description("read and check the tamper-evident audit log (admissions and every change to pairings, tokens, backends and the shared token)");

  cmd
    .command("tail")
    .description("print the newest audit entries, oldest first")
    .option("-n, --lines <n>", "how many (default 20)", linesArg)
    .option("-f, --follow", "keep printing entries as they are written (Ctrl-C to stop)")
    .option("--json", "one JSON object per line")
    .action((o: { lines?: number; follow?: boolean; json?: boolean }) =>
      withAdminReader(opts, async (reader) => {
        const print = (row: AuditRow): void => {
          process.stdout.write(o.json ? `${JSON.stringify(entryObject(row))}\n` : `${entryLine(row)}\n`);
        };
        const rows = await newestRows(reader, o.lines ?? 20);
        rows.forEach(print);
        if (!o.follow) return;
        let after = rows.at(-1)?.seq ?? (await reader.newestAuditRow())?.seq ?? 0;
        for (;;) {
          await new Promise((resolve) => setTimeout(resolve, FOLLOW_POLL_MS));
          for (let page = await reader.auditRows(after, 1000); page.length > 0; page = await reader.auditRows(after, 1000)) {
            page.forEach(print);
            after = page.at(-1)?.seq ?? after;
          }
        }
      }),
    );

  cmd
    .command("verify")
    .description("check the hash chain from its anchor (or signed checkpoint) to the newest entry; exit 1 naming the first broken link")
    .option("--trust-key <key>", "also accept checkpoints signed by this gateway key (repeatable; several instances on one store)", keyArg)
    .option("--expect-head <seq:hash>", "also require the head an earlier verify printed to be still in the chain (catches deleted newest entries and rewrites)", headArg)
    .option("--json", "print JSON")
    .action((o: { trustKey?: string[]; expectHead?: AuditHead; json?: boolean }) =>
      withAdminReader(opts, async (reader) => {
        const own = localKey(opts.stateDir());
        const trusted = new Set([...(own ? [own] : []), ...(o.trustKey ?? [])]);
        const verdict = await verifyAuditLog(reader, (key) => trusted.has(key));
        if (!verdict.ok) throw new CliError(`audit log broken: ${describeAuditBreak(verdict.broken)}`, 1, "AUDIT_CHAIN_BROKEN");
        const lost = o.expectHead && (await holdsHead(reader, verdict, o.expectHead));
        if (lost) throw new CliError(`audit log broken: ${lost}`, 1, "AUDIT_CHAIN_BROKEN");
        const cp = verdict.checkpoint;
        if (o.json) {
          return printJson({
            ok: true,
            entries: verdict.checked,
            first: verdict.first ?? null,
            head: verdict.head,
            checkpoint: cp ? { throughSeq: cp.throughSeq, signer: cp.signer, signedBy: cp.signer === own ? "this gateway" : "trusted key", ts: cp.ts } : null,
          });
        }
        const range = verdict.checked === 0 ? "no entries" : `${verdict.checked} entries (#${verdict.first ?? 0} to #${verdict.head.seq})`;
        const pruned = cp ? `; #1 to #${cp.throughSeq} were pruned under a checkpoint signed by ${cp.signer === own ? "this gateway" : `trusted key ${cp.signer}`}` : "";
        const held = o.expectHead ? `; it still holds #${o.expectHead.seq}` : "";
        process.stdout.write(`audit log intact: ${range}${pruned}${held}; head ${verdict.head.seq}:${verdict.head.hash}\n`);
      }),
    );

  cmd
    .command("key")
    .description("print this gateway's checkpoint key (for audit.trustKeys / --trust-key on other instances sharing a store)")
    .action(() => {
      const key = localKey(opts.stateDir());
      if (!key) throw new CliError(`no gateway identity in ${opts.stateDir()} (start the gateway once with "gatewarden serve")`);
      process.stdout.write(`${key}\n`);
    });

  return cmd;
}
