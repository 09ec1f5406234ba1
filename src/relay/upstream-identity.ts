import { createPrivateKey, createPublicKey, sign as edSign } from "node:crypto";
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from "node:fs";
import { dirname, join } from "node:path";
import { deriveDeviceId } from "../identity/device-key.js";

// gatewarden's own identity towards the upstream OpenClaw gateway: the same
// Ed25519 key as `gateway.identity.get` (identity/gateway.json), and the
// device token the upstream issued to it once paired (upstream/credentials.json,
// 0600). The upstream's shared token is used only to pair and never kept.

export interface UpstreamSigner {
  readonly deviceId: string;
  /** Raw 32-byte key, base64url, as the protocol sends it. */
  readonly publicKey: string;
  sign(payload: string): string;
}

export interface UpstreamCredentials {
  readonly version: 1;
  readonly url: string;
  readonly deviceId: string;
  readonly role: "operator";
  /** What the upstream approved for gatewarden's device (hello-ok.auth.scopes at pairing). */
  readonly scopes: readonly string[];
  readonly deviceToken: string;
  readonly protocol: number;
  readonly pairedAtMs: number;
}

const SPKI_PREFIX_LEN = 12;

/** The signer for the identity file at `path` (created by the gateway's first start). */
export function loadUpstreamSigner(path: string): UpstreamSigner {
  let file: { publicKeyPem?: unknown; privateKeyPem?: unknown };
  try {
    file = JSON.parse(readFileSync(path, "utf8")) as typeof file;
  } catch (e) {
    throw new Error(`cannot read gatewarden's identity ${path}: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (typeof file.privateKeyPem !== "string" || typeof file.publicKeyPem !== "string") throw new Error(`gatewarden's identity ${path} has no key pair`);
  const privateKey = createPrivateKey(file.privateKeyPem);
  const raw = createPublicKey(file.publicKeyPem).export({ format: "der", type: "spki" }).subarray(SPKI_PREFIX_LEN);
  return {
    deviceId: deriveDeviceId(raw),
    publicKey: raw.toString("base64url"),
    sign: (payload) => edSign(null, Buffer.from(payload, "utf8"), privateKey).toString("base64url"),
  };
}

export function upstreamCredentialsPath(stateDir: string): string {
  return join(stateDir, "upstream", "credentials.json");
}

/** The stored credentials, or `undefined` when gatewarden is not paired with an upstream. */
export function readUpstreamCredentials(path: string): UpstreamCredentials | undefined {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new Error(`cannot read ${path}: ${(e as Error).message}`);
  }
  try {
    const c = JSON.parse(text) as UpstreamCredentials;
    if (c.version !== 1 || typeof c.deviceToken !== "string" || typeof c.url !== "string") throw new Error("unexpected content");
    return c;
  } catch (e) {
    throw new Error(`${path} is damaged (${(e as Error).message}); pair again with \`gatewarden upstream pair\``);
  }
}

/** Written whole or not at all: a temp file, fsync, rename; 0600 in a 0700 dir. */
export function writeUpstreamCredentials(path: string, credentials: UpstreamCredentials): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${process.pid}.tmp`;
  const fd = openSync(tmp, "w", 0o600);
  try {
    writeSync(fd, JSON.stringify(credentials, null, 2) + "\n");
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

/**
 * What `serve --upstream URL` needs: the credentials `gatewarden upstream pair`
 * kept for that very URL, and the key to sign with. A clear refusal otherwise.
 */
export function loadUpstreamIdentity(stateDir: string, identityFile: string, url: string): { credentials: UpstreamCredentials; signer: UpstreamSigner } {
  const path = upstreamCredentialsPath(stateDir);
  const credentials = readUpstreamCredentials(path);
  if (!credentials) throw new Error(`gatewarden is not paired with the upstream ${url}: run \`gatewarden upstream pair --url ${url}\` first`);
  if (normalizeUrl(credentials.url) !== normalizeUrl(url)) {
    throw new Error(`gatewarden is paired with ${credentials.url}, not ${url}: run \`gatewarden upstream pair --url ${url}\``);
  }
  const signer = loadUpstreamSigner(identityFile);
  if (signer.deviceId !== credentials.deviceId) throw new Error(`${path} was issued to another gatewarden identity: pair again with \`gatewarden upstream pair --url ${url}\``);
  return { credentials, signer };
}

function normalizeUrl(u: string): string {
  try {
    return new URL(u).toString().replace(/\/$/, "");
  } catch {
    return u;
  }
}
