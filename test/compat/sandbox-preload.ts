import dns from "node:dns";

// Preloaded (`node --import`) into every OpenClaw CLI process the compat suite
// runs; never imported by the tests themselves.
//
// 1. Keeps the CLI on this machine: name lookups other than loopback names fail
//    with ENOTFOUND, so update checks, registry look-ups and plugin installs
//    the CLI may attempt fail fast instead of leaving loopback.
// 2. Lets the CLI reach gatewarden by a LAN-style name. The 9.x CLI omits its
//    device identity when the gateway URL is loopback and a shared token is
//    set (it expects the server to trust the scopes it claims); addressed by a
//    name it behaves as an operator's CLI on another host does, which is the
//    path device pairing takes. The name resolves to 127.0.0.1, so the traffic
//    never leaves loopback.

type LookupCallback = (err: NodeJS.ErrnoException | null, address?: string | dns.LookupAddress[], family?: number) => void;

const mappedHost = process.env.GATEWARDEN_COMPAT_HOST?.toLowerCase();
const LOOPBACK_NAMES: ReadonlySet<string> = new Set(["localhost", "127.0.0.1", "::1", "[::1]"]);

function allowed(hostname: string): boolean {
  const h = hostname.toLowerCase();
  return LOOPBACK_NAMES.has(h) || /^127\.\d+\.\d+\.\d+$/.test(h);
}

function blocked(hostname: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname} (the compat sandbox stays on loopback)`), {
    code: "ENOTFOUND",
    errno: -3008,
    syscall: "getaddrinfo",
    hostname,
  });
}

const realLookup = dns.lookup;

function sandboxLookup(hostname: string, ...rest: unknown[]): void {
  const options = rest.length > 1 ? rest[0] : undefined;
  const callback = rest[rest.length - 1] as LookupCallback;
  const all = typeof options === "object" && options !== null && (options as { all?: unknown }).all === true;
  if (mappedHost !== undefined && hostname.toLowerCase() === mappedHost) {
    if (all) process.nextTick(callback, null, [{ address: "127.0.0.1", family: 4 }]);
    else process.nextTick(callback, null, "127.0.0.1", 4);
    return;
  }
  if (allowed(hostname)) {
    Reflect.apply(realLookup, dns, [hostname, ...rest]);
    return;
  }
  process.nextTick(callback, blocked(hostname));
}

const realPromiseLookup = dns.promises.lookup;

async function sandboxPromiseLookup(hostname: string, options?: unknown): Promise<unknown> {
  const all = typeof options === "object" && options !== null && (options as { all?: unknown }).all === true;
  if (mappedHost !== undefined && hostname.toLowerCase() === mappedHost) {
    return all ? [{ address: "127.0.0.1", family: 4 }] : { address: "127.0.0.1", family: 4 };
  }
  if (allowed(hostname)) return Reflect.apply(realPromiseLookup, dns.promises, [hostname, options]) as Promise<unknown>;
  throw blocked(hostname);
}

(dns as unknown as { lookup: unknown }).lookup = sandboxLookup;
(dns.promises as unknown as { lookup: unknown }).lookup = sandboxPromiseLookup;
