import { request, type IncomingMessage, type ServerResponse } from "node:http";

// In upstream mode gatewarden serves the upstream's Control UI (the web app
// every OpenClaw gateway serves at `/`) on its own port, so a browser that
// opens gatewarden's URL gets the real UI and its WebSocket connects to
// gatewarden. Only the UI's own files are proxied, by an allowlist of
// paths; nothing else of the upstream's HTTP surface (its config and avatar
// endpoints, its APIs) is reachable through gatewarden. Requests carry no
// credential of the browser's to the upstream (no cookie, no authorization).

/** The directories of static files the UI ships (dist/control-ui in the openclaw package, 2026.4.24 and 2026.9.6). */
const UI_DIRS = "assets|fonts|themes|app-art|community-art|provider-icons|cloud-provider-icons|file-icons";
/** Static files only: code, styles, fonts, images, text. */
const UI_EXTENSIONS = "js|mjs|css|woff2|woff|ttf|png|svg|jpg|jpeg|webp|gif|ico|txt|map";
const UI_FILE = new RegExp(`^/(${UI_DIRS})(/[A-Za-z0-9_-][A-Za-z0-9._-]*)*/[A-Za-z0-9_-][A-Za-z0-9._-]*\\.(${UI_EXTENSIONS})$`);
const UI_ROUTE = /^\/[A-Za-z][A-Za-z0-9_-]*(\/[A-Za-z0-9_-]+)*\/?$/;
const NOT_UI_ROUTE = new RegExp(`^/(avatar|api|approvals|healthz|${UI_DIRS})(/|$)`);
const UI_TOP_FILES = new Set(["/", "/index.html", "/favicon.svg", "/favicon.ico", "/favicon-32.png", "/apple-touch-icon.png", "/manifest.webmanifest", "/sw.js", "/social-card.png", "/asset-manifest.json"]);

/** The UI's files: its page, static assets, icons, manifest and service worker. */
export function isControlUiFile(path: string): boolean {
  return UI_TOP_FILES.has(path) || UI_FILE.test(path);
}

/**
 * The UI's own routes (`/chat`, `/sessions/...`: the single-page app's
 * views), answered with its page. Anything with a dot, and the upstream's
 * endpoints (`/__openclaw…`, `/avatar…`, `/api…`), is not one.
 */
export function isControlUiRoute(path: string): boolean {
  return UI_ROUTE.test(path) && !NOT_UI_ROUTE.test(path);
}

/** Request headers passed on: what content negotiation and caching need, nothing that identifies or authenticates. */
const REQUEST_HEADERS = ["accept", "accept-encoding", "accept-language", "if-none-match", "if-modified-since"] as const;
/** Response headers passed back: the content's own and the UI's security headers. */
const RESPONSE_HEADERS = [
  "content-type",
  "content-encoding",
  "content-length",
  "cache-control",
  "etag",
  "last-modified",
  "vary",
  "content-security-policy",
  "x-content-type-options",
  "x-frame-options",
  "referrer-policy",
  "permissions-policy",
  "cross-origin-opener-policy",
  "cross-origin-resource-policy",
] as const;

const TIMEOUT_MS = 10_000;
/** The largest file passed on (the UI's biggest bundle is a few MB). */
const MAX_BYTES = 32 * 1024 * 1024;

/** The upstream's HTTP origin for its WebSocket URL (same host and port). */
export function upstreamHttpOrigin(wsUrl: string): string {
  const u = new URL(wsUrl);
  u.protocol = u.protocol === "wss:" ? "https:" : "http:";
  return u.origin;
}

/**
 * Answer `req` from the upstream's Control UI when its path is one of the
 * UI's files; returns false (nothing written) otherwise.
 */
export function proxyControlUi(origin: string, req: IncomingMessage, res: ServerResponse): boolean {
  const path = (req.url ?? "").split("?")[0] ?? "";
  const file = isControlUiFile(path);
  const route = !file && isControlUiRoute(path);
  if (!file && !route) return false;
  if (req.method !== "GET" && req.method !== "HEAD") {
    res.writeHead(405, { allow: "GET, HEAD", "content-type": "text/plain; charset=utf-8" }).end("method not allowed\n");
    return true;
  }
  const headers: Record<string, string> = {};
  for (const h of REQUEST_HEADERS) {
    const v = req.headers[h];
    if (typeof v === "string") headers[h] = v;
  }
  // A route is the app's page; the browser's URL stays the route, which the app reads.
  const target = new URL(route ? "/" : (req.url ?? "/"), origin);
  const upstream = request(target, { method: req.method, headers, timeout: TIMEOUT_MS }, (up) => {
    const out: Record<string, string | string[]> = {};
    for (const h of RESPONSE_HEADERS) {
      const v = up.headers[h];
      if (v !== undefined) out[h] = v;
    }
    const length = Number(up.headers["content-length"] ?? 0);
    if (length > MAX_BYTES) {
      up.destroy();
      res.writeHead(502, { "content-type": "text/plain; charset=utf-8" }).end("upstream file too large\n");
      return;
    }
    res.writeHead(up.statusCode ?? 502, out);
    let seen = 0;
    up.on("data", (chunk: Buffer) => {
      seen += chunk.length;
      if (seen > MAX_BYTES) {
        up.destroy();
        res.destroy();
      }
    });
    up.pipe(res);
  });
  upstream.on("timeout", () => upstream.destroy(new Error("timeout")));
  upstream.on("error", () => {
    if (!res.headersSent) res.writeHead(502, { "content-type": "text/plain; charset=utf-8" }).end("gatewarden: the upstream gateway is unreachable\n");
    else res.destroy();
  });
  req.on("close", () => {
    if (!res.writableFinished) upstream.destroy();
  });
  upstream.end();
  return true;
}
