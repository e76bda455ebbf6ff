import pino, { type DestinationStream } from 'pino';
import { prettyFactory } from 'pino-pretty';
import type { AppConfig } from '../config/app-config.js';
import { standardOutput } from './turn-output.js';

/** A line the person starting the service must not miss (the sandbox warning, the address it listens on). */
export const HIGHLIGHT = 'highlight';

/** Fields of a request line that the pretty message already says, or that a person does not need. */
const HIDDEN_IN_PRETTY = ['pid', 'hostname', 'context', 'req', 'res', 'responseTime', HIGHLIGHT];

/** JSON lines for machines; readable lines for a person at a terminal, never in production (where a collector reads). */
export function wantsPrettyLogs(config: Pick<AppConfig, 'production'>, stream: { isTTY?: boolean } = process.stdout): boolean {
  return !config.production && stream.isTTY === true;
}

/** Where the service's log lines go: standard output, pretty at a terminal outside production, JSON lines otherwise. */
export function logDestination(config: Pick<AppConfig, 'production'>): DestinationStream {
  return wantsPrettyLogs(config) ? prettyOutput(pino.destination({ dest: 1, sync: true }), true) : standardOutput();
}

/**
 * Each JSON line, after redaction (so a pretty line can hold no more than the JSON line would), turned into a readable
 * one and written at once: pino-pretty's own stream works asynchronously and would lose the last lines before an exit.
 * Request lines read "GET /path 200 (12 ms)"; highlighted lines are framed.
 */
export function prettyOutput(destination: { write(text: string): unknown }, colorize: boolean): DestinationStream {
  const prettify = prettyFactory({
    colorize,
    translateTime: 'SYS:HH:MM:ss.l',
    ignore: HIDDEN_IN_PRETTY.join(','),
    messageFormat: (log, messageKey, _level, { colors }) => {
      const context = typeof log.context === 'string' ? `${colors.gray(`[${log.context}]`)} ` : '';
      const message = typeof log[messageKey] === 'string' ? log[messageKey] : '';
      const request = log.req as { method?: string; url?: string } | undefined;
      const response = log.res as { statusCode?: number } | undefined;
      if (request?.method && response?.statusCode !== undefined) {
        return `${request.method} ${request.url} ${response.statusCode} (${String(log.responseTime)} ms)`;
      }
      if (log[HIGHLIGHT]) return `${context}\n${frame(message, (text) => colors.bold(colors.yellow(text)))}`;
      return `${context}${message}`;
    },
  });
  return { write: (line: string) => destination.write(prettify(line)) };
}

/** The message in a box, wrapped to the width of a usual terminal. */
function frame(message: string, paint: (text: string) => string): string {
  const width = 76;
  const lines: string[] = [];
  for (const paragraph of message.split('\n')) {
    let line = '';
    for (const word of paragraph.split(' ')) {
      if (line && line.length + word.length + 1 > width) {
        lines.push(line);
        line = word;
      } else line = line ? `${line} ${word}` : word;
    }
    lines.push(line);
  }
  const rule = '─'.repeat(width + 2);
  return [`┌${rule}┐`, ...lines.map((l) => `│ ${paint(l.padEnd(width))} │`), `└${rule}┘`].join('\n');
}
