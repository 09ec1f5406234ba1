import { generateKeyPairSync, createPrivateKey, createPublicKey } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync, chmodSync } from "node:fs";
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
    const file = JSON.parse(readFileSync(path, "utf8")) as IdentityFile;
    createPrivateKey(file.privateKeyPem); // fail loudly on a corrupt file
    return identityOf(file.publicKeyPem);
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
    writeFileSync(path, JSON.stringify(file, null, 2) + "\n", { mode: 0o600 });
    chmodSync(path, 0o600);
  }
  return identity;
}
