// Confirmation for destructive operations: `--yes`, or a person at a terminal
// who types the expected word. Without a terminal and without --yes, nothing happens.
import { createInterface } from 'node:readline/promises';
import { GardenError } from '../errors.ts';

export interface Confirmation {
  yes: boolean | undefined;
  /** What is about to happen, for the refusal ("refusing to <action> without confirmation"). */
  action: string;
  /** What will be lost or disturbed, in one or two sentences. */
  loss: string;
  /** The word to type (a cluster, scope or member name). */
  expect: string;
  /** How to name the word in the prompt ("the cluster name"). */
  what: string;
}

/** True to go ahead; false when the person did not confirm (they are told nothing changed). */
export async function confirmed(c: Confirmation): Promise<boolean> {
  if (c.yes) return true;
  if (!process.stdin.isTTY) {
    throw new GardenError('CONFIRMATION_REQUIRED', `refusing to ${c.action} without confirmation`, { details: [c.loss], hint: 'run it again with --yes' });
  }
  process.stderr.write(`${c.loss}\n`);
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    if ((await rl.question(`Type ${c.what} (${c.expect}) to confirm: `)).trim() === c.expect) return true;
  } finally {
    rl.close();
  }
  process.stderr.write('not confirmed; nothing was changed\n');
  return false;
}
