// (Re)starts HAProxy where it owes it, after `haproxy -c` accepted the new
// configuration: a configuration HAProxy would reject never replaces a running one.

import { byRole, known, owesRestart, startService, type UpPhase } from '../context.ts';

export const haproxy: UpPhase = {
  name: 'haproxy',
  async run(ctx) {
    const { changes, paths } = ctx;
    for (const h of byRole(ctx, 'haproxy')) {
      if (!owesRestart(h, 'haproxy')) continue;
      const running = known(h).facts.active.haproxy;
      const check = `(set -a; . ${paths.haproxyEnv}; set +a; haproxy -c -q -f ${paths.haproxyConfig})`;
      await changes.do(h.node.name, 'haproxy', running ? 'restart haproxy (configuration changed)' : 'start haproxy', () =>
        startService(h, 'haproxy', running, check),
      );
    }
    return undefined;
  },
};
