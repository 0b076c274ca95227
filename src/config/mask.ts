// `config show` prints the effective config for people and scripts; values
// that look like secrets (an app's env var named *_PASSWORD, *_TOKEN, …) are masked.
import type { Config } from './schema.ts';

const SECRET_NAME = /(PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|PRIVATE_?KEY|CREDENTIALS?)$/i;
export const MASK = '********';

export function maskSecrets(config: Config): Config {
  return {
    ...config,
    apps: config.apps.map((a) => ({
      ...a,
      env: Object.fromEntries(Object.entries(a.env).map(([k, v]) => [k, SECRET_NAME.test(k) ? MASK : v])),
    })),
  };
}
