// Whether something listens: one TCP connect with a short deadline, for the tests' and benches' waits.
import { connect } from 'node:net';

export const portOpen = (host: string, port: number, timeoutMs = 500) =>
  new Promise<boolean>((resolve) => {
    const s = connect({ host, port, timeout: timeoutMs }, () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
    s.on('timeout', () => {
      s.destroy();
      resolve(false);
    });
  });
