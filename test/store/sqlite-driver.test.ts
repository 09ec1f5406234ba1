import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { Database, loadSqliteDriver, sqliteDriverPackage } from "../../src/store/sqlite-driver.js";

const require = createRequire(import.meta.url);
const ROOT = resolve(fileURLToPath(new URL("../../../", import.meta.url)));
const dir = mkdtempSync(join(tmpdir(), "gatewarden-driver-"));
after(() => rmSync(dir, { recursive: true, force: true }));

describe("the SQLite driver", () => {
  it("is better-sqlite3 12 (built for this Node) on Node 20 and 21, the prebuilt 13 from Node 22 on", () => {
    assert.equal(sqliteDriverPackage("20.12.0"), "better-sqlite3-node20");
    assert.equal(sqliteDriverPackage("21.7.3"), "better-sqlite3-node20");
    assert.equal(sqliteDriverPackage("22.0.0"), "better-sqlite3");
    assert.equal(sqliteDriverPackage("24.21.0"), "better-sqlite3");
    const { version } = require(`${sqliteDriverPackage(process.versions.node)}/package.json`) as { version: string };
    assert.equal(version.split(".")[0], Number(process.versions.node.split(".")[0]) >= 22 ? "13" : "12");
  });

  it(`opens a WAL database, writes and reads it under this Node (${process.versions.node})`, () => {
    const path = join(dir, "wal.sqlite");
    const db = new Database(path);
    assert.equal(db.pragma("journal_mode = WAL", { simple: true }), "wal");
    db.exec("CREATE TABLE t (k TEXT PRIMARY KEY)");
    db.prepare("INSERT INTO t VALUES (?)").run("a");
    assert.throws(() => db.prepare("INSERT INTO t VALUES (?)").run("a"), (e: unknown) => e instanceof Database.SqliteError && e.code === "SQLITE_CONSTRAINT_PRIMARYKEY");
    db.close();
    const again = new Database(path, { readonly: true, fileMustExist: true });
    assert.deepEqual(again.prepare("SELECT k FROM t").all(), [{ k: "a" }]);
    again.close();
  });

  it("is loaded by name only in sqlite-driver.ts: importing better-sqlite3 directly gets 13.x, which crashes Node 20", () => {
    const offenders: string[] = [];
    const walk = (dir: string): void => {
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        const path = join(dir, entry.name);
        if (entry.isDirectory()) walk(path);
        else if (entry.name.endsWith(".ts") && entry.name !== "sqlite-driver.ts") {
          // A type-only import is erased; a value import, import() or require() loads the package.
          if (/(^import (?!type )[^;]*from |\bimport\(|\brequire\()\s*["']better-sqlite3["']/m.test(readFileSync(path, "utf8"))) offenders.push(relative(ROOT, path));
        }
      }
    };
    for (const dir of ["src", "test", "bench"]) walk(join(ROOT, dir));
    assert.deepEqual(offenders, [], 'use `import { Database } from ".../src/store/sqlite-driver.js"`');
  });

  it("that cannot be loaded fails only when a database is opened, in one line naming the package and what to do", () => {
    const missing = loadSqliteDriver("20.20.2", () => {
      throw new Error("Cannot find module 'better-sqlite3-node20'\nRequire stack:\n- /x/sqlite-driver.js");
    });
    assert.throws(
      () => new missing(join(dir, "never.sqlite")),
      (e: unknown) =>
        e instanceof Error &&
        !e.message.includes("\n") &&
        /^the SQLite driver for Node 20\.20\.2 \(better-sqlite3-node20\) did not load: Cannot find module 'better-sqlite3-node20' \(.*compiler.*Node 22 or 24\)$/.test(e.message),
    );
    assert.equal(new Error("x") instanceof missing.SqliteError, false);
  });
});
