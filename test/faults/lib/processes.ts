import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, closeSync, existsSync, openSync, readFileSync } from 'node:fs';

export interface NodeProcessOptions {
  name: string;
  /** The JavaScript file Node.js runs. */
  script: string;
  env: NodeJS.ProcessEnv;
  cwd: string;
  logFile: string;
}

/** How a child ended, and when (epoch milliseconds). */
export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  at: number;
}

/** How a stop went: the exit, how long it took after the signal, and whether SIGKILL had to follow. */
export interface Stop {
  code: number | null;
  signal: NodeJS.Signals | null;
  ms: number;
  forced: boolean;
}

/** Every child still running, so the runner can kill them all whatever happens. */
const running = new Set<NodeProcess>();

/**
 * One Node.js program run as a child process, its output appended to a log file (never to the suite's output, so a
 * token could only leak into a file the suite then checks). Restarting appends to the same file.
 */
export class NodeProcess {
  readonly name: string;
  readonly script: string;
  readonly env: NodeJS.ProcessEnv;
  readonly cwd: string;
  readonly logFile: string;
  child: ChildProcess | null = null;
  exit: Exit | null = null;
  /** Settles when the child started last exits. */
  exited: Promise<Exit>;

  constructor({ name, script, env, cwd, logFile }: NodeProcessOptions) {
    this.name = name;
    this.script = script;
    this.env = env;
    this.cwd = cwd;
    this.logFile = logFile;
  }

  start(): this {
    if (this.running) throw new Error(`${this.name} is already running`);
    appendFileSync(this.logFile, `--- ${new Date().toISOString()} start ${this.name}\n`);
    const fd = openSync(this.logFile, 'a');
    let child: ChildProcess;
    try {
      child = spawn(process.execPath, [this.script], { env: this.env, cwd: this.cwd, stdio: ['ignore', fd, fd] });
    } finally {
      closeSync(fd);
    }
    this.child = child;
    this.exit = null;
    running.add(this);
    this.exited = new Promise((resolve) => {
      const finish = (code: number | null, signal: NodeJS.Signals | null) => {
        running.delete(this);
        const exit = { code, signal, at: Date.now() };
        if (this.child === child) this.exit = exit;
        resolve(exit);
      };
      child.once('exit', finish);
      child.once('error', () => finish(null, null));
    });
    return this;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== null && this.exit === null && running.has(this);
  }

  signal(signal: NodeJS.Signals): void {
    if (this.running) this.child?.kill(signal);
  }

  /** Sends `signal` and waits for the exit; SIGKILL after `timeoutMs`. Answers how it ended and how long it took. */
  async stop(signal: NodeJS.Signals, timeoutMs: number): Promise<Stop> {
    const child = this.child;
    if (!this.running || child === null) return { code: this.exit?.code ?? null, signal: this.exit?.signal ?? null, ms: 0, forced: false };
    const sentAt = Date.now();
    const exited = this.exited;
    child.kill(signal);
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => {
      timer = setTimeout(() => resolve('late'), timeoutMs);
    });
    const first = await Promise.race([exited, late]);
    clearTimeout(timer);
    const forced = first === 'late';
    if (forced) child.kill('SIGKILL');
    const exit = await exited;
    return { code: exit.code, signal: exit.signal, ms: exit.at - sentAt, forced };
  }

  tail(lines = 30): string {
    return tailOf(this.logFile, lines);
  }
}

export function tailOf(file: string, lines = 30): string {
  if (!existsSync(file)) return '(no log)';
  return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
}

/** Last resort on the way out: nothing the suite started may outlive it. */
export function killAllChildren(): void {
  for (const proc of running) proc.child?.kill('SIGKILL');
  running.clear();
}
