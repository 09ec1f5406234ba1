import { randomBytes, randomUUID } from "node:crypto";

// Time and randomness are passed in, so the core and the tests are deterministic.

export interface Clock {
  now(): number;
}

export interface Random {
  bytes(n: number): Buffer;
  uuid(): string;
}

export const systemClock: Clock = { now: () => Date.now() };
export const systemRandom: Random = { bytes: (n) => randomBytes(n), uuid: () => randomUUID() };

/** 32 random bytes, unpadded base64url (43 chars): device tokens, bootstrap tokens, secrets. */
export function newSecret(random: Random, prefix = ""): string {
  return prefix + random.bytes(32).toString("base64url");
}
