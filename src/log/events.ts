// Progress and log events as one discriminated union, with one formatter per
// output: the same events feed the terminal, `--json` (one object per line) and tests.

export type GardenEvent =
  | { kind: 'step'; step: string; member?: string; status: 'start' | 'done' | 'skip' | 'fail'; detail?: string }
  | { kind: 'change'; member?: string; what: string }
  | { kind: 'warn'; message: string }
  | { kind: 'info'; message: string };

export type Reporter = (event: GardenEvent) => void;

export const silent: Reporter = () => {};

const MARK = { start: '…', done: '✓', skip: '·', fail: '✗' } as const;

export function formatEvent(e: GardenEvent): string {
  switch (e.kind) {
    case 'step':
      return `${MARK[e.status]} ${e.step}${e.member ? ` [${e.member}]` : ''}${e.detail ? `: ${e.detail}` : ''}`;
    case 'change':
      return `  changed${e.member ? ` [${e.member}]` : ''}: ${e.what}`;
    case 'warn':
      return `! ${e.message}`;
    case 'info':
      return e.message;
  }
}

/** Human progress on stderr (stdout stays for results); with `json`, one JSON object per line. */
export function streamReporter(stream: NodeJS.WritableStream, json: boolean): Reporter {
  return (e) => {
    if (json) stream.write(`${JSON.stringify({ ts: new Date().toISOString(), ...e })}\n`);
    else if (!(e.kind === 'step' && e.status === 'start')) stream.write(`${formatEvent(e)}\n`);
  };
}
