// Starts tests/browser/oidc-provider.mjs as a child process and waits for its ready line.

import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const SCRIPT = fileURLToPath(new URL('../oidc-provider.mjs', import.meta.url));

export async function startOidcProvider({
  clientId,
  clientSecret,
  redirectUri,
  postLogoutRedirectUri = '',
  port = 0,
  timeoutMs = 15000,
}) {
  const child = spawn(process.execPath, [SCRIPT], {
    env: {
      ...process.env,
      OIDC_CLIENT_ID: clientId,
      OIDC_CLIENT_SECRET: clientSecret,
      OIDC_REDIRECT_URI: redirectUri,
      OIDC_POST_LOGOUT_REDIRECT_URI: postLogoutRedirectUri,
      OIDC_PORT: String(port),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d) => {
    stderr += d;
    if (process.env.OIDC_VERBOSE) process.stderr.write(d);
  });

  const issuer = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`OIDC provider not ready after ${timeoutMs} ms\n${stderr}`)), timeoutMs);
    child.stdout.on('data', (d) => {
      out += d;
      const m = /^OIDC_READY (\S+)$/m.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`OIDC provider exited with ${code}\n${stderr}`));
    });
  });

  return {
    issuer,
    process: child,
    stderr: () => stderr,
    stop: () => new Promise((resolve) => {
      if (child.exitCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    }),
  };
}
