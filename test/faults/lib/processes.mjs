import { spawn } from 'node:child_process';
import { appendFileSync, closeSync, existsSync, openSync, readFileSync } from 'node:fs';

/** Every child still running, so the runner can kill them all whatever happens. */
const running = new Set();

/**
 * One Node.js program run as a child process, its output appended to a log file (never to the suite's output, so a
 * token could only leak into a file the suite then checks). Restarting appends to the same file.
 */
export class NodeProcess {
  constructor({ name, script, env, cwd, logFile }) {
    this.name = name;
    this.script = script;
    this.env = env;
    this.cwd = cwd;
    this.logFile = logFile;
    this.child = null;
    this.exit = null;
  }

  start() {
    if (this.running) throw new Error(`${this.name} is already running`);
    appendFileSync(this.logFile, `--- ${new Date().toISOString()} start ${this.name}\n`);
    const fd = openSync(this.logFile, 'a');
    try {
      this.child = spawn(process.execPath, [this.script], { env: this.env, cwd: this.cwd, stdio: ['ignore', fd, fd] });
    } finally {
      closeSync(fd);
    }
    const child = this.child;
    this.exit = null;
    running.add(this);
    this.exited = new Promise((resolve) => {
      const finish = (code, signal) => {
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

  get pid() {
    return this.child?.pid;
  }

  get running() {
    return this.child !== null && this.exit === null && running.has(this);
  }

  signal(signal) {
    if (this.running) this.child.kill(signal);
  }

  /** Sends `signal` and waits for the exit; SIGKILL after `timeoutMs`. Answers how it ended and how long it took. */
  async stop(signal, timeoutMs) {
    if (!this.running) return { code: this.exit?.code ?? null, signal: this.exit?.signal ?? null, ms: 0, forced: false };
    const sentAt = Date.now();
    const exited = this.exited;
    this.child.kill(signal);
    let timer;
    const late = new Promise((resolve) => {
      timer = setTimeout(() => resolve('late'), timeoutMs);
    });
    const first = await Promise.race([exited, late]);
    clearTimeout(timer);
    const forced = first === 'late';
    if (forced) this.child.kill('SIGKILL');
    const exit = await exited;
    return { code: exit.code, signal: exit.signal, ms: exit.at - sentAt, forced };
  }

  tail(lines = 30) {
    return tailOf(this.logFile, lines);
  }
}

export function tailOf(file, lines = 30) {
  if (!existsSync(file)) return '(no log)';
  return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
}

/** Last resort on the way out: nothing the suite started may outlive it. */
export function killAllChildren() {
  for (const proc of running) proc.child.kill('SIGKILL');
  running.clear();
}
