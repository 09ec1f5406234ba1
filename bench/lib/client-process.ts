import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import type { ClientCommand, ClientReplies, ClientRequest, ClientResponse } from "./ipc.js";
import { nodeCommand, track } from "./servers.js";

/** The load generator as a child process, driven by typed request/response messages. */
export class LoadClient {
  private seq = 0;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();

  private constructor(private readonly child: ChildProcess) {
    child.on("message", (m: ClientResponse) => {
      const waiter = this.pending.get(m.seq);
      if (!waiter) return;
      this.pending.delete(m.seq);
      if (m.ok) waiter.resolve(m.value);
      else waiter.reject(new Error(`load client: ${m.error}`));
    });
    child.once("exit", (code) => {
      for (const w of this.pending.values()) w.reject(new Error(`load client exited with ${String(code)}`));
      this.pending.clear();
    });
  }

  static start(root: string, cpu: number | undefined): LoadClient {
    const { command, args } = nodeCommand(cpu, [join(root, "dist", "bench", "load-client.js")]);
    return new LoadClient(track(spawn(command, args, { stdio: ["ignore", "inherit", "inherit", "ipc"], cwd: root })));
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  run<C extends ClientCommand>(command: C): Promise<ClientReplies[C["cmd"]]> {
    const seq = ++this.seq;
    return new Promise((resolve, reject) => {
      this.pending.set(seq, { resolve: resolve as (v: unknown) => void, reject });
      this.child.send({ seq, command } satisfies ClientRequest);
    });
  }

  stop(): void {
    if (this.child.connected) this.child.disconnect();
  }
}
