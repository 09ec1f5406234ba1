import { generateKeyPairSync, createPrivateKey, createPublicKey } from "node:crypto";
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeSync } from "node:fs";
import { dirname } from "node:path";
import { deriveDeviceId } from "../identity/device-key.js";
import type { GatewayIdentity } from "../methods/define-method.js";

const SPKI_PREFIX_LEN = 12;

interface IdentityFile {
  version: 1;
  deviceId: string;
  publicKeyPem: string;
  privateKeyPem: string;
  createdAtMs: number;
}

function identityOf(publicKeyPem: string): GatewayIdentity {
  const raw = createPublicKey(publicKeyPem).export({ format: "der", type: "spki" }).subarray(SPKI_PREFIX_LEN);
  return { deviceId: deriveDeviceId(raw), publicKey: raw.toString("base64url") };
}

/** The gateway's own Ed25519 identity (`gateway.identity.get`), kept 0600 in the state dir. */
export function loadOrCreateIdentity(path: string | undefined, nowMs: number): GatewayIdentity {
  if (path && existsSync(path)) {
    try {
      const file = JSON.parse(readFileSync(path, "utf8")) as IdentityFile;
      createPrivateKey(file.privateKeyPem); // fail loudly on a corrupt file
      return identityOf(file.publicKeyPem);
    } catch (e) {
      throw new Error(
        `gatewarden's identity file ${path} is damaged (${e instanceof Error ? e.message : String(e)}); restore it from a backup, or move it aside to create a new identity (an upstream pairing must then be redone)`,
      );
    }
  }
  const { publicKey, privateKey } = generateKeyPairSync("ed25519");
  const publicKeyPem = publicKey.export({ format: "pem", type: "spki" }).toString();
  const identity = identityOf(publicKeyPem);
  if (path) {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    const file: IdentityFile = {
      version: 1,
      deviceId: identity.deviceId,
      publicKeyPem,
      privateKeyPem: privateKey.export({ format: "pem", type: "pkcs8" }).toString(),
      createdAtMs: nowMs,
    };
    writeFileAtomically(path, JSON.stringify(file, null, 2) + "\n");
  }
  return identity;
}

/** Whole or not at all: a 0600 temp file, fsync, rename (a full disk leaves no 0-byte identity behind). */
function writeFileAtomically(path: string, text: string): void {
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    const fd = openSync(tmp, "w", 0o600);
    try {
      writeSync(fd, text);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (e) {
    try {
      rmSync(tmp, { force: true });
    } catch {
      // nothing more to clean
    }
    throw new Error(`cannot write gatewarden's identity file ${path}: ${e instanceof Error ? e.message : String(e)}`);
  }
}
